/**
 * The suite leaves nothing behind. Every process it starts (controllers' nats-servers and their
 * guardians, agents, reapers, trial programs, browsers) carries SWEEPER_TEST_RUN=<this run's id>
 * in its environment: set here, in vitest's main process, before any worker starts, and inherited
 * by every child. At the end of the run any such process still alive is killed (SIGKILL, and its
 * process group when it leads one) and the run fails, naming each one and the test that was
 * running when it started (tests/setup-mark.ts). vitest skips this teardown when it is interrupted
 * (SIGINT, SIGTERM: it exits at once), so those signals kill the run's processes here too.
 * Linux only: it reads /proc.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

export const RUN_MARK = 'SWEEPER_TEST_RUN';
/** Set by tests/setup-mark.ts in each worker: the file and test that were running. */
export const TEST_MARK = 'SWEEPER_TEST_NAME';
/** How long teardown lets processes that are on their way out finish exiting before it calls them left behind. */
const SETTLE_MS = 5_000;

interface Marked {
  pid: number;
  ppid: number;
  pgid: number;
  cmdline: string;
  test?: string;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function ownPgid(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** Live processes carrying this run's mark, but this one; zombies count as gone. */
function marked(runId: string): Marked[] {
  const needle = `${RUN_MARK}=${runId}`;
  const found: Marked[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (!env.includes(needle)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' || state === 'X') continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      const test = env.find((e) => e.startsWith(`${TEST_MARK}=`))?.slice(TEST_MARK.length + 1);
      found.push({ pid, ppid: Number(ppid), pgid: Number(pgid), cmdline, test });
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** vitest's own workers: children of this process running its worker entry. */
const isVitestWorker = (p: Marked) => p.ppid === process.pid && /[/\\]vitest[/\\]dist[/\\]workers[/\\]/.test(p.cmdline);

function killHard(p: Marked, keepPgid: number): void {
  const tryKill = (target: number) => {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  if (p.pgid === p.pid && p.pgid !== keepPgid) tryKill(-p.pgid);
  tryKill(p.pid);
}

const describeProcess = (p: Marked) => `  pid ${p.pid} (ppid ${p.ppid}): ${p.cmdline.slice(0, 300)}${p.test ? `\n      started during: ${p.test}` : ''}`;

/** Kills every marked process, workers first, until none is left (bounded); what it killed. */
function killAllSync(runId: string): Marked[] {
  const keep = ownPgid();
  const killed = new Map<number, Marked>();
  for (let round = 0; round < 50; round++) {
    const live = marked(runId).sort((a, b) => Number(isVitestWorker(b)) - Number(isVitestWorker(a)));
    if (live.length === 0) break;
    for (const p of live) {
      if (!killed.has(p.pid)) killed.set(p.pid, p);
      killHard(p, keep);
    }
    sleepSync(20);
  }
  return [...killed.values()];
}

export default function setup(): () => Promise<void> {
  if (!existsSync('/proc/self/environ')) throw new Error('tests/global-setup.ts needs /proc (Linux) to find the processes the suite leaves behind');
  const runId = randomBytes(8).toString('hex');
  // Before the workers start: they, and everything they start, inherit it.
  process.env[RUN_MARK] = runId;

  const onSignal = (signal: NodeJS.Signals) => {
    const killed = killAllSync(runId).filter((p) => !isVitestWorker(p));
    if (killed.length > 0) {
      process.stderr.write(`\n${signal}: killed ${killed.length} process(es) this test run had started:\n${killed.map(describeProcess).join('\n')}\n`);
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  return async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const leftovers = () => marked(runId).filter((p) => !isVitestWorker(p));
    const deadline = Date.now() + SETTLE_MS;
    let left = leftovers();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      left = leftovers();
    }
    if (left.length === 0) return;
    const keep = ownPgid();
    for (const p of left) killHard(p, keep);
    process.exitCode = 1;
    const message = `the test run left ${left.length} process(es) running after it ended; killed them (SIGKILL):\n${left.map(describeProcess).join('\n')}`;
    process.stderr.write(`\n${message}\n\n`);
    throw new Error(message);
  };
}
