/**
 * `sweeper launch ssh HOST[,HOST...] SWEEP_ID` and its `status` and `cancel`: one agent per host
 * (a host listed twice gets two), started over the user's own ssh in a working directory on the
 * host, detached so that it outlives the session, and remembered (host, pid, start time, boot id,
 * log) in the launch records so that status and cancel find that very process again and never a
 * process that reused its pid. What runs on the host is in ssh-remote.ts; how ssh is run, in
 * ssh-exec.ts; which hosts and controller addresses make sense, in ssh-hosts.ts.
 */
import { isValidId, ID_RULE } from '../../domain/ids.js';
import { SweeperError, UsageError } from '../../domain/errors.js';
import { conflictingFlags } from '../flags.js';
import { readRecord, writeRecord } from './records.js';
import { runSsh, SSH_FAILED, stderrTail, type SshResult } from './ssh-exec.js';
import { checkControllerReachable, parseHosts } from './ssh-hosts.js';
import {
  cancelCommand,
  CANCEL_WAIT_S,
  EXIT_USAGE,
  parseCancel,
  parseStarted,
  parseStatus,
  startCommand,
  startInput,
  statusCommand,
  type RemoteProcess,
} from './ssh-remote.js';

export interface LaunchSshOptions {
  /** ssh destinations (`host`, `user@host`, an ssh config alias, `ssh://[user@]host[:port]`); an item may hold several, comma-separated. */
  hosts: string[];
  sweepId: string;
  /** Root folder of the launch records (records.ts). */
  records: string;
  /** Folder on each host the agent runs in (default: this process's working directory, the same path there). */
  workdir?: string;
  /** `sweeper agent --gpus` on each host. */
  gpus?: string;
  /** `sweeper agent --parallel` on each host. */
  parallel?: number;
  /** A folder on the hosts holding an unpacked `sweeper bundle` (its launcher DIR/sweeper), for hosts without Node.js. */
  bundle?: string;
  /** The command that runs Sweeper on the hosts (default: `sweeper` on their PATH). */
  sweeper?: string;
  /** The controller's address as the hosts reach it. */
  controller: string;
  token?: string;
  /** Extra arguments for ssh, before the destination (`-o Port=2222`, `-i KEY`, `-J JUMP`). */
  sshOptions?: string[];
  log: (line: string) => void;
}

/** One agent `launch ssh` started. */
export interface SshAgentRecord extends RemoteProcess {
  /** Numbers the agents of a sweep across launches: its log is agent-<index>.log. */
  index: number;
  host: string;
  /** The ssh arguments it was started with, so status and cancel reach the host the same way. */
  sshOptions: string[];
  workdir: string;
  /** Absolute path of its log on the host. */
  log: string;
  /** When it was started (ISO 8601, this machine's clock). */
  startedAt: string;
}

/** The `ssh` record of a sweep: every agent any `launch ssh` of it started, oldest first. */
export interface SshLaunchRecord {
  agents: SshAgentRecord[];
}

const KIND = 'ssh';
/** Lines of each agent's log `status` shows. */
const STATUS_LOG_LINES = 5;

/** Some agents could not be started, for reasons other than what the user gave (ssh failed, the host lacks setsid). */
export class SshLaunchError extends SweeperError {}

interface Failure {
  host: string;
  usage: boolean;
  reason: string;
}

/** Starts one agent per host; resolves once every ssh session has ended, the agents running on. */
export async function launchSsh(opts: LaunchSshOptions): Promise<void> {
  const hosts = parseHosts(opts.hosts);
  checkLaunchOptions(opts);
  checkControllerReachable(opts.controller, hosts);
  const sweeper = opts.bundle !== undefined ? `${opts.bundle.replace(/\/+$/, '')}/sweeper` : (opts.sweeper ?? 'sweeper');
  const workdir = opts.workdir ?? process.cwd();
  const sshOptions = opts.sshOptions ?? [];
  const input = startInput(opts.controller, opts.token);
  const previous = readRecord<SshLaunchRecord>(opts.records, opts.sweepId, KIND)?.agents ?? [];
  const firstIndex = previous.reduce((max, a) => Math.max(max, a.index + 1), 0);

  const outcomes = await Promise.all(
    hosts.map(async (host, i): Promise<SshAgentRecord | Failure> => {
      const index = firstIndex + i;
      const command = startCommand({ sweepId: opts.sweepId, workdir, sweeper, index, gpus: opts.gpus, parallel: opts.parallel });
      const result = await runSsh(host, command, { sshOptions, stdin: input });
      const started = result.code === 0 ? parseStarted(result.stdout) : undefined;
      if (!started) return failure(host, result);
      opts.log(`started agent ${index} on ${host}: pid ${started.pid}, log ${started.log}`);
      return { index, host, sshOptions, workdir, ...started, startedAt: new Date().toISOString() };
    }),
  );
  const agents = outcomes.filter((o): o is SshAgentRecord => 'pid' in o);
  // Recorded before any error is raised: what did start must stay reachable by status and cancel.
  if (agents.length > 0) writeRecord(opts.records, opts.sweepId, KIND, { agents: [...previous, ...agents] } satisfies SshLaunchRecord);
  const failures = outcomes.filter((o): o is Failure => !('pid' in o));
  if (failures.length === 0) return;
  const message = `could not start ${failures.length} of ${hosts.length} agents:\n${failures.map((f) => `  ${f.host}: ${f.reason}`).join('\n')}`;
  throw failures.every((f) => f.usage) ? new UsageError(message) : new SshLaunchError(message);
}

