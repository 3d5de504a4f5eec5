/**
 * The error root (domain/errors.ts): every error class of ours under SweeperError, coerceError,
 * and the event log's StoreUnavailableError, which the gRPC adapter maps by class.
 */
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, NatsError } from 'nats';
import { describe, expect, it } from 'vitest';
import { JournalError } from '../../agent/spool.js';
import { createLogger } from '../../common/log.js';
import { NotPositiveDefiniteError } from '../../controller/strategies/gp/linalg.js';
import { toStatus } from '../../controller/grpc-server.js';
import { storeFailure } from '../../controller/sweeps/event-log.js';
import { coerceError, IllegalStateError, NotHolderError, StoreUnavailableError, SweeperError, UsageError } from '../../domain/errors.js';
import { TypedJsonError } from '../../domain/values.js';

const log = createLogger('test', () => {});

describe('the error root', () => {
  it('holds the classes that used to bypass it', () => {
    for (const err of [new JournalError('no header'), new NotPositiveDefiniteError(3), new TypedJsonError('unexpected end at position 2', 2)]) {
      expect(err).toBeInstanceOf(SweeperError);
      expect(err.name).toBe(err.constructor.name);
    }
    expect(new NotPositiveDefiniteError(3).message).toBe('matrix is not positive definite (row 3)');
  });
});

describe('coerceError', () => {
  it('returns an error of ours as it is', () => {
    const err = new NotHolderError('a', 't', 'b');
    expect(coerceError(err)).toBe(err);
  });

  it('wraps anything else, keeping its message and the original as the cause', () => {
    const type = new TypeError('x is undefined');
    const wrapped = coerceError(type);
    expect(wrapped).toBeInstanceOf(SweeperError);
    expect(wrapped.message).toBe('x is undefined');
    expect(wrapped.cause).toBe(type);
    expect(coerceError('a string')).toMatchObject({ message: 'a string', cause: 'a string' });
    expect(coerceError(undefined).message).toBe('undefined');
  });
});

describe('StoreUnavailableError', () => {
  it('is what the event log makes of a JetStream that cannot be reached, the NATS error as its cause', () => {
    for (const code of [ErrorCode.Timeout, ErrorCode.Disconnect, ErrorCode.ConnectionClosed, ErrorCode.ConnectionDraining, ErrorCode.NoResponders, ErrorCode.ConnectionRefused]) {
      const nats = NatsError.errorForCode(code);
      const err = storeFailure(nats);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err).toMatchObject({ message: `controller store unavailable: ${nats.message}`, cause: nats });
    }
  });

  it('leaves other failures as they are: a refusal is not an outage', () => {
    const refused = new NatsError('wrong last sequence: 3', '400');
    expect(storeFailure(refused)).toBe(refused);
    const plain = new Error('TIMEOUT');
    expect(storeFailure(plain)).toBe(plain);
  });
});

describe('toStatus maps by class', () => {
  const status = (err: unknown) => toStatus(err, 'Test', log);

  it('StoreUnavailableError: UNAVAILABLE, which clients retry', () => {
    expect(status(new StoreUnavailableError(NatsError.errorForCode(ErrorCode.Timeout)))).toEqual({
      code: grpc.status.UNAVAILABLE,
      reason: 'unavailable',
      details: 'controller store unavailable: TIMEOUT',
    });
  });

  it('bad input (a UsageError) is INVALID_ARGUMENT; an unknown SweeperError or other error is INTERNAL, whatever its message', () => {
    expect(status(new UsageError('bad flag'))).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: 'invalid_argument', details: 'bad flag' });
    expect(status(new IllegalStateError('sweep is finished'))).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: 'failed_precondition' });
    expect(status(new SweeperError('bad thing'))).toEqual({ code: grpc.status.INTERNAL, reason: 'internal', details: 'bad thing' });
    expect(status(new Error('TIMEOUT'))).toEqual({ code: grpc.status.INTERNAL, reason: 'internal', details: 'TIMEOUT' });
  });
});
