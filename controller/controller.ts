/**
 * Wires a running controller together: NATS connection, the JetStream event log, the metric
 * ingest, trials' live output, the sweep service and the gRPC API. `sweeper server` and
 * `sweeper local` both call `startController`; tests do too.
 */
import type { NatsConnection } from 'nats';
import { JSONCodec } from 'nats';
import { controlSubject } from '../common/control-wire.js';
import { heartbeatIntervalFor } from '../domain/defaults.js';
import type { ControlMessage } from '../common/control-wire.js';
import type { Logger } from '../common/log.js';
import { connectNats } from '../common/nats-connect.js';
import type { DashboardHandle, DashboardLimits } from './dashboard/server.js';
import { startDashboard } from './dashboard/server.js';
import { JetStreamEventLog } from './sweeps/event-log.js';
import type { GrpcServerHandle } from './grpc-server.js';
import { startGrpcServer } from './grpc-server.js';
import { MetricIngest } from './sweeps/ingest.js';
import { OutputLog, trialLookup } from './sweeps/output-log.js';
import type { NatsAuthority } from './nats-auth.js';
import { SweepService } from './sweeps/sweep-service.js';

export interface ControllerOptions {
  host: string;
  port: number;
  natsUrl: string;
  /** What agents are told to connect to; defaults to natsUrl. */
  natsUrlForAgents?: string;
  natsUser?: string;
  natsPass?: string;
  natsToken?: string;
  /**
   * Sweeper's NATS operator keys (nats-auth.ts): the controller connects with its own identity
   * and gives each agent one bound to its subjects. Without it agents get the shared credentials.
   */
  natsAuthority?: NatsAuthority;
  /** Bearer token required on every API call. */
  token?: string;
  /** Serve the API over TLS (PEM certificate chain and key). */
  tls?: { cert: Buffer; key: Buffer };
  /** Copies of Sweeper's JetStream streams on a NATS cluster (1, 3 or 5; default 1). */
  natsReplicas?: number;
  heartbeatIntervalMs?: number;
  /** A trial whose agent is silent this long becomes crashed (default 30 s). */
  heartbeatTimeoutMs?: number;
  /** Re-runs of a crashed trial's parameters (default 1). */
  maxCrashRetries?: number;
  /** Serve the web dashboard there (port 0: a free one). The API's token and TLS apply unless given here. */
  dashboard?: { host: string; port: number; token?: string; tls?: { cert: Buffer; key: Buffer }; limits?: Partial<DashboardLimits> };
  log: Logger;
}

export interface ControllerHandle {
  service: SweepService;
  grpc: GrpcServerHandle;
  /** `host:port` of the gRPC API. */
  address: string;
  nc: NatsConnection;
  ingest: MetricIngest;
  /** Trials' live output, held from the SWEEPER_OUTPUT stream. */
  output: OutputLog;
  /** `http://host:port/` of the web dashboard, when it was asked for. */
  dashboardUrl?: string;
  stop(): Promise<void>;
}

export async function startController(opts: ControllerOptions): Promise<ControllerHandle> {
  const log = opts.log;
  const nc = await connectNats(opts.natsUrl, {
    name: 'sweeper-controller',
    user: opts.natsUser,
    pass: opts.natsPass,
    token: opts.natsToken,
    ...(opts.natsAuthority ? { jwt: opts.natsAuthority.controllerCredentials() } : {}),
    log: log.child('nats'),
    waitOnFirstConnect: true,
  });
  if (!opts.natsAuthority) {
    log.warn('NATS auth is not Sweeper\'s own: every agent gets the same NATS credentials and could write any subject (see README, "NATS security")');
  }
  const controlCodec = JSONCodec<ControlMessage>();
  const eventLog = await JetStreamEventLog.open(nc, { replicas: opts.natsReplicas });
  const service = new SweepService({
    eventLog,
    log: log.child('sweeps'),
    heartbeatIntervalMs: opts.heartbeatIntervalMs,
    heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
    maxCrashRetries: opts.maxCrashRetries,
    sendControl: (agentId, message) => {
      try {
        nc.publish(controlSubject(agentId), controlCodec.encode(message));
      } catch (err) {
        // Heartbeat responses repeat the order, so a failed publish only delays it.
        log.warn('could not publish a control message', { agent: agentId, error: String(err) });
      }
    },
  });
  await service.init();
  // A fresh controller has no metric history in memory: replay the whole metric stream.
  const ingest = new MetricIngest({
    nc,
    log: log.child('ingest'),
    admit: (agentId, b) => service.admitMetrics(agentId, b),
    onBatch: (b) => service.onMetrics(b),
    replayAll: true,
    streamReplicas: opts.natsReplicas,
  });
  await ingest.start();
  // RequestTrial for model-based sweeps waits for this, so suggestions read every replayed value.
  service.awaitMetricReplay(ingest.caughtUp);
  // Read from the stream's start: the last lines of every trial whose output is kept come back.
  const output = new OutputLog({ nc, log: log.child('output'), trialOf: trialLookup((id) => service.getTrial(id)), streamReplicas: opts.natsReplicas });
  await output.start();
  const grpcServer = await startGrpcServer({
    service,
    ingestStats: () => {
      const s = ingest.stats();
      return { ...s, rejected: { ...s.rejected, ...output.rejections() } };
    },
    output,
    token: opts.token,
    tls: opts.tls,
    host: opts.host,
    port: opts.port,
    log: log.child('grpc'),
    natsUrlForAgents: opts.natsUrlForAgents ?? opts.natsUrl,
    natsCredentials: { user: opts.natsUser, pass: opts.natsPass, token: opts.natsToken },
    natsAuthority: opts.natsAuthority,
  });
  // Liveness is the controller's job: trials of silent agents become crashed. Checked often
  // enough that a crash is noticed within a fraction of the timeout.
  const reaper = setInterval(
    () => void service.reapLostTrials().catch((err) => log.warn('could not check agent heartbeats', { error: String(err) })),
    Math.max(250, heartbeatIntervalFor(service.heartbeatTimeoutMs)),
  );
  reaper.unref();
  let dashboard: DashboardHandle | undefined;
  if (opts.dashboard) {
    const d = opts.dashboard;
    dashboard = await startDashboard({ service, output, ...d, token: d.token ?? opts.token, tls: d.tls ?? opts.tls, log: log.child('dashboard') }).catch(async (err) => {
      clearInterval(reaper);
      await grpcServer.stop();
      await ingest.stop();
      await output.stop();
      await nc.drain().catch(() => undefined);
      throw err;
    });
  }
  let stopped = false;
  return {
    service,
    grpc: grpcServer,
    address: grpcServer.address,
    nc,
    ingest,
    output,
    dashboardUrl: dashboard?.url,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(reaper);
      await dashboard?.stop();
      await grpcServer.stop();
      await ingest.stop();
      await output.stop();
      await nc.drain().catch(() => undefined);
    },
  };
}
