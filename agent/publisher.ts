/**
 * Sends an agent's metric points to JetStream, batched per trial.
 *
 * Per trial: points queue up and leave as one `MetricBatch` when a batch is full or at the next
 * flush tick, so a trial logging thousands of points a second still sends a few messages a second.
 * A trial has at most one batch on the wire, which keeps its batches in seq order in the stream;
 * different trials are sent concurrently, so acks overlap. A batch that fails or times out is resent
 * with the same seq and message id (JetStream drops the copy if the first one arrived). While NATS is
 * unreachable points wait in a bounded buffer; past the bound the oldest queued points are dropped
 * and counted. Nothing here throws into the agent: `add` never throws, failures are logged.
 *
 * With a journal (spool.ts), everything done to a trial's queue is also written to local disk, so
 * the next agent can `adopt` what this one read and never saw acknowledged if it is killed.
 */
import type { JetStreamClient, NatsConnection, PubAck } from 'nats';
import { Events } from 'nats';
import type { Logger } from '../common/log.js';
import { ThrottledWarner } from '../common/log.js';
import {
  METRIC_LIMITS,
  METRICS_STREAM,
  metricPointSchema,
  metricsMsgId,
  metricsSubject,
  type MetricBatch,
  type MetricPoint,
} from '../common/metrics-wire.js';
import { coerceError, SweeperError } from '../domain/errors.js';
import type { MetricJournal, RecoveredTrial } from './spool.js';

export interface MetricPublisherOptions {
  nc: NatsConnection;
  sweepId: string;
  /** The agent whose trials these are: part of every subject (metrics-wire.ts). */
  agentId: string;
  log: Logger;
  /** A queued point leaves within about this long. */
  flushIntervalMs?: number;
  maxPointsPerBatch?: number;
  /** Points queued or in flight, all trials together; past it the oldest queued points are dropped. */
  maxBufferedPoints?: number;
  /** How long to wait for JetStream's ack before resending. */
  publishTimeoutMs?: number;
  maxRetryDelayMs?: number;
  /** Where each trial's queue is journaled on disk (the agent's spool); none: memory only. */
  journal?: MetricJournal;
}

export interface PublisherStats {
  /** Points in batches JetStream has acknowledged. */
  publishedPoints: number;
  /** Batches sent (first attempts). */
  batches: number;
  /** Batches acknowledged. */
  acked: number;
  /** Extra attempts of a batch after a failure, a timeout or a reconnect. */
  resends: number;
  /** Acks that said JetStream already had the batch (a resend whose first attempt had arrived). */
  duplicateAcks: number;
  /** Points dropped because the buffer was full (or a single point was too big to send). */
  dropped: number;
  /** Points rejected by `add` as not matching the wire schema (counted as malformed lines). */
  invalid: number;
  /** Points queued or in flight now. */
  buffered: number;
}

export interface FlushOptions {
  /** Give up waiting (the points stay queued and are still sent). */
  signal?: AbortSignal;
}

interface OutgoingBatch {
  seq: number;
  subject: string;
  msgId: string;
  data: Uint8Array;
  points: number;
  /** Points plus malformed lines: what `flushTrial` counts towards its target. */
  units: number;
  attempts: number;
}

interface FlushWaiter {
  target: number;
  resolve: (r: { lastSeq: number }) => void;
  reject: (err: Error) => void;
}

class TrialQueue {
  points: MetricPoint[] = [];
  malformed = 0;
  nextSeq = 1;
  lastAckedSeq = 0;
  /** The cut batch that must be acked before the next one is cut. */
  batch: OutgoingBatch | null = null;
  /** Identifies the attempt whose result counts; results of older attempts are ignored. */
  attempt = 0;
  sending = false;
  sentOnConnection = 0;
  retryTimer: NodeJS.Timeout | null = null;
  retryDelayMs = 0;
  /** Set by the flush tick: send what is queued even though the batch is not full. */
  due = false;
  addedUnits = 0;
  settledUnits = 0;
  waiters: FlushWaiter[] = [];
  /** Whether the journal has this trial open (it is closed once everything is acknowledged). */
  journaled = false;
  /** Points the trial logged that passed the wire schema, and how many of them were dropped. */
  captured = 0;
  dropped = 0;

