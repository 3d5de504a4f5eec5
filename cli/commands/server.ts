import { mkdirSync, readFileSync } from 'node:fs';
import { isLoopbackHost } from '../../common/net.js';
import { resolve } from 'node:path';
import { AddressInUseError, coerceError, SweeperError, UsageError } from '../../domain/errors.js';
import { createLogger, type Logger } from '../../common/log.js';
import type { NatsServerHandle } from '../../common/nats-server.js';
import { ensureNatsServer, startNatsServer } from '../../common/nats-server.js';
import { lockDataFolder } from '../../common/pid-file.js';
import { startController } from '../../controller/controller.js';
import { NatsAuthority } from '../../controller/nats-auth.js';
import { natsAuthDir } from './nats-auth.js';
import { incompleteFlags } from '../flags.js';
import { onShutdownSignals } from '../signals.js';

/** `sweeper server`'s flags as commander parsed them (cli/main.ts): checked, defaults filled in, durations in milliseconds. */
export interface ServerOptions {
  host: string;
  port: number;
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureBind?: boolean;
  nats?: string;
  natsPort: number;
  natsReplicas: number;
  data: string;
  /** --heartbeat-timeout, in ms. */
  heartbeatTimeout: number;
  maxCrashRetries: number;
  /** False with --no-dashboard. */
  dashboard: boolean;
  dashboardHost: string;
  dashboardPort: number;
  /** Whether --dashboard-port was given: a busy default port falls back to a free one. */
  dashboardPortGiven?: boolean;
}

const PORT_FLAGS: Record<AddressInUseError['service'], string> = {
  'gRPC API': 'choose another with --port',
  dashboard: 'choose another with --dashboard-port, or --no-dashboard',
  'nats-server': 'choose another with --nats-port (-1: any free port), or use a running server with --nats URL',
};

/** A busy port, told with the flag that moves it. */
function withPortHint(err: unknown): unknown {
  return err instanceof AddressInUseError ? new UsageError(`${err.message}: ${PORT_FLAGS[err.service]}`, { cause: err }) : err;
}


