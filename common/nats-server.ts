/**
 * Finding, installing and running a local nats-server (Debian's package, 2.9 or later).
 *
 * `sweeper server`, `sweeper local`, the benchmarks and the integration tests all start their
 * server through `startNatsServer`, so there is one place that knows the flags, waits for
 * readiness and stops the process.
 *
 * The server's life is tied to its owner's, twice over. It runs under a guardian
 * (nats-guardian.mjs) that stops it when the owner dies, even by SIGKILL. And with `pidFile` the
 * server is recorded in its store (`nats-server.pid`), so that when the guardian died as well
 * (`kill -9` of the whole group, the OOM killer) the next start stops the server left behind
 * instead of failing on its port; it stops it only when it can prove the process is that server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AddressInUseError, MissingDependencyError, SweeperError } from '../domain/errors.js';
import { silentLogger, type Logger } from './log.js';
import { connectHostFor } from './net.js';
import { commandLine, describeProcess, isRunning, readRecord, removeRecord, terminateProcess, writeRecord, type ProcessRecord } from './pid-file.js';
import { sourceScript } from './source-script.js';

const BINARY = 'nats-server';
const EXTRA_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/bin'];

export const NATS_INSTALL_HINT =
  'install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu), ' +
  'or set SWEEPER_NATS_SERVER to the path of a nats-server binary';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The nats-server binary to run, or null. `SWEEPER_NATS_SERVER` wins; then PATH; then the sbin
 * and local dirs, because Debian installs to /usr/sbin, which a non-root PATH often lacks.
 */
export function findNatsServer(): string | null {
  const override = process.env.SWEEPER_NATS_SERVER;
  if (override) return isExecutable(override) ? override : null;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, ...EXTRA_DIRS]) {
    const candidate = path.join(dir, BINARY);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function run(cmd: string, args: string[], log: Logger): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      // Only the tail is ever shown, so do not let a chatty apt grow this without bound.
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => resolve({ code: -1, output: String(err) }));
    child.on('close', (code) => {
      log.debug('command finished', { cmd: [cmd, ...args].join(' '), code });
      resolve({ code: code ?? -1, output });
    });
  });
}

/** The command prefix that gets root: none when we are root, `sudo -n` when it needs no password. */
async function rootPrefix(log: Logger): Promise<string[] | null> {
  if (process.getuid?.() === 0) return [];
  const probe = await run('sudo', ['-n', 'true'], log);
  return probe.code === 0 ? ['sudo', '-n'] : null;
}

export interface EnsureNatsServerOptions {
  /** Allow installing Debian's package when the binary is missing. */
  install: boolean;
  log?: Logger;
}

/** The path of a nats-server binary, installing Debian's package first when allowed and possible. */
export async function ensureNatsServer(opts: EnsureNatsServerOptions): Promise<string> {
  const log = opts.log ?? silentLogger;
  const found = findNatsServer();
  if (found) return found;
  if (process.env.SWEEPER_NATS_SERVER) {
    throw new MissingDependencyError(
      `SWEEPER_NATS_SERVER is set to '${process.env.SWEEPER_NATS_SERVER}', which is not an executable file`,
    );
  }
  if (!opts.install) throw new MissingDependencyError(`nats-server not found: ${NATS_INSTALL_HINT}`);
  const prefix = await rootPrefix(log);
  if (!prefix) {
    throw new MissingDependencyError(
      `nats-server not found and installing it needs root: ${NATS_INSTALL_HINT}`,
    );
  }
  const apt = (args: string[]) => {
    const [cmd, ...rest] = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args];
    return run(cmd, rest, log);
  };
  log.info('installing nats-server with apt-get');
  let result = await apt(['install', '-y', '--no-install-recommends', BINARY]);
  if (result.code !== 0) {
    // A fresh image often has no package lists yet; refresh them once and try again.
    log.info('apt-get install failed; running apt-get update and retrying');
    const update = await apt(['update']);
    if (update.code !== 0) log.warn('apt-get update failed', { tail: update.output.slice(-500) });
    result = await apt(['install', '-y', '--no-install-recommends', BINARY]);
  }
  const installed = findNatsServer();
  if (result.code !== 0 || !installed) {
    throw new MissingDependencyError(
      `could not install nats-server with apt-get (exit ${result.code}): ${result.output.slice(-500).trim()}\n` +
        NATS_INSTALL_HINT,
    );
  }
  log.info('installed nats-server', { path: installed });
  return installed;
}

export class NatsServerStartError extends SweeperError {}

