/**
 * `sweeper server` with its embedded nats-server, as the README deploys it, SIGKILLed mid-sweep
 * and restarted with the same command: it must come back every time (no stale nats-server on
 * its port), with the same NATS keys (agents' identities stay valid), and lose or double no point.
 * Real processes throughout: the CLI's server and agents, nats-server, the trial programs.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import type { ApiSweepDetail } from '../../common/api-types.js';
import { NATS_PID_FILE } from '../../common/nats-server.js';
import { freePort } from '../../common/net.js';
import { commandLine, describeProcess, isRunning } from '../../common/pid-file.js';
import { collect, spawnCli, type CliResult } from '../fixtures/cli.js';
import { TrackedProcesses } from '../fixtures/tracked.js';
import { until } from '../fixtures/wait.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'sweeper-embedded-'));
const truthDir = join(work, 'truth');
mkdirSync(truthDir);

/** Every process the tests started, for afterAll: our children, and what the pid files named. */
const tracked = new TrackedProcesses();

interface Server {
  child: ChildProcess;
  /** The address from its `controller ready on HOST:PORT` line. */
  ready: Promise<string>;
  done: Promise<CliResult>;
  log(): string;
}

function startServer(args: string[]): Server {
  const child = spawnCli(['server', ...args]);
  tracked.child(child);
  let log = '';
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /controller ready on (\S+?)[;\s]/.exec(log);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code, signal) => reject(new Error(`sweeper server exited (${code ?? signal}) before it was ready:\n${log}`)));
  });
  // The server outlives collect's default minute in a slow run.
  return { child, ready, done: collect(child, 600_000), log: () => log };
}

function startAgent(sweepId: string, address: string): Promise<CliResult> {
  const child = spawnCli(['agent', sweepId, '--controller', address, '--parallel', '2', '--grace', '1'], {
    cwd: SWEEPS,
    env: { SWEEPER_TEST_TRUTH: truthDir },
  });
  tracked.child(child);
  return collect(child, 600_000);
}

/** Resolves once the controller has ingested at least `n` points (GetStats), with the count. */
function pointsIngested(client: SweeperClient, n: number): Promise<number> {
  return until(
    `${n} points ingested`,
    async () => {
      const { points } = await client.getStats().catch(() => ({ points: 0 }));
      return points >= n ? points : undefined;
    },
    60_000,
    100,
  );
}

function settled(client: SweeperClient, sweepId: string): Promise<ApiSweepDetail> {
  return until(
    `sweep ${sweepId} to finish`,
    async () => {
      const d = await client.getSweep(sweepId).catch(() => undefined);
      return d && d.sweep.state === 'finished' && !d.trials.some((t) => t.state === 'running') ? d : undefined;
    },
    90_000,
    200,
  );
}