function checkLaunchOptions(opts: LaunchSshOptions): void {
  if (!isValidId(opts.sweepId)) throw new UsageError(`sweep id '${opts.sweepId}' is not valid (${ID_RULE})`);
  if (opts.parallel !== undefined && !(Number.isInteger(opts.parallel) && opts.parallel >= 1)) throw new UsageError('--parallel: expected a positive integer');
  if (opts.gpus !== undefined && opts.parallel !== undefined && opts.parallel > 1) {
    throw conflictingFlags('--parallel', '--gpus', 'it is for hosts without GPUs; with --gpus each GPU runs a trial');
  }
  if (opts.bundle !== undefined && opts.sweeper !== undefined) throw conflictingFlags('--bundle', '--sweeper', 'the bundle brings its own launcher, DIR/sweeper');
}

function failure(host: string, result: SshResult): Failure {
  if (result.code === SSH_FAILED) return { host, usage: false, reason: `ssh failed: ${stderrTail(result)}` };
  if (result.code === EXIT_USAGE) return { host, usage: true, reason: stderrTail(result) };
  if (result.code === 0) return { host, usage: false, reason: `the start script reported no agent: ${stderrTail(result)}` };
  return { host, usage: false, reason: stderrTail(result) };
}

const label = (a: SshAgentRecord) => `agent ${a.index} on ${a.host}`;

function recordedAgents(records: string, sweepId: string): SshAgentRecord[] {
  return readRecord<SshLaunchRecord>(records, sweepId, KIND)?.agents ?? [];
}

/**
 * For each agent launched over ssh for the sweep: whether it still runs (the pid, with the same
 * start time and boot) and the last lines of its log. No lines when nothing was launched over ssh.
 */
export async function sshStatus(records: string, sweepId: string): Promise<string[]> {
  const agents = recordedAgents(records, sweepId);
  const reports = await Promise.all(
    agents.map(async (a) => {
      const result = await runSsh(a.host, statusCommand(a, a.log, STATUS_LOG_LINES), { sshOptions: a.sshOptions });
      const status = result.code === 0 ? parseStatus(result.stdout) : undefined;
      if (!status) return [`${label(a)}: unknown, ssh failed: ${stderrTail(result, 1)}`];
      const head = status.running ? `${label(a)}: running (pid ${a.pid}, started ${a.startedAt})` : `${label(a)}: not running (was pid ${a.pid}, started ${a.startedAt})`;
      return [head, `  log ${a.log}:`, ...status.logLines.map((l) => `    ${l}`)];
    }),
  );
  return reports.flat();
}

/**
 * Sends SIGTERM to each agent launched over ssh for the sweep that still runs (it stops its
 * trials, which end `stopped`, and exits) and waits for it; a second cancel forces one that is
 * still stopping. No lines when nothing was launched over ssh.
 */
export async function sshCancel(records: string, sweepId: string): Promise<string[]> {
  const agents = recordedAgents(records, sweepId);
  return Promise.all(
    agents.map(async (a) => {
      const result = await runSsh(a.host, cancelCommand(a), { sshOptions: a.sshOptions });
      switch (result.code === 0 ? parseCancel(result.stdout) : undefined) {
        case 'gone':
          return `${label(a)}: not running (pid ${a.pid})`;
        case 'stopped':
          return `${label(a)}: stopped (SIGTERM to pid ${a.pid}; it stopped its trials and exited)`;
        case 'stopping':
          return `${label(a)}: still stopping ${CANCEL_WAIT_S} s after SIGTERM (pid ${a.pid}); cancel again to kill its trials at once`;
        default:
          return `${label(a)}: not cancelled, ssh failed: ${stderrTail(result, 1)}`;
      }
    }),
  );
}
