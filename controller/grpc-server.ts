/**
 * The gRPC API: a thin adapter from `proto/sweeper/v1/sweeper.proto` to `SweepService`.
 * It translates messages and maps typed errors to gRPC status codes; no sweep logic lives here.
 */
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { ApiControllerStats, ApiHeartbeatResponse, ApiRegisterAgentResponse, ApiSweep, ApiSweepDetail, ApiTrial, ApiTrialDetail } from '../common/api-types.js';
import type { RequestTrialResponse } from '../common/proto-types/sweeper/v1/RequestTrialResponse.js';
import type { SweeperHandlers } from '../common/proto-types/sweeper/v1/Sweeper.js';
import type { WatchSweepRequest__Output } from '../common/proto-types/sweeper/v1/WatchSweepRequest.js';
import type { ExportChunk } from '../common/proto-types/sweeper/v1/ExportChunk.js';
import type { ExportSweepRequest__Output } from '../common/proto-types/sweeper/v1/ExportSweepRequest.js';
import { exportSweep, type ExportPart } from './sweeps/export.js';
import type { TrialOutput } from '../common/proto-types/sweeper/v1/TrialOutput.js';
import type { WatchTrialOutputRequest__Output } from '../common/proto-types/sweeper/v1/WatchTrialOutputRequest.js';
import { isTerminal } from '../domain/trial-state.js';
import { outputTails, outputView, type OutputLog, type OutputView } from './sweeps/output-log.js';
import { AddressInUseError, IllegalStateError, isAddressInUse, NotFoundError, NotHolderError, StoreUnavailableError, WrongSweepError, SweeperError, UsageError } from '../domain/errors.js';
import { MAX_ARGV_ENTRIES, MAX_ARGV_ENTRY_CHARS } from '../common/limits.js';
import type { Logger } from '../common/log.js';
import { healthServiceDef, sweeperServiceDef } from '../common/proto.js';
import { ID_PATTERN, ID_RULE } from '../domain/ids.js';
import { ConfigError } from './config/errors.js';
import type { SweepService } from './sweeps/sweep-service.js';
import type { SweepView, TrialView } from './sweeps/trial-view.js';
import { agentInboxPrefix } from '../common/control-wire.js';
import type { NatsAuthority } from './nats-auth.js';

export interface GrpcServerOptions {
  service: SweepService;
  /** Ingest counters for GetStats. */
  ingestStats?: () => { batches: number; points: number; duplicates: number; rejected: Record<string, number | undefined> };
  host: string;
  port: number;
  log: Logger;
  /** Minimum time between two snapshots on a WatchSweep stream. */
  watchIntervalMs?: number;
  /** The NATS URL agents are told to use (they may override it). */
  natsUrlForAgents?: string;
  /** When set, every API call must carry `authorization: Bearer <token>` (health checks excepted). */
  token?: string;
  /** Serve TLS with this certificate chain and key (PEM) instead of plaintext. */
  tls?: { cert: Buffer; key: Buffer };
  /**
   * How agents get onto NATS. With an authority, each gets a user JWT of its own, bound to its
   * subjects (nats-auth.ts); otherwise the shared credentials (an external NATS without Sweeper's
   * auth: no least privilege, said in the log at start).
   */
  natsCredentials?: { user?: string; pass?: string; token?: string };
  natsAuthority?: Pick<NatsAuthority, 'agentJwt'>;
  /** Trials' live output (sweeps/output-log.ts), for GetTrial and WatchTrialOutput; without it, only the end reports' tails. */
  output?: TrialOutputSource;
}

/** What the adapter reads of the output log. */
export type TrialOutputSource = Pick<OutputLog, 'ring' | 'watch' | 'awaitFinal'>;

