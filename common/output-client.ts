/**
 * The client side of WatchTrialOutput: a trial's output as the controller streams it, for
 * `sweeper logs --follow` and tests. Kept beside SweeperClient (api-client.ts), with the same
 * credentials, for a stream that may be resumed from its last line after a controller restart.
 */
import * as grpc from '@grpc/grpc-js';
import { ApiError, type ClientSecurity } from './api-client.js';
import type { TrialOutput__Output } from './proto-types/sweeper/v1/TrialOutput.js';
import { sweeperClientCtor } from './proto.js';

export type ApiTrialOutput = TrialOutput__Output;

export interface TrialOutputStream extends AsyncIterable<ApiTrialOutput> {
  /** Ends the stream; the iterator then returns. */
  cancel(): void;
  /** Lets go of the connection (after the iterator is done). */
  close(): void;
}

/** The trial's output after `afterSeq` (0: all the controller holds), then its new lines until it ends. */
export function watchTrialOutput(address: string, security: ClientSecurity, trialId: string, afterSeq = 0): TrialOutputStream {
  const Ctor = sweeperClientCtor();
  const creds = security.tls || security.tlsCa ? grpc.credentials.createSsl(security.tlsCa ?? null) : grpc.credentials.createInsecure();
  const metadata = new grpc.Metadata();
  if (security.token) metadata.set('authorization', `Bearer ${security.token}`);
  const client = new Ctor(address, creds, {});
  const stream = client.WatchTrialOutput({ trialId, afterSeq }, metadata) as grpc.ClientReadableStream<ApiTrialOutput>;
  return {
    cancel: () => stream.cancel(),
    close: () => client.close(),
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of stream) yield chunk as ApiTrialOutput;
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.CANCELLED) return;
        throw new ApiError('WatchTrialOutput', e.code, e.details);
      }
    },
  };
}
