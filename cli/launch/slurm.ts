/**
 * Sweeper agents as a Slurm job array: the sbatch script (`slurmScript`, pure), and `submit`,
 * `status`, `cancel` over Slurm's own clients (`sbatch`, `squeue`, `scancel`, run with argv,
 * never through a shell), plus the launch record they share (cli/launch/records.ts).
 *
 * One array task runs one agent, which uses every GPU Slurm gave the task (Slurm narrows
 * CUDA_VISIBLE_DEVICES; the agent's `--gpus all` honours it) and exits when the sweep has no more
 * work. The controller address and the API token reach the task through the environment sbatch is
 * run with (`--export=ALL`), never through the script or an argv: the script is a file, and argv
 * is visible to everyone in `ps`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { coerceError, MissingDependencyError, SweeperError } from '../../domain/errors.js';
import { readRecord, recordsDir, writeRecord } from './records.js';
import { sbatchQuote, shellJoin } from './shell-quote.js';

/** What `slurmScript` writes: every value already checked (cli/launch/slurm-flags.ts), paths absolute. */
export interface SlurmScriptOptions {
  sweepId: string;
  /** Array size: tasks 0..jobs-1. */
  jobs: number;
  /** At most this many tasks at once (the array's `%K`). */
  concurrent?: number;
  /** `--gres=gpu:G` per task; the agent then runs with `--gpus all`. */
  gpusPerJob?: number;
  time?: string;
  partition?: string;
  account?: string;
  qos?: string;
  mem?: string;
  cpusPerGpu?: number;
  /** Extra directives, written as `#SBATCH LINE`. */
  sbatch: readonly string[];
  /** The user's own shell lines, run before the agent (module loads, venv activation), verbatim. */
  setup: readonly string[];
  /** Slurm's output file pattern (%A array job id, %a task). */
  output: string;
  /** `--signal` value (`B:USR1@120`); undefined: ask for no warning signal. */
  signal?: string;
  requeue: boolean;
  /** Where the agent, and so its trials, run. */
  chdir: string;
  /** The sweeper command on the compute nodes, as argv (node and bin/sweeper.js, or a bundle's launcher). */
  sweeper: readonly string[];
  /** Agent flags that are no secret (`--tls`). */
  agentArgs?: readonly string[];
}

export const DEFAULT_SIGNAL = 'B:USR1@120';

/** The array spec: tasks 0..N-1, throttled to K at once. */
export const arraySpec = (jobs: number, concurrent?: number) => `0-${jobs - 1}${concurrent ? `%${concurrent}` : ''}`;

/** The sbatch script of a launch. Pure: the same options give the same text. */
export function slurmScript(o: SlurmScriptOptions): string {
  const directive = (flag: string, value: string | number | undefined) =>
    value === undefined ? [] : [`#SBATCH --${flag}=${sbatchQuote(`--${flag}`, String(value))}`];
  const gpus = o.gpusPerJob === undefined ? [] : ['--gpus', 'all'];
  const lines = [
    '#!/bin/bash',
    ...directive('job-name', `sweeper-${o.sweepId}`),
    ...directive('array', arraySpec(o.jobs, o.concurrent)),
    ...directive('gres', o.gpusPerJob === undefined ? undefined : `gpu:${o.gpusPerJob}`),
    ...directive('cpus-per-gpu', o.cpusPerGpu),
    ...directive('mem', o.mem),
    ...directive('time', o.time),
    ...directive('partition', o.partition),
    ...directive('account', o.account),
    ...directive('qos', o.qos),
    ...directive('chdir', o.chdir),
    ...directive('output', o.output),
    ...directive('signal', o.signal),
    // A requeued task appends to its first run's output rather than replacing it.
    ...(o.requeue ? ['#SBATCH --requeue', '#SBATCH --open-mode=append'] : []),
    // Written out although it is Slurm's default: the controller address and token travel this way.
    '#SBATCH --export=ALL',
    ...o.sbatch.map((line) => `#SBATCH ${line}`),
    '#',
    `# Sweeper agents for sweep ${o.sweepId}, one per array task, written by 'sweeper launch slurm'.`,
    '# The controller address and API token come from the environment sbatch ran with',
    '# (SWEEPER_CONTROLLER, SWEEPER_TOKEN), never from this file.',
    // A failed setup line (a module that is missing) ends the task rather than run an agent whose every trial fails.
    'set -e',
    ...o.setup,
    '# exec: the agent becomes the batch shell, so the signal Slurm sends it before the time limit',
    '# or on preemption (--signal=B:...) reaches the agent itself.',
    `exec ${shellJoin([...o.sweeper, 'agent', o.sweepId, ...gpus, ...(o.agentArgs ?? [])])}`,
  ];
  return lines.join('\n') + '\n';
}

