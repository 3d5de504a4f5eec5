/**
 * `sweeper launch slurm|ssh|status|cancel`: start agents for a sweep on a Slurm cluster (a job
 * array) or on a list of hosts (over ssh), and later see and stop what was started. What was
 * started is kept in the launch records (cli/launch/records.ts), one folder per sweep.
 */
import path from 'node:path';
import { type Command, Option } from 'commander';
import { DEFAULT_SIGNAL, hasSlurmRecord, launchSlurm, slurmCancel, slurmScript, slurmStatus, type SlurmScriptOptions } from '../launch/slurm.js';
import { collect, collectWith, sbatchLine, slurmMemory, slurmName, slurmSignal, slurmTime } from '../launch/slurm-flags.js';
import { requireReachableController } from '../launch/controller-address.js';
import { DEFAULT_RECORDS_ROOT, readRecord, recordsPath } from '../launch/records.js';
import { shellQuote } from '../launch/shell-quote.js';
import { sweeperCommand } from '../launch/sweeper-command.js';
import { launchSsh, sshCancel, sshStatus } from '../launch/ssh.js';
import { addClientOptions, clientFrom, type ClientOptions } from '../client-options.js';
import { durationOption, positiveInt } from '../flags.js';
import { formatDuration } from '../../domain/durations.js';
import { createLogger } from '../../common/log.js';
import { UsageError } from '../../domain/errors.js';

/** `sweeper launch slurm`'s flags as commander parsed them; those the script takes as they are, by its own types. */
export interface LaunchSlurmOptions
  extends ClientOptions,
    Pick<SlurmScriptOptions, 'jobs' | 'concurrent' | 'gpusPerJob' | 'time' | 'partition' | 'account' | 'qos' | 'mem' | 'cpusPerGpu'> {
  sbatch?: string[];
  setup?: string[];
  output?: string;
  /** False with --no-signal. */
  signal: string | false;
  requeue?: boolean;
  chdir?: string;
  checkpointDir?: string;
  /** --preempt-grace, in ms. */
  preemptGrace?: number;
  bundle?: string;
  sweeper?: string;
  records: string;
  allowLoopback?: boolean;
  dryRun?: boolean;
}

export interface LaunchSshCommandOptions extends ClientOptions {
  workdir?: string;
  gpus?: string;
  parallel?: number;
  bundle?: string;
  sweeper?: string;
  sshOption?: string[];
  records: string;
}

const SSH_RECORD = 'ssh';
const OVER = ['finished', 'stopped', 'cancelled'];

const recordsOption = () =>
  new Option('--records <dir>', 'folder of the launch records (what was started, for status and cancel), one subfolder per sweep').default(DEFAULT_RECORDS_ROOT);

