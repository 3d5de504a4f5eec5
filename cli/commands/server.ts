import { resolve } from 'node:path';
import { createLogger } from '../../common/log.js';
import type { NatsServerHandle } from '../../common/nats-server.js';
import { ensureNatsServer, startNatsServer } from '../../common/nats-server.js';
import { startController } from '../../controller/controller.js';
import { onShutdownSignals } from '../signals.js';

export interface ServerOptions {
  host: string;
  port: number;
  nats?: string;
  natsPort: number;
  data: string;
  heartbeatTimeout: number;
  maxCrashRetries: number;
}

/** `sweeper server`: the controller, plus an embedded nats-server unless --nats is given. */
export async function runServer(o: ServerOptions): Promise<void> {
  const log = createLogger('server');
  let nats: NatsServerHandle | undefined;
  let natsUrl = o.nats;
  if (!natsUrl) {
    await ensureNatsServer({ install: true, log });
    nats = await startNatsServer({ storeDir: resolve(o.data, 'nats'), host: o.host, port: o.natsPort, log: log.child('nats-server') });
    natsUrl = nats.url;
    log.info('embedded nats-server started', { url: natsUrl, store: resolve(o.data, 'nats') });
  }
  const controller = await startController({
    host: o.host,
    port: o.port,
    natsUrl,
    natsUser: process.env.SWEEPER_NATS_USER,
    natsPass: process.env.SWEEPER_NATS_PASSWORD,
    natsToken: process.env.SWEEPER_NATS_TOKEN,
    heartbeatTimeoutMs: o.heartbeatTimeout * 1000,
    maxCrashRetries: o.maxCrashRetries,
    log,
  }).catch(async (err) => {
    await nats?.stop();
    throw err;
  });
  log.info(`controller ready on ${controller.address}; create a sweep with: sweeper create sweep.yaml --controller ${controller.address}`);
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