  constructor(
    readonly trialId: string,
    readonly subject: string,
  ) {}

  get bufferedPoints(): number {
    return this.points.length + (this.batch?.points ?? 0);
  }
}

const encoder = new TextEncoder();
/** Room for the headers, which count against the server's max_payload too. */
const HEADER_ROOM = 1024;

export class MetricPublisher {
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly sweepId: string;
  private readonly agentId: string;
  private readonly log: Logger;
  private readonly flushIntervalMs: number;
  private readonly maxPointsPerBatch: number;
  private readonly maxBufferedPoints: number;
  private readonly publishTimeoutMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly journal?: MetricJournal;

  private readonly trials = new Map<string, TrialQueue>();
  /** Trials with queued points or malformed lines not yet cut into a batch. */
  private readonly dirty = new Set<TrialQueue>();
  private readonly ticker: NodeJS.Timeout;
  private buffered = 0;
  private connected = true;
  /** Bumped on every reconnect; an attempt sent on an older connection is presumed lost. */
  private connection = 0;
  private closing = false;
  private connClosed: Error | null = null;
  private readonly statusIter: ReturnType<NatsConnection['status']>;
  private readonly warner: ThrottledWarner;
  private readonly counters = { publishedPoints: 0, batches: 0, acked: 0, resends: 0, duplicateAcks: 0, dropped: 0, invalid: 0 };

  constructor(opts: MetricPublisherOptions) {
    this.nc = opts.nc;
    this.js = opts.nc.jetstream();
    this.sweepId = opts.sweepId;
    this.agentId = opts.agentId;
    this.log = opts.log;
    this.warner = new ThrottledWarner(opts.log);
    this.flushIntervalMs = opts.flushIntervalMs ?? 250;
    this.maxPointsPerBatch = Math.max(1, Math.min(opts.maxPointsPerBatch ?? 1000, METRIC_LIMITS.maxPointsPerMessage));
    this.maxBufferedPoints = Math.max(this.maxPointsPerBatch, opts.maxBufferedPoints ?? 200_000);
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 5000;
    this.maxRetryDelayMs = opts.maxRetryDelayMs ?? 5000;
    this.journal = opts.journal;

    this.ticker = setInterval(() => this.tick(), this.flushIntervalMs);
    this.ticker.unref();
    this.statusIter = this.nc.status();
    void this.watchConnection();
    this.nc.closed().then(
      (err) => this.onConnectionClosed(err ? coerceError(err) : new SweeperError('NATS connection closed')),
      () => undefined,
    );
  }

  add(trialId: string, point: MetricPoint): void {
    try {
      const tq = this.queueFor(trialId);
      if (this.closing || this.connClosed) {
        // Only while the agent shuts down or after NATS closed for good; the trial's report says so.
        this.counters.dropped++;
        tq.dropped++;
        this.warner.error('closed', 'metric publisher is closed; dropping points (the trial will show them as dropped)', { trial: trialId });
        return;
      }
      // One bad point would get the whole batch rejected by the controller, so stop it here.
      if (!metricPointSchema.safeParse(point).success) {
        this.counters.invalid++;
        this.noteMalformed(trialId);
        this.warner.warn('invalid', 'dropping a metric point that does not match the wire schema', { trial: trialId });
        return;
      }
      tq.points.push(point);
      this.journalFor(tq)?.point(trialId, point);
      tq.captured++;
      tq.addedUnits++;
      this.buffered++;
      this.dirty.add(tq);
      if (this.buffered > this.maxBufferedPoints) this.dropOldest();
      if (tq.points.length >= this.maxPointsPerBatch) this.pump(tq);
    } catch (err) {
      this.warner.warn('add', 'unexpected error queueing a metric point', { error: String(err) });
    }
  }

