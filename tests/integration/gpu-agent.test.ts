/**
 * One agent drives every GPU of its host. A fake nvidia-smi on PATH (the documented seam)
 * reports two GPUs; real nats-server, controller and agent process otherwise.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweeperClient } from '../../common/api-client.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { collect, spawnCli } from '../fixtures/cli.js';
import { SWEEPS, startStack, waitSettled, type TestStack } from '../fixtures/stack.js';

const FAKE_BIN = fileURLToPath(new URL('../fixtures/bin', import.meta.url));
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

const settled = (id: string) => waitSettled(client, id);

describe('an agent with --gpus all on a 2-GPU host', () => {
  it('runs two trials at once, one per GPU, reuses freed slots, and records GPU metrics', async () => {
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}gpu.yaml`, 'utf8'), 'gpu.yaml');
    // The fake nvidia-smi first on PATH; CUDA_VISIBLE_DEVICES unset, so both GPUs are visible.
    const env = { PATH: `${FAKE_BIN}:${process.env.PATH}`, CUDA_VISIBLE_DEVICES: undefined };
    const r = await collect(spawnCli(['agent', sweep.id, '--controller', controller.address, '--gpus', 'all', '--gpu-sample-interval', '0.2'], { cwd: SWEEPS, env }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('using 2 GPUs, 1 trial each');
    const d = await settled(sweep.id);
    expect(d.trials).toHaveLength(4);
    const runs = await Promise.all(
      d.trials.map(async (t) => {
        const detail = await client.getTrial(t.id);
        const line = (prefix: string) => detail.stdoutTail.find((l) => l.startsWith(prefix))!.slice(prefix.length);
        return { t, detail, device: line('device '), start: Number(line('started ')), end: Number(line('ended ')) };
      }),
    );
    for (const run of runs) expect(run.t.state).toBe('finished');
    // Each GPU ran two trials (a freed slot is handed the next one)...
    expect(runs.map((x) => x.device).sort()).toEqual(['0', '0', '1', '1']);
    // ...and trials on different GPUs overlapped in time, while those on one GPU never did.
    const overlap = (a: (typeof runs)[0], b: (typeof runs)[0]) => a.start < b.end && b.start < a.end;
    expect(runs.some((a) => runs.some((b) => a !== b && a.device !== b.device && overlap(a, b)))).toBe(true);
    for (const a of runs) for (const b of runs) if (a !== b && a.device === b.device) expect(overlap(a, b)).toBe(false);
    // GPU samples are system metrics of the trial, apart from its own rows.
    const onGpu0 = runs.find((x) => x.device === '0')!;
    const util = onGpu0.detail.metrics.find((m) => m.name === 'system/gpu.util');
    expect(util?.last).toBe(87);
    expect(onGpu0.detail.metrics.find((m) => m.name === 'system/gpu.memory_mb')?.last).toBe(12000);
    expect(onGpu0.t.points).toBe(onGpu0.detail.metricSteps.length);
    // The leaderboard shows each trial's GPU and its latest utilisation.
    expect(onGpu0.t).toMatchObject({ gpu: '0', gpuUtil: 87, gpuMemoryMb: 12000 });
    expect(runs.find((x) => x.device === '1')!.t).toMatchObject({ gpu: '1', gpuUtil: 42 });
    expect(onGpu0.detail.metricSteps.every((s, i) => s === i + 1)).toBe(true);
  });

  it('--count counts trials across slots', async () => {
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}gpu.yaml`, 'utf8'), 'gpu.yaml');
    const r = await collect(spawnCli(['agent', sweep.id, '--controller', controller.address, '--parallel', '2', '--count', '3'], { cwd: SWEEPS }));
    expect(r.code, r.stderr).toBe(0);
    const d = await client.getSweep(sweep.id);
    expect(d.trials).toHaveLength(3);
    expect(d.trials.every((t) => t.state === 'finished')).toBe(true);
    await client.stopSweep(sweep.id);
  });

  it('records a trial that died of CUDA out-of-memory as failed with that reason', async () => {
    const sweep = await client.createSweep('method: grid\nprogram: gpu-oom.py\nparameters:\n  bs: {values: [4096]}\n', 'oom.yaml');
    const r = await collect(spawnCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS }));
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(sweep.id);
    expect(d.trials[0].state).toBe('failed');
    expect(d.trials[0].reason).toMatch(/^out of GPU memory: torch.OutOfMemoryError: CUDA out of memory/);
  });
});