function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${flag} ${file}: ${coerceError(err).message}`, { cause: err });
  }
}

/** `sweeper server`: the controller, plus an embedded nats-server unless --nats is given. */
export async function runServer(o: ServerOptions): Promise<void> {
  const log = createLogger('server');
  // Anything that can reach an open API can run programs on the agents' hosts.
  if (!isLoopbackHost(o.host) && !o.token && !o.insecureBind) {
    throw new UsageError(
      `refusing to serve on ${o.host} without an API token: set --token (or SWEEPER_TOKEN), or pass --insecure-bind if the network is trusted`,
    );
  }
  if (o.dashboard && !isLoopbackHost(o.dashboardHost) && !o.token && !o.insecureBind) {
    throw new UsageError(`refusing to serve the dashboard on ${o.dashboardHost} without a token: set --token, or pass --insecure-bind if the network is trusted`);
  }
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw incompleteFlags('--tls-cert', '--tls-key');
  const tls = o.tlsCert && o.tlsKey ? { cert: readPem(o.tlsCert, '--tls-cert'), key: readPem(o.tlsKey, '--tls-key') } : undefined;

  let nats: EmbeddedNats | undefined;
  let natsUrl = o.nats;
  const natsToken = process.env.SWEEPER_NATS_TOKEN;
  let natsAuthority: NatsAuthority | undefined;
  if (!natsUrl) {
    // The embedded server trusts Sweeper's own operator keys (controller/nats-auth.ts): each
    // agent gets an identity of its own, held to its own subjects. The keys live in the data
    // folder and are read once it is locked, so two first starts cannot each make them.
    nats = await startEmbeddedNats(o, log);
    natsUrl = nats.url;
    natsAuthority = nats.authority;
  } else if (NatsAuthority.exists(natsAuthDir(o.data))) {
    // An external server set up with `sweeper nats-auth --data DIR`.
    natsAuthority = NatsAuthority.load(natsAuthDir(o.data));
  }
  const start = (dashboardPort: number) =>
    startController({
      host: o.host,
      port: o.port,
      token: o.token,
      tls,
      natsUrl,
      natsUser: process.env.SWEEPER_NATS_USER,
      natsPass: process.env.SWEEPER_NATS_PASSWORD,
      natsToken,
      natsAuthority,
      natsReplicas: o.natsReplicas,
      heartbeatTimeoutMs: o.heartbeatTimeout,
      maxCrashRetries: o.maxCrashRetries,
      dashboard: o.dashboard ? { host: o.dashboardHost, port: dashboardPort } : undefined,
      log,
    });
  const controller = await start(o.dashboardPort)
    .catch((err) => {
      // Two servers on one host should not need a flag to both start: the default port is a wish.
      if (!(err instanceof AddressInUseError && err.service === 'dashboard' && !o.dashboardPortGiven)) throw err;
      log.warn(`dashboard port ${o.dashboardPort} is in use; serving the dashboard on a free port instead (choose one with --dashboard-port)`);
      return start(0);
    })
    .catch(async (err) => {
      await nats?.stop();
      throw withPortHint(err);
    });
  const flags = `--controller ${controller.address}${o.token ? ' --token …' : ''}${tls ? ' --tls-ca <ca.pem>' : ''}`;
  log.info(`controller ready on ${controller.address}${tls ? ' (TLS)' : ''}; create a sweep with: sweeper create sweep.yaml ${flags}`);
  if (controller.dashboardUrl) log.info(`dashboard at ${controller.dashboardUrl}${o.token ? ' (open it once with ?token=<your token>)' : ''}`);
  let natsFailure: unknown;
  await new Promise<void>((done) => {
    const release = onShutdownSignals((signal, n) => {
      if (n > 1) process.exit(130);
      log.info(`received ${signal}: shutting down`);
      release();
      done();
    });
    // An embedded server that cannot be brought back ends the controller with an error, rather
    // than leaving it up without its store.
    nats?.failed.catch((err: unknown) => {
      natsFailure = err;
      release();
      done();
    });
  });
  await controller.stop();
  await nats?.stop();
  if (natsFailure) throw natsFailure;
}

/** The embedded nats-server of `sweeper server`, started again on the same port should it die. */
interface EmbeddedNats {
  readonly url: string;
  /** The operator keys the server trusts, kept in `<data>/nats-auth`. */
  readonly authority: NatsAuthority;
  /** Rejects when the server died and could not be started again. */
  readonly failed: Promise<never>;
  stop(): Promise<void>;
}

export class EmbeddedNatsError extends SweeperError {}

/**
 * Lock the data folder, stop a nats-server an earlier run left there, and start ours.
 *
 * The lock comes first: only the folder's one owner may stop the server its pid file names, or a
 * second `sweeper server --data DIR` would take the first one's NATS away. The server runs under
 * a guardian that stops it when this process dies, and is recorded in `<data>/nats` so that if the
 * guardian died too, the next start stops it (see common/nats-server.ts); without both, a
 * `kill -9` left nats-server holding the port and every restart failed.
 */
export async function startEmbeddedNats(o: Pick<ServerOptions, 'data' | 'host' | 'natsPort'>, log: Logger): Promise<EmbeddedNats> {
  const dataDir = resolve(o.data);
  mkdirSync(dataDir, { recursive: true });
  const lock = lockDataFolder(dataDir, 'sweeper server');
  const storeDir = resolve(dataDir, 'nats');
  let authority: NatsAuthority | undefined;
  // The config is made at each start: after `sweeper nats-auth --rotate` a restart trusts the new keys.
  const start = (port: number) =>
    startNatsServer({ storeDir, host: o.host, port, operatorConfig: authority!.serverConfig(), pidFile: true, log: log.child('nats-server') }).catch((err) => {
      throw withPortHint(err);
    });
  let current: NatsServerHandle;
  try {
    authority = NatsAuthority.loadOrCreate(natsAuthDir(dataDir));
    await ensureNatsServer({ install: true, log });
    current = await start(o.natsPort);
  } catch (err) {
    lock.release();
    throw err;
  }
  log.info('embedded nats-server started', { url: current.url, store: storeDir, pid: current.pid });
  let stopping = false;
  // Agents hold its URL, so a server that died (killed, crashed) comes back on the same port; one
  // that keeps dying at once (a broken store, say) ends the controller instead of spinning.
  const failed = (async (): Promise<never> => {
    let quickDeaths = 0;
    for (;;) {
      const startedAt = Date.now();
      await current.exited;
      if (stopping) return new Promise<never>(() => undefined);
      quickDeaths = Date.now() - startedAt < 10_000 ? quickDeaths + 1 : 0;
      if (quickDeaths >= 5) throw new EmbeddedNatsError(`the embedded nats-server keeps exiting within seconds of its start: see ${current.logFile}`);
      log.warn('the embedded nats-server exited; starting it again', { pid: current.pid });
      try {
        current = await start(current.port);
      } catch (err) {
        throw new EmbeddedNatsError(`the embedded nats-server exited and could not be started again: ${coerceError(err).message}`, { cause: err });
      }
      // stop() came while it was starting, and found only the dead one to stop.
      if (stopping) await current.stop();
    }
  })();
  // Handled where the controller waits; until then a failure must not count as unhandled.
  failed.catch(() => undefined);
  return {
    url: current.url,
    authority,
    failed,
    async stop() {
      stopping = true;
      await current.stop();
      lock.release();
    },
  };
}
