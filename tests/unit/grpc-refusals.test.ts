/**
 * How the gRPC adapter refuses calls: one mapping from error to status and reason (toStatus),
 * every refusal counted by that reason in GetStats, with the ingest's and the service's own
 * counters added in. A stub service stands in for SweepService, so no NATS is needed.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { NotFoundError, StoreUnavailableError, SweeperError, UsageError } from '../../domain/errors.js';
import { MAX_ARGV_ENTRIES, MAX_ARGV_ENTRY_CHARS } from '../../common/limits.js';
import { createLogger } from '../../common/log.js';
import { ConfigError } from '../../controller/config/errors.js';
import {
  checkRequest,
  InvalidRequestError,
  startGrpcServer,
  sumCounts,
  toStatus,
  UnauthenticatedError,
  type GrpcServerHandle,
} from '../../controller/grpc-server.js';
import { IllegalStateError } from '../../domain/errors.js';
import { ID_RULE, MAX_ID_CHARS } from '../../domain/ids.js';
import type { SweepService } from '../../controller/sweeps/sweep-service.js';

const log = createLogger('test', () => {});

describe('toStatus', () => {
  const status = (err: unknown) => toStatus(err, 'Test', log);

  it('maps each kind of error to one status and one reason', () => {
    expect(status(new UnauthenticatedError())).toEqual({
      code: grpc.status.UNAUTHENTICATED,
      reason: 'unauthenticated',
      details: 'missing or wrong API token (--token or SWEEPER_TOKEN)',
    });
    expect(status(new InvalidRequestError('invalid GetSweep request: bad id'))).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      reason: 'invalid_request',
      details: 'invalid GetSweep request: bad id',
    });
    expect(status(new ConfigError([{ path: 'method', message: 'required' }]))).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      reason: 'config_error',
      details: 'method: required',
    });
    expect(status(new NotFoundError('sweep', 'abc'))).toEqual({ code: grpc.status.NOT_FOUND, reason: 'not_found', details: "unknown sweep 'abc'" });
    expect(status(new IllegalStateError('sweep is finished'))).toEqual({
      code: grpc.status.FAILED_PRECONDITION,
      reason: 'failed_precondition',
      details: 'sweep is finished',
    });
    expect(status(new UsageError('bad flag'))).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: 'invalid_argument', details: 'bad flag' });
    // By class only: an error of ours that is not bad input is the controller's fault, and so is
    // a foreign error whatever its text says; only the event log's StoreUnavailableError is transient.
    expect(status(new SweeperError('bad thing'))).toEqual({ code: grpc.status.INTERNAL, reason: 'internal', details: 'bad thing' });
    expect(status(new StoreUnavailableError(new Error('TIMEOUT')))).toEqual({
      code: grpc.status.UNAVAILABLE,
      reason: 'unavailable',
      details: 'controller store unavailable: TIMEOUT',
    });
    expect(status(new Error('TIMEOUT'))).toEqual({ code: grpc.status.INTERNAL, reason: 'internal', details: 'TIMEOUT' });
    expect(status(new TypeError('x is undefined'))).toEqual({ code: grpc.status.INTERNAL, reason: 'internal', details: 'x is undefined' });
    expect(status('a string')).toEqual({ code: grpc.status.INTERNAL, reason: 'internal', details: 'a string' });
  });
});

describe('sumCounts', () => {
  it('adds counters by reason, leaving out zeros and gaps', () => {
    expect(sumCounts({ internal: 1, config_error: 2 }, { internal: 3, bad_json: undefined, schema: 0 }, { not_holder: 4 })).toEqual({
      internal: 4,
      config_error: 2,
      not_holder: 4,
    });
  });
});

describe('checkRequest argv limits (common/limits.ts)', () => {
  const argv = (entries: number, chars: number) => checkRequest('CompleteTrial', { argv: Array.from({ length: entries }, () => 'a'.repeat(chars)) });

  it('accepts argv up to the limits the config validator enforces, and refuses beyond', () => {
    expect(argv(MAX_ARGV_ENTRIES, 1)).toBeUndefined();
    expect(argv(1, MAX_ARGV_ENTRY_CHARS)).toBeUndefined();
    expect(argv(MAX_ARGV_ENTRIES + 1, 1)).toBe('argv: at most 1000 entries');
    expect(argv(1, MAX_ARGV_ENTRY_CHARS + 1)).toBe('argv: entries of at most 65536 characters');
  });
});

describe('checkRequest ids (domain/ids.ts)', () => {
  it('takes the ids the service takes, and no longer ones', () => {
    expect(checkRequest('GetSweep', { sweepId: 'a'.repeat(MAX_ID_CHARS) })).toBeUndefined();
    expect(checkRequest('GetSweep', { sweepId: 'a'.repeat(MAX_ID_CHARS + 1) })).toBe(`sweepId must be ${ID_RULE}`);
    expect(checkRequest('RegisterAgent', { sweepId: 's1', agentId: 'gpu box' })).toBe(`agentId must be ${ID_RULE}`);
  });
});

describe('refusals counted by reason in GetStats', () => {
  let server: GrpcServerHandle;
  let client: SweeperClient;

  /** Just enough of SweepService: createSweep fails as its config text says. */
  const service = {
    heartbeatIntervalMs: 1000,
    heartbeatTimeoutMs: 4000,
    ingestLag: { quantile: () => 0, count: 0 },
    counts: () => ({ sweeps: 0, trials: 0 }),
    refusals: () => ({ not_holder: 2, internal: 1 }),
    getSweep: (id: string) => {
      throw new NotFoundError('sweep', id);
    },
    createSweep: async (text: string) => {
      const errors: Record<string, Error> = {
        config: new ConfigError([{ path: 'method', message: 'required' }]),
        state: new IllegalStateError('sweep is finished'),
        usage: new UsageError('bad'),
        store: new StoreUnavailableError(new Error('TIMEOUT waiting for JetStream')),
      };
      throw errors[text] ?? new Error('boom');
    },
  } as unknown as SweepService;

  beforeAll(async () => {
    server = await startGrpcServer({
      service,
      ingestStats: () => ({ batches: 0, points: 0, duplicates: 0, rejected: { bad_json: 5, internal: 10 } }),
      host: '127.0.0.1',
      port: 0,
      log,
      token: 'tok',
    });
    client = new SweeperClient(server.address, { token: 'tok' });
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it('counts every refused call once, under the reason of its status', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code: number }) => grpc.status[e.code]);
    expect(await code(client.createSweep('config'))).toBe('INVALID_ARGUMENT');
    expect(await code(client.createSweep('config'))).toBe('INVALID_ARGUMENT');
    expect(await code(client.createSweep('state'))).toBe('FAILED_PRECONDITION');
    expect(await code(client.createSweep('usage'))).toBe('INVALID_ARGUMENT');
    expect(await code(client.createSweep('store'))).toBe('UNAVAILABLE');
    expect(await code(client.createSweep('boom'))).toBe('INTERNAL');
    expect(await code(client.getSweep('nope'))).toBe('NOT_FOUND');
    expect(await code(client.getSweep('not a valid id!'))).toBe('INVALID_ARGUMENT');
    const stranger = new SweeperClient(server.address, { token: 'wrong' });
    expect(await code(stranger.getStats())).toBe('UNAUTHENTICATED');
    // A watch is refused through the same place, for a missing token and for an unknown sweep.
    const watch = async (c: SweeperClient, id: string) => {
      for await (const _ of c.watchSweep(id)) return 'ok';
      return 'ended';
    };
    expect(await code(watch(stranger, 'abc'))).toBe('UNAUTHENTICATED');
    expect(await code(watch(client, 'abc'))).toBe('NOT_FOUND');
    stranger.close();

    expect((await client.getStats()).rejected).toEqual({
      config_error: 2,
      failed_precondition: 1,
      invalid_argument: 1,
      unavailable: 1,
      internal: 1 + 10 + 1,
      not_found: 2,
      invalid_request: 1,
      unauthenticated: 2,
      bad_json: 5,
      not_holder: 2,
    });
  });
});