export interface StartNatsServerOptions {
  /** JetStream data goes to `storeDir/jetstream`; the log and ports file live here too. */
  storeDir: string;
  host?: string;
  /** -1 (the default) lets the server pick a free port. */
  port?: number;
  jetstream?: boolean;
  user?: string;
  password?: string;
  token?: string;
  /**
   * Config text that makes the server trust an operator (decentralized JWT auth: operator,
   * resolver and preloaded accounts, from controller/nats-auth.ts). Replaces user/password/token.
   */
  operatorConfig?: string;
  /** The server's max_payload; its default is 1 MiB. */
  maxPayloadBytes?: number;
  /** Defaults to `findNatsServer()`. */
  binary?: string;
  startTimeoutMs?: number;
  /**
   * Run the server under its guardian and stop it when this process exits (the default), so it
   * is never orphaned. False: the server is this process's plain child and may outlive it.
   */
  stopOnExit?: boolean;
  /**
   * Record the server in `storeDir/nats-server.pid` while it runs, and before starting stop the
   * server an earlier owner left there. Only for an owner that has the store to itself
   * (`sweeper server` holds its data folder's lock): another live owner's server would be
   * stopped too.
   */
  pidFile?: boolean;
  log?: Logger;
}

/** What `storeDir/nats-server.pid` holds: the server's process, its config file and its guardian. */
export interface NatsPidRecord extends ProcessRecord {
  /** The absolute path of the config file, which is on the server's command line. */
  config: string;
  /** The guardian's pid (for people and tests; the server's record is what proves ownership). */
  guardian?: number;
}

export const NATS_PID_FILE = 'nats-server.pid';
/** Between SIGTERM and SIGKILL when a server is stopped: JetStream flushes its store on SIGTERM. */
const STOP_GRACE_MS = 5000;

/** nats-guardian.mjs is plain JavaScript read from the source tree, also when running from dist/. */
const GUARDIAN: string = sourceScript(import.meta.url, 'common', 'nats-guardian.mjs');

export interface NatsServerHandle {
  /** `nats://host:port`, without credentials. */
  readonly url: string;
  readonly port: number;
  /** nats-server's own pid. */
  readonly pid: number;
  /** The pid of its guardian (nats-guardian.mjs), unless started with `stopOnExit: false`. */
  readonly guardianPid?: number;
  readonly storeDir: string;
  readonly logFile: string;
  /** Settles once the process has exited. */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited after 5 s. */
  stop(): Promise<void>;
  /** SIGKILL at once, as a crash would (chaos tests). */
  kill(): void;
}

const liveServers = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveServers) {
      try {
        child.kill('SIGTERM');
      } catch {
        // Already gone.
      }
    }
  });
}

async function logTail(file: string, bytes = 2000): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '(no log)';
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Credentials go into a 0600 config file, because command-line arguments are readable by every local user. */
function writeConfig(file: string, opts: StartNatsServerOptions): void {
  const lines: string[] = [];
  if (opts.operatorConfig !== undefined) {
    lines.push(opts.operatorConfig);
  } else if (opts.token !== undefined) {
    lines.push(`authorization { token: ${JSON.stringify(opts.token)} }`);
  } else if (opts.user !== undefined) {
    lines.push(`authorization { user: ${JSON.stringify(opts.user)}, password: ${JSON.stringify(opts.password ?? '')} }`);
  }
  if (opts.maxPayloadBytes !== undefined) lines.push(`max_payload: ${Math.floor(opts.maxPayloadBytes)}`);
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
}

/** A server recorded in the pid file that is still there and could not be stopped. */
export class StaleNatsServerError extends SweeperError {}

/**
 * Stop the server an earlier owner of this store left running, if the pid file names one and it
 * provably is that server: the pid is running with the recorded start time (so it was not
 * reused) and its command line names this store's config file. Anything else is left alone and
 * only the stale record is removed.
 */
export async function stopStaleNatsServer(pidFile: string, configFile: string, log: Logger = silentLogger): Promise<'none' | 'gone' | 'not ours' | 'stopped'> {
  const rec = readRecord<NatsPidRecord>(pidFile);
  if (!rec) return 'none';
  const verdict = !isRunning(rec) ? 'gone' : rec.config === configFile && commandLine(rec.pid)?.includes(configFile) ? 'ours' : 'not ours';
  if (verdict === 'ours') {
    log.warn('stopping the nats-server an earlier run left behind', { pid: rec.pid, pidFile });
    try {
      const how = await terminateProcess(rec, STOP_GRACE_MS);
      log.info(`stale nats-server ${how}`, { pid: rec.pid });
    } catch (err) {
      throw new StaleNatsServerError(`the nats-server an earlier run left behind (pid ${rec.pid}, recorded in ${pidFile}) could not be stopped`, { cause: err });
    }
  } else if (verdict === 'not ours') {
    log.warn('the pid file names a process that is not our nats-server (its pid was reused); leaving it alone', { pid: rec.pid, pidFile });
  }
  removeRecord(pidFile, rec);
  // nats-server removes its ports file on a clean exit only.
  rmSync(path.join(path.dirname(pidFile), `nats-server_${rec.pid}.ports`), { force: true });
  return verdict === 'ours' ? 'stopped' : verdict;
}