export interface GrpcServerHandle {
  port: number;
  address: string;
  stop(): Promise<void>;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServerHandle> {
  const { service, log } = opts;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
  /** Refused calls by reason (see toStatus): visible in GetStats. */
  const rejected: Record<string, number> = {};
  /** Every refused call ends here: answered with its status, and counted once, by its reason. */
  const refuse = (err: unknown, rpc: string): Partial<grpc.StatusObject> => {
    const { code, details, reason } = toStatus(err, rpc, log);
    rejected[reason] = (rejected[reason] ?? 0) + 1;
    return { code, details };
  };
  const validateRequest = <Req>(rpc: string, req: Req): Req => {
    const problem = checkRequest(rpc, req);
    if (problem) throw new InvalidRequestError(`invalid ${rpc} request: ${problem}`);
    return req;
  };

  const authorized = (metadata: grpc.Metadata): boolean => {
    if (!opts.token) return true;
    const given = String(metadata.get('authorization')[0] ?? '');
    const expected = `Bearer ${opts.token}`;
    // Compare in constant time: a token must not leak one character at a time.
    return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  };

  const unary =
    <Req, Res>(name: string, fn: (req: Req) => Res | Promise<Res>): Unary<Req, Res> =>
    (call, callback) => {
      if (!authorized(call.metadata)) {
        callback(refuse(new UnauthenticatedError(), name));
        return;
      }
      Promise.resolve()
        .then(() => fn(validateRequest(name, call.request)))
        .then(
          (res) => callback(null, res),
          (err) => callback(refuse(err, name)),
        );
    };

  // Typed by the proto's generated handlers: each request as it arrives, each answer as it goes out.
  const handlers: SweeperHandlers = {
    CreateSweep: unary('CreateSweep', async (req) => {
      const sweep = await service.createSweep(req.configText, req.filename || undefined);
      return toApiSweep(service.sweepView(sweep));
    }),
    GetSweep: unary('GetSweep', (req) => detail(service, req.sweepId, req.limit)),
    ListSweeps: unary('ListSweeps', () => ({ sweeps: service.listSweeps().map((s) => toApiSweep(service.sweepView(s))) })),
    PauseSweep: unary('PauseSweep', async (req) => toApiSweep(service.sweepView(await service.pauseSweep(req.sweepId)))),
    ResumeSweep: unary('ResumeSweep', async (req) => toApiSweep(service.sweepView(await service.resumeSweep(req.sweepId)))),
    StopSweep: unary('StopSweep', async (req) => toApiSweep(service.sweepView(await service.stopSweep(req.sweepId)))),
    CancelSweep: unary('CancelSweep', async (req) => toApiSweep(service.sweepView(await service.cancelSweep(req.sweepId)))),
    RegisterAgent: unary('RegisterAgent', (req): ApiRegisterAgentResponse => {
      const authority = opts.natsAuthority;
      // Minted before registering, so a bad key refuses the whole call.
      const natsJwt = authority ? authority.agentJwt(req.natsPublicKey, req.sweepId, req.agentId) : '';
      // The command template and program go out with each assignment (RequestTrial), where the agent reads them.
      const r = service.registerAgent(req);
      const shared = authority ? {} : opts.natsCredentials;
      return {
        natsUrl: opts.natsUrlForAgents ?? '',
        heartbeatIntervalMs: service.heartbeatIntervalMs,
        heldTrials: r.heldTrials.map((t) => toApiTrial(service.trialView(t))),
        natsUser: shared?.user ?? '',
        natsPassword: shared?.pass ?? '',
        natsToken: shared?.token ?? '',
        heartbeatTimeoutMs: service.heartbeatTimeoutMs,
        natsJwt,
        natsInboxPrefix: authority ? agentInboxPrefix(req.agentId) : '',
      };
    }),
    Heartbeat: unary('Heartbeat', (req): ApiHeartbeatResponse => {
      const r = service.heartbeat(req);
      return { stop: r.stop, unknownAgent: r.unknownAgent };
    }),
    RequestTrial: unary('RequestTrial', async (req): Promise<RequestTrialResponse> => {
      const r = await service.requestTrial(req.agentId, req.sweepId);
      if (r.kind === 'trial') {
        return {
          trial: {
            trialId: r.trial.id,
            paramsJson: r.trial.paramsJson,
            command: [...r.command],
            program: r.program,
            resume: r.trial.preemptions > 0,
            firstMetricSeq: r.trial.firstMetricSeq,
          },
        };
      }
      if (r.kind === 'retry') return { retryAfterMs: r.afterMs };
      return { done: r.reason };
    }),
    CompleteTrial: unary(
      'CompleteTrial',
      async (req) => {
        const state = await service.completeTrial({
          agentId: req.agentId,
          trialId: req.trialId,
          exitCode: req.exitCode ?? null,
          signal: req.signal,
          startError: req.startError,
          stoppedReason: req.stoppedReason,
          stdoutTail: req.stdoutTail,
          stderrTail: req.stderrTail,
          lastMetricSeq: req.lastMetricSeq,
          argv: req.argv,
          lostReason: req.lostReason,
          reportError: req.reportError,
          preemptedReason: req.preemptedReason,
          ...(req.metricPoints !== undefined && req.metricPoints !== null ? { metricPoints: req.metricPoints, droppedPoints: req.droppedPoints } : {}),
        });
        return { state };
      },
    ),
    GetTrial: unary('GetTrial', (req) => trialDetail(service, req.trialId, opts.output)),
    GetStats: unary('GetStats', (): ApiControllerStats => {
      const ingest = opts.ingestStats?.() ?? { batches: 0, points: 0, duplicates: 0, rejected: {} };
      const mem = process.memoryUsage();
      // Optional: a service without its own refusal counters still serves GetStats.
      const serviceRefusals = (service as { refusals?: () => Record<string, number> }).refusals?.() ?? {};
      const rejectedAll = sumCounts(rejected, ingest.rejected, serviceRefusals);
      return {
        batches: ingest.batches,
        points: ingest.points,
        duplicates: ingest.duplicates,
        rejected: rejectedAll,
        lagP50Ms: service.ingestLag.quantile(0.5) || 0,
        lagP99Ms: service.ingestLag.quantile(0.99) || 0,
        lagSamples: service.ingestLag.count,
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        uptimeMs: Math.round(process.uptime() * 1000),
        ...service.counts(),
      };
    }),
    WatchSweep: (call) => {
      if (!authorized(call.metadata)) {
        call.emit('error', refuse(new UnauthenticatedError(), 'WatchSweep'));
        return;
      }
      watchSweep(call, service, opts.watchIntervalMs ?? 250, refuse);
    },
    WatchTrialOutput: (call) => {
      if (!authorized(call.metadata)) {
        call.emit('error', refuse(new UnauthenticatedError(), 'WatchTrialOutput'));
        return;
      }
      watchTrialOutput(call, service, opts.output, (err) => refuse(err, 'WatchTrialOutput'), validateRequest);
    },
    ExportSweep: (call) => {
      if (!authorized(call.metadata)) {
        call.emit('error', refuse(new UnauthenticatedError(), 'ExportSweep'));
        return;
      }
      void streamExport(call, service, (err) => refuse(err, 'ExportSweep'), validateRequest);
    },
  };
  server.addService(sweeperServiceDef(), handlers);

  server.addService(healthServiceDef(), {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const name = call.request.service;
      if (name === '' || name === 'sweeper.v1.Sweeper') callback(null, { status: 'SERVING' });
      else callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${name}'` });
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      const name = call.request.service;
      call.write({ status: name === '' || name === 'sweeper.v1.Sweeper' ? 'SERVING' : 'SERVICE_UNKNOWN' });
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    const creds = opts.tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }], false)
      : grpc.ServerCredentials.createInsecure();
    server.bindAsync(`${opts.host}:${opts.port}`, creds, (err, p) =>
      err ? reject(isAddressInUse(err) ? new AddressInUseError('gRPC API', opts.host, opts.port, { cause: err }) : err) : resolve(p),
    );
  });
  const address = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  log.info('gRPC API listening', { address });
  return {
    port,
    address,
    stop: () =>
      new Promise<void>((resolve) => {
        // Give in-flight calls a moment, then cut the rest (watch streams never end on their own).
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

function detail(service: SweepService, sweepId: string, limit: number): ApiSweepDetail {
  const sweep = service.getSweep(sweepId);
  const board = service.leaderboard(sweep);
  return toApiSweepDetail(service.sweepView(sweep, board), limit > 0 ? board.slice(0, limit) : board);
}

function trialDetail(service: SweepService, trialId: string, output?: TrialOutputSource): ApiTrialDetail {
  const t = service.getTrial(trialId);
  // A running trial's tails are its live output; an ended one's, what its agent reported.
  const tails = outputTails(t, output?.ring(t.id), GET_TRIAL_TAIL_LINES, GET_TRIAL_TAIL_CHARS);
  const sweep = service.getSweep(t.sweepId);
  const board = service.leaderboard(sweep);
  const view = board.find((v) => v.id === t.id) ?? service.trialView(t, sweep);
  const metric = sweep.config.metric;
  const hist = metric ? service.metrics.history(t.id, metric.name) : { steps: [], values: [] };
  return {
    trial: toApiTrial(view),
    argv: t.argv,
    history: t.history,
    metrics: service.metrics.summaries(t.id),
    stdoutTail: tails.stdout,
    stderrTail: tails.stderr,
    metricSteps: hist.steps,
    metricValues: hist.values,
    malformedLines: service.metrics.get(t.id)?.malformedLines ?? 0,
    outputDroppedLines: tails.droppedLines,
    liveOutput: tails.live,
  };
}

/** Lines of each stream GetTrial shows of a running trial (as many as an end report keeps), within this many characters. */
const GET_TRIAL_TAIL_LINES = 200;
const GET_TRIAL_TAIL_CHARS = 256 * 1024;
/** Characters of output in one WatchTrialOutput message, well under a client's default 4 MiB. */
const OUTPUT_CHUNK_CHARS = 256 * 1024;
/** New lines are sent at most this often: the agent batches them every 250 ms anyway. */
const OUTPUT_COALESCE_MS = 100;
/** How long an ended trial's watch waits for its run's final batch (the agent sends it before reporting). */
const FINAL_OUTPUT_WAIT_MS = 3000;

/**
 * WatchTrialOutput: what is held after the client's seq, then new lines as they come, until the
 * trial ends; then the run's last lines (waiting briefly for its final batch) and a message with
 * the end state. A client that stops reading is not buffered for: the next lines are read from
 * the ring when it drains, and what fell out of the ring meanwhile is skipped.
 */
function watchTrialOutput(
  call: grpc.ServerWritableStream<WatchTrialOutputRequest__Output, TrialOutput>,
  service: SweepService,
  output: TrialOutputSource | undefined,
  refuse: (err: unknown) => Partial<grpc.StatusObject>,
  validate: <Req>(rpc: string, req: Req) => Req,
): void {
  let trial;
  try {
    trial = service.getTrial(validate('WatchTrialOutput', call.request).trialId);
  } catch (err) {
    call.emit('error', refuse(err));
    return;
  }
  const t = trial;
  let cursor = Number(call.request.afterSeq) || 0;
  let closed = false;
  let ending = false;
  let waitingForDrain = false;
  let timer: NodeJS.Timeout | undefined;
  const write = (v: OutputView): boolean => {
    if (v.lines.length > 0) cursor = v.lines[v.lines.length - 1].seq;
    return call.write({ lines: v.lines, state: t.state, droppedLines: v.droppedLines, live: v.live });
  };
  /** Sends what the ring holds past the cursor; false when the client must drain first. */
  const flush = (): boolean => {
    const ring = output?.ring(t.id);
    for (;;) {
      const lines = ring?.after(cursor, OUTPUT_CHUNK_CHARS) ?? [];
      if (lines.length === 0) return true;
      if (!write({ state: t.state, live: true, droppedLines: ring?.droppedLines ?? 0, lines })) return false;
    }
  };
  const pump = () => {
    timer = undefined;
    if (closed || waitingForDrain) return;
    if (!flush()) {
      waitingForDrain = true;
      call.once('drain', () => {
        waitingForDrain = false;
        pump();
      });
    }
  };
  const schedule = () => {
    if (!timer && !closed) timer = setTimeout(pump, OUTPUT_COALESCE_MS);
  };
  const finish = () => {
    if (closed) return;
    closed = true;
    unwatch();
    unsubscribe();
    clearTimeout(timer);
  };
  /** Writes every chunk `view` gives past the cursor, waiting for room, then the end state, and ends the stream. */
  const drainAndEnd = async (view: (after: number) => OutputView) => {
    for (;;) {
      const v = view(cursor);
      if (v.lines.length === 0) break;
      if (!write(v)) await new Promise((r) => call.once('drain', r));
      if (closed) return;
    }
    write({ ...view(cursor), lines: [] });
    finish();
    call.end();
  };
  /** Live lines while the ring has any; else (no output log, nothing streamed) what the end report kept. */
  const ended = (after: number): OutputView => {
    const ring = output?.ring(t.id);
    if (ring && ring.size > 0) return { state: t.state, live: true, droppedLines: ring.droppedLines, lines: ring.after(after, OUTPUT_CHUNK_CHARS) };
    return outputView(t, undefined, after, OUTPUT_CHUNK_CHARS);
  };
  /** The trial ended while followed: its run's last lines (the agent sends its final batch right before reporting), then the end. */
  const end = async () => {
    if (ending) return;
    ending = true;
    // An agent that died sends no final batch.
    if (output && t.state !== 'crashed') await output.awaitFinal(t.id, FINAL_OUTPUT_WAIT_MS);
    if (!closed) await drainAndEnd(ended);
  };
  const unwatch = output?.watch(t.id, schedule) ?? (() => undefined);
  const unsubscribe = service.subscribe(t.sweepId, () => {
    if (isTerminal(t.state)) void end();
  });
  call.on('cancelled', finish);
  call.on('error', finish);
  if (isTerminal(t.state)) {
    // Already over: what is kept (the end report's tails, or a dead agent's last live lines), at once.
    ending = true;
    void drainAndEnd((after) => outputView(t, output?.ring(t.id), after, OUTPUT_CHUNK_CHARS));
    return;
  }
  pump();
}

/** Points of one metric per ExportSeries message: 800 KB of doubles, well under a client's default 4 MiB. */
const EXPORT_POINTS_PER_MESSAGE = 50_000;

/**
 * ExportSweep: the export's parts (sweeps/export.ts) as messages, a long history split over
 * several. Waits for the client to drain rather than buffer a whole sweep; stops when it goes.
 */
async function streamExport(
  call: grpc.ServerWritableStream<ExportSweepRequest__Output, ExportChunk>,
  service: SweepService,
  refuse: (err: unknown) => Partial<grpc.StatusObject>,
  validate: <Req>(rpc: string, req: Req) => Req,
): Promise<void> {
  let gone = false;
  const leave = () => (gone = true);
  call.on('cancelled', leave);
  call.on('error', leave);
  const room = () => new Promise<void>((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.once('drain', done);
    call.once('cancelled', done);
  });
  try {
    const req = validate('ExportSweep', call.request);
    for (const part of exportSweep(service, req.sweepId, { history: req.history, system: req.system })) {
      for (const chunk of exportChunks(part)) {
        if (gone) return;
        if (!call.write(chunk)) await room();
      }
    }
    if (!gone) call.end();
  } catch (err) {
    if (!gone) call.emit('error', refuse(err));
  }
}

function* exportChunks(part: ExportPart): Generator<ExportChunk> {
  if (part.kind === 'header') {
    yield { header: part.header };
    return;
  }
  const { series, value, ...trial } = part.trial;
  yield { trial: { ...trial, ...(value !== null ? { value } : {}) } };
  for (const s of series) {
    for (let at = 0; at < s.steps.length; at += EXPORT_POINTS_PER_MESSAGE) {
      yield { series: { name: s.name, steps: s.steps.slice(at, at + EXPORT_POINTS_PER_MESSAGE), values: s.values.slice(at, at + EXPORT_POINTS_PER_MESSAGE) } };
    }
  }
}

function watchSweep(
  call: grpc.ServerWritableStream<WatchSweepRequest__Output, ApiSweepDetail>,
  service: SweepService,
  intervalMs: number,
  refuse: (err: unknown, rpc: string) => Partial<grpc.StatusObject>,
): void {
  const { sweepId, limit } = call.request;
  let sweep;
  try {
    sweep = service.getSweep(sweepId);
  } catch (err) {
    call.emit('error', refuse(err, 'WatchSweep'));
    return;
  }
  let lastSent = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const send = () => {
    timer = undefined;
    if (closed) return;
    lastSent = Date.now();
    call.write(detail(service, sweepId, limit));
    if (service.isSettled(sweep)) finish();
  };
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(send, Math.max(0, lastSent + intervalMs - Date.now()));
  };
  const unsubscribe = service.subscribe(sweepId, schedule);
  const finish = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    if (timer) clearTimeout(timer);
    call.end();
  };
  call.on('cancelled', finish);
  call.on('error', finish);
  send();
}

/** Why a call was refused, as GetStats counts it: one reason per status, two for INVALID_ARGUMENT. */
export type RefusalReason =
  | 'invalid_request'
  | 'unauthenticated'
  | 'config_error'
  | 'not_found'
  | 'unknown_agent'
  | 'unknown_trial'
  | 'not_holder'
  | 'wrong_sweep'
  | 'failed_precondition'
  | 'invalid_argument'
  | 'unavailable'
  | 'internal';

export interface Refusal {
  code: grpc.status;
  details: string;
  reason: RefusalReason;
}

/** A request checkRequest refused: malformed, so it never reached the service. */
export class InvalidRequestError extends UsageError {}

/** A call without the API token, or with a wrong one. */
export class UnauthenticatedError extends SweeperError {
  constructor() {
    super('missing or wrong API token (--token or SWEEPER_TOKEN)');
  }
}

/**
 * The one mapping from the error a call failed with to the status its client gets and the reason
 * it is counted under, by class only. Subclasses before their parents: ConfigError and
 * InvalidRequestError are UsageErrors. Bad input is a UsageError; any other error, ours or not,
 * is a fault of the controller (INTERNAL, logged with its stack).
 */
export function toStatus(err: unknown, rpc: string, log: Logger): Refusal {
  const typed = (code: grpc.status, reason: RefusalReason): Refusal => ({ code, reason, details: (err as Error).message });
  if (err instanceof UnauthenticatedError) return typed(grpc.status.UNAUTHENTICATED, 'unauthenticated');
  if (err instanceof InvalidRequestError) return typed(grpc.status.INVALID_ARGUMENT, 'invalid_request');
  if (err instanceof ConfigError) return typed(grpc.status.INVALID_ARGUMENT, 'config_error');
  // An agent's call about what is not its own: the agents' own counters in `sweeper stats`.
  if (err instanceof NotHolderError) return typed(grpc.status.PERMISSION_DENIED, 'not_holder');
  if (err instanceof WrongSweepError) return typed(grpc.status.PERMISSION_DENIED, 'wrong_sweep');
  if (err instanceof NotFoundError && err.kind === 'agent') return typed(grpc.status.NOT_FOUND, 'unknown_agent');
  if (err instanceof NotFoundError) return typed(grpc.status.NOT_FOUND, 'not_found');
  if (err instanceof IllegalStateError) return typed(grpc.status.FAILED_PRECONDITION, 'failed_precondition');
  // JetStream out of reach (the event log says so): transient, and callers retry UNAVAILABLE.
  if (err instanceof StoreUnavailableError) {
    log.warn(`${rpc}: store unavailable`, { error: err.message });
    return typed(grpc.status.UNAVAILABLE, 'unavailable');
  }
  if (err instanceof UsageError) return typed(grpc.status.INVALID_ARGUMENT, 'invalid_argument');
  const message = err instanceof Error ? err.message : String(err);
  log.error(`${rpc} failed`, { error: err instanceof Error ? (err.stack ?? message) : message });
  return { code: grpc.status.INTERNAL, details: message, reason: 'internal' };
}

/**
 * Counters by reason from several sources, added: the adapter's, the ingest's and the
 * service's share one record in GetStats, and a reason two of them use (`internal`) is the sum.
 */
export function sumCounts(...records: Array<Record<string, number | undefined>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const record of records) for (const [k, v] of Object.entries(record)) if (v) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** A sweep and its trials (best first, as given) on the wire: GetSweep, WatchSweep, and `sweeper local`'s table. */
export function toApiSweepDetail(sweep: SweepView, trials: readonly TrialView[]): ApiSweepDetail {
  return { sweep: toApiSweep(sweep), trials: trials.map(toApiTrial) };
}

/** The one mapping of a sweep's view onto the wire; the proto's `optional` stands for null. */
export function toApiSweep(v: SweepView): ApiSweep {
  return {
    id: v.id,
    name: v.name,
    method: v.method,
    state: v.state,
    configJson: v.configJson,
    seed: v.seed,
    metricName: v.metricName,
    metricGoal: v.metricGoal,
    trialLimit: v.trialLimit,
    trialCount: v.trialCount,
    stateCounts: v.stateCounts,
    ...(v.bestValue !== null ? { bestValue: v.bestValue } : {}),
    bestTrialId: v.bestTrialId,
    createdAt: v.createdAt,
    finishedAt: v.finishedAt,
    finishReason: v.finishReason,
    activeAgents: v.activeAgents,
  };
}

/** The one mapping of a trial's view onto the wire; the proto's `optional` stands for null. */
export function toApiTrial(v: TrialView): ApiTrial {
  return {
    id: v.id,
    sweepId: v.sweepId,
    number: v.number,
    state: v.state,
    paramsJson: v.paramsJson,
    agentId: v.agentId,
    createdAt: v.createdAt,
    startedAt: v.startedAt,
    endedAt: v.endedAt,
    ...(v.bestValue !== null ? { bestValue: v.bestValue } : {}),
    ...(v.lastValue !== null ? { lastValue: v.lastValue } : {}),
    lastStep: v.lastStep,
    points: v.points,
    ...(v.exitCode !== null ? { exitCode: v.exitCode } : {}),
    signal: v.signal,
    reason: v.reason,
    rank: v.rank,
    gpu: v.gpu,
    ...(v.gpuUtil !== null ? { gpuUtil: v.gpuUtil } : {}),
    ...(v.gpuMemoryMb !== null ? { gpuMemoryMb: v.gpuMemoryMb } : {}),
    missingPoints: v.missingPoints,
    droppedPoints: v.droppedPoints,
  };
}

/** Largest request accepted; config texts and output tails are the big ones. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const MAX_TAIL_LINES = 1000;
const MAX_LINE_CHARS = 64 * 1024;

/**
 * The lists a request may carry, with at most how many entries of at most how many characters.
 * argv's limits are shared with the config validator (common/limits.ts), which refuses a sweep
 * whose trials could break them: otherwise their CompleteTrial would be refused here.
 */
const LIST_LIMITS: ReadonlyArray<[key: string, entries: number, chars: number]> = [
  ['stdoutTail', MAX_TAIL_LINES, MAX_LINE_CHARS],
  ['stderrTail', MAX_TAIL_LINES, MAX_LINE_CHARS],
  ['argv', MAX_ARGV_ENTRIES, MAX_ARGV_ENTRY_CHARS],
  ['runningTrialIds', MAX_TAIL_LINES, MAX_LINE_CHARS],
];

/**
 * Checks of what clients send beyond what protobuf's types already enforce: id shapes and sizes,
 * so a malformed request is refused with a reason instead of reaching the service.
 */
export function checkRequest(rpc: string, req: unknown): string | undefined {
  const r = req as Record<string, unknown>;
  for (const key of ['sweepId', 'agentId', 'trialId']) {
    const v = r[key];
    if (v === undefined || (rpc === 'ListSweeps' && key === 'sweepId')) continue;
    if (typeof v !== 'string' || !ID_PATTERN.test(v)) return `${key} must be ${ID_RULE}`;
  }
  if (rpc === 'CreateSweep' && typeof r.configText === 'string' && r.configText.length > 1024 * 1024) return 'config text over 1 MiB';
  for (const [key, entries, chars] of LIST_LIMITS) {
    const v = r[key];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length > entries) return `${key}: at most ${entries} entries`;
    if (v.some((line) => typeof line !== 'string' || line.length > chars)) return `${key}: entries of at most ${chars} characters`;
  }
  return undefined;
}
