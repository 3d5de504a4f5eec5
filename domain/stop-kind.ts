/**
 * Why the controller orders a trial stopped, as a kind that travels with the order's text (the
 * control message and the heartbeat answer), so an agent acts on the kind and keeps the text
 * for people: the sweep is over (stopped or cancelled by a person), an early-stopping rule
 * judged it, or the controller no longer counts the trial as that agent's.
 */
export const STOP_KINDS = ['sweep-over', 'early-stop', 'lost'] as const;
export type StopKind = (typeof STOP_KINDS)[number];

export function isStopKind(v: string): v is StopKind {
  return (STOP_KINDS as readonly string[]).includes(v);
}
