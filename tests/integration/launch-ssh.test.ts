/**
 * `sweeper launch ssh`, `status` and `cancel` against a real sshd on 127.0.0.1 (tests/fixtures/sshd.ts,
 * keys in a temporary folder), a real nats-server and a controller that requires a token, and real
 * agents and trial programs started through ssh. The agents run a launcher in a bundle-like folder
 * (DIR/sweeper, as `sweeper bundle` unpacks it) that runs this checkout's dist/ with
 * --controller-timeout 120 (SWEEPER_CONTROLLER_TIMEOUT), so a stray agent gives up by itself.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunning, type ProcessRecord } from '../../common/pid-file.js';
import { UsageError } from '../../domain/errors.js';
import { readRecord } from '../../cli/launch/records.js';
import { shellQuote } from '../../cli/launch/shell-quote.js';
import { launchSsh, sshCancel, sshStatus, type SshLaunchRecord } from '../../cli/launch/ssh.js';
import { CLI_ENTRY, TEST_CONTROLLER_TIMEOUT_S } from '../fixtures/cli.js';
import { startSshd, type TestSshd } from '../fixtures/sshd.js';
import { SWEEPS, startStack, waitSettled, type TestStack } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';
import { RUN_MARK } from '../global-setup.js';

const TOKEN = `ssh-test-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
const work = mkdtempSync(join(tmpdir(), 'sweeper-launch-ssh-'));
const records = join(work, 'records');
const bundle = join(work, 'bundle');
const sweepIds: string[] = [];
let sshd: TestSshd;
let stack: TestStack;

const gridConfig = (gate: string, xs: number[]) =>
  `method: grid\nmetric:\n  name: loss\nprogram: gate.cjs\nparameters:\n  gate:\n    value: ${gate}\n  x:\n    values: [${xs.join(', ')}]\n`;

const agentsOf = (sweepId: string) => readRecord<SshLaunchRecord>(records, sweepId, 'ssh')?.agents ?? [];
const asProcess = (a: ProcessRecord): ProcessRecord => ({ pid: a.pid, startTime: a.startTime, bootId: a.bootId });

/** The trial processes gate.cjs noted beside itself (of the trials whose ids begin with `prefix`); a note still being written is skipped. */
function trialProcesses(prefix = ''): ProcessRecord[] {
  return readdirSync(work)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.pid'))
    .flatMap((f) => {
      try {
        return [JSON.parse(readFileSync(join(work, f), 'utf8')) as ProcessRecord];
      } catch {
        return [];
      }
    });
}

