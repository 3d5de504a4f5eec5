/**
 * Processes killed at any moment: agents (SIGKILL), the controller (SIGKILL, as a real process)
 * and nats-server (SIGKILL, restarted on the same store). Real parts throughout. Heartbeat
 * timeouts are shortened only where a test waits for one to expire, and never so short that a live
 * agent on a loaded machine could miss one.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import type { ApiSweepDetail, ApiTrial } from '../../common/api-types.js';
import { createLogger } from '../../common/log.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { collect, liveOutput, spawnCli } from '../fixtures/cli.js';
import type { TestNats } from '../fixtures/nats.js';
import { startTestNats } from '../fixtures/nats.js';
import { freePort } from '../../common/net.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const pidDir = mkdtempSync(join(tmpdir(), 'sweeper-pids-'));
let nats: TestNats;

beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(async () => {
  await nats?.stop();
  rmSync(pidDir, { recursive: true, force: true });
});


async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // Not reachable yet: try again.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Running, that is: a zombie (dead, waiting for a parent that may not reap it here) counts as gone. */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

const pidOf = (trialId: string) => Number(readFileSync(join(pidDir, `${trialId}.pid`), 'utf8'));

function agent(controller: string, sweepId: string, extra: string[] = []) {
  return spawnCli(['agent', sweepId, '--controller', controller, '--grace', '1', ...extra], {
    cwd: SWEEPS,
    env: { SWEEPER_TEST_PIDDIR: pidDir },
  });
}

async function settled(client: SweeperClient, sweepId: string, timeoutMs = 60_000): Promise<ApiSweepDetail> {
  return until(
    `sweep ${sweepId} to settle`,
    async () => {
      const d = await client.getSweep(sweepId);
      const over = ['finished', 'stopped', 'cancelled'].includes(d.sweep.state);
      return over && !d.trials.some((t) => t.state === 'running') ? d : undefined;
    },
    timeoutMs,
  );
}

/** Agents beat every 300 ms; a trial whose agent is silent for `heartbeatTimeoutMs` becomes crashed. */
function withController(heartbeatTimeoutMs: number): { controller: ControllerHandle; client: SweeperClient } {
  const ctx = {} as { controller: ControllerHandle; client: SweeperClient };
  beforeAll(async () => {
    ctx.controller = await startController({
      host: '127.0.0.1',
      port: 0,
      natsUrl: nats.url,
      heartbeatIntervalMs: 300,
      heartbeatTimeoutMs,
      log: createLogger('test', () => {}),
    });
    ctx.client = new SweeperClient(ctx.controller.address);
  });
  afterAll(async () => {
    ctx.client?.close();
    await ctx.controller?.stop();
  });
  return ctx;
}

