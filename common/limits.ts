/**
 * Limits on a trial's argv, shared by both ends: the gRPC adapter refuses a CompleteTrial whose
 * argv breaks them, so the config validator refuses, up front, a sweep whose trials could.
 * A limit changed on one side only would let a sweep run trials whose results are then refused.
 */

/** Characters (UTF-16 code units, as `String.length` counts them) in one argv entry. */
export const MAX_ARGV_ENTRY_CHARS = 64 * 1024;

/** Entries in one trial's argv. */
export const MAX_ARGV_ENTRIES = 1000;