/** Fields of /proc/<pid>/stat from field 3 (state) on. */
function statOf(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Live `ssh` processes whose parent is this test process. */
function ownSshChildren(): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const comm = readFileSync(`/proc/${name}/comm`, 'utf8').trim();
      const [state, ppid] = statOf(Number(name));
      if (comm === 'ssh' && Number(ppid) === process.pid && state !== 'Z') found.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

/** Every process whose command line holds `needle`. */
function commandLinesHolding(needle: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) found.push(`${name}: ${cmdline.replaceAll('\0', ' ')}`);
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

const launch = (sweepId: string, hosts: string[], extra: Partial<Parameters<typeof launchSsh>[0]> = {}) => {
  const lines: string[] = [];
  return launchSsh({
    hosts,
    sweepId,
    records,
    workdir: work,
    controller: stack.controller.address,
    token: TOKEN,
    sshOptions: sshd.sshOptions,
    log: (l) => lines.push(l),
    ...extra,
  }).then(() => lines);
};

describe('sweeper launch ssh (real sshd on 127.0.0.1)', () => {
  beforeAll(async () => {
    [sshd, stack] = await Promise.all([startSshd(), startStack({ token: TOKEN })]);
    copyFileSync(join(SWEEPS, 'gate.cjs'), join(work, 'gate.cjs'));
    mkdirSync(bundle);
    writeFileSync(
      join(bundle, 'sweeper'),
      `#!/bin/sh\nSWEEPER_CONTROLLER_TIMEOUT=${TEST_CONTROLLER_TIMEOUT_S} exec ${shellQuote(process.execPath)} ${shellQuote(CLI_ENTRY)} "$@"\n`,
      { mode: 0o755 },
    );
  });

  afterAll(async () => {
    // Whatever a failed test left running: the agents and trials, each only while its record still names it.
    const launched = sweepIds.flatMap(agentsOf).map(asProcess);
    for (const rec of [...launched, ...(existsSync(work) ? trialProcesses() : [])]) if (isRunning(rec)) process.kill(rec.pid, 'SIGKILL');
    await until('the launched agents to be gone', () => (launched.some(isRunning) ? undefined : true), 10_000);
    await stack?.stop();
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('starts one agent per listed host that outlives its ssh session and runs every trial; status shows them', async () => {
    const sweep = await stack.client.createSweep(gridConfig('go', [1, 2, 3, 4]), 'gate-grid.yaml');
    sweepIds.push(sweep.id);
    const lines = await launch(sweep.id, ['127.0.0.1,127.0.0.1'], { parallel: 2, bundle });
    expect(lines).toEqual([expect.stringMatching(/^started agent [01] on 127\.0\.0\.1: pid \d+, log \//), expect.stringMatching(/^started agent [01] on 127\.0\.0\.1/)]);

    const agents = agentsOf(sweep.id);
    expect(agents.map((a) => a.index).sort()).toEqual([0, 1]);
    expect(agents.map((a) => a.log).sort()).toEqual([0, 1].map((i) => join(work, `.sweeper/launch/${sweep.id}/agent-${i}.log`)));
    // launchSsh has returned: its ssh sessions are over, while the agents run on, each in a session of its own.
    expect(ownSshChildren()).toEqual([]);
    for (const a of agents) {
      expect(isRunning(asProcess(a))).toBe(true);
      expect(Number(statOf(a.pid)[3]), 'the agent leads its own session (setsid)').toBe(a.pid);
    }

    // All four trials held at their gate, --parallel 2 on each agent; none has reported yet.
    const running = await until('four trials running', async () => {
      const d = await stack.client.getSweep(sweep.id);
      return d.trials.filter((t) => t.state === 'running').length === 4 ? d : undefined;
    });
    expect(running.trials.filter((t) => t.state === 'finished')).toEqual([]);

    const status = await sshStatus(records, sweep.id);
    expect(status.filter((l) => /^agent \d on 127\.0\.0\.1: running \(pid \d+/.test(l))).toHaveLength(2);
    expect(status.filter((l) => l.startsWith('  log '))).toHaveLength(2);

    // The token reached the agents through their environment only.
    expect(commandLinesHolding(TOKEN)).toEqual([]);
    for (const a of agents) {
      const environ = readFileSync(`/proc/${a.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain(`SWEEPER_TOKEN=${TOKEN}`);
      // And the run's mark came through ssh too: tests/global-setup.ts would catch an agent left behind.
      expect(environ).toContain(`${RUN_MARK}=${process.env[RUN_MARK]}`);
    }

    // The trials report after the ssh sessions ended.
    writeFileSync(join(work, 'go'), '');
    const done = await waitSettled(stack.client, sweep.id);
    expect(done.sweep.state).toBe('finished');
    expect(done.trials.map((t) => t.state)).toEqual(['finished', 'finished', 'finished', 'finished']);
    expect(done.trials.map((t) => t.bestValue).sort((a, b) => a! - b!)).toEqual([1, 4, 9, 16]);

    // The sweep is over: the agents exit by themselves, and status says so, with their logs.
    await until('the agents to exit', () => (agents.map(asProcess).some(isRunning) ? undefined : true));
    const after = await sshStatus(records, sweep.id);
    expect(after.filter((l) => /^agent \d on 127\.0\.0\.1: not running \(was pid \d+/.test(l))).toHaveLength(2);
    expect(after.some((l) => l.includes('agent done'))).toBe(true);

    for (const a of agents) {
      const log = readFileSync(a.log, 'utf8');
      expect(log).toContain('agent done');
      expect(log).not.toContain(TOKEN);
    }
    expect(statSync(join(work, `.sweeper/launch/${sweep.id}`)).mode & 0o077, 'the log folder is private').toBe(0);
    expect(readFileSync(join(records, sweep.id, 'ssh.json'), 'utf8')).not.toContain(TOKEN);
  });

  it('cancel sends SIGTERM to the recorded agents: they stop their trials (stopped) and exit', async () => {
    const sweep = await stack.client.createSweep(gridConfig('never', [5, 6]), 'gate-never.yaml');
    sweepIds.push(sweep.id);
    await launch(sweep.id, ['127.0.0.1', '127.0.0.1'], { sweeper: join(bundle, 'sweeper') });
    const agents = agentsOf(sweep.id);
    expect(agents).toHaveLength(2);
    await until('both trials running', async () =>
      (await stack.client.getSweep(sweep.id)).trials.filter((t) => t.state === 'running').length === 2 ? true : undefined,
    );
    const trials = await until('both trials to note their pids', () => {
      const mine = trialProcesses(`${sweep.id}-`).filter(isRunning);
      return mine.length === 2 ? mine : undefined;
    });

    const lines = await sshCancel(records, sweep.id);
    expect(lines.sort()).toEqual([0, 1].map((i) => expect.stringMatching(new RegExp(`^agent ${i} on 127\\.0\\.0\\.1: stopped \\(SIGTERM to pid \\d+`))));
    for (const rec of [...agents.map(asProcess), ...trials]) expect(isRunning(rec)).toBe(false);
    const d = await stack.client.getSweep(sweep.id);
    expect(d.trials.map((t) => t.state)).toEqual(['stopped', 'stopped']);

    // A second cancel finds nothing to signal.
    expect(await sshCancel(records, sweep.id)).toEqual([0, 1].map((i) => expect.stringMatching(new RegExp(`^agent ${i} on 127\\.0\\.0\\.1: not running`))));
  });

  it('a working directory missing on the host is a UsageError naming it, and nothing is recorded', async () => {
    const sweep = await stack.client.createSweep(gridConfig('go', [7]), 'gate-missing.yaml');
    const missing = join(work, 'no-such-folder');
    const err = await launch(sweep.id, ['127.0.0.1'], { bundle, workdir: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(`no folder ${missing} to run the agent in (--workdir)`);
    expect(agentsOf(sweep.id)).toEqual([]);
  });
});