describe('an agent killed mid-trial', () => {
  // This test waits for the heartbeat timeout to expire: 10 s, some 30 missed beats, is still far
  // more than a live agent on a loaded machine could miss.
  const ctx = withController(10_000);

  it('the trial dies with its agent, becomes crashed after the heartbeat timeout, and its point runs again', async () => {
    const { controller, client } = ctx;
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}long.yaml`, 'utf8'), 'long.yaml');
    const a = agent(controller.address, sweep.id);
    const aDone = collect(a);
    const running = await until('a running trial with metrics', async () =>
      (await client.getSweep(sweep.id)).trials.find((t) => t.state === 'running' && t.points > 2),
    );
    const pid = await until('the trial to start', () => pidOf(running.id));
    expect(alive(pid)).toBe(true);
    a.kill('SIGKILL');
    await aDone;

    // No orphan: the reaper stops the trial's process group when its agent is gone.
    await until('the orphaned trial to die', () => (alive(pid) ? undefined : true));

    const crashed = await until('the trial to be declared crashed', async () => {
      const t = (await client.getSweep(sweep.id)).trials.find((x) => x.id === running.id)!;
      return t.state === 'crashed' ? t : undefined;
    });
    expect(crashed.reason).toMatch(/sent no heartbeat for \d+s/);
    expect(crashed.points).toBeGreaterThan(2);

    // The next agent is handed the crashed trial's parameters again, under a new id.
    const b = agent(controller.address, sweep.id);
    const bDone = collect(b);
    const retry = await until('the retry to run', async () =>
      (await client.getSweep(sweep.id)).trials.find((t) => t.state === 'running' && t.id !== running.id),
    );
    expect(retry.paramsJson).toBe(running.paramsJson);
    const detail = await client.getTrial(retry.id);
    expect(detail.history[0].reason).toContain(`retry of crashed trial ${running.id}`);
    await client.cancelSweep(sweep.id);
    const r = await bDone;
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(client, sweep.id);
    expect(d.sweep.state).toBe('cancelled');
    expect(d.trials.find((t) => t.id === retry.id)!.state).toBe('stopped');
  });
});

describe('agents killed mid-trial', () => {
  // No live agent is ever taken for dead here, and a restarted one always registers in time.
  const ctx = withController(120_000);

  it('an agent restarted under the same id reports the lost trial and is never handed it twice', async () => {
    const { controller, client } = ctx;
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}long.yaml`, 'utf8'), 'long.yaml');
    const first = agent(controller.address, sweep.id, ['--agent-id', 'gpu-host-1']);
    const firstDone = collect(first);
    const held = await until('a running trial', async () => (await client.getSweep(sweep.id)).trials.find((t) => t.state === 'running'));
    first.kill('SIGKILL');
    await firstDone;

    const again = agent(controller.address, sweep.id, ['--agent-id', 'gpu-host-1', '--count', '1']);
    const againDone = collect(again);
    const lost = await until('the held trial to be reported lost', async () => {
      const t = (await client.getSweep(sweep.id)).trials.find((x) => x.id === held.id)!;
      return t.state === 'crashed' ? t : undefined;
    });
    expect(lost.reason).toContain('agent gpu-host-1 restarted');
    const next = await until('the agent to run its next trial', async () =>
      (await client.getSweep(sweep.id)).trials.find((t) => t.state === 'running'),
    );
    expect(next.id).not.toBe(held.id);
    expect(next.agentId).toBe('gpu-host-1');
    await client.cancelSweep(sweep.id);
    expect((await againDone).code).toBe(0);
    const d = await settled(client, sweep.id);
    // One trial per attempt, never two running under one agent.
    expect(d.trials.filter((t) => t.agentId === 'gpu-host-1')).toHaveLength(2);
  });

  it('an agent whose first trials all fail stops itself with a clear message', async () => {
    const { controller, client } = ctx;
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}fail-always.yaml`, 'utf8'), 'fail-always.yaml');
    const r = await collect(agent(controller.address, sweep.id));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('5 trials in a row failed');
    const d = await client.getSweep(sweep.id);
    expect(d.trials).toHaveLength(5);
    expect(d.trials.every((t) => t.state === 'failed')).toBe(true);
    await client.stopSweep(sweep.id);
  });
});

describe('the controller killed mid-sweep (SIGKILL)', () => {
  it('agents keep their trials, reconnect, and the sweep completes with exactly run_cap trials and every point', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const server = () => spawnCli(['server', '--port', String(port), '--nats', nats.url, '--heartbeat-timeout', '30', '--dashboard-port', '0']);
    let ctrl = server();
    let ctrlDone = collect(ctrl);
    const client = new SweeperClient(address);
    try {
      await until('the controller', () => client.listSweeps());
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}steady.yaml`, 'utf8'), 'steady.yaml');
      const children = [agent(address, sweep.id), agent(address, sweep.id)];
      const outputs = children.map((c) => liveOutput(c));
      const agents = children.map((c) => collect(c));
      await until('two trials with metrics', async () => {
        const d = await client.getSweep(sweep.id);
        return d.trials.filter((t) => t.points > 0).length >= 2 ? true : undefined;
      });
      ctrl.kill('SIGKILL');
      await ctrlDone;
      // Both agents found the controller gone (their next call failed) before it comes back.
      await Promise.all(outputs.map((o) => o.waitFor(/controller unreachable, retrying/)));
      ctrl = server();
      ctrlDone = collect(ctrl);
      for (const r of await Promise.all(agents)) expect(r.code, r.stderr).toBe(0);
      const d = await settled(client, sweep.id);
      expect(d.sweep.state).toBe('finished');
      expect(d.trials).toHaveLength(8);
      expect(new Set(d.trials.map((t) => t.number))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8]));
      expect(new Set(d.trials.map((t) => t.paramsJson)).size).toBe(8);
      for (const t of d.trials) {
        expect(t.state, t.reason).toBe('finished');
        expect(t.points, `points of ${t.id}`).toBe(10);
      }
      expect(d.trials.reduce((n, t) => n + t.points, 0)).toBe(80);
    } finally {
      client.close();
      ctrl.kill('SIGTERM');
      await ctrlDone;
    }
  });

  it('a paused sweep is still paused after a restart; cancel kills its trials at once', async () => {
    const port = await freePort();
    const log = createLogger('test', () => {});
    let controller = await startController({ host: '127.0.0.1', port, natsUrl: nats.url, log });
    const client = new SweeperClient(`127.0.0.1:${port}`);
    try {
      // A program that ignores SIGTERM: only a kill ends it, and the agent's grace is 120 s, so
      // a cancel that waited for the grace would run into this test's timeout.
      const config = 'method: grid\nprogram: ../programs/ignore_term.js\nparameters:\n  x: {values: [1, 2]}\n';
      const sweep = await client.createSweep(config, 'ignore-term.yaml');
      const a = collect(agent(`127.0.0.1:${port}`, sweep.id, ['--grace', '120']));
      const t = await until('a running trial', async () => (await client.getSweep(sweep.id)).trials.find((x) => x.state === 'running'));
      // The program has set its SIGTERM handler when it writes its ready file.
      await until('the program to set its SIGTERM handler', () => (existsSync(join(pidDir, `${t.id}.ready`)) ? true : undefined));
      await client.pauseSweep(sweep.id);
      await controller.stop();
      controller = await startController({ host: '127.0.0.1', port, natsUrl: nats.url, log });
      expect((await client.getSweep(sweep.id)).sweep.state).toBe('paused');
      await client.cancelSweep(sweep.id);
      expect((await a).code).toBe(0);
      const d = await settled(client, sweep.id);
      expect(d.sweep.state).toBe('cancelled');
      const ended: ApiTrial = d.trials.find((x) => x.id === t.id)!;
      expect(ended).toMatchObject({ state: 'stopped', reason: 'sweep cancelled by user' });
      // The program ignores SIGTERM: only the kill ended it.
      expect(ended.signal).toBe('SIGKILL');
    } finally {
      client.close();
      await controller.stop();
    }
  });
});

