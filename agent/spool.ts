/**
 * The agent's metric spool: a journal on local disk of every metric point the agent has read
 * from a trial and not yet seen acknowledged by JetStream, so a point survives the agent being
 * killed (SIGKILL, OOM killer) between reading it and publishing it. Any agent of the same sweep
 * with the same spool folder on this host (at its start, and every few seconds while it runs)
 * adopts the journals of dead agents and publishes what they had not: cut batches again under
 * their original seq (JetStream's message id and the controller's per-trial seq check drop
 * whatever had arrived), the rest as new ones.
 *
 * Layout: <dir>/<sweep>/<host>-<pid>.<start>/<trial>.jsonl, one folder per agent process, so
 * liveness is a pid check and adoption is a rename. <start> is the process's start time (Linux's
 * /proc/<pid>/stat), so a pid reused by another process, after a reboot say, is not taken for
 * the agent; where it cannot be read the folder is just <host>-<pid>. Each journal is JSON lines, in the order the publisher
 * did things to the trial's queue:
 *
 *   {"trial":"<id>","seq":N,"agent":"<id>","creds":"..."}
 *                              header: the next batch seq when the file was opened, the agent whose
 *                              trial it is and its NATS credentials (NATS lets only that agent publish
 *                              the trial's metrics, so the adopter publishes them as that agent: the
 *                              folder is 0700, and a process of the same user could read the dead
 *                              agent's memory anyway)
 *   {"p":<point>}              a point was queued
 *   {"m":1}                    a malformed line was counted
 *   {"c":[seq,n,m]}            a batch was cut: seq, the first n queued points, m malformed lines
 *   {"a":seq}                  JetStream acknowledged that batch
 *   {"d":k}                    the k oldest queued points were dropped (buffer full, too large)
 *
 * A journal is rewritten as a snapshot of the queue (atomically: a new file renamed over it) once
 * it has grown past `compactBytes` and no batch is on the wire, so it stays small however long
 * the trial runs.
 *
 * Writes are gathered per trial and written with one write(2) at the end of the current turn of
 * the event loop (one per chunk read from a trial's stdout), so a killed agent loses at most the
 * lines of the chunk it was parsing. Data reaches the page cache, not the platter: it survives
 * the agent's death, not the machine's (which kills the trial anyway). No fsync: at tens of
 * thousands of points a second it would cost more than the rest of the agent.
 */
import { accessSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/log.js';
import { ThrottledWarner } from '../common/log.js';
import { metricPointSchema, type MetricPoint } from '../common/metrics-wire.js';
import { SweeperError } from '../domain/errors.js';

/** What the publisher tells its journal; a missing spool is a publisher without one. */
export interface MetricJournal {
  opened(trialId: string, nextSeq: number): void;
  point(trialId: string, point: MetricPoint): void;
  malformed(trialId: string): void;
  cut(trialId: string, seq: number, points: number, malformed: number): void;
  acked(trialId: string, seq: number): void;
  dropped(trialId: string, points: number): void;
  /**
   * No batch of the trial is on the wire: its whole state is the next seq and what is queued, so a
   * journal grown past its bound is rewritten as just that (journals of long trials stay small).
   */
  idle(trialId: string, nextSeq: number, queued: readonly MetricPoint[], malformed: number): void;
  /** Everything of the trial is acknowledged and it will log no more: forget its journal. */
  finished(trialId: string): void;
}

/** Whose journals these are: the agent id, and its NATS credentials (`.creds` text) when it has its own. */
export interface SpoolIdentity {
  agentId: string;
  creds?: string;
}

/** A trial's queue as a dead agent left it. */
export interface RecoveredTrial {
  trialId: string;
  /** The agent that ran the trial (absent in journals of older versions: the adopter's own id is used). */
  owner?: SpoolIdentity;
  /** The batch that was cut but never acknowledged: resent under the same seq. */
  unacked: { seq: number; points: MetricPoint[]; malformed: number } | null;
  /** Queued points not yet cut into a batch, oldest first, and malformed lines not yet sent. */
  queued: MetricPoint[];
  malformed: number;
  /** The seq the next new batch takes. */
  nextSeq: number;
}

/** A journal that is not one this spool wrote: set aside, never guessed at. */
export class JournalError extends SweeperError {}

/**
 * Rebuilds a trial's queue from its journal. A last line cut short by the agent's death is
 * ignored; anything else that does not parse is an error (the file is not ours to guess at).
 */
export function readJournal(text: string): RecoveredTrial {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let trialId: string | undefined;
  let owner: SpoolIdentity | undefined;
  let nextSeq = 1;
  let queued: MetricPoint[] = [];
  let malformed = 0;
  let unacked: RecoveredTrial['unacked'] = null;
  lines.forEach((line, i) => {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      if (i === lines.length - 1) return; // torn by the agent's death mid-write
      throw new JournalError(`line ${i + 1}: not JSON (${String(err)})`, { cause: err });
    }
    if (typeof r.trial === 'string') {
      if (trialId !== undefined && r.trial !== trialId) throw new JournalError(`line ${i + 1}: a second trial id '${r.trial}'`);
      trialId = r.trial;
      if (typeof r.agent === 'string') owner = { agentId: r.agent, ...(typeof r.creds === 'string' ? { creds: r.creds } : {}) };
      // Reopened after everything before was settled: nothing earlier is pending.
      nextSeq = Math.max(nextSeq, Number(r.seq) || 1);
    } else if ('p' in r) {
      const p = metricPointSchema.safeParse(r.p);
      if (!p.success) throw new JournalError(`line ${i + 1}: not a metric point`);
      queued.push(p.data);
    } else if (r.m === 1) {
      malformed++;
    } else if (Array.isArray(r.c)) {
      const [seq, n, m] = r.c.map(Number);
      if (!(seq >= 1 && n >= 0 && n <= queued.length && m >= 0)) throw new JournalError(`line ${i + 1}: a cut that does not fit the queue`);
      unacked = { seq, points: queued.slice(0, n), malformed: m };
      queued = queued.slice(n);
      malformed = Math.max(0, malformed - m);
      nextSeq = seq + 1;
    } else if (typeof r.a === 'number') {
      if (unacked?.seq === r.a) unacked = null;
    } else if (typeof r.d === 'number') {
      queued = queued.slice(r.d);
    } else {
      throw new JournalError(`line ${i + 1}: unknown record`);
    }
  });
  if (trialId === undefined) throw new JournalError('no header');
  return { trialId, ...(owner ? { owner } : {}), unacked, queued, malformed, nextSeq };
}

export interface SpoolOptions {
  /** The spool folder shared by the agents of this host (e.g. .sweeper/spool). */
  dir: string;
  sweepId: string;
  log: Logger;
  /** Whether the agent process that owns a folder is alive (start: its start time, when known); replaceable for tests. */
  isAlive?: (pid: number, start?: string) => boolean;
  /** This process's pid, for tests that play two agents in one process. */
  pid?: number;
  /** A journal past this size is rewritten when its trial is idle. Default 256 KiB. */
  compactBytes?: number;
  /** Written into each journal's header, so that whoever adopts it publishes as this agent. */
  identity?: SpoolIdentity;
}

interface OpenJournal {
  fd: number;
  path: string;
  pending: string;
  /** Written so far (characters; about bytes). */
  size: number;
  /** Whose trial it is: kept in the header through rewrites. */
  owner?: SpoolIdentity;
}

function header(trialId: string, nextSeq: number, owner?: SpoolIdentity): string {
  return JSON.stringify({ trial: trialId, seq: nextSeq, ...(owner ? { agent: owner.agentId, ...(owner.creds ? { creds: owner.creds } : {}) } : {}) });
}

export class MetricSpool implements MetricJournal {
  /** This agent's own folder. */
  readonly dir: string;
  private readonly sweepDir: string;
  private readonly host: string;
  private readonly log: Logger;
  private readonly warner: ThrottledWarner;
  private readonly isAlive: (pid: number, start?: string) => boolean;
  private readonly compactBytes: number;
  private readonly identity?: SpoolIdentity;
  private readonly journals = new Map<string, OpenJournal>();
  private readonly dirty = new Set<OpenJournal>();
  private flushScheduled = false;
  private broken = false;
  private created = false;