export function addLaunchCommands(program: Command): void {
  const launch = program
    .command('launch')
    .description('start agents for a sweep on a Slurm cluster or on a list of hosts, and see or cancel what was started');

  addClientOptions(
    launch
      .command('slurm')
      .description('submit a Slurm job array of agents (one agent per task, using every GPU Slurm gives it); exits once sbatch has it')
      .argument('<sweep_id>', 'the sweep the agents work on'),
  )
    .option('--jobs <n>', 'array size: this many tasks, one agent each', positiveInt, 1)
    .option('--concurrent <k>', 'at most this many tasks at once (the array throttle %K)', positiveInt)
    .option('--gpus-per-job <g>', 'GPUs per task (--gres=gpu:G); the agent runs a trial on each', positiveInt)
    .option('--time <limit>', "each task's time limit, in Slurm's form (MINUTES, HH:MM:SS, D-HH:MM)", slurmTime)
    .option('--partition <name>', 'Slurm partition', slurmName)
    .option('--account <name>', 'Slurm account', slurmName)
    .option('--qos <name>', 'Slurm QOS', slurmName)
    .option('--mem <size>', 'memory per task (16G, 4000M)', slurmMemory)
    .option('--cpus-per-gpu <n>', 'CPUs per GPU (with --gpus-per-job)', positiveInt)
    .option('--sbatch <line>', "an extra '#SBATCH' line, such as '--constraint=a100' (repeatable)", collectWith(sbatchLine))
    .option('--setup <line>', "a shell line run before the agent, such as 'module load cuda' or 'source venv/bin/activate' (repeatable, written as given)", collect)
    .option('--output <pattern>', "Slurm's output file of each task (default: <records>/<sweep>/slurm-%A_%a.out)")
    .option('--signal <spec>', 'the warning Slurm sends the agent before the time limit or on preemption: it stops taking trials and lets the running ones checkpoint', slurmSignal, DEFAULT_SIGNAL)
    .option('--no-signal', 'ask Slurm for no warning signal')
    .option('--requeue', 'let Slurm requeue a task that was preempted or whose node failed')
    .option('--checkpoint-dir <dir>', "the agents' --checkpoint-dir: root of the trials' checkpoint folders, on storage every node sees (default: <chdir>/.sweeper/checkpoints)")
    .addOption(durationOption('preempt-grace', "the agents' --preempt-grace: after the warning signal, time a trial gets to checkpoint before SIGTERM"))
    .option('--chdir <dir>', 'working directory of the agents and their trials, on the compute nodes (default: this one)')
    .option('--bundle <dir>', "run agents from an unpacked 'sweeper bundle' at this shared path (DIR/sweeper), for nodes without Node.js")
    .option('--sweeper <path>', 'the sweeper command on the compute nodes (default: this node and this installation, by absolute path)')
    .addOption(recordsOption())
    .option('--allow-loopback', 'accept a loopback --controller (the jobs run on this very machine, as on a one-node test cluster)')
    .option('--dry-run', 'print the sbatch script and submit nothing (needs no controller)')
    .action(async (sweepId: string, o: LaunchSlurmOptions) => runLaunchSlurm(sweepId, o));

  addClientOptions(
    launch
      .command('ssh')
      .description('start one agent per host over your own ssh (a host listed twice gets two); the agents outlive the session')
      .argument('<hosts>', 'HOST[,HOST...]: ssh destinations (host, user@host, an ssh config alias, ssh://host:port)')
      .argument('<sweep_id>', 'the sweep the agents work on'),
  )
    .option('--workdir <dir>', 'folder on each host the agent and its trials run in (default: the path of this one)')
    .option('--gpus <spec>', 'sweeper agent --gpus on each host: all, a count, or indices such as 0,2')
    .option('--parallel <n>', 'sweeper agent --parallel on each host (hosts without GPUs)', positiveInt)
    .option('--bundle <dir>', "run agents from an unpacked 'sweeper bundle' at this path on the hosts (DIR/sweeper)")
    .option('--sweeper <cmd>', 'the sweeper command on the hosts (default: sweeper on their PATH)')
    .option('--ssh-option <arg>', 'one extra argument for ssh, such as -oPort=2222 or -Jjumphost (repeatable)', collect)
    .addOption(recordsOption())
    .action(async (hosts: string, sweepId: string, o: LaunchSshCommandOptions) => runLaunchSsh(hosts, sweepId, o));

  launch
    .command('status')
    .description('what was launched for a sweep: each Slurm task as squeue shows it, each ssh agent and its last log lines')
    .argument('<sweep_id>', 'the sweep')
    .addOption(recordsOption())
    .action(async (sweepId: string, o: { records: string }) => runLaunchStatus(sweepId, o));

  launch
    .command('cancel')
    .description('stop what was launched for a sweep: scancel its job arrays, stop its ssh agents')
    .argument('<sweep_id>', 'the sweep')
    .addOption(recordsOption())
    .action(async (sweepId: string, o: { records: string }) => runLaunchCancel(sweepId, o));
}

/** The script options of `sweeper launch slurm` (paths absolute, defaults filled in), checked. */
export function slurmScriptOptions(sweepId: string, o: LaunchSlurmOptions, cwd = process.cwd()): SlurmScriptOptions {
  if (o.cpusPerGpu !== undefined && o.gpusPerJob === undefined) throw new UsageError('--cpus-per-gpu needs --gpus-per-job: it counts CPUs per GPU of a task');
  const chdir = path.resolve(cwd, o.chdir ?? '.');
  return {
    sweepId,
    jobs: o.jobs,
    concurrent: o.concurrent,
    gpusPerJob: o.gpusPerJob,
    time: o.time,
    partition: o.partition,
    account: o.account,
    qos: o.qos,
    mem: o.mem,
    cpusPerGpu: o.cpusPerGpu,
    sbatch: o.sbatch ?? [],
    setup: o.setup ?? [],
    output: o.output ?? path.join(recordsPath(path.resolve(cwd, o.records), sweepId), 'slurm-%A_%a.out'),
    signal: o.signal === false ? undefined : o.signal,
    requeue: Boolean(o.requeue),
    chdir,
    sweeper: sweeperCommand(o, cwd),
    // A CA file travels as SWEEPER_TLS_CA, which turns TLS on by itself; plain --tls has no variable.
    agentArgs: [
      ...(o.tls && !o.tlsCa ? ['--tls'] : []),
      // Checkpoints must outlive the task: a preempted trial continues in another task, maybe on another node.
      ...(o.checkpointDir ? ['--checkpoint-dir', path.resolve(cwd, o.checkpointDir)] : []),
      ...(o.preemptGrace !== undefined ? ['--preempt-grace', formatDuration(o.preemptGrace)] : []),
    ],
  };
}

