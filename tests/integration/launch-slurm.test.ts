/**
 * `sweeper launch slurm|status|cancel` against a real single-node Slurm (tests/fixtures/slurm.ts:
 * munged, slurmctld, slurmd, four fake GPUs) and a real controller with a token: a sweep run by an
 * array of agents throttled to two at once, each job on its own GPU, seen by `launch status`, and
 * a second launch stopped by `launch cancel`. Where Slurm is not installed (and this is not CI,
 * whose .ci/run installs it) those tests are skipped, saying so; the dry run and the refusals need
 * no cluster.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellJoin } from '../../cli/launch/shell-quote.js';
import { CLI_ENTRY, REPO_ROOT, runCli } from '../fixtures/cli.js';
import { slurmMissing, startSlurm, type SlurmCluster } from '../fixtures/slurm.js';
import { SWEEPS, startStack, waitSettled, type TestStack } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

const TOKEN = 'slurm-test-token-3f9a1c';
const FAKE_NVIDIA_SMI = fileURLToPath(new URL('../fixtures/hosts/slurm-nvidia-smi.sh', import.meta.url));
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'sweeper-launch-slurm-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sweeper launch slurm --dry-run and its refusals (no cluster needed)', () => {
  it('prints the script: the array, the GPUs, this installation exec-ed as the agent, and no token', async () => {
    const r = await runCli(
      ['launch', 'slurm', 'sw-dry', '--dry-run', '--controller', 'login1:50051', '--jobs', '3', '--concurrent', '2', '--gpus-per-job', '1'],
      { env: { SWEEPER_TOKEN: TOKEN }, cwd: tmp },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^#!\/bin\/bash\n#SBATCH --job-name=sweeper-sw-dry\n#SBATCH --array=0-2%2\n#SBATCH --gres=gpu:1\n/);
    expect(r.stdout).toContain(`#SBATCH --chdir=${tmp}\n`);
    expect(r.stdout).toContain(`#SBATCH --output=${tmp}/.sweeper/launches/sw-dry/slurm-%A_%a.out\n`);
    expect(r.stdout).toContain('#SBATCH --signal=B:USR1@120\n#SBATCH --export=ALL\n');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`exec ${shellJoin([process.execPath, path.join(REPO_ROOT, 'bin', 'sweeper.js'), 'agent', 'sw-dry', '--gpus', 'all'])}`);
    expect(r.stdout).not.toContain(TOKEN);
    expect(r.stdout).not.toContain('login1');
    // A dry run submits and records nothing.
    expect(existsSync(path.join(tmp, '.sweeper'))).toBe(false);
  });

  it('refuses a loopback controller unless --allow-loopback, saying why (exit 2)', async () => {
    const r = await runCli(['launch', 'slurm', 'sw-dry', '--dry-run', '--controller', '127.0.0.1:50051'], { cwd: tmp });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('loopback address, but the agents run on Slurm compute nodes');
    expect(r.stderr).toContain('--allow-loopback');
    expect((await runCli(['launch', 'slurm', 'sw-dry', '--dry-run', '--controller', '127.0.0.1:50051', '--allow-loopback'], { cwd: tmp })).code).toBe(0);
  });

  it('refuses a bad Slurm value by its flag, and status or cancel of a sweep it launched nothing for (exit 2)', async () => {
    const bad = await runCli(['launch', 'slurm', 'sw-dry', '--dry-run', '--controller', 'login1:50051', '--time', '2h'], { cwd: tmp });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--time');
    const status = await runCli(['launch', 'status', 'sw-none', '--records', path.join(tmp, 'none')]);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('nothing was launched for sweep sw-none');
    expect((await runCli(['launch', 'cancel', 'sw-none', '--records', path.join(tmp, 'none')])).code).toBe(2);
  });
});

// On CI Slurm is installed by .ci/run: a missing one there fails (startSlurm says why) rather than skip.
const missing = process.env.CI ? undefined : slurmMissing();

describe.skipIf(missing !== undefined)(`sweeper launch slurm on a real Slurm${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let slurm: SlurmCluster;
  let stack: TestStack;
  let work: string;
  let records: string;
  let marks: string;
  let env: NodeJS.ProcessEnv;
  /** The command the jobs run: the compiled CLI, as the other tests run it (bin/sweeper.js would rebuild a changed checkout first). */
  let sweeper: string;

  beforeAll(async () => {
    [slurm, stack] = await Promise.all([startSlurm({ gpus: 4 }), startStack({ token: TOKEN })]);
    // A working directory whose name needs quoting, both in #SBATCH lines and in the shell.
    work = path.join(tmp, `work dir "it's"`);
    mkdirSync(work);
    for (const f of ['slurm-trial.cjs', 'steady.cjs', 'preemptible.cjs']) cpSync(path.join(SWEEPS, f), path.join(work, f));
    records = path.join(work, 'records');
    marks = path.join(tmp, 'marks');
    mkdirSync(marks);
    sweeper = path.join(tmp, 'sweeper');
    writeFileSync(sweeper, `#!/bin/sh\nexec ${shellJoin([process.execPath, CLI_ENTRY])} "$@"\n`, { mode: 0o755 });
    // The token reaches `sweeper launch` (and so the jobs) through the environment, as users should pass it.
    env = { ...slurm.env, SWEEPER_TOKEN: TOKEN, SWEEPER_NVIDIA_SMI: FAKE_NVIDIA_SMI, SLURM_MARKS: marks };
  });
  afterAll(async () => {
    await slurm?.stop();
    await stack?.stop();
  });

  const launch = (args: string[]) => runCli(['launch', ...args, '--records', records], { env, cwd: work });
  const squeue = (args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile('squeue', args, { env: { ...process.env, ...slurm.env }, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
    );

  it('runs a sweep as a job array: two jobs at once, one GPU each, every trial in a job; status shows the tasks', async () => {
    const sweep = await stack.client.createSweep(readFileSync(path.join(SWEEPS, 'slurm.yaml'), 'utf8'), 'slurm.yaml');
    const args = ['slurm', sweep.id, '--controller', stack.controller.address, '--allow-loopback', '--jobs', '4', '--concurrent', '2', '--gpus-per-job', '1'];
    const submitted = await launch([...args, '--sweeper', sweeper]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /Submitted job array (\d+) \(tasks 0-3, at most 2 at once\)/.exec(submitted.stdout)?.[1];
    expect(jobId, submitted.stdout).toBeDefined();

    // While the first two run, Slurm holds the others back by the array's throttle, as status shows.
    const held = await until(
      'launch status to show a task held by the array throttle',
      async () => {
        const s = await launch(['status', sweep.id]);
        return s.code === 0 && s.stdout.includes('(JobArrayTaskLimit)') ? s.stdout : undefined;
      },
      60_000,
      100,
    );
    expect(held).toContain(`slurm job ${jobId} (array 0-3%2), submitted `);
    expect(held).toMatch(new RegExp(`^  ${jobId}_\\d+ +RUNNING `, 'm'));

    const done = await waitSettled(stack.client, sweep.id, 90_000);
    expect(done.sweep.state).toBe('finished');
    expect(done.trials).toHaveLength(6);
    expect(done.trials.every((t) => t.state === 'finished')).toBe(true);
    // With the sweep over, every agent exits, and so does its job.
    await until('every task of the array to end', async () => ((await squeue(['-h', '-j', jobId!])).trim() === '' ? true : undefined), 60_000, 200);

    type Mark = { event: 'start' | 'end'; trial: string; job: string; task: string; gpu: string; jobGpus: string };
    const events = readFileSync(path.join(marks, 'marks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Mark);
    // Every trial of the sweep ran, start to end, inside a task of this array.
    expect(new Set(events.filter((e) => e.event === 'end').map((e) => e.trial))).toEqual(new Set(done.trials.map((t) => t.id)));
    for (const e of events) {
      expect(e.job).toBe(jobId);
      expect(['0', '1', '2', '3']).toContain(e.task);
    }
    // Each job had one GPU of the fake GRES, and its trials ran on it.
    const gpuOfTask = new Map<string, Set<string>>();
    for (const e of events) gpuOfTask.set(e.task, (gpuOfTask.get(e.task) ?? new Set()).add(e.gpu));
    for (const [task, gpuIds] of gpuOfTask) {
      expect([...gpuIds], `task ${task}`).toHaveLength(1);
      expect(['0', '1', '2', '3']).toContain([...gpuIds][0]);
    }
    for (const e of events) expect(e.jobGpus).toBe(e.gpu);
    // At most two tasks had a trial running at any point of the marks' order (the node had four GPUs free).
    const running = new Map<string, number>();
    let most = 0;
    for (const e of events) {
      running.set(e.task, (running.get(e.task) ?? 0) + (e.event === 'start' ? 1 : -1));
      most = Math.max(most, [...running.values()].filter((n) => n > 0).length);
    }
    expect(most).toBeLessThanOrEqual(2);

    // Each of the four tasks ran an agent, which logged to the task's output beside the records, and ended when the sweep did.
    const dir = path.join(records, sweep.id);
    for (const task of ['0', '1', '2', '3']) {
      const out = readFileSync(path.join(dir, `slurm-${jobId}_${task}.out`), 'utf8');
      expect(out, `task ${task}`).toContain('agent done');
    }
    // The token is in no file of ours, and only in private ones of Slurm's (the job's saved environment).
    const script = readdirSync(dir).find((f) => f.endsWith('.sh'))!;
    expect(readFileSync(path.join(dir, script), 'utf8')).not.toContain(TOKEN);
    for (const file of [...filesUnder(dir), ...filesUnder(slurm.dir)]) {
      const mode = statSync(file).mode & 0o777;
      if (readFileSync(file).includes(TOKEN)) expect(mode & 0o077, `${file} holds the token`).toBe(0);
    }
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(dir, script)).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dir, 'slurm.json')).mode & 0o777).toBe(0o600);

    // Status still lists the tasks, each finished.
    const after = await launch(['status', sweep.id]);
    expect(after.code, after.stderr).toBe(0);
    for (const task of ['0', '1', '2', '3']) expect(after.stdout).toMatch(new RegExp(`^  ${jobId}_${task} +COMPLETED `, 'm'));
  }, 150_000);

  it('cancel stops a long-running launch: nothing of it is left in squeue', async () => {
    const sweep = await stack.client.createSweep(readFileSync(path.join(SWEEPS, 'long.yaml'), 'utf8'), 'long.yaml');
    const r = await launch(['slurm', sweep.id, '--controller', stack.controller.address, '--allow-loopback', '--jobs', '2', '--gpus-per-job', '1', '--sweeper', sweeper]);
    expect(r.code, r.stderr).toBe(0);
    const jobId = /Submitted job array (\d+)/.exec(r.stdout)![1];
    await until(
      'a trial of the long sweep to run',
      async () => ((await stack.client.getSweep(sweep.id)).trials.some((t) => t.state === 'running') ? true : undefined),
      60_000,
      100,
    );

    const cancelled = await launch(['cancel', sweep.id]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toContain(`slurm: cancelled job ${jobId}`);
    expect((await squeue(['-h', '-j', jobId])).trim()).toBe('');
    const status = await launch(['status', sweep.id]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).not.toMatch(/RUNNING|PENDING|COMPLETING/);
    expect(status.stdout).toMatch(new RegExp(`^  ${jobId}_0 +CANCELLED `, 'm'));
    await stack.client.stopSweep(sweep.id);
  }, 90_000);

  it('checks the sweep with the controller first: an unknown one is exit 2, and nothing is submitted', async () => {
    const r = await launch(['slurm', 'no-such-sweep', '--controller', stack.controller.address, '--allow-loopback', '--sweeper', sweeper]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no-such-sweep');
    expect(existsSync(path.join(records, 'no-such-sweep'))).toBe(false);
  });

  it('a task warned before its time limit hands its trial back, and a later task continues it under the same id', async () => {
    const sweep = await stack.client.createSweep(readFileSync(path.join(SWEEPS, 'preemptible-slurm.yaml'), 'utf8'), 'preemptible-slurm.yaml');
    const checkpoints = path.join(work, 'checkpoints');
    // One minute per task, the warning asked for 50 s before its end: slurmctld checks limits
    // about every 30 s, so it comes some 10-40 s in. The trial's first run never finishes by itself.
    const args = ['slurm', sweep.id, '--controller', stack.controller.address, '--allow-loopback', '--jobs', '2', '--concurrent', '1', '--time', '1'];
    const submitted = await launch([...args, '--signal', 'B:USR1@50', '--checkpoint-dir', checkpoints, '--preempt-grace', '20s', '--sweeper', sweeper]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const done = await waitSettled(stack.client, sweep.id, 170_000);
    const trialId = `${sweep.id}-1`;
    expect(done.sweep.state).toBe('finished');
    expect(done.trials.map((t) => [t.id, t.state])).toEqual([[trialId, 'finished']]);
    const detail = await stack.client.getTrial(trialId);
    expect(detail.history.map((h) => h.state)).toEqual(['running', 'preempted', 'running', 'finished']);
    // Two runs of the one trial, in tasks 0 and 1 of the array; the second resumed from the first's checkpoint.
    const runs = readFileSync(path.join(checkpoints, sweep.id, trialId, 'runs.log'), 'utf8').trim().split('\n');
    expect(runs.map((l) => /task=(\d*)/.exec(l)?.[1])).toEqual(['0', '1']);
    expect(runs[0]).toMatch(/^resume=0 start=0 /);
    expect(runs[1]).toMatch(/^resume=1 start=[1-9]\d* wandb_resume=allow /);
    expect(done.trials[0].missingPoints).toBe(0);
  }, 200_000);
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath, d.name));
}