/** A Slurm client failed: it is missing, or it said no (its own message is in ours). */
export class SlurmError extends SweeperError {}

interface Ran {
  stdout: string;
  stderr: string;
}

/** Runs a Slurm client with argv (no shell); a non-zero exit is a SlurmError with its stderr. */
function slurmClient(bin: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env, encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new MissingDependencyError(`'${bin}' is not on PATH: run 'sweeper launch slurm' on a Slurm login node (or one with Slurm's clients)`, { cause: err }));
      }
      reject(new SlurmError(`${bin} ${args.join(' ')} failed: ${stderr.trim() || coerceError(err).message}`, { cause: err }));
    });
  });
}

/** Submits the script at `scriptPath` with `env` (the controller address and token in it); the job id sbatch gave. */
export async function submit(scriptPath: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await slurmClient('sbatch', ['--parsable', scriptPath], env);
  // --parsable: "jobid" or "jobid;cluster".
  const jobId = stdout.trim().split(';')[0];
  if (!/^\d+$/.test(jobId)) throw new SlurmError(`sbatch printed no job id: ${JSON.stringify(stdout)}`);
  return jobId;
}

/** One array task as squeue shows it. */
export interface SlurmTask {
  /** `123_4`: array job 123, task 4. */
  id: string;
  state: string;
  elapsed: string;
  /** The node it runs on, or why it waits (`(JobArrayTaskLimit)`). */
  where: string;
}

/** The tasks of these array jobs that slurmctld still knows, one row per task, finished ones too (`all`) or only those not over. */
export async function status(jobIds: readonly string[], which: 'all' | 'active' = 'all', env?: NodeJS.ProcessEnv): Promise<SlurmTask[]> {
  if (jobIds.length === 0) return [];
  // -r: one row per array task, pending ones too; without -t, squeue shows only jobs not yet over.
  const args = ['-h', '-r', '-j', jobIds.join(','), '-o', '%i|%T|%M|%R', ...(which === 'all' ? ['-t', 'all'] : [])];
  let out: Ran;
  try {
    out = await slurmClient('squeue', args, env);
  } catch (err) {
    // A job slurmctld has forgotten (ended longer ago than its MinJobAge) is no error here: it is simply not there.
    if (err instanceof SlurmError && /Invalid job id/i.test(err.message)) return [];
    throw err;
  }
  return out.stdout
    .split('\n')
    .filter((l) => l.includes('|'))
    .map((l) => {
      const [id, state, elapsed, where] = l.split('|');
      return { id, state, elapsed, where };
    });
}

/**
 * Cancels these array jobs, every task of them, and waits (bounded) until squeue shows none of
 * them pending or running; the tasks still ending then (Slurm's KillWait) are returned.
 */
