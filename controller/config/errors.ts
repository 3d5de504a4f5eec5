/**
 * The config error and the small helpers that keep every config message in one style:
 * `path: message`, values shown as the user wrote them, a "did you mean" hint for near misses.
 */
import { UsageError } from '../../domain/errors.js';
import { Float, stringifyTyped } from '../../domain/values.js';
import type { ConfigIssue } from '../../domain/sweep-config.js';

/**
 * `path: message`, with any name in the path longer than 60 characters shortened, as `describe`
 * shortens values, and the whole line at most MAX_LINE_CHARS: a config's keys are anyone's to
 * choose, and a message quoting a 100,000-character one would be as long.
 */
export function formatIssue(issue: ConfigIssue): string {
  const path = issue.path.replace(/[^.[\]]{61,}/g, (name) => `${name.slice(0, 57)}...`);
  const line = path === '' ? issue.message : `${path}: ${issue.message}`;
  return line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS - 3)}...` : line;
}

const MAX_LINE_CHARS = 1000;

/**
 * Problems a message lists; the rest are counted. The message travels as a gRPC status (a
 * header, which HTTP/2 peers limit in size) and a screenful says enough to start fixing.
 */
const MAX_SHOWN_ISSUES = 50;

function summary(issues: ConfigIssue[]): string {
  const lines = issues.slice(0, MAX_SHOWN_ISSUES).map(formatIssue);
  if (issues.length > MAX_SHOWN_ISSUES) lines.push(`(and ${issues.length - MAX_SHOWN_ISSUES} more problems)`);
  return lines.join('\n');
}

/** Every problem found in a sweep config, one per line of the message (the first 50 of them). */
export class ConfigError extends UsageError {
  readonly issues: ConfigIssue[];
  readonly warnings: ConfigIssue[];

  constructor(issues: ConfigIssue[], warnings: ConfigIssue[] = [], options?: { cause?: unknown }) {
    super(summary(issues), options);
    this.issues = issues;
    this.warnings = warnings;
  }
}

/** A value as it appears in a message: strings quoted, numbers typed (`0.0`), containers named. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') {
    const shown = v.length > 60 ? `${v.slice(0, 57)}...` : v;
    return JSON.stringify(shown);
  }
  if (typeof v === 'number' || v instanceof Float) return stringifyTyped(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  // What YAML's `!!binary` and `!!set` load as: neither is a mapping a config could mean.
  if (v instanceof Uint8Array) return 'binary data';
  if (v instanceof Set) return 'a set';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

/**
 * Optimal string alignment distance: Levenshtein plus adjacent transpositions, so that
 * `metirc` is one edit from `metric`, as a reader would count it.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[rows - 1][cols - 1];
}

/** The closest candidate, or undefined when nothing is close enough to be a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    // A third of the length catches real typos; requiring fewer edits than the word is long
    // keeps one-letter keys from "matching" every other one-letter key.
    const limit = Math.max(1, Math.floor(c.length / 3));
    // The distance is at least the difference in length: a long key (anyone's to choose) is
    // ruled out without filling its table, which for 2,000 characters takes milliseconds.
    if (Math.abs(w.length - c.length) > limit) continue;
    const dist = editDistance(w, c.toLowerCase());
    if (dist <= limit && dist < Math.max(w.length, c.length) && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

/** ` (did you mean 'x'?)`, or the empty string. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean '${c}'?)`;
}
