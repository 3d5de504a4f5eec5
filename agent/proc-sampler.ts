/**
 * CPU and resident memory of each running trial's process tree, read from /proc (Linux), for the
 * agent's `system/cpu.percent` and `system/memory.rss_mb` samples.
 *
 * A trial's tree is what its reaper (agent/reaper.mjs, the leader of the trial's process group)
 * runs: every process of that group, and every descendant of the reaper by parent id, so a worker
 * that left the group with setsid() still counts. The reaper itself does not: it is Sweeper's, not
 * the program's. One pass over /proc/<pid>/stat finds them all (no new dependency, no
 * /proc/<pid>/task/<tid>/children, which some kernels lack).
 *
 * CPU is the tree's processor time over wall time between two samples, 100 meaning one core busy.
 * A process's time counts its own (utime, stime) and that of the children it has waited for
 * (cutime, cstime), so a data loader that exits between two samples still counts: its time moves
 * into its parent's. A tree's first sample has no CPU figure unless `begin` said when it started
 * (the agent does, as it starts each trial). Memory is the sum of the members'
 * VmRSS: pages two members share count twice, as `ps` and `top` count them.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Linux's USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on every architecture Node runs on. */
export const LINUX_TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat that the sampler reads. */
export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  /** utime + stime + cutime + cstime, in ticks. */
  cpuTicks: number;
}

/** What one sample says of one trial's tree. */
export interface TreeSample {
  /** Processes in the tree (the reaper not counted). */
  processes: number;
  /** Since the previous sample of the same tree; undefined on its first. */
  cpuPercent?: number;
  rssMb: number;
}

/**
 * One line of /proc/<pid>/stat. The command name (field 2) is in parentheses and may hold spaces
 * and parentheses itself, so the fields are counted from the last `)`.
 */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  const open = text.indexOf(' (');
  if (close < 0 || open < 0) return undefined;
  // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  const f = text.slice(close + 2).split(' ');
  const nums = [Number(text.slice(0, open)), Number(f[1]), Number(f[2]), Number(f[11]), Number(f[12]), Number(f[13]), Number(f[14])];
  if (!nums.every(Number.isSafeInteger)) return undefined;
  const [pid, ppid, pgrp, utime, stime, cutime, cstime] = nums;
  return { pid, ppid, pgrp, cpuTicks: utime + stime + cutime + cstime };
}

const RSS_LINE = /^VmRSS:\s+(\d+) kB$/m;

/** VmRSS of /proc/<pid>/status in kB; 0 for a process without one (a zombie, a kernel thread). */
export function parseRssKb(status: string): number {
  const m = RSS_LINE.exec(status);
  return m ? Number(m[1]) : 0;
}

/** Every process /proc lists now, by pid. One that exits while being read is left out. */
export async function readProcesses(procRoot: string): Promise<Map<number, ProcStat>> {
  const names = (await readdir(procRoot)).filter((n) => /^\d+$/.test(n));
  const stats = await Promise.all(names.map((n) => readFile(join(procRoot, n, 'stat'), 'utf8').then(parseStat, () => undefined)));
  const out = new Map<number, ProcStat>();
  for (const s of stats) if (s) out.set(s.pid, s);
  return out;
}

/** The pids of `root`'s tree: its process group and its descendants, `root` itself left out. */
export function treeOf(processes: ReadonlyMap<number, ProcStat>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of processes.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const members = new Set<number>();
  const todo = [root];
  for (const p of processes.values()) {
    if (p.pgrp === root && p.pid !== root) {
      members.add(p.pid);
      todo.push(p.pid);
    }
  }
  // Descendants of the reaper and of every group member, also those that left the group.
  while (todo.length > 0) {
    for (const child of children.get(todo.pop()!) ?? []) {
      if (child === root || members.has(child)) continue;
      members.add(child);
      todo.push(child);
    }
  }
  return [...members].sort((a, b) => a - b);
}

export interface ProcSamplerOptions {
  /** Default `/proc`; tests pass a folder laid out like it. */
  procRoot?: string;
  /** Default LINUX_TICKS_PER_SECOND. */
  ticksPerSecond?: number;
  /** A monotonic clock in ms (default `performance.now`), for the time between samples. */
  now?: () => number;
}

/** Samples the trees of the running trials; remembers each one's last CPU reading for the next. */
export class ProcSampler {
  private readonly procRoot: string;
  private readonly ticksPerSecond: number;
  private readonly now: () => number;
  private readonly previous = new Map<string, { root: number; ticks: number; at: number }>();

  constructor(opts: ProcSamplerOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.ticksPerSecond = opts.ticksPerSecond ?? LINUX_TICKS_PER_SECOND;
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * The tree under `root` starts now, with nothing run yet: its first sample gives the CPU used
   * since. (Its program may have run for a few milliseconds already: those count as if after.)
   */
  begin(key: string, root: number): void {
    this.previous.set(key, { root, ticks: 0, at: this.now() });
  }

  /**
   * One sample of each tree in `roots` (a key, such as the trial id, to its reaper's pid). Trees
   * with no process yet, or none any more, are left out of the answer; keys not in `roots` are
   * forgotten.
   */
  async sample(roots: ReadonlyMap<string, number>): Promise<Map<string, TreeSample>> {
    for (const key of this.previous.keys()) if (!roots.has(key)) this.previous.delete(key);
    const out = new Map<string, TreeSample>();
    if (roots.size === 0) return out;
    const processes = await readProcesses(this.procRoot);
    const at = this.now();
    await Promise.all(
      [...roots].map(async ([key, root]) => {
        const members = treeOf(processes, root);
        if (members.length === 0) return;
        // undefined: gone since it was listed, or a zombie (no VmRSS): nothing resident.
        const rss = await Promise.all(
          members.map((pid) => readFile(join(this.procRoot, String(pid), 'status'), 'utf8').then((s) => (RSS_LINE.test(s) ? parseRssKb(s) : undefined), () => undefined)),
        );
        // A tree with nothing alive is a program that has just exited (its zombie waits for the
        // reaper): a sample of it would record 0 MiB and the CPU of its last moments as a reading.
        if (rss.every((kb) => kb === undefined)) return;
        const ticks = members.reduce((sum, pid) => sum + processes.get(pid)!.cpuTicks, 0);
        // Another root under the same key is another run (a continued trial): no CPU across the two.
        const last = this.previous.get(key);
        const before = last?.root === root ? last : undefined;
        this.previous.set(key, { root, ticks, at });
        const sample: TreeSample = { processes: members.length, rssMb: round1(rss.reduce((a: number, b) => a + (b ?? 0), 0) / 1024) };
        // A tree that lost a member whose time nobody in it collected goes down: no negative CPU.
        if (before && at > before.at) sample.cpuPercent = round1(Math.max(0, ((ticks - before.ticks) / this.ticksPerSecond / ((at - before.at) / 1000)) * 100));
        out.set(key, sample);
      }),
    );
    return out;
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Whether this host has a /proc to read (Linux). */
export function procAvailable(procRoot = '/proc'): boolean {
  return existsSync(join(procRoot, 'self', 'stat'));
}