  constructor(opts: SpoolOptions) {
    this.host = hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60);
    this.sweepDir = join(opts.dir, safeName(opts.sweepId));
    const start = opts.pid === undefined ? processStart(process.pid) : undefined;
    this.dir = join(this.sweepDir, `${this.host}-${opts.pid ?? process.pid}${start ? `.${start}` : ''}`);
    this.log = opts.log;
    this.warner = new ThrottledWarner(opts.log);
    this.isAlive = opts.isAlive ?? pidAlive;
    this.compactBytes = opts.compactBytes ?? 256 * 1024;
    this.identity = opts.identity;
  }

  /**
   * Takes over the journals of this host's dead agents for the sweep: moves them into our own
   * folder (a rename, so two agents starting at once cannot both take one) and returns what
   * they had not published. A journal that cannot be read is set aside as `.unreadable`, with a warning.
   */
  adoptOrphans(): RecoveredTrial[] {
    const out: RecoveredTrial[] = [];
    let owners: string[];
    try {
      owners = readdirSync(this.sweepDir);
    } catch {
      return out; // no spool for this sweep yet
    }
    const ours = new RegExp(`^${escapeRegExp(this.host)}-(\\d+)(?:\\.(\\d+))?$`);
    for (const owner of owners) {
      const m = ours.exec(owner);
      if (!m || join(this.sweepDir, owner) === this.dir || this.isAlive(Number(m[1]), m[2])) continue;
      const from = join(this.sweepDir, owner);
      let files: string[];
      try {
        files = readdirSync(from).filter((f) => f.endsWith('.jsonl'));
      } catch {
        continue; // another agent emptied and removed it first
      }
      for (const f of files) {
        const recovered = this.adoptFile(join(from, f), f);
        if (recovered) out.push(recovered);
      }
      try {
        rmdirSync(from);
      } catch {
        // Not empty (a journal another agent is taking) or already gone.
      }
    }
    return out;
  }

  private adoptFile(path: string, name: string): RecoveredTrial | null {
    this.ensureDir();
    if (this.broken) return null;
    const to = join(this.dir, name);
    try {
      renameSync(path, to);
    } catch {
      return null; // another agent took it
    }
    let recovered: RecoveredTrial;
    try {
      const text = readFileSync(to, 'utf8');
      if (text === '') {
        unlinkSync(to); // opened, never written: nothing to recover
        return null;
      }
      recovered = readJournal(text);
    } catch (err) {
      // Kept for a person to look at, under a name no agent adopts again.
      this.log.warn('cannot read a spooled metric journal; set aside', { file: `${to}.unreadable`, error: String(err) });
      try {
        renameSync(to, `${to}.unreadable`);
      } catch {
        // Leave it.
      }
      return null;
    }
    if (this.journals.has(recovered.trialId)) return null;
    try {
      this.journals.set(recovered.trialId, { fd: openSync(to, 'a'), path: to, pending: '', size: 0, owner: recovered.owner });
    } catch (err) {
      this.log.warn('cannot reopen a spooled metric journal', { file: to, error: String(err) });
      return null;
    }
    return recovered;
  }

  opened(trialId: string, nextSeq: number): void {
    if (this.journals.has(trialId)) return;
    this.ensureDir();
    if (this.broken) return;
    const path = join(this.dir, `${safeName(trialId)}.jsonl`);
    try {
      const j: OpenJournal = { fd: openSync(path, 'a', 0o600), path, pending: '', size: 0, owner: this.identity };
      this.journals.set(trialId, j);
      this.append(trialId, header(trialId, nextSeq, j.owner));
    } catch (err) {
      this.fail(err);
    }
  }

  point(trialId: string, point: MetricPoint): void {
    this.append(trialId, `{"p":${JSON.stringify(point)}}`);
  }

  malformed(trialId: string): void {
    this.append(trialId, '{"m":1}');
  }

  cut(trialId: string, seq: number, points: number, malformed: number): void {
    this.append(trialId, `{"c":[${seq},${points},${malformed}]}`);
  }

  acked(trialId: string, seq: number): void {
    this.append(trialId, `{"a":${seq}}`);
  }

  dropped(trialId: string, points: number): void {
    this.append(trialId, `{"d":${points}}`);
  }

  idle(trialId: string, nextSeq: number, queued: readonly MetricPoint[], malformed: number): void {
    const j = this.journals.get(trialId);
    if (!j || j.size + j.pending.length < this.compactBytes) return;
    let text = header(trialId, nextSeq, j.owner) + '\n';
    for (const p of queued) text += `{"p":${JSON.stringify(p)}}\n`;
    text += '{"m":1}\n'.repeat(malformed);
    const tmp = `${j.path}.tmp`;
    try {
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, j.path);
      closeSync(j.fd);
      j.fd = openSync(j.path, 'a');
    } catch (err) {
      this.fail(err);
      return;
    }
    // What was pending is in the snapshot.
    j.pending = '';
    j.size = text.length;
    this.dirty.delete(j);
  }

  finished(trialId: string): void {
    const j = this.journals.get(trialId);
    if (!j) return;
    this.journals.delete(trialId);
    this.dirty.delete(j);
    try {
      closeSync(j.fd);
      unlinkSync(j.path);
    } catch (err) {
      this.warner.warn('finish', 'cannot remove a finished metric journal', { file: j.path, error: String(err) });
    }
  }

  /** Writes what is pending and closes every journal; those with unacknowledged points stay for the next agent. */
  close(): void {
    this.flush();
    this.closeJournals();
    // Only if empty: nothing is left to adopt.
    for (const dir of [this.dir, this.sweepDir]) {
      try {
        rmdirSync(dir);
      } catch {
        break; // journals remain, or it was never made
      }
    }
  }

  private append(trialId: string, record: string): void {
    const j = this.journals.get(trialId);
    if (!j) return;
    j.pending += record + '\n';
    this.dirty.add(j);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const j of this.dirty) {
      const data = j.pending;
      j.pending = '';
      try {
        writeSync(j.fd, data);
        j.size += data.length;
      } catch (err) {
        this.fail(err);
        break;
      }
    }
    this.dirty.clear();
  }

  private ensureDir(): void {
    if (this.created || this.broken) return;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.created = true;
    } catch (err) {
      this.fail(explainMkdirError(this.dir, err));
    }
  }

  /** A spool that cannot write must not stop the agent: points still go to NATS, unprotected. */
  private fail(err: unknown): void {
    if (this.broken) return;
    this.broken = true;
    this.log.warn('metric spool disabled: cannot write to it (points are still published, but not protected against the agent dying)', {
      dir: this.dir,
      error: String(err),
    });
    this.closeJournals();
    this.dirty.clear();
  }

  private closeJournals(): void {
    for (const j of this.journals.values()) {
      try {
        closeSync(j.fd);
      } catch {
        // Already closed.
      }
    }
    this.journals.clear();
  }
}

/**
 * A recursive mkdir says ENOENT where it meant "cannot create": on a read-only file system, say.
 * Name the folder that exists and why it cannot be written instead.
 */
function explainMkdirError(dir: string, err: unknown): unknown {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return err;
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    accessSync(existing, fsConstants.W_OK);
  } catch (why) {
    const code = (why as NodeJS.ErrnoException).code ?? 'EACCES';
    return new SweeperError(`${code}: cannot create ${dir}: ${existing} is not writable`, { cause: err });
  }
  try {
    // access(2) ignores a read-only mount for root: try for real.
    const probe = join(existing, `.sweeper-probe-${process.pid}`);
    mkdirSync(probe);
    rmdirSync(probe);
  } catch (why) {
    return new SweeperError(`${(why as NodeJS.ErrnoException).code ?? 'EACCES'}: cannot create ${dir}: ${existing} is not writable`, { cause: err });
  }
  return err;
}

function pidAlive(pid: number, start?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive, but another user's.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = start === undefined ? undefined : processStart(pid);
  return now === undefined || now === start;
}

/** The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), where there is a /proc. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return /^\d+$/.test(start ?? '') ? start : undefined;
  } catch {
    return undefined;
  }
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
