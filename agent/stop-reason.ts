/**
 * Why a trial was stopped: the abort reason of the trial's AbortController (agent.ts), kept on
 * its result, and told to the controller as `stopText` (CompleteTrial's `stopped_reason`, which
 * becomes the trial's reason on the leaderboard).
 */

export type StopReason =
  /** The controller stopped or cancelled the sweep. */
  | { readonly kind: 'sweep-over'; readonly text: string }
  /** An early-stopping rule (hyperband, asha, median) stopped it; `text` is the rule's verdict. */
  | { readonly kind: 'early-stop'; readonly rule: string; readonly text: string }
  /** The controller no longer counts the trial as this agent's (declared crashed while cut off, say). */
  | { readonly kind: 'lost'; readonly text: string }
  /** This agent is shutting down: a signal, or the controller out of reach past --controller-timeout. */
  | { readonly kind: 'shutdown' }
  /** Stopped through an AbortSignal aborted without a StopReason (library use). */
  | { readonly kind: 'cancelled' };

export const SHUTDOWN: StopReason = Object.freeze({ kind: 'shutdown' });
export const CANCELLED: StopReason = Object.freeze({ kind: 'cancelled' });

/** What the controller is told. Its own orders go back in its own words, so its reasons survive the round trip. */
export function stopText(reason: StopReason): string {
  switch (reason.kind) {
    case 'shutdown':
      return 'agent shutting down';
    case 'cancelled':
      return 'cancelled';
    default:
      return reason.text;
  }
}

/**
 * A stop order of the controller, typed by its words (the wire carries only the text): `sweep
 * stopped by user`, `sweep cancelled`, ... for a sweep that is over; `trial is crashed on the
 * controller` for a trial it no longer counts as ours; anything else is a stopping rule's verdict,
 * which starts with the rule's name (`hyperband: value 5 > threshold 1 at bracket 2`). Only logs
 * read the kind: the text goes back as it came, so a misread one changes nothing else.
 */
export function orderedStop(text: string): StopReason {
  if (/^sweep (stopped|cancelled|finished)\b/.test(text)) return { kind: 'sweep-over', text };
  if (/^trial is \S+ on the controller$/.test(text)) return { kind: 'lost', text };
  return { kind: 'early-stop', rule: /^([a-z_]+): /.exec(text)?.[1] ?? 'unknown', text };
}

const KINDS: ReadonlySet<string> = new Set(['sweep-over', 'early-stop', 'lost', 'shutdown', 'cancelled']);

/** An abort reason as a StopReason: one of ours as it is, anything else (a DOMException, a string) `cancelled`. */
export function asStopReason(reason: unknown): StopReason {
  const kind = (reason as { kind?: unknown } | null | undefined)?.kind;
  return typeof kind === 'string' && KINDS.has(kind) ? (reason as StopReason) : CANCELLED;
}