/**
 * Start nats-server and resolve once it accepts TCP connections. Restarting on the same store and
 * port (`startNatsServer({ storeDir, port: old.port })`) keeps JetStream's data; a port still held
 * by a server that is exiting is retried until the start timeout.
 */
export async function startNatsServer(opts: StartNatsServerOptions): Promise<NatsServerHandle> {
  const log = opts.log ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? -1;
  const binary = opts.binary ?? findNatsServer();
  if (!binary) throw new MissingDependencyError(`nats-server not found: ${NATS_INSTALL_HINT}`);
  const storeDir = path.resolve(opts.storeDir);
  mkdirSync(storeDir, { recursive: true });
  const logFile = path.join(storeDir, 'nats-server.log');
  const configFile = path.join(storeDir, 'nats-server.conf');
  const pidFile = opts.pidFile ? path.join(storeDir, NATS_PID_FILE) : undefined;
  // Before the config is rewritten, and before our own server takes the port.
  if (pidFile) await stopStaleNatsServer(pidFile, configFile, log);
  writeConfig(configFile, opts);

  const args = ['-c', configFile, '-a', host, '-p', String(port), '--ports_file_dir', storeDir];
  if (opts.jetstream ?? true) args.push('-js', '-sd', storeDir);

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  let portBusy = false;
  for (;;) {
    const attempt = await spawnOnce(binary, args, { storeDir, logFile, configFile, pidFile, host, deadline, guarded: opts.stopOnExit ?? true, log });
    if (attempt.handle) return attempt.handle;
    portBusy ||= Boolean(attempt.portBusy);
    // A fixed port can still be held for a moment by the server we just killed.
    if (attempt.portBusy && port > 0 && Date.now() < deadline) {
      await sleep(100);
      continue;
    }
    // The last try may have run out of time rather than into the port again.
    if (portBusy && port > 0) throw new AddressInUseError('nats-server', host, port);
    throw new NatsServerStartError(`${attempt.reason}\n--- ${logFile} (tail) ---\n${await logTail(logFile)}`);
  }
}

interface SpawnContext {
  storeDir: string;
  logFile: string;
  configFile: string;
  pidFile?: string;
  host: string;
  deadline: number;
  /** Run under nats-guardian.mjs, and SIGTERM it when this process exits. */
  guarded: boolean;
  log: Logger;
}

interface Spawned {
  /** The guardian when guarded, else nats-server itself: the process this one signals and waits for. */
  child: ChildProcess;
  /** nats-server's pid; undefined when it did not start. */
  pid?: number;
  /** Why it did not start, when the guardian could tell. */
  error?: string;
}

/** nats-server under its guardian, resolved once the guardian has said whether the server started. */
function spawnGuarded(binary: string, args: string[], logFd: number): Promise<Spawned> {
  // Its own process group: a Ctrl-C in the terminal reaches the owner alone, which then stops the
  // controller before NATS rather than both at once; the guardian covers an owner that dies.
  const child = spawn(process.execPath, [GUARDIAN, String(STOP_GRACE_MS), '--', binary, ...args], {
    stdio: ['pipe', logFd, logFd, 'pipe'],
    detached: true,
  });
  // Never written: it closes when this process dies, which is the guardian's cue.
  child.stdin!.on('error', () => undefined);
  const status = child.stdio[3] as Readable;
  return new Promise((resolve) => {
    let text = '';
    const settle = (s: Spawned) => {
      // One line is all the guardian ever writes; do not keep the pipe open for more.
      status.destroy();
      resolve(s);
    };
    status.on('error', () => undefined);
    status.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      try {
        const ev = JSON.parse(text.slice(0, nl)) as { event: string; pid?: number; message?: string };
        settle(ev.event === 'started' && typeof ev.pid === 'number' ? { child, pid: ev.pid } : { child, error: ev.message ?? 'could not start' });
      } catch {
        settle({ child, error: `the guardian wrote ${JSON.stringify(text.slice(0, nl))}` });
      }
    });
    status.once('close', () => settle({ child, error: 'the guardian exited before it started nats-server' }));
    child.once('error', (err) => settle({ child, error: `could not run ${GUARDIAN}: ${err.message}` }));
  });
}

