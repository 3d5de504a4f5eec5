/**
 * `sweeper open DIR`: serve a finished sweep's data folder again. `sweeper local` keeps
 * everything in its data folder (the NATS store, Sweeper's NATS operator keys, its API token);
 * this starts the same embedded nats-server and a controller on it, with no agents, so that the
 * dashboard, `sweeper watch`, `sweeper ls` and `sweeper logs` work after `local` has exited. It
 * stays up until SIGINT/SIGTERM (a second one forces).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../../domain/errors.js';
import { createLogger, type Logger } from '../../common/log.js';
import { commandLine, DataFolderLockedError } from '../../common/pid-file.js';
import { startController, type ControllerHandle } from '../../controller/controller.js';
import { NatsAuthority } from '../../controller/nats-auth.js';
import { onShutdownSignals } from '../signals.js';
import { natsAuthDir } from './nats-auth.js';
import { startEmbeddedNats } from './server.js';

export interface OpenOptions {
  /** gRPC port (0: a free one). */
  port: number;
  /** Dashboard port (0: a free one). */
  dashboardPort: number;
}

/** The API token a data folder's controller requires, kept beside its NATS keys (0600). */
export const API_TOKEN_FILE = 'api-token';

/** The embedded nats-server on a data folder, as `sweeper server` runs it (lock, pid file, restarts). */
export type DataFolderNats = Awaited<ReturnType<typeof startEmbeddedNats>>;

/** The shell command that serves `dataDir` again. */
export function reopenCommand(dataDir: string): string {
  return `sweeper open ${shellWord(dataDir)}`;
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The folder's API token, made (random, 0600) the first time. `sweeper local` makes it, so that
 * `sweeper open` of the same folder takes the same token.
 */
export function apiTokenFor(dataDir: string): string {
  const file = join(dataDir, API_TOKEN_FILE);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token) {
      // Whoever made it, it is a credential: never readable by other users.
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
      return token;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(18).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}

/** Why `dir` is not a data folder Sweeper wrote, or undefined when it is one. */
export function notADataFolder(dir: string): string | undefined {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    return `${dir} does not exist`;
  }
  if (!isDir) return `${dir} is not a folder`;
  const missing = [
    NatsAuthority.exists(natsAuthDir(dir)) ? undefined : 'nats-auth/ (its NATS keys)',
    existsSync(join(dir, 'nats', 'jetstream')) ? undefined : 'nats/jetstream/ (its NATS store)',
  ].filter((m): m is string => m !== undefined);
  return missing.length ? `${dir} is not a Sweeper data folder: it has no ${missing.join(' and no ')}` : undefined;
}

/** Which sweeper command the process `pid` runs (`sweeper local`, ...), as well as /proc tells. */
function describeHolder(pid: number): string {
  const argv = commandLine(pid) ?? [];
  const entry = argv.findIndex((a) => /(?:^|\/)(?:run\.js|sweeper(?:\.js)?)$/.test(a));
  const sub = entry >= 0 ? argv[entry + 1] : undefined;
  return sub && /^[a-z-]+$/.test(sub) ? `sweeper ${sub}` : 'another sweeper process';
}

/**
 * Lock `dataDir` and start its embedded nats-server on 127.0.0.1 (any free port), trusting the
 * folder's NATS operator keys (made the first time). A folder another process holds is refused
 * with exit code 2, naming that process (`hint` says what to do about it): its controller must
 * not lose its NATS.
 */
export async function startDataFolderNats(dataDir: string, log: Logger, hint: (holder: string) => string): Promise<DataFolderNats> {
  try {
    return await startEmbeddedNats(
      { host: '127.0.0.1', natsPort: -1, data: dataDir },
      log,
    );
  } catch (err) {
    if (!(err instanceof DataFolderLockedError)) throw err;
    const holder = describeHolder(err.holderPid);
    throw new UsageError(`data folder ${dataDir} is in use by ${holder} (pid ${err.holderPid}): ${hint(holder)}`, { cause: err });
  }
}

export async function runOpen(dir: string, o: OpenOptions): Promise<void> {
  const dataDir = resolve(dir);
  const problem = notADataFolder(dataDir);
  if (problem) throw new UsageError(`${problem}; give the folder 'sweeper local' printed (its --data)`);
  const log = createLogger('open');
  const nats = await startDataFolderNats(dataDir, log, (holder) =>
    holder === 'sweeper local'
      ? `the sweep is still running there, and its dashboard and 'sweeper logs' work until it ends; run '${reopenCommand(dataDir)}' once it has exited`
      : `stop it first (or use its controller), then run '${reopenCommand(dataDir)}' again`,
  );
  let controller: ControllerHandle;
  let token: string;
  try {
    token = apiTokenFor(dataDir);
    controller = await startController({
      host: '127.0.0.1',
      port: o.port,
      natsUrl: nats.url,
      natsAuthority: nats.authority,
      token,
      dashboard: { host: '127.0.0.1', port: o.dashboardPort },
      log: log.child('controller'),
    });
  } catch (err) {
    await nats.stop();
    throw err;
  }
  const sweeps = controller.service.listSweeps();
  const page = sweeps.length === 1 ? `sweeps/${sweeps[0].id}` : '';
  const example = sweeps.length ? sweeps[sweeps.length - 1] : undefined;
  const lines = [
    `serving ${dataDir}: ${sweeps.length} sweep${sweeps.length === 1 ? '' : 's'}${sweeps.length ? ` (${sweeps.map((s) => `${s.id} ${s.state}`).join(', ')})` : ''}`,
    `dashboard: ${controller.dashboardUrl}${page}?token=${token}`,
    `controller: ${controller.address}`,
    'in another shell:',
    `  export SWEEPER_CONTROLLER=${controller.address} SWEEPER_TOKEN=${token}`,
    '  sweeper ls',
    `  sweeper watch ${example?.id ?? 'SWEEP_ID'}`,
    `  sweeper logs ${example?.trials[0]?.id ?? 'TRIAL_ID'}`,
    'Ctrl-C stops serving it.',
  ];
  process.stdout.write(lines.join('\n') + '\n');

  let natsFailure: unknown;
  let release = () => {};
  await new Promise<void>((done) => {
    release = onShutdownSignals((signal, n) => {
      if (n > 1) process.exit(130);
      log.info(`received ${signal}: shutting down`);
      done();
    });
    // An embedded server that cannot be brought back ends this with an error, as in `sweeper server`.
    nats.failed.catch((err: unknown) => {
      natsFailure = err;
      done();
    });
  });
  // The signal handler stays until the stop is over: a second signal forces it.
  try {
    await controller.stop();
    await nats.stop();
  } finally {
    release();
  }
  if (natsFailure) throw natsFailure;
}
