/**
 * The commands `sweeper launch ssh`, `status` and `cancel` run on a host, and how their answers
 * read. Each is a small POSIX sh script handed to the host as `sh -c SCRIPT` (so the user's login
 * shell, whatever it is, only has to read one quoted word); every value in it is set once at its
 * top through `shellQuote` and used only as "$name" afterwards.
 *
 * The agent must outlive the ssh session and must not hold it open: it is started with `setsid`
 * (a session of its own, no terminal, so no hangup reaches it) with stdin from /dev/null and its
 * output appended to a log file, and the script prints its pid and start time (field 22 of
 * /proc/<pid>/stat) and the host's boot id, which together name that one process for the life
 * of the host: status and cancel touch the pid only while all three still match.
 *
 * The controller address and token never appear in a command line on either machine: ssh sends
 * them on the session's stdin, the script reads them with `read` into SWEEPER_CONTROLLER and
 * SWEEPER_TOKEN (the variables `sweeper agent` reads) and exports them, so only the agent's
 * environment holds them.
 */
import { UsageError } from '../../domain/errors.js';
import { shellQuote } from './shell-quote.js';

/** Where on the host, under the working directory, an agent's log goes. */
export const REMOTE_LOG_DIR = '.sweeper/launch';

/** The exit status a script ends with when what the user gave does not fit the host (no such folder, no sweeper): a UsageError here. */
export const EXIT_USAGE = 3;
/** The exit status of a script that could not do its job for another reason (no setsid, no /proc). */
export const EXIT_FAILED = 4;

/** What every answer line of ours begins with, to tell it from whatever a login script prints. */
const MARK = 'sweeper-launch:';

/** How long `cancel` waits, on the host, for a signalled agent to stop its trials and exit. */
export const CANCEL_WAIT_S = 30;

export interface StartOptions {
  sweepId: string;
  /** Folder on the host the agent runs in. */
  workdir: string;
  /** The command that runs Sweeper on the host. */
  sweeper: string;
  /** Numbers this agent's log file: agent-<index>.log. */
  index: number;
  gpus?: string;
  parallel?: number;
}

/** One agent as the start script reported it. */
export interface StartedAgent {
  pid: number;
  startTime: string;
  bootId: string;
  /** Absolute path of its log on the host. */
  log: string;
}

/** Names one process on one host: what status and cancel check before they look or signal. */
export interface RemoteProcess {
  pid: number;
  startTime: string;
  bootId: string;
}

/** A value that goes into a script on a line of its own, or is read back line by line: one line, no NUL. */
function oneLine(what: string, value: string): string {
  if (/[\n\r\0]/.test(value)) throw new UsageError(`${what} ${JSON.stringify(value)} has a line break or NUL`);
  return value;
}

/** `sh -c SCRIPT` as one argument for ssh, which hands it to the login shell on the host. */
function shCommand(lines: readonly string[]): string {
  return `sh -c ${shellQuote(lines.join('\n'))}`;
}

/** Succeeds while $pid is still the process $start and $boot name (not a zombie): sets nothing but $stat. */
const ALIVE_FUNCTION =
  'alive() { [ "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" = "$boot" ] && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1; ' +
  'set -f; set -- ${stat##*") "}; set +f; case $1 in Z|X) return 1;; esac; shift 19; [ "$1" = "$start" ]; }';

const FAIL_FUNCTION = `fail() { echo "sweeper launch: $(uname -n): $2" >&2; exit "$1"; }`;

/** The argv of `sweeper agent` for these options. */
export function agentArgs(o: Pick<StartOptions, 'sweepId' | 'gpus' | 'parallel'>): string[] {
  const args = ['agent', o.sweepId];
  if (o.gpus !== undefined) args.push('--gpus', o.gpus);
  if (o.parallel !== undefined) args.push('--parallel', String(o.parallel));
  return args;
}

/** The log file of agent `index`, relative to the working directory. */
export function logPathFor(sweepId: string, index: number): string {
  return `${REMOTE_LOG_DIR}/${sweepId}/agent-${index}.log`;
}

/**
 * Starts one detached agent; reads the controller address, then the token (an empty line: none),
 * from stdin; prints `sweeper-launch: started pid=P start=S boot=B log=PATH`.
 */