export async function cancel(jobIds: readonly string[], env?: NodeJS.ProcessEnv, waitMs = 60_000): Promise<SlurmTask[]> {
  if (jobIds.length === 0) return [];
  try {
    await slurmClient('scancel', [...jobIds], env);
  } catch (err) {
    // scancel still cancels the others when one of the jobs is one slurmctld has forgotten.
    if (!(err instanceof SlurmError && /Invalid job id/i.test(err.message))) throw err;
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    const left = await status(jobIds, 'active', env);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One `sweeper launch slurm` of a sweep, as the record keeps it. */
export interface SlurmLaunch {
  jobId: string;
  array: string;
  script: string;
  output: string;
  submittedAt: string;
}

/** `<records>/<sweepId>/slurm.json`: every array submitted for the sweep, oldest first. */
export interface SlurmRecord {
  launches: SlurmLaunch[];
}

export const SLURM_RECORD = 'slurm';

const readSlurmRecord = (records: string, sweepId: string): SlurmRecord | undefined => readRecord<SlurmRecord>(records, sweepId, SLURM_RECORD);

/**
 * Writes the script (0600) beside the sweep's records, submits it with `env`, records the launch
 * and returns it. Nothing is recorded when sbatch refuses.
 */
export async function launchSlurm(records: string, o: SlurmScriptOptions, env: NodeJS.ProcessEnv, now = new Date()): Promise<SlurmLaunch> {
  const dir = recordsDir(records, o.sweepId);
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  const script = path.join(dir, `slurm-${stamp}.sh`);
  writeFileSync(script, slurmScript(o), { mode: 0o600 });
  const jobId = await submit(script, env);
  const launch: SlurmLaunch = { jobId, array: arraySpec(o.jobs, o.concurrent), script, output: o.output, submittedAt: now.toISOString() };
  const previous = readSlurmRecord(records, o.sweepId)?.launches ?? [];
  writeRecord(records, o.sweepId, SLURM_RECORD, { launches: [...previous, launch] } satisfies SlurmRecord);
  return launch;
}

/** Whether anything was launched on Slurm for the sweep. */
export const hasSlurmRecord = (records: string, sweepId: string) => readSlurmRecord(records, sweepId) !== undefined;

/** The task of `123_4`: 4 (a row of the array as a whole, `123_[2-3%2]`, sorts last). */
const taskNumber = (t: SlurmTask) => {
  const m = /_(\d+)$/.exec(t.id);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
};

/** What `sweeper launch status` prints for Slurm: each recorded array, then its tasks as squeue has them. */
export async function slurmStatus(records: string, sweepId: string, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const rec = readSlurmRecord(records, sweepId);
  if (!rec) return [];
  const lines: string[] = [];
  for (const l of rec.launches) {
    lines.push(`slurm job ${l.jobId} (array ${l.array}), submitted ${l.submittedAt}`, `  script ${l.script}`, `  output ${l.output}`);
    const tasks = (await status([l.jobId], 'all', env)).sort((a, b) => taskNumber(a) - taskNumber(b));
    if (tasks.length === 0) lines.push('  no task of it in squeue (Slurm forgets a job MinJobAge after it ended)');
    const width = Math.max(0, ...tasks.map((t) => t.id.length));
    const stateWidth = Math.max(0, ...tasks.map((t) => t.state.length));
    for (const t of tasks) lines.push(`  ${t.id.padEnd(width)}  ${t.state.padEnd(stateWidth)}  ${t.elapsed.padStart(8)}  ${t.where}`);
  }
  return lines;
}

/** `sweeper launch cancel` for Slurm: scancel every recorded array of the sweep; what it did. */
export async function slurmCancel(records: string, sweepId: string, env?: NodeJS.ProcessEnv): Promise<string[]> {
  const rec = readSlurmRecord(records, sweepId);
  if (!rec) return [];
  const jobIds = rec.launches.map((l) => l.jobId);
  const left = await cancel(jobIds, env);
  const lines = [`slurm: cancelled job${jobIds.length > 1 ? 's' : ''} ${jobIds.join(', ')}`];
  for (const t of left) lines.push(`  ${t.id} still ${t.state} (Slurm is ending it)`);
  return lines;
}
