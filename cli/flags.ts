/**
 * How the CLI reads its flags: the value parsers commander runs on each flag (so a bad value
 * names its flag and exits 2), duration flags that take `30s`, `500ms`, `2m` as well as the bare
 * seconds they always took, and the one wording for flags that cannot go together.
 */
import { InvalidArgumentError, Option } from 'commander';
import { formatDuration, parseDuration } from '../domain/durations.js';
import { UsageError } from '../domain/errors.js';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

export function natsPort(value: string): number {
  return value === '-1' ? -1 : port(value);
}

/**
 * `--name <duration>`, read into milliseconds once, when commander parses it (from the command line
 * or from `env`); a bare number is seconds. A value that is not a duration is a UsageError naming
 * the flag (exit 2). With `defaultMs` the help shows it as a duration (`10s`), and the value is
 * that many milliseconds when the flag is absent.
 */
export function durationOption(name: string, description: string, opts: { defaultMs?: number; env?: string } = {}): Option {
  const flag = `--${name}`;
  // The parser cannot tell the command line from the environment: the error names both.
  const source = opts.env ? `${flag} (or ${opts.env})` : flag;
  const option = new Option(`${flag} <duration>`, `${description} (30s, 500ms, 2m; a bare number is seconds)`).argParser((value: string) =>
    parseDuration(value, { flag: source, bareUnit: 's' }),
  );
  if (opts.env) option.env(opts.env);
  if (opts.defaultMs !== undefined) option.default(opts.defaultMs, formatDuration(opts.defaultMs));
  return option;
}

/** Two flags given together that exclude each other; `hint` says what to use instead. */
export function conflictingFlags(flag: string, other: string, hint?: string): UsageError {
  return new UsageError(`${flag} cannot be used with ${other}${hint ? `: ${hint}` : ''}`);
}

/** Two flags that mean something only together, one given without the other. */
export function incompleteFlags(flag: string, other: string): UsageError {
  return new UsageError(`${flag} and ${other} go together: give both or neither`);
}
