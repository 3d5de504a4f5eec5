/**
 * Preemption with real parts: an agent gets SIGUSR1 (what Slurm's `--signal B:USR1@S` sends
 * before a time limit or a preemption), passes it to its trial, which checkpoints and exits; the
 * controller keeps the trial `preempted`, and the next agent continues it under the same id with
 * SWEEPER_RESUME=1 and the same checkpoint folder, its metrics appended after the first run's.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, spawnCli } from '../fixtures/cli.js';
import { startStack, SWEEPS, waitSettled, type TestStack } from '../fixtures/stack.js';
import { TrackedProcesses } from '../fixtures/tracked.js';
import { until } from '../fixtures/wait.js';

let stack: TestStack;
const tracked = new TrackedProcesses();
const checkpoints = mkdtempSync(join(tmpdir(), 'sweeper-checkpoints-'));

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  tracked.killAll();
  await stack?.stop();
  rmSync(checkpoints, { recursive: true, force: true });
});

function agent(sweepId: string) {
  return tracked.child(
    spawnCli(['agent', sweepId, '--controller', stack.controller.address, '--grace', '5', '--preempt-grace', '20s', '--checkpoint-dir', checkpoints], {
      cwd: SWEEPS,
    }),
  );
}

describe('preemption', () => {
  it('continues a preempted trial under its id on the next agent, from its checkpoint, with its metrics appended', async () => {
    const text = readFileSync(join(SWEEPS, 'preemptible.yaml'), 'utf8');
    const sweep = await stack.client.createSweep(text, 'preemptible.yaml');
    const first = agent(sweep.id);
    const firstDone = collect(first, 90_000);
    const running = await until('the trial to log a few epochs', async () => {
      const d = await stack.client.getSweep(sweep.id);
      const t = d.trials[0];
      return t && t.state === 'running' && t.points >= 5 ? t : undefined;
    });
    first.kill('SIGUSR1');
    const preempted = await until('the trial to be preempted', async () => {
      const { trial } = await stack.client.getTrial(running.id);
      return trial.state === 'preempted' ? trial : undefined;
    });
    const firstResult = await firstDone;
    expect(firstResult.stderr).toContain('received SIGUSR1');
    const pointsBefore = preempted.points;
    expect(pointsBefore).toBeGreaterThanOrEqual(5);

    // The next agent continues the same trial; the sweep has one trial in all.
    const second = agent(sweep.id);
    const secondDone = collect(second, 90_000);
    const done = await waitSettled(stack.client, sweep.id, 90_000);
    await secondDone;
    expect(done.sweep.state).toBe('finished');
    expect(done.trials.map((t) => [t.id, t.state])).toEqual([[running.id, 'finished']]);
    const trial = done.trials[0];
    // Every epoch once: the first run's points, then the continuation's, steps running on.
    expect(trial.points).toBe(60);
    expect(trial.lastStep).toBe(59);
    expect(trial.missingPoints).toBe(0);
    const runs = readFileSync(join(checkpoints, sweep.id, running.id, 'runs.log'), 'utf8').trim().split('\n');
    expect(runs).toEqual(['resume=0 start=0 wandb_resume= task=', `resume=1 start=${pointsBefore} wandb_resume=allow task=`]);
    const detail = await stack.client.getTrial(running.id);
    expect(detail.history.map((h) => h.state)).toEqual(['running', 'preempted', 'running', 'finished']);
  });
  it('a trial that marks itself preempting and exits non-zero is continued, as W&B requeues it', async () => {
    const text = readFileSync(join(SWEEPS, 'self-preempt.yaml'), 'utf8');
    const sweep = await stack.client.createSweep(text, 'self-preempt.yaml');
    const only = agent(sweep.id);
    const finished = collect(only, 90_000);
    const done = await waitSettled(stack.client, sweep.id, 90_000);
    expect((await finished).code).toBe(0);
    expect(done.trials.map((t) => t.state)).toEqual(['finished']);
    const trial = done.trials[0];
    expect(trial.points).toBe(20);
    const detail = await stack.client.getTrial(trial.id);
    expect(detail.history.map((h) => [h.state, h.reason])).toEqual([
      ['running', expect.any(String)],
      ['preempted', 'the trial marked itself preempting (mark_preempting)'],
      ['running', expect.any(String)],
      ['finished', ''],
    ]);
    const runs = readFileSync(join(checkpoints, sweep.id, trial.id, 'runs.log'), 'utf8').trim().split('\n');
    expect(runs).toEqual(['resume=0 start=0 wandb_resume= task=', 'resume=1 start=5 wandb_resume=allow task=']);
  });
});
