/**
 * Sends what running trials print to JetStream as it is printed, for `sweeper logs --follow`, the
 * dashboard's trial page and the last lines of a trial whose agent died.
 *
 * `add` is called for every line the agent reads from a program and only ever queues it (cut,
 * rate-limited, bounded: output-limits.ts), so the program is never slowed by NATS. Per trial one
 * batch is on the wire at a time, which keeps its batches in order in the stream; a batch that
 * fails or times out goes again under the same message id. `finishTrial` sends what is left with
 * a final mark, waiting a bounded time. Nothing here throws into the agent.
 */
import { randomBytes } from 'node:crypto';
import type { JetStreamClient, NatsConnection } from 'nats';
import type { Logger } from '../common/log.js';
import { ThrottledWarner } from '../common/log.js';
import { OUTPUT_STREAM, outputMsgId, outputSubject, type OutputBatch } from '../common/output-wire.js';
import { outputLimits, OutputBuffer, type DropCounts, type OutputChunk, type OutputLimits } from './output-limits.js';

export interface OutputPublisherOptions {
  nc: NatsConnection;
  sweepId: string;
  agentId: string;
  log: Logger;
  limits?: Partial<OutputLimits>;
  /** How long to wait for JetStream's ack before sending a batch again. */
  publishTimeoutMs?: number;
  now?: () => number;
}

export interface OutputPublisherStats {
  batches: number;
  lines: number;
  resends: number;
  droppedLines: number;
}

/** What became of one trial's output. */
export interface OutputSummary {
  sent: number;
  dropped: DropCounts;
  /** Whether the final batch was acknowledged (false: NATS did not take it in time). */
  complete: boolean;
}

interface Batch {
  seq: number;
  chunk: OutputChunk;
  data: Uint8Array;
  final: boolean;
}

class TrialOutput {
  readonly run = randomBytes(6).toString('base64url');
  nextSeq = 1;
  inFlight: Batch | null = null;
  retryTimer: NodeJS.Timeout | null = null;
  retryDelayMs = 0;
  sent = 0;
  /** Set by finishTrial: the final batch waits to be cut once the queue is empty. */
  finishing: { resolve: (complete: boolean) => void; timer: NodeJS.Timeout } | null = null;
  finalAcked = false;

  constructor(
    readonly trialId: string,
    readonly subject: string,
    readonly buffer: OutputBuffer,
  ) {}
}

const encoder = new TextEncoder();
const DEFAULT_FINISH_TIMEOUT_MS = 3000;

export class OutputPublisher {
  private readonly js: JetStreamClient;
  private readonly limits: Readonly<OutputLimits>;
  private readonly trials = new Map<string, TrialOutput>();
  private readonly ticker: NodeJS.Timeout;
  private readonly warner: ThrottledWarner;
  private readonly publishTimeoutMs: number;
  private readonly now: () => number;
  private closed = false;
  private readonly counters = { batches: 0, lines: 0, resends: 0, droppedLines: 0 };

  constructor(private readonly opts: OutputPublisherOptions) {
    this.js = opts.nc.jetstream();
    this.limits = outputLimits(opts.limits);
    this.warner = new ThrottledWarner(opts.log);
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 5000;
    this.now = opts.now ?? Date.now;
    this.ticker = setInterval(() => this.tick(), this.limits.flushIntervalMs);
    this.ticker.unref();
  }

  /** A line the trial printed. Never throws, never waits. */
  add(trialId: string, stream: 'stdout' | 'stderr', line: string): void {
    if (this.closed) return;
    try {
      const t = this.trialFor(trialId);
      if (t.finishing) return;
      if (!t.buffer.add(stream, line)) {
        this.counters.droppedLines++;
        return;
      }
      if (t.buffer.full) this.pump(t);
    } catch (err) {
      this.warner.warn('add', 'unexpected error queueing an output line', { error: String(err) });
    }
  }