/** The steps a trial's program printed, from its own record. */
function printed(trialId: string): number[] {
  const file = join(truthDir, `${trialId}.points`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

/** Trial programs still running: pid from their pid file, proven by their command line. */
function liveTrials(): number[] {
  return readdirSync(truthDir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => Number(readFileSync(join(truthDir, f), 'utf8')))
    .filter((pid) => describeProcess(pid) !== null && (commandLine(pid) ?? []).some((a) => a.endsWith('ground-truth.cjs')));
}

const byNumber = (a: number, b: number) => a - b;

afterAll(async () => {
  tracked.killAll();
  for (const pid of liveTrials()) process.kill(pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('sweeper server with its embedded nats-server, SIGKILLed mid-sweep', () => {
  it('comes back each time on the same ports and NATS keys, leaves no stale nats-server, and stores every printed point once', { timeout: 240_000 }, async () => {
    const data = join(work, 'data');
    const cmd = ['--data', data, '--port', String(await freePort()), '--nats-port', String(await freePort()), '--no-dashboard'];
    let server = startServer(cmd);
    const address = await server.ready;
    const keys = readFileSync(join(data, 'nats-auth', 'signing.nk'), 'utf8');
    const client = new SweeperClient(address);
    try {
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}ground-truth.yaml`, 'utf8'), 'ground-truth.yaml');
      const agents = [startAgent(sweep.id, address), startAgent(sweep.id, address)];

      // 1. The controller alone: its guardian stops its nats-server.
      const before = await pointsIngested(client, 20);
      let rec = tracked.natsRecord(data);
      server.child.kill('SIGKILL');
      await server.done;
      server = startServer(cmd);
      expect(await server.ready).toBe(address);
      expect(isRunning(rec), `nats-server ${rec.pid} of the killed controller is still running`).toBe(false);
      expect(tracked.natsRecord(data).pid).not.toBe(rec.pid);

      // 2. The controller and the guardian, as `kill -9` of its process group or the OOM killer
      // would: the nats-server is orphaned, holding the port, and only the pid file names it.
      await pointsIngested(client, before + 40);
      expect((await client.getSweep(sweep.id)).sweep.state, 'the sweep ended before the second kill').toBe('running');
      rec = tracked.natsRecord(data);
      // Stopped first, so the controller cannot see its guardian die and act on it.
      process.kill(server.child.pid!, 'SIGSTOP');
      process.kill(rec.guardian!, 'SIGKILL');
      server.child.kill('SIGKILL');
      await server.done;
      expect(isRunning(rec), 'the orphaned nats-server').toBe(true);
      server = startServer(cmd);
      expect(await server.ready).toBe(address);
      expect(server.log()).toContain('stopping the nats-server an earlier run left behind');
      expect(isRunning(rec), `stale nats-server ${rec.pid} is still running`).toBe(false);
      expect(tracked.natsRecord(data).pid).not.toBe(rec.pid);
      // The keys that signed the agents' identities are still the server's.
      expect(readFileSync(join(data, 'nats-auth', 'signing.nk'), 'utf8')).toBe(keys);

      for (const r of await Promise.all(agents)) {
        expect(r.code, r.stderr.slice(-3000)).toBe(0);
        // Whatever the credentials, the restarted server must still accept the agents'.
        expect(r.stderr).not.toMatch(/authori[sz]ation.?violation/i);
      }
      const d = await settled(client, sweep.id);
      expect(d.trials).toHaveLength(8);
      let total = 0;
      for (const t of d.trials) {
        expect(t.state, `${t.id}: ${t.reason}`).toBe('finished');
        const sent = printed(t.id).sort(byNumber);
        expect(sent, `printed steps of ${t.id}`).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
        const stored = (await client.getTrial(t.id)).metricSteps.slice().sort(byNumber);
        expect(stored, `stored steps of ${t.id}`).toEqual(sent);
        expect(t.points).toBe(sent.length);
        total += sent.length;
      }
      // No trial ran that the controller does not know of, and none printed elsewhere.
      expect(readdirSync(truthDir).filter((f) => f.endsWith('.points'))).toHaveLength(8);
      expect(total).toBe(480);
    } finally {
      client.close();
    }

    // A graceful stop takes its nats-server with it and leaves no lock behind.
    const last = tracked.natsRecord(data);
    server.child.kill('SIGTERM');
    expect((await server.done).code).toBe(0);
    expect(isRunning(last)).toBe(false);
    expect(existsSync(join(data, 'controller.lock'))).toBe(false);
    expect(existsSync(join(data, 'nats', NATS_PID_FILE))).toBe(false);
    expect(liveTrials()).toEqual([]);
  });

  it('a second server on the same data folder exits 2 and names the first one', async () => {
    const data = join(work, 'data-lock');
    const first = startServer(['--data', data, '--port', String(await freePort()), '--nats-port', String(await freePort()), '--no-dashboard']);
    await first.ready;
    const rec = tracked.natsRecord(data);
    const other = spawnCli(['server', '--data', data, '--port', String(await freePort()), '--nats-port', String(await freePort()), '--no-dashboard']);
    tracked.child(other);
    const second = await collect(other);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`in use by another sweeper server (pid ${first.child.pid})`);
    // It touched nothing of the first one's.
    expect(isRunning(rec)).toBe(true);
    first.child.kill('SIGTERM');
    expect((await first.done).code).toBe(0);
  });
});