function spawnPlain(binary: string, args: string[], logFd: number): Spawned {
  const child = spawn(binary, args, { stdio: ['ignore', logFd, logFd] });
  return { child, pid: child.pid };
}

async function spawnOnce(
  binary: string,
  args: string[],
  ctx: SpawnContext,
): Promise<{ handle?: NatsServerHandle; reason?: string; portBusy?: boolean }> {
  const logFd = openSync(ctx.logFile, 'a');
  let spawned: Spawned;
  try {
    spawned = ctx.guarded ? await spawnGuarded(binary, args, logFd) : spawnPlain(binary, args, logFd);
  } finally {
    closeSync(logFd);
  }
  const { child } = spawned;
  const portsFile = path.join(ctx.storeDir, `nats-server_${spawned.pid}.ports`);
  let exitInfo: string | null = null;
  let record: NatsPidRecord | undefined;
  const exited = new Promise<void>((resolve) => {
    const done = (info: string) => {
      exitInfo ??= info;
      liveServers.delete(child);
      // Not when only the guardian died (SIGKILLed alone): the server still runs, and its record
      // is what lets the next start stop it.
      if (ctx.pidFile && record && !isRunning(record)) removeRecord(ctx.pidFile, record);
      // nats-server removes its ports file on a clean exit only.
      if (spawned.pid !== undefined) rmSync(portsFile, { force: true });
      resolve();
    };
    // With the guardian, its exit follows the server's and repeats its code or signal.
    child.once('exit', (code, signal) => done(signal ? `signal ${signal}` : `exit code ${code}`));
    child.once('error', (err) => done(`could not run ${binary}: ${err.message}`));
  });
  if (child.pid === undefined || spawned.pid === undefined) {
    if (child.pid !== undefined) child.kill('SIGKILL');
    await exited;
    return { reason: spawned.error ?? exitInfo ?? `could not run ${binary}` };
  }
  const pid = spawned.pid;
  if (ctx.guarded) {
    liveServers.add(child);
    installExitHook();
  }
  if (ctx.pidFile) {
    // Written at once, not when ready: an owner killed during start-up leaves a server too.
    const self = describeProcess(pid);
    if (self) {
      record = { ...self, config: ctx.configFile, guardian: ctx.guarded ? child.pid : undefined };
      writeRecord(ctx.pidFile, record);
    }
  }
  // With the guardian, SIGUSR1 makes it SIGKILL the server: the guardian, our own child, is the
  // one pid we may signal without proving it is still the process we mean.
  const killHard = () => child.kill(ctx.guarded ? 'SIGUSR1' : 'SIGKILL');

  const connectHost = connectHostFor(ctx.host);
  let port = 0;
  while (Date.now() < ctx.deadline && exitInfo === null) {
    if (port === 0) {
      try {
        const info = JSON.parse(await readFile(portsFile, 'utf8')) as { nats?: string[] };
        const first = info.nats?.[0];
        if (first) port = Number(new URL(first).port);
      } catch {
        // Not written yet, or caught half-written.
      }
    }
    if (port > 0 && (await canConnect(connectHost, port))) break;
    await sleep(20);
  }
  if (exitInfo !== null || port === 0 || Date.now() >= ctx.deadline) {
    const tail = await logTail(ctx.logFile, 600);
    if (exitInfo === null) {
      killHard();
      await exited;
      return { reason: `nats-server (pid ${pid}) was not ready within the start timeout` };
    }
    return { reason: `nats-server (pid ${pid}) exited during start-up: ${exitInfo}`, portBusy: /address already in use/i.test(tail) };
  }

  const urlHost = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
  const url = `nats://${urlHost}:${port}`;
  ctx.log.info('nats-server started', { pid, url, store: ctx.storeDir });
  const handle: NatsServerHandle = {
    url,
    port,
    pid,
    guardianPid: ctx.guarded ? child.pid : undefined,
    storeDir: ctx.storeDir,
    logFile: ctx.logFile,
    exited,
    async stop() {
      if (exitInfo !== null) return;
      // The guardian passes SIGTERM on and sends SIGKILL itself after the same grace; the timer
      // here is for a server run without it.
      child.kill('SIGTERM');
      const forced = setTimeout(() => {
        ctx.log.warn('nats-server did not stop after SIGTERM; sending SIGKILL', { pid });
        killHard();
      }, STOP_GRACE_MS);
      await exited;
      clearTimeout(forced);
      ctx.log.info('nats-server stopped', { pid });
    },
    kill() {
      if (exitInfo === null) killHard();
    },
  };
  return { handle };
}
