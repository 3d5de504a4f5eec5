/**
 * Early stopping through the real stack: a real nats-server, the controller's gRPC server, and
 * agents as CLI child processes running real programs. A rule in the sweep config decides on the
 * metric points as they are ingested, the agent stops the process group, and the trial ends
 * `stopped` with the rule's reason, its metrics kept and its place on the leaderboard.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweeperClient } from '../../common/api-client.js';
import type { ApiSweepDetail } from '../../common/api-types.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { collect, spawnCli } from '../fixtures/cli.js';
import { SWEEPS, startStack, waitSettled, type TestStack } from '../fixtures/stack.js';

let stack: TestStack;
let controller: ControllerHandle;
let client: SweeperClient;
let pidDir: string;

beforeAll(async () => {
  pidDir = mkdtempSync(join(tmpdir(), 'sweeper-stop-pids-'));
  stack = await startStack();
  ({ controller, client } = stack);
});

afterAll(async () => {
  await stack?.stop();
  if (pidDir) rmSync(pidDir, { recursive: true, force: true });
});

async function createSweep(file: string): Promise<string> {
  return (await client.createSweep(readFileSync(`${SWEEPS}${file}`, 'utf8'), file)).id;
}

function agent(sweepId: string) {
  return collect(
    spawnCli(['agent', sweepId, '--controller', controller.address, '--grace', '5'], { cwd: SWEEPS, env: { SWEEPER_TEST_PIDDIR: pidDir } }),
  );
}

const settled = (sweepId: string, timeoutMs?: number): Promise<ApiSweepDetail> => waitSettled(client, sweepId, timeoutMs);

function processGone(trialId: string): boolean {
  const pid = Number(readFileSync(join(pidDir, `${trialId}.pid`), 'utf8'));
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe('early stopping with a real agent', () => {
  it('hyperband stops a bad trial at its first bracket; it keeps its metrics and its rank', async () => {
    const id = await createSweep('stop-hyperband.yaml');
    const r = await agent(id);
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.sweep.state).toBe('finished');
    const [good, bad] = d.trials;
    expect(good.state).toBe('finished');
    expect(good.rank).toBe(1);
    expect(good.bestValue).toBe(0.5);

    expect(bad.state).toBe('stopped');
    expect(bad.reason).toBe('hyperband: value 2 > threshold 0.5 at bracket 1');
    expect(bad.signal).toBe('SIGTERM');
    // Its points stay (it asked for 100000; stopping cut it short) and it is ranked by them.
    expect(bad.points).toBeGreaterThanOrEqual(1);
    expect(bad.points).toBeLessThan(100_000);
    expect(bad.bestValue).toBe(2);
    expect(bad.rank).toBe(2);
    expect(processGone(bad.id)).toBe(true);
    const detail = await client.getTrial(bad.id);
    expect(detail.metrics.find((m) => m.name === 'loss')?.count).toBe(bad.points);
  });

  it('a threshold tightened by later trials stops a trial that is already running', async () => {
    const id = await createSweep('stop-tighten.yaml');
    const rs = await Promise.all([agent(id), agent(id)]);
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    const byNumber = [...d.trials].sort((a, b) => a.number - b.number);
    expect(byNumber.map((t) => t.state)).toEqual(['stopped', 'finished', 'finished']);
    const long = byNumber[0];
    // Judged at bracket 2 unless its second value was somehow later than both other trials.
    expect(long.reason).toMatch(/^hyperband: value 5 > threshold 1 at bracket [12]$/);
    expect(long.points).toBeLessThan(100_000);
    expect(long.rank).toBe(3);
    expect(processGone(long.id)).toBe(true);
  });
});