/**
 * The environment sbatch runs with, which every task inherits (--export=ALL): this one, with the
 * controller's address, token and CA as the agent reads them. A token or CA not given here is
 * removed, so none left in the environment from elsewhere reaches the jobs unasked; so is a
 * stable agent id (SWEEPER_AGENT_ID), which the tasks' agents would otherwise all share.
 */
export function jobEnvironment(o: ClientOptions, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, SWEEPER_CONTROLLER: o.controller };
  delete env.SWEEPER_AGENT_ID;
  if (o.token) env.SWEEPER_TOKEN = o.token;
  else delete env.SWEEPER_TOKEN;
  if (o.tlsCa) env.SWEEPER_TLS_CA = path.resolve(o.tlsCa);
  else delete env.SWEEPER_TLS_CA;
  return env;
}

export async function runLaunchSlurm(sweepId: string, o: LaunchSlurmOptions): Promise<void> {
  const log = createLogger('launch');
  requireReachableController(o.controller, { allowLoopback: o.allowLoopback, where: 'Slurm compute nodes' });
  const script = slurmScriptOptions(sweepId, o);
  if (script.signal !== undefined && !/^(B|RB|BR):/.test(script.signal)) {
    log.warn(`--signal ${script.signal} has no 'B:': Slurm sends it to job steps only, not to the batch shell, which is the agent; the agent will not see it`);
  }
  if (o.dryRun) {
    process.stdout.write(slurmScript(script));
    return;
  }
  await requireLiveSweep(sweepId, o);
  const launch = await launchSlurm(o.records, script, jobEnvironment(o));
  const throttle = o.concurrent ? `, at most ${o.concurrent} at once` : '';
  process.stdout.write(
    `Submitted job array ${launch.jobId} (tasks ${launch.array.replace(/%.*/, '')}${throttle}) for sweep ${sweepId}\n` +
      `Script:  ${launch.script}\nOutput:  ${launch.output}\n` +
      `See it with:     sweeper launch status ${sweepId}${recordsHint(o.records)}\n` +
      `Cancel it with:  sweeper launch cancel ${sweepId}${recordsHint(o.records)}\n`,
  );
}

export async function runLaunchSsh(hosts: string, sweepId: string, o: LaunchSshCommandOptions): Promise<void> {
  const log = createLogger('launch');
  await requireLiveSweep(sweepId, o);
  await launchSsh({
    hosts: [hosts],
    sweepId,
    records: o.records,
    workdir: o.workdir,
    gpus: o.gpus,
    parallel: o.parallel,
    bundle: o.bundle,
    sweeper: o.sweeper,
    controller: o.controller,
    token: o.token,
    sshOptions: o.sshOption ?? [],
    log: (line) => log.info(line),
  });
  process.stdout.write(`See them with:    sweeper launch status ${sweepId}${recordsHint(o.records)}\nCancel them with: sweeper launch cancel ${sweepId}${recordsHint(o.records)}\n`);
}

export async function runLaunchStatus(sweepId: string, o: { records: string }): Promise<void> {
  const lines = [...(await slurmStatus(o.records, sweepId)), ...(hasSshRecord(o.records, sweepId) ? await sshStatus(o.records, sweepId) : [])];
  if (lines.length === 0) throw nothingLaunched(sweepId, o.records);
  process.stdout.write(lines.join('\n') + '\n');
}

export async function runLaunchCancel(sweepId: string, o: { records: string }): Promise<void> {
  const slurm = hasSlurmRecord(o.records, sweepId);
  const ssh = hasSshRecord(o.records, sweepId);
  if (!slurm && !ssh) throw nothingLaunched(sweepId, o.records);
  const lines = [...(slurm ? await slurmCancel(o.records, sweepId) : []), ...(ssh ? await sshCancel(o.records, sweepId) : [])];
  process.stdout.write(lines.join('\n') + '\n');
}

const hasSshRecord = (records: string, sweepId: string) => readRecord(records, sweepId, SSH_RECORD) !== undefined;

const recordsHint = (records: string) => (records === DEFAULT_RECORDS_ROOT ? '' : ` --records ${shellQuote(records)}`);

const nothingLaunched = (sweepId: string, records: string) =>
  new UsageError(`nothing was launched for sweep ${sweepId}: no launch records in ${recordsPath(records, sweepId)} (see --records)`);

/** The sweep exists and is not over, or a UsageError / the controller's NOT_FOUND (exit 2): agents for it would have nothing to do. */
async function requireLiveSweep(sweepId: string, o: ClientOptions): Promise<void> {
  const client = clientFrom(o);
  try {
    const { sweep } = await client.getSweep(sweepId, 1);
    if (OVER.includes(sweep.state)) throw new UsageError(`sweep ${sweepId} is ${sweep.state}: agents would have nothing to do`);
  } finally {
    client.close();
  }
}
