/**
 * A promise-based client of the controller's gRPC API, used by agents and the CLI.
 * `withRetry` adds the backoff agents need when the controller is away.
 */
import * as grpc from '@grpc/grpc-js';
import type {
  ApiCompleteTrialRequest,
  ApiControllerStats,
  ApiHeartbeatRequest,
  ApiHeartbeatResponse,
  ApiRegisterAgentRequest,
  ApiRegisterAgentResponse,
  ApiRequestTrialResponse,
  ApiSweep,
  ApiSweepDetail,
  ApiTrialDetail,
} from './api-types.js';
import type { CompleteTrialResponse__Output } from './proto-types/sweeper/v1/CompleteTrialResponse.js';
import type { ExportChunk__Output } from './proto-types/sweeper/v1/ExportChunk.js';
import type { TrialOutput__Output } from './proto-types/sweeper/v1/TrialOutput.js';
import type { ListSweepsResponse__Output } from './proto-types/sweeper/v1/ListSweepsResponse.js';
import { SweeperError } from '../domain/errors.js';
import type { Logger } from './log.js';
import { sweeperClientCtor } from './proto.js';

export class ApiError extends SweeperError {
  constructor(
    readonly rpc: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details || `${rpc} failed (${grpc.status[code]})`);
  }
  /** Worth retrying: the controller is down, restarting or overloaded. */
  get transient(): boolean {
    return [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED].includes(this.code);
  }
}

export const DEFAULT_CONTROLLER = '127.0.0.1:50051';

/** The messages of a server-streaming call; `cancel` ends it and the iterator then returns. */
export type ServerStream<T> = AsyncIterable<T> & { cancel(): void };

export interface ClientSecurity {
  /** The controller's bearer token (`sweeper server --token`). */
  token?: string;
  /** Use TLS; with `tlsCa`, trust that CA (PEM) rather than the system's roots. */
  tls?: boolean;
  tlsCa?: Buffer;
}

export class SweeperClient {
  private readonly client: grpc.Client & Record<string, Function>;
  private readonly metadata: grpc.Metadata;

  constructor(
    readonly address: string,
    security: ClientSecurity = {},
    private readonly deadlineMs = 15_000,
  ) {
    const Ctor = sweeperClientCtor();
    const creds = security.tls || security.tlsCa ? grpc.credentials.createSsl(security.tlsCa ?? null) : grpc.credentials.createInsecure();
    this.metadata = new grpc.Metadata();
    if (security.token) this.metadata.set('authorization', `Bearer ${security.token}`);
    this.client = new Ctor(address, creds, {
      // Reconnect quickly after a controller restart.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
      // Methods are called by name in `call`; the wrappers below give each its message types.
    }) as unknown as grpc.Client & Record<string, Function>;
  }

  close(): void {
    this.client.close();
  }

  private call<Res>(rpc: string, req: object, deadlineMs = this.deadlineMs): Promise<Res> {
    return new Promise((resolve, reject) => {
      const method = this.client[rpc].bind(this.client);
      method(req, this.metadata, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Res) => {
        if (err) reject(new ApiError(rpc, err.code, err.details));
        else resolve(res);
      });
    });
  }

  createSweep(configText: string, filename?: string): Promise<ApiSweep> {
    return this.call('CreateSweep', { configText, filename: filename ?? '' });
  }
  getSweep(sweepId: string, limit = 0): Promise<ApiSweepDetail> {
    return this.call('GetSweep', { sweepId, limit });
  }
  async listSweeps(): Promise<ApiSweep[]> {
    return (await this.call<ListSweepsResponse__Output>('ListSweeps', {})).sweeps;
  }
  pauseSweep(sweepId: string): Promise<ApiSweep> {
    return this.call('PauseSweep', { sweepId });
  }
  resumeSweep(sweepId: string): Promise<ApiSweep> {
    return this.call('ResumeSweep', { sweepId });
  }
  stopSweep(sweepId: string): Promise<ApiSweep> {
    return this.call('StopSweep', { sweepId });
  }
  cancelSweep(sweepId: string): Promise<ApiSweep> {
    return this.call('CancelSweep', { sweepId });
  }
  registerAgent(req: ApiRegisterAgentRequest): Promise<ApiRegisterAgentResponse> {
    return this.call('RegisterAgent', req);
  }
  heartbeat(req: ApiHeartbeatRequest): Promise<ApiHeartbeatResponse> {
    return this.call('Heartbeat', req);
  }
  requestTrial(agentId: string, sweepId: string): Promise<ApiRequestTrialResponse> {
    // The controller may wait on JetStream; give it more room than a read.
    return this.call('RequestTrial', { agentId, sweepId }, 30_000);
  }
  completeTrial(req: ApiCompleteTrialRequest): Promise<CompleteTrialResponse__Output> {
    return this.call('CompleteTrial', req, 30_000);
  }
  getTrial(trialId: string): Promise<ApiTrialDetail> {
    return this.call('GetTrial', { trialId });
  }
  getStats(): Promise<ApiControllerStats> {
    return this.call('GetStats', {});
  }

  /** Snapshots of the sweep until it settles; the iterator ends with the stream. */
  watchSweep(sweepId: string, limit = 0): ServerStream<ApiSweepDetail> {
    return this.serverStream('WatchSweep', { sweepId, limit });
  }

  /** The trial's output after `afterSeq` (0: all the controller holds), then its new lines until it ends. */
  watchTrialOutput(trialId: string, afterSeq = 0): ServerStream<TrialOutput__Output> {
    return this.serverStream('WatchTrialOutput', { trialId, afterSeq });
  }

  /** The sweep's export as the controller streams it: a header, then each trial in pieces. */
  exportSweep(req: { sweepId: string; history: boolean; system: boolean }): ServerStream<ExportChunk__Output> {
    return this.serverStream('ExportSweep', req);
  }

  /** A server-streaming call: its messages, ending when the server ends it or on `cancel`; failures as ApiError. */
  private serverStream<T>(rpc: string, req: object): ServerStream<T> {
    const stream = this.client[rpc].call(this.client, req, this.metadata) as grpc.ClientReadableStream<T>;
    return {
      cancel: () => stream.cancel(),
      async *[Symbol.asyncIterator]() {
        try {
          for await (const message of stream) yield message as T;
        } catch (err) {
          const e = err as grpc.ServiceError;
          if (e.code === grpc.status.CANCELLED) return;
          throw new ApiError(rpc, e.code, e.details);
        }
      },
    };
  }
}

/**
 * Call `fn` until it succeeds or fails with a non-transient error, backing off from 200 ms to
 * 5 s, and saying so every few seconds. `signal` aborts the wait.
 */
export async function withRetry<T>(what: string, fn: () => Promise<T>, log: Logger, signal?: AbortSignal): Promise<T> {
  let delay = 200;
  let lastSaid = 0;
  const started = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError) || !err.transient || signal?.aborted) throw err;
      if (Date.now() - lastSaid > 5000) {
        lastSaid = Date.now();
        log.warn(`controller unreachable, retrying: ${what}`, { for: `${Math.round((Date.now() - started) / 1000)}s`, error: err.details });
      }
      await sleep(delay, signal);
      delay = Math.min(5000, delay * 2);
    }
  }
}

/** Resolves once the controller answers, for scripts that have just started one. */
export async function waitForController(client: SweeperClient, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.listSweeps();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
