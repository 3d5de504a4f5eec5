/**
 * The value parsers of `sweeper launch slurm`'s Slurm flags (commander runs them, so a bad value
 * names its flag and exits 2). Values Slurm reads itself are passed through as written once their
 * form is right: Sweeper checks the shape, Slurm the meaning (whether the partition exists).
 */
import { InvalidArgumentError } from 'commander';

/** Slurm's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds; or no limit. */
const TIME = /^(\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|UNLIMITED|INFINITE)$/i;

export function slurmTime(value: string): string {
  if (!TIME.test(value)) throw new InvalidArgumentError("expected a Slurm time: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS");
  return value;
}

/** `--mem`: a size with an optional unit, as sbatch takes it (16G, 4000M, 4000). */
export function slurmMemory(value: string): string {
  if (!/^\d+[KMGT]?$/i.test(value)) throw new InvalidArgumentError('expected a size such as 16G, 4000M or 4000 (megabytes)');
  return value;
}

/** A partition, account or QOS name (a partition may be a comma-separated list). */
export function slurmName(value: string): string {
  if (!/^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/.test(value)) throw new InvalidArgumentError('expected a Slurm name (letters, digits, _ . -; a list separated by commas)');
  return value;
}

/** `--signal`: `[B:|R:]SIG[@SECONDS]`, the form sbatch --signal takes (USR1, SIGUSR1 or a number). */
export function slurmSignal(value: string): string {
  if (!/^((R|B|RB|BR):)?(SIG)?([A-Z][A-Z0-9]*|\d+)(@\d+)?$/.test(value)) throw new InvalidArgumentError('expected [B:]SIGNAL[@SECONDS], such as B:USR1@120');
  return value;
}

/** Flags of the script that Sweeper writes itself: an extra line setting one of them would break the launch. */
const OWN_DIRECTIVES = ['--array', '-a', '--export'];

/** `--sbatch LINE`: one directive, with or without its `#SBATCH ` prefix. */
export function sbatchLine(value: string): string {
  const line = value.replace(/^#SBATCH\s+/, '').trim();
  if (/[\x00-\x1f\x7f]/.test(line)) throw new InvalidArgumentError('an #SBATCH line is one line: no newline or control character');
  if (!line.startsWith('-')) throw new InvalidArgumentError("expected an sbatch option such as '--constraint=a100'");
  const flag = line.split(/[=\s]/, 1)[0];
  if (OWN_DIRECTIVES.includes(flag)) {
    throw new InvalidArgumentError(`${flag} is written by 'sweeper launch slurm' itself (--jobs/--concurrent make the array; the token travels in the exported environment)`);
  }
  return line;
}

/** Collects a repeatable flag's values in order. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A repeatable flag whose values are checked by `parse` first. */
export const collectWith =
  (parse: (value: string) => string) =>
  (value: string, previous: string[] = []) => [...previous, parse(value)];