describe('nats-server killed and restarted mid-sweep', () => {
  it('loses no metric point and counts none twice', async () => {
    const controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: createLogger('test', () => {}) });
    const client = new SweeperClient(controller.address);
    try {
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}steady.yaml`, 'utf8'), 'steady.yaml');
      const children = [agent(controller.address, sweep.id), agent(controller.address, sweep.id)];
      const outputs = children.map((c) => liveOutput(c));
      const agents = children.map((c) => collect(c));
      await until('trials with metrics', async () => ((await client.getSweep(sweep.id)).trials.some((t) => t.points > 3) ? true : undefined));
      nats.kill();
      await nats.exited;
      // Both agents lost NATS (their points wait for it) before it comes back.
      await Promise.all(outputs.map((o) => o.waitFor(/disconnected from NATS; reconnecting/)));
      await nats.restart();
      for (const r of await Promise.all(agents)) expect(r.code, r.stderr).toBe(0);
      const d = await settled(client, sweep.id, 90_000);
      expect(d.sweep.state).toBe('finished');
      expect(d.trials).toHaveLength(8);
      for (const t of d.trials) {
        expect(t.state, t.reason).toBe('finished');
        expect(t.points, `points of ${t.id}`).toBe(10);
      }
    } finally {
      client.close();
      await controller.stop();
    }
  });
});

// Leave no pid files behind for the next run's assertions.
afterAll(() => {
  for (const f of readdirSync(pidDir)) rmSync(join(pidDir, f), { force: true });
});
