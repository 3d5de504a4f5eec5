import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AddressInUseError, UsageError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import type { NatsServerHandle } from '../../common/nats-server.js';
import { ensureNatsServer, startNatsServer } from '../../common/nats-server.js';
import { startController } from '../../controller/controller.js';
import { onShutdownSignals } from '../signals.js';

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

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1' || host === '[::1]';
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${flag} ${file}: ${(err as Error).message}`);
  }
}

/** `sweeper server`: the controller, plus an embedded nats-server unless --nats is given. */
export async function runServer(o: ServerOptions): Promise<void> {
  const log = createLogger('server');
  // Anything that can reach an open API can run programs on the agents' hosts.
  if (!isLoopback(o.host) && !o.token && !o.insecureBind) {
    throw new UsageError(
      `refusing to serve on ${o.host} without an API token: set --token (or SWEEPER_TOKEN), or pass --insecure-bind if the network is trusted`,
    );
  }
  if (o.dashboard && !isLoopback(o.dashboardHost) && !o.token && !o.insecureBind) {
    throw new UsageError(`refusing to serve the dashboard on ${o.dashboardHost} without a token: set --token, or pass --insecure-bind if the network is trusted`);
  }
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new UsageError('--tls-cert and --tls-key go together');
  const tls = o.tlsCert && o.tlsKey ? { cert: readPem(o.tlsCert, '--tls-cert'), key: readPem(o.tlsKey, '--tls-key') } : undefined;

  let nats: NatsServerHandle | undefined;
  let natsUrl = o.nats;
  let natsToken = process.env.SWEEPER_NATS_TOKEN;
  if (!natsUrl) {
    await ensureNatsServer({ install: true, log });
    // The embedded server always takes a token: agents receive it when they register, so it
    // costs users nothing and keeps NATS closed to anyone else on the network.
    natsToken ??= randomBytes(18).toString('base64url');
    nats = await startNatsServer({
      storeDir: resolve(o.data, 'nats'),
      host: o.host,
      port: o.natsPort,
      token: natsToken,
      log: log.child('nats-server'),
    }).catch((err) => {
      throw withPortHint(err);
    });
    natsUrl = nats.url;
    log.info('embedded nats-server started', { url: natsUrl, store: resolve(o.data, 'nats') });
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
      natsReplicas: o.natsReplicas,
      heartbeatTimeoutMs: o.heartbeatTimeout * 1000,
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
  await new Promise<void>((done) => {
    const release = onShutdownSignals((signal, n) => {
      if (n > 1) process.exit(130);
      log.info(`received ${signal}: shutting down`);
      release();
      done();
    });
  });
  await controller.stop();
  await nats?.stop();
}
