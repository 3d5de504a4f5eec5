/**
 * `sweeper launch slurm` without a cluster: the sbatch script it writes (exact text), the options
 * it compiles from the flags, the environment it gives sbatch, and the checks of its flag values.
 * The real cluster is in tests/integration/launch-slurm.test.ts.
 */
import { InvalidArgumentError } from 'commander';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { jobEnvironment, slurmScriptOptions, type LaunchSlurmOptions } from '../../cli/commands/launch.js';
import { isLocalOnlyTarget, requireReachableController, targetHost } from '../../cli/launch/controller-address.js';
import { readRecord, recordsDir, writeRecord } from '../../cli/launch/records.js';
import { arraySpec, DEFAULT_SIGNAL, slurmScript, type SlurmScriptOptions } from '../../cli/launch/slurm.js';
import { sbatchLine, slurmMemory, slurmName, slurmSignal, slurmTime } from '../../cli/launch/slurm-flags.js';
import { UsageError } from '../../domain/errors.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

const minimal: SlurmScriptOptions = {
  sweepId: 'sw1',
  jobs: 4,
  sbatch: [],
  setup: [],
  output: '/scratch/runs/.sweeper/launches/sw1/slurm-%A_%a.out',
  signal: DEFAULT_SIGNAL,
  requeue: false,
  chdir: '/scratch/runs',
  sweeper: ['/usr/bin/node', '/opt/sweeper/bin/sweeper.js'],
};

const TAIL = `#
# Sweeper agents for sweep sw1, one per array task, written by 'sweeper launch slurm'.
# The controller address and API token come from the environment sbatch ran with
# (SWEEPER_CONTROLLER, SWEEPER_TOKEN), never from this file.
set -e
`;

