/**
 * What the launchers started, so `sweeper launch status|cancel` can find it again: one JSON file
 * per sweep and launcher, `<root>/<sweepId>/<kind>.json` (slurm.json, ssh.json), beside the
 * scripts and job output of that sweep. Private to the user (folders 0700, files 0600): the
 * scripts name hosts and paths, and job output may echo the environment.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { coerceError, UsageError } from '../../domain/errors.js';
import { ID_RULE, isValidId } from '../../domain/ids.js';

/** Where `--records` points by default, under the current folder. */
export const DEFAULT_RECORDS_ROOT = '.sweeper/launches';

// A sweep id and a launcher's name become a folder and a file name: nothing that could climb out of the records folder.
function checkSweepId(sweepId: string): void {
  if (!isValidId(sweepId)) throw new UsageError(`sweep id '${sweepId}' is not valid (${ID_RULE})`);
}
function checkKind(kind: string): void {
  if (!/^[a-z][a-z0-9-]*$/.test(kind)) throw new UsageError(`launcher name '${kind}' is not valid (lowercase letters, digits, '-')`);
}

/** Where the records of one sweep live (absolute); creates nothing. */
export function recordsPath(root: string, sweepId: string): string {
  checkSweepId(sweepId);
  return path.resolve(root, sweepId);
}

/** The folder of one sweep's launch records (absolute), created 0700 with its parents. */
export function recordsDir(root: string, sweepId: string): string {
  const dir = recordsPath(root, sweepId);
  // New parents are made 0700 too; a --records folder that exists keeps its mode (it may be the user's shared one).
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

const recordFile = (root: string, sweepId: string, kind: string) => {
  checkKind(kind);
  return path.join(recordsDir(root, sweepId), `${kind}.json`);
};

/** Replaces the record of launcher `kind` for the sweep (written whole, then renamed into place: never half a file). */
export function writeRecord(root: string, sweepId: string, kind: string, data: unknown): void {
  const file = recordFile(root, sweepId, kind);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/** The record of launcher `kind` for the sweep, or undefined when it launched nothing there. */
export function readRecord<T = unknown>(root: string, sweepId: string, kind: string): T | undefined {
  checkKind(kind);
  const file = path.join(recordsPath(root, sweepId), `${kind}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw coerceError(err);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new UsageError(`launch record ${file} is not valid JSON: ${coerceError(err).message}`, { cause: err });
  }
}
