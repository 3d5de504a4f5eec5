/**
 * End to end with real parts: a real nats-server (JetStream, temp store, free port on
 * 127.0.0.1), the controller's real gRPC server on loopback, and agents started as real CLI
 * child processes running real trial programs.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweeperClient } from '../../common/api-client.js';
import { parseTypedJson } from '../../domain/values.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { collect, liveOutput, runCli, spawnCli } from '../fixtures/cli.js';
import { SWEEPS, startStack, waitSettled, type TestStack } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

let stack: TestStack;
let controller: ControllerHandle;
let client: SweeperClient;

beforeAll(async () => {
  stack = await startStack();
  ({ controller, client } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

async function createSweep(file: string): Promise<string> {
  const text = readFileSync(`${SWEEPS}${file}`, 'utf8');
  return (await client.createSweep(text, file)).id;
}

function agent(sweepId: string, extra: string[] = [], env?: NodeJS.ProcessEnv) {
  return spawnCli(['agent', sweepId, '--controller', controller.address, ...extra], { cwd: SWEEPS, env });
}

const settled = (sweepId: string, timeoutMs?: number) => waitSettled(client, sweepId, timeoutMs);

const paramsOf = (t: { paramsJson: string }) => parseTypedJson(t.paramsJson) as Record<string, unknown>;

describe('a grid sweep with two agents', () => {
  it('runs every grid point exactly once, in W&B order, and ranks them by loss', async () => {
    const id = await createSweep('grid.yaml');
    const results = await Promise.all([collect(agent(id)), collect(agent(id))]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.sweep.state).toBe('finished');
    expect(d.sweep.finishReason).toBe('grid exhausted');
    expect(d.trials).toHaveLength(6);
    expect(d.trials.every((t) => t.state === 'finished')).toBe(true);
    // Trial numbers follow the grid's order: x slowest, then y.
    const byNumber = [...d.trials].sort((a, b) => a.number - b.number).map((t) => paramsOf(t));
    expect(byNumber.map((p) => [p.x, Number(p.y)])).toEqual([
      [0, 0.5],
      [0, 1.5],
      [1, 0.5],
      [1, 1.5],
      [2, 0.5],
      [2, 1.5],
    ]);
    // loss = (x-1)^2 + y + 1/epoch; best over 3 epochs is at epoch 3.
    const best = d.trials[0];
    expect(paramsOf(best).x).toBe(1);
    expect(Number(paramsOf(best).y)).toBe(0.5);
    expect(best.bestValue).toBeCloseTo(0.5 + 1 / 3, 12);
    expect(best.rank).toBe(1);
    expect(best.points).toBe(3);
    expect(d.trials.map((t) => t.rank)).toEqual([1, 2, 3, 4, 5, 6]);
    const values = d.trials.map((t) => t.bestValue!);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
  });
});

describe('a random sweep with run_cap', () => {
  it('stops at exactly run_cap trials, with reproducible parameters for the seed', async () => {
    const id = await createSweep('random.yaml');
    const r = await collect(agent(id));
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.sweep.finishReason).toBe('run_cap 5 reached');
    expect(d.trials).toHaveLength(5);
    const first = [...d.trials].sort((a, b) => a.number - b.number).map((t) => t.paramsJson);

    // Same config and seed: same sequence of trials.
    const id2 = await createSweep('random.yaml');
    expect((await collect(agent(id2))).code).toBe(0);
    const d2 = await settled(id2);
    expect([...d2.trials].sort((a, b) => a.number - b.number).map((t) => t.paramsJson)).toEqual(first);
    for (const p of first.map((j) => parseTypedJson(j) as Record<string, number>)) {
      expect(Number(p.x)).toBeGreaterThanOrEqual(-2);
      expect(Number(p.x)).toBeLessThanOrEqual(3);
      expect(Number.isInteger(p.y)).toBe(true);
    }
  });
});

describe('trials that fail', () => {
  it('records a failing program with its exit code and stderr, and goes on', async () => {
    const id = await createSweep('failing.yaml');
    const r = await collect(agent(id));
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    const failed = d.trials.find((t) => paramsOf(t).fail === true)!;
    expect(failed.state).toBe('failed');
    expect(failed.exitCode).toBe(3);
    expect(failed.reason).toBe('exit code 3: ValueError: asked to fail');
    const ok = d.trials.find((t) => paramsOf(t).fail === false)!;
    expect(ok.state).toBe('finished');
    const logs = await runCli(['logs', failed.id, '--controller', controller.address]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('ValueError: asked to fail');
  });

  it('records a program that cannot start as failed with the reason, and goes on', async () => {
    const id = await createSweep('missing.yaml');
    const r = await collect(agent(id));
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.trials).toHaveLength(2);
    for (const t of d.trials) {
      expect(t.state).toBe('failed');
      expect(t.reason).toMatch(/^could not start: .*does-not-exist\.py/);
    }
  });
});

describe('agent options', () => {
  it('--count N exits after N trials, leaving the rest to other agents', async () => {
    const id = await createSweep('grid.yaml');
    const r = await collect(agent(id, ['--count', '2']));
    expect(r.code, r.stderr).toBe(0);
    const d = await client.getSweep(id);
    expect(d.trials).toHaveLength(2);
    expect(d.sweep.state).toBe('running');
    // Another agent finishes the grid.
    expect((await collect(agent(id))).code).toBe(0);
    expect((await settled(id)).trials).toHaveLength(6);
  });

  it('an unknown sweep is a clear error with exit code 2', async () => {
    const r = await collect(agent('nosuchsweep'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown sweep 'nosuchsweep'");
  });

  it('runs trials through the Python helper with nested params and float typing', async () => {
    const id = await createSweep('python.yaml');
    const r = await collect(agent(id));
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.trials.map((t) => t.state)).toEqual(['finished', 'finished']);
    expect(paramsOf(d.trials[0])).toEqual({ lr: 0.001, opt: { name: 'adam' } });
    expect(d.trials[0].bestValue).toBeCloseTo(0.1 / 3, 12);
    expect(d.trials[0].lastStep).toBe(3);
  });
});

describe('watching', () => {
  it('watch --once prints the leaderboard; --json prints it as JSON', async () => {
    const id = await createSweep('grid.yaml');
    expect((await collect(agent(id))).code).toBe(0);
    await settled(id);
    const table = await runCli(['watch', id, '--once', '--controller', controller.address], { env: { NO_COLOR: '1' } });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(id);
    expect(table.stdout).toContain('finished');
    expect(table.stdout).not.toContain('\x1b[');
    const json = await runCli(['watch', id, '--once', '--json', '--controller', controller.address]);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc.sweep.id).toBe(id);
    expect(doc.trials).toHaveLength(6);
    expect(doc.trials[0].rank).toBe(1);
  });

  it('watch streams until the sweep settles', async () => {
    const id = await createSweep('random.yaml');
    const watcher = collect(spawnCli(['watch', id, '--json', '--controller', controller.address]));
    expect((await collect(agent(id))).code).toBe(0);
    const w = await watcher;
    expect(w.code, w.stderr).toBe(0);
    const snapshots = w.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(snapshots.length).toBeGreaterThan(1);
    expect(snapshots.at(-1).sweep.state).toBe('finished');
    expect(snapshots.at(-1).trials).toHaveLength(5);
  });

  it('ls lists sweeps and the controller answers the standard health check', async () => {
    const ls = await runCli(['ls', '--controller', controller.address]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/SWEEP\s+NAME\s+METHOD\s+STATE/);
  });
});

describe('sweep lifecycle', () => {
  it('stop sends the running trial SIGTERM; it ends stopped with its metrics kept, and the agent exits', async () => {
    const id = await createSweep('slow.yaml');
    const a = collect(agent(id, ['--grace', '5']));
    const running = await until('a trial with metrics', async () => {
      const d = await client.getSweep(id);
      return d.trials.find((t) => t.state === 'running' && t.points >= 3);
    });
    const stop = await runCli(['stop', id, '--controller', controller.address]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toContain(`sweep ${id} is stopped`);
    const r = await a;
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.sweep.state).toBe('stopped');
    expect(d.trials).toHaveLength(1);
    const t = d.trials.find((x) => x.id === running.id)!;
    expect(t.state).toBe('stopped');
    expect(t.reason).toBe('sweep stopped by user');
    expect(t.points).toBeGreaterThanOrEqual(3);
    expect(t.bestValue).toBeGreaterThan(0);
  });

  it('pause hands out no new trials until resume', async () => {
    const id = await createSweep('grid.yaml');
    expect((await runCli(['pause', id, '--controller', controller.address])).stdout).toContain('is paused');
    // At debug level the agent logs each request the controller answers with "retry later".
    const child = agent(id, [], { SWEEPER_LOG_LEVEL: 'debug' });
    const output = liveOutput(child);
    const a = collect(child);
    // The agent asked for a trial and was told to wait: the paused sweep handed out nothing.
    await output.waitFor(/no trial for now/);
    expect((await client.getSweep(id)).trials).toHaveLength(0);
    expect((await runCli(['resume', id, '--controller', controller.address])).stdout).toContain('is running');
    expect((await a).code).toBe(0);
    expect((await settled(id)).trials).toHaveLength(6);
  });

  it('SIGTERM to an agent stops its trial with grace, reports it and exits cleanly', async () => {
    const id = await createSweep('slow.yaml');
    const child = agent(id, ['--grace', '5']);
    const done = collect(child);
    await until('a running trial', async () => (await client.getSweep(id)).trials.find((t) => t.state === 'running' && t.points > 0));
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    const d = await client.getSweep(id);
    expect(d.trials).toHaveLength(1);
    expect(d.trials[0].state).toBe('stopped');
    expect(d.trials[0].reason).toBe('agent shutting down');
    expect(d.sweep.state).toBe('running');
    await client.stopSweep(id);
  });
});

describe('several agents on one sweep', () => {
  it('three agents share 40 random trials: each runs once, every metric point arrives', async () => {
    const id = await createSweep('quick-many.yaml');
    const rs = await Promise.all([collect(agent(id)), collect(agent(id)), collect(agent(id))]);
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.trials).toHaveLength(40);
    expect(new Set(d.trials.map((t) => t.number)).size).toBe(40);
    expect(d.trials.every((t) => t.state === 'finished' && t.points === 2)).toBe(true);
    expect(new Set(d.trials.map((t) => t.agentId)).size).toBeGreaterThan(1);
  });
});
