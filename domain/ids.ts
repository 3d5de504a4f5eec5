/**
 * Ids of sweeps, trials and agents: one alphabet and one length limit everywhere (the gRPC
 * adapter, the service, the wire schemas and replay), so a value one layer accepts is never
 * refused by the next.
 */

/** Letters, digits, '-' and '_': safe in NATS subjects, file names and URLs. */
export const MAX_ID_CHARS = 100;
export const ID_PATTERN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_ID_CHARS}}$`);
export const ID_RULE = `1-${MAX_ID_CHARS} letters, digits, '-' or '_'`;

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** A trial's id: its sweep's id and its number, never reused (numbers come from the replayed log). */
export function trialIdOf(sweepId: string, number: number): string {
  return `${sweepId}-${number}`;
}
