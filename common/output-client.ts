/**
 * The client side of WatchTrialOutput: a trial's output as the controller streams it, for
 * `sweeper logs --follow` and tests: SweeperClient's stream with a client of its own, for a stream
 * that may be resumed from its last line after a controller restart.
 */
import { SweeperClient, type ClientSecurity } from './api-client.js';
import type { TrialOutput__Output } from './proto-types/sweeper/v1/TrialOutput.js';

export type ApiTrialOutput = TrialOutput__Output;

export interface TrialOutputStream extends AsyncIterable<ApiTrialOutput> {
  /** Ends the stream; the iterator then returns. */
  cancel(): void;
  /** Lets go of the connection (after the iterator is done). */
  close(): void;
}

/** The trial's output after `afterSeq` (0: all the controller holds), then its new lines until it ends. */
export function watchTrialOutput(address: string, security: ClientSecurity, trialId: string, afterSeq = 0): TrialOutputStream {
  // A client of its own, so a follower that resumes after a controller restart lets go of the old one.
  const client = new SweeperClient(address, security);
  const stream = client.watchTrialOutput(trialId, afterSeq);
  return { cancel: () => stream.cancel(), close: () => client.close(), [Symbol.asyncIterator]: () => stream[Symbol.asyncIterator]() };
}