export function startCommand(o: StartOptions): string {
  const log = logPathFor(o.sweepId, o.index);
  return shCommand([
    'set +m',
    FAIL_FUNCTION,
    `workdir=${shellQuote(oneLine('--workdir', o.workdir))}`,
    `sweeper=${shellQuote(oneLine('the sweeper command', o.sweeper))}`,
    `log=${shellQuote(log)}`,
    `set -- ${agentArgs(o).map(shellQuote).join(' ')}`,
    `cd "$workdir" 2>/dev/null || fail ${EXIT_USAGE} "no folder $workdir to run the agent in (--workdir)"`,
    `command -v "$sweeper" >/dev/null 2>&1 || fail ${EXIT_USAGE} "no $sweeper command (put sweeper on the PATH there, or give --sweeper PATH or --bundle DIR)"`,
    `command -v setsid >/dev/null 2>&1 || fail ${EXIT_FAILED} "no setsid (util-linux): cannot start an agent that outlives the ssh session"`,
    `IFS= read -r SWEEPER_CONTROLLER && IFS= read -r SWEEPER_TOKEN || fail ${EXIT_FAILED} "the controller address and token did not arrive on stdin"`,
    'export SWEEPER_CONTROLLER',
    'if [ -n "$SWEEPER_TOKEN" ]; then export SWEEPER_TOKEN; else unset SWEEPER_TOKEN; fi',
    `mkdir -p "\${log%/*}" && chmod 700 "\${log%/*}" || fail ${EXIT_FAILED} "cannot create $PWD/\${log%/*}"`,
    'setsid "$sweeper" "$@" </dev/null >>"$log" 2>&1 &',
    'pid=$!',
    `stat=$(cat "/proc/$pid/stat" 2>/dev/null) || fail ${EXIT_FAILED} "the agent exited at once: see $PWD/$log"`,
    'boot=$(cat /proc/sys/kernel/random/boot_id)',
    'set -f; set -- ${stat##*") "}; set +f; shift 19',
    `echo "${MARK} started pid=$pid start=$1 boot=$boot log=$PWD/$log"`,
  ]);
}

/** What `startCommand` reads on stdin: the controller's address, then the token. */
export function startInput(controller: string, token: string | undefined): string {
  return `${oneLine('--controller', controller)}\n${oneLine('the token', token ?? '')}\n`;
}

const STARTED = new RegExp(`^${MARK} started pid=(\\d+) start=(\\d+) boot=(\\S+) log=(.+)$`, 'm');

/** The agent `startCommand` reported, or undefined when its output has no such line. */
export function parseStarted(stdout: string): StartedAgent | undefined {
  const m = STARTED.exec(stdout);
  if (!m) return undefined;
  return { pid: Number(m[1]), startTime: m[2], bootId: m[3], log: m[4] };
}

function processLines(p: RemoteProcess): string[] {
  return [`pid=${shellQuote(String(p.pid))}`, `start=${shellQuote(p.startTime)}`, `boot=${shellQuote(p.bootId)}`, ALIVE_FUNCTION];
}

/** Prints `sweeper-launch: running` or `sweeper-launch: gone`, then the last `lines` lines of the log. */
export function statusCommand(p: RemoteProcess, log: string, lines: number): string {
  return shCommand([
    ...processLines(p),
    `log=${shellQuote(oneLine('the log path', log))}`,
    `if alive; then echo "${MARK} running"; else echo "${MARK} gone"; fi`,
    `tail -n ${shellQuote(String(lines))} "$log" 2>/dev/null || echo "(no log at $log)"`,
  ]);
}

/** What `statusCommand` printed: whether the agent runs, and the log's last lines. */
export function parseStatus(stdout: string): { running: boolean; logLines: string[] } | undefined {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l === `${MARK} running` || l === `${MARK} gone`);
  if (at === -1) return undefined;
  const logLines = lines.slice(at + 1);
  if (logLines.at(-1) === '') logLines.pop();
  return { running: lines[at] === `${MARK} running`, logLines };
}

/**
 * Sends SIGTERM to the agent if it is still that process, then waits up to CANCEL_WAIT_S for it to
 * stop its trials and exit; prints `sweeper-launch: gone` (it was not running), `stopped`, or
 * `stopping` (still at it: a second cancel forces it).
 */
export function cancelCommand(p: RemoteProcess): string {
  return shCommand([
    ...processLines(p),
    `alive || { echo "${MARK} gone"; exit 0; }`,
    `kill -TERM "$pid" 2>/dev/null || { echo "${MARK} gone"; exit 0; }`,
    'n=0',
    `while alive && [ "$n" -lt ${CANCEL_WAIT_S * 5} ]; do sleep 0.2 2>/dev/null || sleep 1; n=$((n + 1)); done`,
    `if alive; then echo "${MARK} stopping"; else echo "${MARK} stopped"; fi`,
  ]);
}

export type CancelOutcome = 'gone' | 'stopped' | 'stopping';

export function parseCancel(stdout: string): CancelOutcome | undefined {
  const m = new RegExp(`^${MARK} (gone|stopped|stopping)$`, 'm').exec(stdout);
  return m ? (m[1] as CancelOutcome) : undefined;
}
