/** Exit codes and error reporting for the CLI: one place maps typed errors to codes. */
import * as grpc from '@grpc/grpc-js';
import { CommanderError } from 'commander';
import { ApiError } from '../common/api-client.js';
import { MissingDependencyError, UsageError } from '../domain/errors.js';

/** 3: `sweeper local` ran the sweep, but no trial finished (every one failed, crashed or was stopped). */
export const EXIT = { ok: 0, failure: 1, usage: 2, noTrialFinished: 3, interrupted: 130 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end through exitOverride with exit code 0.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof ApiError && [grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION].includes(err.code)) {
    return EXIT.usage;
  }
  return EXIT.failure;
}

export function reportError(err: unknown): void {
  // Commander has already printed its own message.
  if (err instanceof CommanderError) return;
  if (err instanceof ApiError && err.code === grpc.status.UNAVAILABLE) {
    process.stderr.write(`sweeper: cannot reach the controller at ${err.rpc === 'WatchSweep' ? 'its address' : 'the given address'} (${err.details}); is 'sweeper server' running? (--controller / SWEEPER_CONTROLLER)\n`);
    return;
  }
  if (err instanceof UsageError || err instanceof ApiError || err instanceof MissingDependencyError) {
    process.stderr.write(`sweeper: ${err.message}\n`);
    return;
  }
  const text = err instanceof Error ? (process.env.SWEEPER_LOG_LEVEL === 'debug' ? withCauses(err) : err.message) : String(err);
  process.stderr.write(`sweeper: ${text}\n`);
}

/** The stack of `err` and of each cause under it: a wrapped error (coerceError) keeps where it came from. */
function withCauses(err: Error): string {
  const parts = [err.stack ?? err.message];
  let cause: unknown = err.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    parts.push(`caused by: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return parts.join('\n');
}