describe('slurmScript', () => {
  it('writes a job array of agents, one per task, the agent exec-ed as the batch shell', () => {
    expect(slurmScript(minimal)).toBe(
      `#!/bin/bash
#SBATCH --job-name=sweeper-sw1
#SBATCH --array=0-3
#SBATCH --chdir=/scratch/runs
#SBATCH --output=/scratch/runs/.sweeper/launches/sw1/slurm-%A_%a.out
#SBATCH --signal=B:USR1@120
#SBATCH --export=ALL
${TAIL}# exec: the agent becomes the batch shell, so the signal Slurm sends it before the time limit
# or on preemption (--signal=B:...) reaches the agent itself.
exec /usr/bin/node /opt/sweeper/bin/sweeper.js agent sw1
`,
    );
  });

  it('writes every option, quoting each value for the parser that reads it', () => {
    const script = slurmScript({
      ...minimal,
      jobs: 10,
      concurrent: 2,
      gpusPerJob: 2,
      cpusPerGpu: 8,
      mem: '32G',
      time: '1-02:00:00',
      partition: 'gpu,gpu-long',
      account: 'lab',
      qos: 'normal',
      sbatch: ['--constraint=a100', '--mail-type=END'],
      setup: ['module load cuda/12.1', 'source "$HOME/venvs/sweep/bin/activate"'],
      output: '/scratch/my runs/slurm-%A_%a.out',
      signal: 'B:USR1@300',
      requeue: true,
      chdir: "/scratch/my runs/it's",
      sweeper: ['/shared/sweeper bundle/sweeper'],
      agentArgs: ['--tls'],
    });
    expect(script).toBe(
      `#!/bin/bash
#SBATCH --job-name=sweeper-sw1
#SBATCH --array=0-9%2
#SBATCH --gres=gpu:2
#SBATCH --cpus-per-gpu=8
#SBATCH --mem=32G
#SBATCH --time=1-02:00:00
#SBATCH --partition=gpu,gpu-long
#SBATCH --account=lab
#SBATCH --qos=normal
#SBATCH --chdir="/scratch/my runs/it's"
#SBATCH --output="/scratch/my runs/slurm-%A_%a.out"
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --export=ALL
#SBATCH --constraint=a100
#SBATCH --mail-type=END
${TAIL}module load cuda/12.1
source "$HOME/venvs/sweep/bin/activate"
# exec: the agent becomes the batch shell, so the signal Slurm sends it before the time limit
# or on preemption (--signal=B:...) reaches the agent itself.
exec '/shared/sweeper bundle/sweeper' agent sw1 --gpus all --tls
`,
    );
  });

  it('asks for no signal when there is none', () => {
    expect(slurmScript({ ...minimal, signal: undefined })).not.toMatch(/^#SBATCH --signal/m);
  });

  it('refuses a value that would break out of its #SBATCH line', () => {
    expect(() => slurmScript({ ...minimal, chdir: '/a\n#SBATCH --uid=0' })).toThrow(/--chdir: .*control character/);
  });

  it('numbers the array from 0, throttled when asked', () => {
    expect(arraySpec(1)).toBe('0-0');
    expect(arraySpec(6, 2)).toBe('0-5%2');
  });
});

const flags = (o: Partial<LaunchSlurmOptions> = {}): LaunchSlurmOptions => ({
  controller: 'login1:50051',
  jobs: 4,
  sbatch: [],
  setup: [],
  signal: DEFAULT_SIGNAL,
  records: '.sweeper/launches',
  ...o,
});

describe('slurmScriptOptions', () => {
  it('runs this installation by absolute path, in the current folder, output beside the records', () => {
    const s = slurmScriptOptions('sw1', flags(), '/scratch/runs');
    expect(s.sweeper).toEqual([process.execPath, path.join(REPO, 'bin', 'sweeper.js')]);
    expect(s.chdir).toBe('/scratch/runs');
    expect(s.output).toBe('/scratch/runs/.sweeper/launches/sw1/slurm-%A_%a.out');
    expect(s).toMatchObject({ jobs: 4, signal: 'B:USR1@120', requeue: false, agentArgs: [] });
  });

  it('takes --bundle, --sweeper, --chdir, --records, --no-signal and --tls', () => {
    expect(slurmScriptOptions('sw1', flags({ bundle: 'shared/bundle' }), '/home/u').sweeper).toEqual(['/home/u/shared/bundle/sweeper']);
    expect(slurmScriptOptions('sw1', flags({ sweeper: '/opt/bin/sweeper' }), '/home/u').sweeper).toEqual(['/opt/bin/sweeper']);
    const s = slurmScriptOptions('sw1', flags({ chdir: 'work', records: '/shared/rec', signal: false, tls: true }), '/home/u');
    expect(s).toMatchObject({ chdir: '/home/u/work', output: '/shared/rec/sw1/slurm-%A_%a.out', signal: undefined, agentArgs: ['--tls'] });
    // A CA file reaches the agent as SWEEPER_TLS_CA, which turns TLS on by itself.
    expect(slurmScriptOptions('sw1', flags({ tls: true, tlsCa: 'ca.pem' }), '/home/u').agentArgs).toEqual([]);
  });

  it('refuses --sweeper with --bundle, --cpus-per-gpu without --gpus-per-job, and a sweep id that could leave the records folder', () => {
    expect(() => slurmScriptOptions('sw1', flags({ bundle: 'b', sweeper: 's' }))).toThrow(UsageError);
    expect(() => slurmScriptOptions('sw1', flags({ cpusPerGpu: 4 }))).toThrow(/--cpus-per-gpu needs --gpus-per-job/);
    expect(() => slurmScriptOptions('../x', flags())).toThrow(UsageError);
  });
});

describe('jobEnvironment', () => {
  it('carries the controller, token and CA, and drops a token or CA not given and a stable agent id', () => {
    const base = { PATH: '/bin', SWEEPER_TOKEN: 'stale', SWEEPER_TLS_CA: '/old.pem', SWEEPER_AGENT_ID: 'one-for-all' };
    expect(jobEnvironment({ controller: 'login1:50051', token: 's3cret', tlsCa: '/etc/ca.pem' }, base)).toEqual({
      PATH: '/bin',
      SWEEPER_CONTROLLER: 'login1:50051',
      SWEEPER_TOKEN: 's3cret',
      SWEEPER_TLS_CA: '/etc/ca.pem',
    });
    expect(jobEnvironment({ controller: 'login1:50051' }, base)).toEqual({ PATH: '/bin', SWEEPER_CONTROLLER: 'login1:50051' });
  });

  it('keeps the token out of the script', () => {
    const o = flags({ token: 'tok-never-in-a-file' });
    expect(slurmScript(slurmScriptOptions('sw1', o))).not.toContain('tok-never-in-a-file');
  });
});

describe('the controller address', () => {
  it('is refused when it is loopback, unless --allow-loopback, and says why', () => {
    for (const t of ['127.0.0.1:50051', 'localhost:50051', '[::1]:50051', '0.0.0.0:50051', 'dns:///localhost:50051', 'ipv4:127.0.0.2:1']) {
      expect(isLocalOnlyTarget(t), t).toBe(true);
    }
    for (const t of ['login1:50051', '10.0.0.5:50051', '[fd00::1]:50051', 'dns:///login1.cluster:443']) expect(isLocalOnlyTarget(t), t).toBe(false);
    expect(() => requireReachableController('127.0.0.1:50051', { where: 'Slurm compute nodes' })).toThrow(/loopback address.*Slurm compute nodes.*names that machine itself/);
    expect(() => requireReachableController('127.0.0.1:50051', { where: 'x', allowLoopback: true })).not.toThrow();
    expect(targetHost('dns:///Login1:50051')).toBe('login1');
  });
});

describe('flag values', () => {
  it("checks Slurm's forms and passes them through as written", () => {
    for (const t of ['30', '30:00', '1:00:00', '2-0', '2-12:30', '2-12:30:00', 'UNLIMITED']) expect(slurmTime(t)).toBe(t);
    for (const t of ['1h', '', '1:2:3:4', '-1']) expect(() => slurmTime(t), t).toThrow(InvalidArgumentError);
    expect(slurmMemory('16G')).toBe('16G');
    expect(() => slurmMemory('16 GB')).toThrow(InvalidArgumentError);
    expect(slurmName('gpu,gpu-long')).toBe('gpu,gpu-long');
    expect(() => slurmName('gpu;rm')).toThrow(InvalidArgumentError);
    for (const s of ['B:USR1@120', 'USR1', 'B:SIGUSR1@60', 'R:10@30', '10']) expect(slurmSignal(s)).toBe(s);
    expect(() => slurmSignal('B:USR1@2m')).toThrow(InvalidArgumentError);
  });

  it('takes an #SBATCH line with or without its prefix, never one that sets the array or the export', () => {
    expect(sbatchLine('--constraint=a100')).toBe('--constraint=a100');
    expect(sbatchLine('#SBATCH --nodes=1')).toBe('--nodes=1');
    expect(() => sbatchLine('--export=NONE')).toThrow(/written by 'sweeper launch slurm' itself/);
    expect(() => sbatchLine('--array=0-9')).toThrow(InvalidArgumentError);
    expect(() => sbatchLine('constraint=a100')).toThrow(InvalidArgumentError);
    expect(() => sbatchLine('--x=1\nrm -rf /')).toThrow(/one line/);
  });
});

describe('launch records', () => {
  const root = path.join(mkdtempSync(path.join(tmpdir(), 'sweeper-records-')), 'launches');
  afterAll(() => rmSync(path.dirname(root), { recursive: true, force: true }));

  it('keeps one private JSON file per sweep and launcher, read back as written', () => {
    expect(readRecord(root, 'sw1', 'slurm')).toBeUndefined();
    writeRecord(root, 'sw1', 'slurm', { launches: [{ jobId: '7' }] });
    writeRecord(root, 'sw1', 'ssh', { agents: [] });
    expect(readRecord(root, 'sw1', 'slurm')).toEqual({ launches: [{ jobId: '7' }] });
    expect(readRecord(root, 'sw1', 'ssh')).toEqual({ agents: [] });
    writeRecord(root, 'sw1', 'slurm', { launches: [] });
    expect(readRecord(root, 'sw1', 'slurm')).toEqual({ launches: [] });
    expect(recordsDir(root, 'sw1')).toBe(path.join(root, 'sw1'));
    expect(statSync(root).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(root, 'sw1')).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(root, 'sw1', 'slurm.json')).mode & 0o777).toBe(0o600);
  });

  it('refuses a sweep id or launcher name that could name a path outside it', () => {
    expect(() => writeRecord(root, '../up', 'slurm', {})).toThrow(UsageError);
    expect(() => readRecord(root, 'sw1', '../slurm')).toThrow(UsageError);
    expect(() => recordsDir(root, 'a/b')).toThrow(UsageError);
  });
});