  /** Count an output line that looked like metrics but could not be read; sent with the next batch. */
  noteMalformed(trialId: string): void {
    try {
      const tq = this.queueFor(trialId);
      tq.malformed++;
      this.journalFor(tq)?.malformed(trialId);
      tq.addedUnits++;
      this.dirty.add(tq);
    } catch (err) {
      this.warner.warn('add', 'unexpected error counting a malformed line', { error: String(err) });
    }
  }

  /**
   * Resolves once every point added for the trial before this call is acknowledged by JetStream
   * (or was dropped), with the last acknowledged batch seq. Rejects only if the NATS connection is
   * closed for good or the signal aborts.
   */
  flushTrial(trialId: string, opts: FlushOptions = {}): Promise<{ lastSeq: number }> {
    const tq = this.trials.get(trialId);
    if (!tq || tq.settledUnits >= tq.addedUnits) return Promise.resolve({ lastSeq: tq?.lastAckedSeq ?? 0 });
    if (this.connClosed) return Promise.reject(this.connClosed);
    if (this.closing) return Promise.reject(new SweeperError('metric publisher is closed'));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        tq.waiters = tq.waiters.filter((w) => w !== waiter);
        reject(abortError(signal!));
      };
      const waiter: FlushWaiter = {
        target: tq.addedUnits,
        resolve: (r) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      tq.waiters.push(waiter);
      this.pump(tq);
    });
  }

  /**
   * Flush every trial, then stop; later `add` calls are dropped and counted. Never rejects: an
   * abort or a closed connection is logged with what was left unsent.
   */
  async close(opts: FlushOptions = {}): Promise<void> {
    try {
      await Promise.all([...this.trials.keys()].map((id) => this.flushTrial(id, opts)));
    } catch (err) {
      this.log.warn('metric publisher closed with points unsent', { unsent: this.buffered, error: String(err) });
    } finally {
      this.closing = true;
      for (const tq of this.trials.values()) this.releaseIfSettled(tq);
      clearInterval(this.ticker);
      stopIterator(this.statusIter);
      for (const tq of this.trials.values()) {
        if (tq.retryTimer) clearTimeout(tq.retryTimer);
        tq.retryTimer = null;
      }
    }
  }

  /**
   * The trial will log nothing more: once everything it logged is acknowledged, its journal is
   * removed. Call after `flushTrial` resolved; a point that still comes later reopens it.
   */
  release(trialId: string): void {
    const tq = this.trials.get(trialId);
    if (tq) this.releaseIfSettled(tq);
  }

  /**
   * Takes over a trial's queue from a dead agent's journal: the batch it had cut and not seen
   * acknowledged goes again under its seq (JetStream and the controller drop it if it had
   * arrived), then the points it had queued. Wait for it with `flushTrial`, then `release` it.
   */
  adopt(r: RecoveredTrial): void {
    if (this.trials.has(r.trialId)) return;
    const tq = this.queueFor(r.trialId);
    tq.journaled = true; // the spool reopened the adopted journal
    tq.nextSeq = r.nextSeq;
    tq.lastAckedSeq = r.unacked ? r.unacked.seq - 1 : r.nextSeq - 1;
    tq.points = [...r.queued];
    tq.malformed = r.malformed;
    tq.addedUnits = r.queued.length + r.malformed;
    this.buffered += r.queued.length;
    if (r.unacked) {
      tq.batch = this.outgoing(tq, r.unacked.seq, r.unacked.points, r.unacked.malformed);
      tq.addedUnits += tq.batch.units;
      this.buffered += tq.batch.points;
    }
    if (tq.points.length > 0 || tq.malformed > 0) {
      tq.due = true;
      this.dirty.add(tq);
    }
    this.pump(tq);
  }

  /** The seq of the trial's last acknowledged batch (0: none). */
  ackedSeq(trialId: string): number {
    return this.trials.get(trialId)?.lastAckedSeq ?? 0;
  }

  /**
   * Points the trial logged and how many of those were dropped (buffer full, too large, publisher
   * closed): the controller is told, so that what never arrived is visible on the trial.
   */
  pointCounts(trialId: string): { captured: number; dropped: number } {
    const tq = this.trials.get(trialId);
    return { captured: tq?.captured ?? 0, dropped: tq?.dropped ?? 0 };
  }

  /** The trial's points queued or in flight. */
  bufferedPoints(trialId: string): number {
    return this.trials.get(trialId)?.bufferedPoints ?? 0;
  }

  stats(): PublisherStats {
    return { ...this.counters, buffered: this.buffered };
  }

  /**
   * Opens a trial whose batches start at `firstSeq` (a preempted trial continued here: its earlier
   * run published up to firstSeq - 1, and the ingest applies a trial's batches in seq order).
   */
  beginTrial(trialId: string, firstSeq: number): void {
    if (this.trials.has(trialId)) return;
    const tq = this.queueFor(trialId);
    tq.nextSeq = firstSeq;
    tq.lastAckedSeq = firstSeq - 1;
  }

  private queueFor(trialId: string): TrialQueue {
    let tq = this.trials.get(trialId);
    if (!tq) {
      tq = new TrialQueue(trialId, metricsSubject(this.sweepId, this.agentId, trialId));
      this.trials.set(trialId, tq);
    }
    return tq;
  }

  /** The journal, with the trial open in it: (re)opened with the seq its next batch takes. */
  private journalFor(tq: TrialQueue): MetricJournal | undefined {
    if (this.journal && !tq.journaled) {
      this.journal.opened(tq.trialId, tq.nextSeq);
      tq.journaled = true;
    }
    return this.journal;
  }

  private releaseIfSettled(tq: TrialQueue): void {
    if (!tq.journaled || tq.batch || tq.settledUnits < tq.addedUnits) return;
    this.journal?.finished(tq.trialId);
    tq.journaled = false;
  }

  private tick(): void {
    for (const tq of this.dirty) {
      tq.due = true;
      this.pump(tq);
    }
  }

  /** Send the trial's next batch if nothing of it is on the wire and there is something to send. */
  private pump(tq: TrialQueue): void {
    if (tq.sending || tq.retryTimer || !this.connected || this.connClosed || this.closing) return;
    if (!tq.batch) {
      if (tq.points.length === 0 && tq.malformed === 0) return;
      const full = tq.points.length >= this.maxPointsPerBatch;
      if (!full && !tq.due && tq.waiters.length === 0) return;
      tq.batch = this.cut(tq);
      if (!tq.batch) return;
    }
    this.send(tq, tq.batch);
  }

  private cut(tq: TrialQueue): OutgoingBatch | null {
    const serverMax = this.nc.info?.max_payload ?? Infinity;
    const maxBytes = Math.min(METRIC_LIMITS.maxMessageBytes, serverMax) - HEADER_ROOM;
    let n = Math.min(tq.points.length, this.maxPointsPerBatch);
    for (;;) {
      const out = this.outgoing(tq, tq.nextSeq, tq.points.slice(0, n), tq.malformed);
      const data = out.data;
      if (data.length <= maxBytes) {
        tq.points.splice(0, n);
        this.journal?.cut(tq.trialId, out.seq, n, tq.malformed);
        tq.malformed = 0;
        tq.due = false;
        if (tq.points.length === 0) this.dirty.delete(tq);
        tq.nextSeq++;
        return out;
      }
      if (n <= 1) {
        // A point this large cannot be sent at all; waiting would block the trial for good.
        tq.points.shift();
        this.journal?.dropped(tq.trialId, 1);
        this.buffered--;
        this.counters.dropped++;
        tq.dropped++;
        tq.settledUnits++;
        this.log.warn('dropping a metric point larger than the message limit', { trial: tq.trialId, bytes: data.length });
        if (tq.points.length === 0 && tq.malformed === 0) {
          this.dirty.delete(tq);
          this.settleWaiters(tq);
          return null;
        }
        n = Math.min(tq.points.length, this.maxPointsPerBatch);
        continue;
      }
      // Aim just under the limit rather than halving step by step.
      n = Math.max(1, Math.min(n - 1, Math.floor((n * maxBytes * 0.9) / data.length)));
    }
  }

  /** The batch of these points (and malformed-line count) under `seq`, encoded for the wire. */
  private outgoing(tq: TrialQueue, seq: number, points: MetricPoint[], malformed: number): OutgoingBatch {
    const batch: MetricBatch = { sweepId: this.sweepId, trialId: tq.trialId, seq, points };
    if (malformed > 0) batch.malformedLines = malformed;
    const data = encoder.encode(JSON.stringify(batch));
    return { seq, subject: tq.subject, msgId: metricsMsgId(tq.trialId, seq), data, points: points.length, units: points.length + malformed, attempts: 0 };
  }

  private send(tq: TrialQueue, batch: OutgoingBatch): void {
    batch.attempts++;
    if (batch.attempts === 1) this.counters.batches++;
    else this.counters.resends++;
    tq.sending = true;
    tq.sentOnConnection = this.connection;
    const attempt = ++tq.attempt;
    let pending: Promise<PubAck>;
    try {
      pending = this.js.publish(batch.subject, batch.data, {
        msgID: batch.msgId,
        timeout: this.publishTimeoutMs,
        expect: { streamName: METRICS_STREAM },
      });
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (ack) => this.onAck(tq, batch, ack),
      (err) => this.onFailure(tq, attempt, batch, err),
    );
  }

  private onAck(tq: TrialQueue, batch: OutgoingBatch, ack: PubAck): void {
    // A stale attempt's ack is still proof the batch is stored, so take it when the batch is current.
    if (tq.batch !== batch) return;
    tq.sending = false;
    tq.batch = null;
    tq.retryDelayMs = 0;
    if (tq.retryTimer) clearTimeout(tq.retryTimer);
    tq.retryTimer = null;
    this.counters.acked++;
    this.counters.publishedPoints += batch.points;
    if (ack.duplicate) this.counters.duplicateAcks++;
    this.buffered -= batch.points;
    tq.lastAckedSeq = batch.seq;
    this.journal?.acked(tq.trialId, batch.seq);
    tq.settledUnits += batch.units;
    this.settleWaiters(tq);
    if (tq.journaled) this.journal?.idle(tq.trialId, tq.nextSeq, tq.points, tq.malformed);
    this.pump(tq);
  }

  private onFailure(tq: TrialQueue, attempt: number, batch: OutgoingBatch, err: unknown): void {
    if (tq.batch !== batch || attempt !== tq.attempt) return;
    tq.sending = false;
    if (this.connClosed || this.closing) return;
    this.warner.warn('publish', 'metric batch not acknowledged; will resend', {
      trial: tq.trialId,
      seq: batch.seq,
      error: err instanceof Error ? err.message : String(err),
    });
    tq.retryDelayMs = Math.min(this.maxRetryDelayMs, Math.max(100, tq.retryDelayMs * 2));
    const delay = tq.retryDelayMs * (0.75 + Math.random() * 0.5);
    tq.retryTimer = setTimeout(() => {
      tq.retryTimer = null;
      this.pump(tq);
    }, delay);
  }

  private settleWaiters(tq: TrialQueue): void {
    if (tq.waiters.length === 0) return;
    const still: FlushWaiter[] = [];
    for (const w of tq.waiters) {
      if (tq.settledUnits >= w.target) w.resolve({ lastSeq: tq.lastAckedSeq });
      else still.push(w);
    }
    tq.waiters = still;
  }

  /**
   * Drop the oldest queued points (by capture time, across trials) until the buffer is 1% under
   * its bound, so a long outage does not end in every `add` paying for a drop. Batches already cut
   * are kept: they may be stored already, and a resend must carry what the first attempt carried.
   */
  private dropOldest(): void {
    let excess = this.buffered - this.maxBufferedPoints + Math.ceil(this.maxBufferedPoints / 100);
    let dropped = 0;
    while (excess > 0) {
      let oldest: TrialQueue | null = null;
      let runnerUp = Infinity;
      for (const tq of this.trials.values()) {
        if (tq.points.length === 0) continue;
        const t = tq.points[0].t;
        if (!oldest || t < oldest.points[0].t) {
          if (oldest) runnerUp = Math.min(runnerUp, oldest.points[0].t);
          oldest = tq;
        } else if (t < runnerUp) {
          runnerUp = t;
        }
      }
      if (!oldest) break;
      let k = 0;
      // Take every point older than the next trial's oldest in one go.
      while (k < oldest.points.length && k < excess && (k === 0 || oldest.points[k].t <= runnerUp)) k++;
      oldest.points.splice(0, k);
      this.journal?.dropped(oldest.trialId, k);
      oldest.settledUnits += k;
      oldest.dropped += k;
      if (oldest.points.length === 0 && oldest.malformed === 0) this.dirty.delete(oldest);
      this.settleWaiters(oldest);
      this.buffered -= k;
      excess -= k;
      dropped += k;
    }
    if (dropped > 0) {
      this.counters.dropped += dropped;
      this.warner.warn('drop', 'metric buffer full (NATS unreachable or slow?): dropped the oldest points', {
        dropped,
        droppedTotal: this.counters.dropped,
        limit: this.maxBufferedPoints,
      });
    }
  }

  private async watchConnection(): Promise<void> {
    try {
      for await (const s of this.statusIter) {
        if (s.type === Events.Disconnect) {
          this.connected = false;
        } else if (s.type === Events.Reconnect) {
          this.connected = true;
          this.connection++;
          this.resumeAfterReconnect();
        }
      }
    } catch {
      // The iterator ends when the connection closes; onConnectionClosed handles that.
    }
  }

  /**
   * The client drops whatever it had not written when the connection broke, so an attempt sent
   * before the reconnect will only ever time out: resend now rather than after the timeout.
   */
  private resumeAfterReconnect(): void {
    for (const tq of this.trials.values()) {
      if (tq.sending && tq.sentOnConnection < this.connection) {
        tq.sending = false;
        tq.attempt++;
      }
      if (tq.retryTimer) {
        clearTimeout(tq.retryTimer);
        tq.retryTimer = null;
      }
      tq.retryDelayMs = 0;
      this.pump(tq);
    }
  }

  private onConnectionClosed(err: Error): void {
    if (this.connClosed) return;
    this.connClosed = err;
    clearInterval(this.ticker);
    let unsent = 0;
    for (const tq of this.trials.values()) {
      unsent += tq.bufferedPoints;
      if (tq.retryTimer) clearTimeout(tq.retryTimer);
      tq.retryTimer = null;
      for (const w of tq.waiters) w.reject(err);
      tq.waiters = [];
    }
    if (unsent > 0 && !this.closing) {
      this.log.error('NATS connection closed; metric points were not published', { unsent, error: err.message });
    }
  }

}

/** The client's status iterators can be stopped, though the declared type does not say so. */
function stopIterator(iter: AsyncIterable<unknown>): void {
  if ('stop' in iter && typeof iter.stop === 'function') iter.stop();
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new SweeperError('metric flush aborted', { cause: signal.reason });
}