  /**
   * The trial's program has exited: send what is left and a final batch, waiting at most
   * `timeoutMs` (or until `signal` aborts) for JetStream to take it. Never rejects.
   */
  finishTrial(trialId: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<OutputSummary> {
    const t = this.trialFor(trialId);
    const summary = (complete: boolean): OutputSummary => {
      this.forget(t);
      return { sent: t.sent, dropped: { ...t.buffer.dropped }, complete };
    };
    if (this.closed || t.finishing) return Promise.resolve(summary(false));
    return new Promise<boolean>((resolve) => {
      const onAbort = () => done(false);
      const done = (complete: boolean) => {
        if (!t.finishing) return;
        clearTimeout(t.finishing.timer);
        opts.signal?.removeEventListener('abort', onAbort);
        t.finishing = null;
        resolve(complete);
      };
      t.finishing = { resolve: done, timer: setTimeout(() => done(false), opts.timeoutMs ?? DEFAULT_FINISH_TIMEOUT_MS) };
      if (opts.signal?.aborted) return done(false);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pump(t);
    }).then(summary);
  }

  stats(): OutputPublisherStats {
    return { ...this.counters };
  }

  /** Stops sending; lines still queued are dropped (the trials have ended, or the agent is going). */
  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
    for (const t of this.trials.values()) {
      t.finishing?.resolve(false);
      this.forget(t);
    }
  }

  private trialFor(trialId: string): TrialOutput {
    let t = this.trials.get(trialId);
    if (!t) {
      t = new TrialOutput(trialId, outputSubject(this.opts.sweepId, this.opts.agentId, trialId), new OutputBuffer(this.limits, this.now));
      this.trials.set(trialId, t);
    }
    return t;
  }

  private forget(t: TrialOutput): void {
    if (t.retryTimer) clearTimeout(t.retryTimer);
    t.retryTimer = null;
    if (this.trials.get(t.trialId) === t) this.trials.delete(t.trialId);
  }

  private tick(): void {
    for (const t of this.trials.values()) if (t.buffer.hasPending) this.pump(t);
  }

  /** Sends the trial's next batch when none of it is on the wire. */
  private pump(t: TrialOutput): void {
    if (t.inFlight || t.retryTimer || this.closed || t.finalAcked) return;
    if (!t.buffer.hasPending && !t.finishing) return;
    const chunk = t.buffer.cut();
    // A finishing trial's last chunk is its final batch; an earlier one still has lines behind it.
    const final = t.finishing !== null && !t.buffer.hasPending;
    const batch: OutputBatch = { sweepId: this.opts.sweepId, trialId: t.trialId, run: t.run, seq: t.nextSeq++, lines: chunk.lines };
    if (chunk.droppedLines > 0) {
      batch.droppedLines = chunk.droppedLines;
      batch.droppedBytes = chunk.droppedBytes;
    }
    if (final) batch.final = true;
    t.inFlight = { seq: batch.seq, chunk, data: encoder.encode(JSON.stringify(batch)), final };
    this.counters.batches++;
    this.send(t, t.inFlight);
  }

  private send(t: TrialOutput, batch: Batch): void {
    let pending;
    try {
      pending = this.js.publish(t.subject, batch.data, {
        msgID: outputMsgId(t.trialId, t.run, batch.seq),
        timeout: this.publishTimeoutMs,
        expect: { streamName: OUTPUT_STREAM },
      });
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      () => this.onAck(t, batch),
      (err) => this.onFailure(t, batch, err),
    );
  }

  private onAck(t: TrialOutput, batch: Batch): void {
    if (t.inFlight !== batch) return;
    t.inFlight = null;
    t.retryDelayMs = 0;
    t.buffer.release(batch.chunk);
    t.sent += batch.chunk.lines.length;
    this.counters.lines += batch.chunk.lines.length;
    if (batch.final) {
      t.finalAcked = true;
      t.finishing?.resolve(true);
      return;
    }
    if (t.buffer.full || t.finishing) this.pump(t);
  }

  private onFailure(t: TrialOutput, batch: Batch, err: unknown): void {
    if (t.inFlight !== batch || this.closed || !this.trials.has(t.trialId)) return;
    this.warner.warn('publish', 'output batch not acknowledged; will resend', { trial: t.trialId, seq: batch.seq, error: err instanceof Error ? err.message : String(err) });
    t.retryDelayMs = Math.min(5000, Math.max(100, t.retryDelayMs * 2));
    t.retryTimer = setTimeout(() => {
      t.retryTimer = null;
      this.counters.resends++;
      this.send(t, batch);
    }, t.retryDelayMs);
  }
}
