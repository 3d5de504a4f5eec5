/**
 * Finding, installing and running a local nats-server (Debian's package, 2.9 or later).
 *
 * `sweeper local`, the benchmarks and the integration tests all start their server through
 * `startNatsServer`, so there is one place that knows the flags, waits for readiness and stops
 * the process by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { AddressInUseError, MissingDependencyError, SweeperError } from './errors.js';
import { silentLogger, type Logger } from './log.js';

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
  /** The server's max_payload; its default is 1 MiB. */
  maxPayloadBytes?: number;
  /** Defaults to `findNatsServer()`. */
  binary?: string;
  startTimeoutMs?: number;
  /** Send SIGTERM to the server when this process exits (the default), so it is not orphaned. */
  stopOnExit?: boolean;
  log?: Logger;
}

export interface NatsServerHandle {
  /** `nats://host:port`, without credentials. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
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
  if (opts.token !== undefined) {
    lines.push(`authorization { token: ${JSON.stringify(opts.token)} }`);
  } else if (opts.user !== undefined) {
    lines.push(`authorization { user: ${JSON.stringify(opts.user)}, password: ${JSON.stringify(opts.password ?? '')} }`);
  }
  if (opts.maxPayloadBytes !== undefined) lines.push(`max_payload: ${Math.floor(opts.maxPayloadBytes)}`);
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
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
  writeConfig(configFile, opts);

  const args = ['-c', configFile, '-a', host, '-p', String(port), '--ports_file_dir', storeDir];
  if (opts.jetstream ?? true) args.push('-js', '-sd', storeDir);

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  let portBusy = false;
  for (;;) {
    const attempt = await spawnOnce(binary, args, { storeDir, logFile, host, deadline, stopOnExit: opts.stopOnExit ?? true, log });
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
  host: string;
  deadline: number;
  stopOnExit: boolean;
  log: Logger;
}

async function spawnOnce(
  binary: string,
  args: string[],
  ctx: SpawnContext,
): Promise<{ handle?: NatsServerHandle; reason?: string; portBusy?: boolean }> {
  const logFd = openSync(ctx.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  let exitInfo: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
      liveServers.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = `could not run ${binary}: ${err.message}`;
      liveServers.delete(child);
      resolve();
    });
  });
  if (child.pid === undefined) {
    await exited;
    return { reason: exitInfo ?? `could not run ${binary}` };
  }
  const pid = child.pid;
  liveServers.add(child);
  if (ctx.stopOnExit) installExitHook();

  const portsFile = path.join(ctx.storeDir, `nats-server_${pid}.ports`);
  const connectHost = ctx.host === '0.0.0.0' ? '127.0.0.1' : ctx.host === '::' ? '::1' : ctx.host;
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
      child.kill('SIGKILL');
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
    storeDir: ctx.storeDir,
    logFile: ctx.logFile,
    exited,
    async stop() {
      if (exitInfo !== null) return;
      child.kill('SIGTERM');
      const forced = setTimeout(() => {
        ctx.log.warn('nats-server did not stop after SIGTERM; sending SIGKILL', { pid });
        child.kill('SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(forced);
      ctx.log.info('nats-server stopped', { pid });
    },
    kill() {
      if (exitInfo === null) child.kill('SIGKILL');
    },
  };
  return { handle };
}
