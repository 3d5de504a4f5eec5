/**
 * Durations as a person types them on a command line or in an environment variable: `500ms`,
 * `30s`, `1.5s`, `2m`, `1h`, or a bare number in the unit the flag always had (seconds for every
 * flag today), so scripts written before units were accepted keep working. Parsed once, into
 * milliseconds; the code never sees the text.
 */
import { UsageError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
export type DurationUnit = keyof typeof UNIT_MS;
const UNIT_NAMES: Record<DurationUnit, string> = { ms: 'milliseconds', s: 'seconds', m: 'minutes', h: 'hours' };

/** 24 days: a Node timer waits at most 2^31 - 1 ms (about 24.8 days), and fires at once when asked for longer. */
export const MAX_DURATION_MS = 24 * 24 * UNIT_MS.h;

export interface DurationRule {
  /** Named in the error, e.g. `--grace`. */
  flag: string;
  /** What a number without a unit counts in. */
  bareUnit: DurationUnit;
  /** Whether 0 is allowed; by default a duration must be longer than that. */
  allowZero?: boolean;
}

const WITH_UNIT = /^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)$/;

/** Milliseconds, rounded to a whole one; a UsageError (exit 2) naming the flag when `text` is not a duration it takes. */
export function parseDuration(text: string, rule: DurationRule): number {
  const s = text.trim();
  const m = WITH_UNIT.exec(s);
  // A bare number is read as Number() reads it, as these flags always did.
  const amount = m ? Number(m[1]) : s === '' ? NaN : Number(s);
  const ms = Math.round(amount * UNIT_MS[m ? (m[2] as DurationUnit) : rule.bareUnit]);
  if (!Number.isFinite(ms) || ms < 0) throw durationError(text, rule, 'expected a duration such as 30s, 500ms, 2m or 1h');
  if (ms === 0 && !rule.allowZero) throw durationError(text, rule, 'expected a duration longer than 0');
  if (ms > MAX_DURATION_MS) throw durationError(text, rule, `expected at most ${formatDuration(MAX_DURATION_MS)} (24 days)`);
  return ms;
}

function durationError(text: string, rule: DurationRule, expected: string): UsageError {
  return new UsageError(`${rule.flag}: ${expected} (a bare number is ${UNIT_NAMES[rule.bareUnit]}), got '${text}'`);
}

/** The shortest exact text `parseDuration` reads back as `ms`: `10s`, `500ms`, `2m`, `1.5s`. */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}
