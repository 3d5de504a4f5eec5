/**
 * Quoting for the scripts the launchers write: every value interpolated into a generated shell
 * script goes through `shellQuote`, and every value of a generated `#SBATCH` line through
 * `sbatchQuote`. Two functions because two parsers read them: the shell reads the script's
 * commands, sbatch reads its `#SBATCH` lines itself (its own rules: double or single quotes,
 * a backslash escapes the next character, an unquoted `#` starts a comment).
 */
import { UsageError } from '../../domain/errors.js';

/** Characters that mean nothing to a POSIX shell or to sbatch's directive parser: left bare, for a script people can read. */
const BARE = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

/**
 * `value` as one word of a POSIX shell (sh, bash, dash), whatever it holds: bare when it has only
 * harmless characters, else in single quotes, each `'` written as `'\''`. A NUL cannot be in an
 * argument at all, so it is refused.
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new UsageError(`cannot pass a value containing a NUL byte to a shell: ${JSON.stringify(value)}`);
  if (BARE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Several words, each quoted, joined by spaces. */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/**
 * `value` as the value of an `#SBATCH --flag=VALUE` line: bare when harmless, else in double
 * quotes with `\` and `"` escaped, as sbatch's directive parser reads them. A directive is one
 * line, so a control character (a newline would start a line of its own) is refused, naming
 * `flag`.
 */
export function sbatchQuote(flag: string, value: string): string {
  if (/[\x00-\x1f\x7f]/.test(value)) throw new UsageError(`${flag}: ${JSON.stringify(value)} has a control character (a newline?); an #SBATCH line is one line`);
  if (BARE.test(value)) return value;
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}
