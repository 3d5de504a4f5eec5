/**
 * Why a trial was stopped: the abort reason of the trial's AbortController (agent.ts), kept on
 * its result, and told to the controller as `stopText` (CompleteTrial's `stopped_reason`, which
 * becomes the trial's reason on the leaderboard).
 */
import { isStopKind, type StopKind } from '../domain/stop-kind.js';

export type StopReason =
  /** The controller stopped or cancelled the sweep. */
  | { readonly kind: 'sweep-over'; readonly text: string }
  /** An early-stopping rule (hyperband, asha, median) stopped it; `text` is the rule's verdict. */
  | { readonly kind: 'early-stop'; readonly rule: string; readonly text: string }
  /** The controller no longer counts the trial as this agent's (declared crashed while cut off, say). */
  | { readonly kind: 'lost'; readonly text: string }
  /** The host is taking the machine back (Slurm's warning signal): the trial was told to checkpoint first. */
  | { readonly kind: 'preempted'; readonly text: string }
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
 * A stop order of the controller as a StopReason: its kind as the order says it, or, from a
 * controller older than the kind field, as its words say it (`sweep stopped by user`, `sweep
 * cancelled`, ... for a sweep that is over; `trial is crashed on the controller` for a trial it no
 * longer counts as ours; anything else is a stopping rule's verdict). A rule's verdict starts with
 * the rule's name (`hyperband: value 5 > threshold 1 at bracket 2`). The text goes back as it came.
 */
export function orderedStop(text: string, kind?: string): StopReason {
  const k = kind && isStopKind(kind) ? kind : kindOfText(text);
  if (k === 'early-stop') return { kind: k, rule: /^([a-z_]+): /.exec(text)?.[1] ?? 'unknown', text };
  return { kind: k, text };
}

function kindOfText(text: string): StopKind {
  if (/^sweep (stopped|cancelled|finished)\b/.test(text)) return 'sweep-over';
  if (/^trial is \S+ on the controller$/.test(text)) return 'lost';
  return 'early-stop';
}

const KINDS: ReadonlySet<string> = new Set(['sweep-over', 'early-stop', 'lost', 'preempted', 'shutdown', 'cancelled']);

/** An abort reason as a StopReason: one of ours as it is, anything else (a DOMException, a string) `cancelled`. */
export function asStopReason(reason: unknown): StopReason {
  const kind = (reason as { kind?: unknown } | null | undefined)?.kind;
  return typeof kind === 'string' && KINDS.has(kind) ? (reason as StopReason) : CANCELLED;
}
