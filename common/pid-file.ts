/**
 * Pid files and the data folder's lock: knowing, after a crash, which process an earlier run of
 * ours left behind, and proving that a pid still names that process before touching it.
 *
 * A pid alone proves nothing: once a process is gone the kernel hands its pid to the next one,
 * and a SIGKILLed owner leaves its pid files behind. So every record holds the pid together with
 * the process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot) and the boot
 * id; the three together name one process for the life of the machine. Linux only (/proc), as is
 * the rest of Sweeper's process handling.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SweeperError, UsageError } from '../domain/errors.js';

/** One process for the life of the machine. */
export interface ProcessRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat, as written there. */
  startTime: string;
  /** /proc/sys/kernel/random/boot_id: start times restart at 0 with every boot. */
  bootId: string;
}

let cachedBootId: string | undefined;

function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = '';
    }
  }
  return cachedBootId;
}

/** The fields of /proc/<pid>/stat from field 3 (state) on, or null when there is no such process. */
function statFields(pid: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses, and it may itself hold spaces and parentheses.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The record of the live process `pid`, or null when it is gone (a zombie counts as gone). */
export function describeProcess(pid: number): ProcessRecord | null {
  const fields = statFields(pid);
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  if (!fields || fields[0] === 'Z' || fields[0] === 'X' || fields[19] === undefined) return null;
  return { pid, startTime: fields[19], bootId: bootId() };
}

/** Whether the process `rec` names is still running: same pid, same start, same boot, not a zombie. */
export function isRunning(rec: ProcessRecord): boolean {
  const now = describeProcess(rec.pid);
  return now !== null && now.startTime === rec.startTime && now.bootId === rec.bootId;
}

/** The argv of a live process from /proc/<pid>/cmdline, or null. */
export function commandLine(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.length ? raw.replace(/\0$/, '').split('\0') : null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the process is gone (or its pid names another process); false at the deadline. */
export async function waitForExit(rec: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(rec)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

/** A process that was sent SIGKILL and is still there (uninterruptible sleep on a dead disk, say). */
export class ProcessSurvivedError extends SweeperError {}

/**
 * SIGTERM, wait up to `graceMs`, then SIGKILL and wait again. The caller must have proved `rec`
 * is the process it means: signals go to the pid, and each is sent only while `rec` still runs,
 * so a pid reused meanwhile is never hit.
 */
export async function terminateProcess(rec: ProcessRecord, graceMs: number): Promise<'terminated' | 'killed'> {
  if (signalIfRunning(rec, 'SIGTERM') && !(await waitForExit(rec, graceMs))) {
    signalIfRunning(rec, 'SIGKILL');
    if (!(await waitForExit(rec, 5000))) throw new ProcessSurvivedError(`process ${rec.pid} is still running after SIGKILL`);
    return 'killed';
  }
  return 'terminated';
}

function signalIfRunning(rec: ProcessRecord, signal: NodeJS.Signals): boolean {
  if (!isRunning(rec)) return false;
  try {
    process.kill(rec.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A JSON record from a pid or lock file; undefined when the file is missing or not a record. */
export function readRecord<T extends ProcessRecord>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const rec = JSON.parse(text) as T;
    return Number.isInteger(rec?.pid) && rec.pid > 0 && typeof rec.startTime === 'string' ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Written to a temporary file and renamed into place, so a reader never sees half a record. */
export function writeRecord(file: string, rec: ProcessRecord & object): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

/** Removes `file` if it still names `rec`'s process: a newer owner's record is left alone. */
export function removeRecord(file: string, rec: ProcessRecord): void {
  const now = readRecord(file);
  if (now && (now.pid !== rec.pid || now.startTime !== rec.startTime)) return;
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

/** Another live process holds the lock: exit code 2, naming it. */
export class DataFolderLockedError extends UsageError {
  constructor(
    readonly folder: string,
    readonly holderPid: number,
    readonly owner: string,
  ) {
    super(`data folder ${folder} is in use by another ${owner} (pid ${holderPid}): stop it first, or give this one another --data`);
  }
}

export interface FolderLock {
  readonly file: string;
  /** Removes the lock file if it is still ours. Also done when this process exits. */
  release(): void;
}

interface LockRecord extends ProcessRecord {
  owner: string;
  argv: string[];
}

/**
 * Takes `<dir>/<name>` for this process, so that two owners never run on one folder. The lock is
 * a file holding our record, made with link(2), which creates it complete or fails if it exists:
 * a reader never sees an empty lock. A lock whose process is gone (SIGKILL leaves it behind) is
 * taken over by renaming it away first: rename is atomic, so of two starters that both found it
 * stale only one moves the stale file, and the other, finding the first one's live lock moved
 * instead, puts it back and then sees it held.
 */
export function lockDataFolder(dir: string, owner: string, name = 'controller.lock'): FolderLock {
  const file = path.join(dir, name);
  const self = describeProcess(process.pid);
  if (!self) throw new SweeperError('cannot read /proc/self/stat: locking the data folder needs Linux /proc');
  const rec: LockRecord = { ...self, owner, argv: process.argv };
  const tmp = `${file}.${process.pid}.new`;
  writeFileSync(tmp, JSON.stringify(rec) + '\n', { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (tryLink(tmp, file)) return heldLock(file, rec);
      const holder = readRecord<LockRecord>(file);
      if (holder && isRunning(holder)) throw new DataFolderLockedError(dir, holder.pid, holder.owner ?? owner);
      takeOverStale(file);
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Already gone.
    }
  }
  throw new SweeperError(`could not take the lock ${file}: other processes keep taking it over`);
}

function tryLink(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new SweeperError(`cannot create the lock ${to}: ${(err as Error).message}`, { cause: err });
  }
}

/** Moves a stale lock out of the way; a live one moved by mistake (a race) is put back. */
function takeOverStale(file: string): void {
  const grave = `${file}.${process.pid}.stale`;
  try {
    renameSync(file, grave);
  } catch {
    return; // Someone else moved it first: look again.
  }
  const moved = readRecord(grave);
  if (moved && isRunning(moved)) tryLink(grave, file);
  try {
    unlinkSync(grave);
  } catch {
    // Already gone.
  }
}

function heldLock(file: string, rec: LockRecord): FolderLock {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    removeRecord(file, rec);
  };
  // A graceful exit, or process.exit() on a second Ctrl-C, leaves no lock behind; after a SIGKILL
  // the next start finds the lock's process gone.
  process.on('exit', release);
  return { file, release };
}
