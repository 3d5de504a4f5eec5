/**
 * Consumes metric batches from JetStream for the controller.
 *
 * A durable pull consumer with explicit acks feeds `onBatch`. Every message is checked (size, JSON,
 * schema, subject) and a bad one is acknowledged, counted and dropped, never retried. Each trial's
 * batches are applied once and in seq order:
 *
 * - a (trial, seq) already applied is a resend or a redelivery: counted and acknowledged only;
 * - a batch ahead of the next expected seq is held, unacknowledged, until the missing ones arrive.
 *   They normally do: JetStream redelivers a message whose delivery was lost (say, in a NATS
 *   restart) once its ack wait passes. If they have not come after `gapTimeoutMs` (a message
 *   removed by the stream's limits never will), the held batches are applied anyway and the gap
 *   counted; a missing batch that turns up after that is still applied, late, and counted.
 */
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, NatsConnection } from 'nats';
import { IllegalStateError } from '../../domain/errors.js';
import { AckPolicy, ConsumerEvents, DeliverPolicy, NatsError, nanos } from 'nats';
import type { Logger } from '../../common/log.js';
import { ThrottledWarner } from '../../common/log.js';
import { ensureStream } from '../../common/nats-connect.js';
import {
  METRIC_LIMITS,
  METRICS_STREAM,
  METRICS_SUBJECT_PREFIX,
  metricBatchSchema,
  parseMetricsSubject,
  type MetricBatch,
} from '../../common/metrics-wire.js';

export interface MetricIngestOptions {
  nc: NatsConnection;
  log: Logger;
  /**
   * Called once per (trial, seq), in seq order per trial. Must not block; a throw is logged and
   * the batch counted as applied. Returning a reason refuses the batch: counted under it, stored nowhere.
   */
  onBatch: (batch: MetricBatch) => MetricRefusal | void;
  /**
   * Whether the agent named in the subject may send this batch at all (it holds the trial),
   * checked before anything of the batch is kept; a reason refuses it.
   */
  admit?: (agentId: string, batch: MetricBatch) => MetricRefusal | null;
  /** The durable consumer's name; one controller per name. */
  consumerName?: string;
  /**
   * Start from the first message in the stream instead of where this consumer left off. The
   * controller keeps metric history only in memory, so a freshly started one must see every
   * batch again to rebuild it. We delete the durable consumer and create it anew with
   * deliver-all, rather than reading through a second, ephemeral consumer, so there is one
   * consumer and one delivery path for both the replay and the live stream that follows it.
   */
  replayAll?: boolean;
  /** JetStream redelivers an unacknowledged message after this long. */
  ackWaitMs?: number;
  /** How long a batch waits for a missing earlier one before it is applied anyway. */
  gapTimeoutMs?: number;
  /** Messages the client asks for per pull; more means fewer round trips and more memory. */
  maxMessages?: number;
  /** Copies of the metric stream on a NATS cluster, when it is created. */
  streamReplicas?: number;
}

/** Refusals of well-formed batches by whoever owns the trials (see SweepService.admitMetrics). */
export type MetricRefusal = 'unknown_trial' | 'not_holder' | 'after_end';

export type RejectReason = 'oversized' | 'bad_json' | 'schema' | 'subject_mismatch' | 'internal' | MetricRefusal;

export interface IngestStats {
  /** Batches applied (passed to onBatch). */
  batches: number;
  points: number;
  /** Batches already applied or already held: publisher resends and JetStream redeliveries. */
  duplicates: number;
  /** Batches applied after a later one of the same trial, because their gap timed out. */
  late: number;
  /** Times the held batches of a trial were applied with a seq still missing. */
  gapsSkipped: number;
  /** Batches held now, waiting for an earlier seq. */
  held: number;
  /** onBatch threw. */
  handlerErrors: number;
  rejected: Partial<Record<RejectReason, number>>;
}

/** Sorted, disjoint, non-adjacent ranges of applied seqs: one range while batches come in order. */
class SeqSet {
  private readonly lo: number[] = [];
  private readonly hi: number[] = [];

  get max(): number {
    return this.hi.length === 0 ? 0 : this.hi[this.hi.length - 1];
  }

  get isEmpty(): boolean {
    return this.hi.length === 0;
  }

  /** Index of the first range whose hi is >= s. */
  private find(s: number): number {
    let a = 0;
    let b = this.hi.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.hi[m] < s) a = m + 1;
      else b = m;
    }
    return a;
  }

  has(s: number): boolean {
    const i = this.find(s);
    return i < this.hi.length && this.lo[i] <= s;
  }

  add(s: number): void {
    const n = this.hi.length;
    if (n > 0 && this.hi[n - 1] === s - 1) {
      this.hi[n - 1] = s;
      return;
    }
    const i = this.find(s);
    if (i < n && this.lo[i] <= s) return;
    const joinsPrev = i > 0 && this.hi[i - 1] === s - 1;
    const joinsNext = i < n && this.lo[i] === s + 1;
    if (joinsPrev && joinsNext) {
      this.hi[i - 1] = this.hi[i];
      this.lo.splice(i, 1);
      this.hi.splice(i, 1);
    } else if (joinsPrev) {
      this.hi[i - 1] = s;
    } else if (joinsNext) {
      this.lo[i] = s;
    } else {
      this.lo.splice(i, 0, s);
      this.hi.splice(i, 0, s);
    }
  }
}

interface HeldBatch {
  batch: MetricBatch;
  /** Every delivery of it seen so far; all are acknowledged once it is applied. */
  msgs: JsMsg[];
}

interface TrialProgress {
  applied: SeqSet;
  /** The seq a brand-new trial must start at; unknown when resuming a consumer mid-stream. */
  firstExpected: number | null;
  held: Map<number, HeldBatch>;
  gapTimer: NodeJS.Timeout | null;
}

const decoder = new TextDecoder();
const CONSUMER_NOT_FOUND = 10014;

export class MetricIngest {
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly log: Logger;
  private readonly onBatch: (batch: MetricBatch) => MetricRefusal | void;
  private readonly admit?: (agentId: string, batch: MetricBatch) => MetricRefusal | null;
  private readonly consumerName: string;
  private readonly replayAll: boolean;
  private readonly ackWaitMs: number;
  private readonly gapTimeoutMs: number;
  private readonly maxMessages: number;
  private readonly streamReplicas?: number;

  private readonly trials = new Map<string, TrialProgress>();
  private readonly counters = { batches: 0, points: 0, duplicates: 0, late: 0, gapsSkipped: 0, held: 0, handlerErrors: 0 };
  private readonly rejected: Partial<Record<RejectReason, number>> = {};
  private readonly warner: ThrottledWarner;
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wakeLoop: (() => void) | null = null;
  /** The stream's last sequence when a replaying ingest started, and the highest one handled since. */
  private replayTarget = 0;
  private handledThrough = 0;
  private markCaughtUp: () => void = () => undefined;
  /**
   * Resolves once every message the stream held at `start` has been handled (applied, refused
   * or held for a gap), so the metric store holds what the old controller knew. A model-based
   * strategy asked before that would read finished trials as valueless.
   */
  readonly caughtUp: Promise<void> = new Promise((resolve) => (this.markCaughtUp = resolve));

  constructor(opts: MetricIngestOptions) {
    this.nc = opts.nc;
    this.js = opts.nc.jetstream();
    this.log = opts.log;
    this.warner = new ThrottledWarner(opts.log);
    this.onBatch = opts.onBatch;
    this.admit = opts.admit;
    this.consumerName = opts.consumerName ?? 'sweeper-controller';
    this.replayAll = opts.replayAll ?? false;
    this.ackWaitMs = opts.ackWaitMs ?? 10_000;
    this.gapTimeoutMs = opts.gapTimeoutMs ?? Math.round(this.ackWaitMs * 1.5);
    this.maxMessages = opts.maxMessages ?? 512;
    this.streamReplicas = opts.streamReplicas;
  }

  /** Ensure the stream and the consumer, and start consuming. Rejects if NATS cannot set them up. */
  async start(): Promise<void> {
    if (this.loop) throw new IllegalStateError('MetricIngest already started');
    const jsm = await this.nc.jetstreamManager();
    await this.ensureResources(jsm, this.replayAll);
    if (this.replayAll) {
      const { state } = await jsm.streams.info(METRICS_STREAM);
      this.replayTarget = state.messages > 0 ? state.last_seq : 0;
    }
    if (this.handledThrough >= this.replayTarget) this.markCaughtUp();
    this.messages = await this.openConsumer();
    this.loop = this.keepConsuming();
  }

  /** Stop consuming. Held batches stay unacknowledged, so JetStream delivers them again later. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wakeLoop?.();
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    for (const tp of this.trials.values()) {
      if (tp.gapTimer) clearTimeout(tp.gapTimer);
      tp.gapTimer = null;
    }
    // Acks are fire-and-forget publishes; get them to the server before the caller drains.
    if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
  }

  stats(): IngestStats {
    return { ...this.counters, rejected: { ...this.rejected } };
  }

  private async ensureResources(jsm: JetStreamManager, fromStart: boolean): Promise<void> {
    await ensureStream(jsm, { name: METRICS_STREAM, subjects: [`${METRICS_SUBJECT_PREFIX}.>`], replicas: this.streamReplicas });
    const config = {
      durable_name: this.consumerName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.ackWaitMs),
      // Held batches count against this, so leave plenty of room past one pull.
      max_ack_pending: Math.max(20_000, this.maxMessages * 4),
      max_deliver: -1,
    };
    let exists = true;
    try {
      const info = await jsm.consumers.info(METRICS_STREAM, this.consumerName);
      if (!fromStart && (info.config.ack_wait !== config.ack_wait || info.config.max_ack_pending !== config.max_ack_pending)) {
        await jsm.consumers.update(METRICS_STREAM, this.consumerName, {
          ack_wait: config.ack_wait,
          max_ack_pending: config.max_ack_pending,
        });
      }
    } catch (err) {
      if (!(err instanceof NatsError && err.api_error?.err_code === CONSUMER_NOT_FOUND)) throw err;
      exists = false;
    }
    if (exists && fromStart) {
      await jsm.consumers.delete(METRICS_STREAM, this.consumerName);
      exists = false;
    }
    if (!exists) await jsm.consumers.add(METRICS_STREAM, config);
    this.log.debug('metric consumer ready', { consumer: this.consumerName, replay: fromStart });
  }

  private async openConsumer(): Promise<ConsumerMessages> {
    const consumer = await this.js.consumers.get(METRICS_STREAM, this.consumerName);
    const messages = await consumer.consume({
      max_messages: this.maxMessages,
      // Also the client's wait between consumer lookups when one fails after a reconnect; the
      // 30 s default would leave the ingest idle that long after a NATS restart.
      expires: 5000,
      callback: (m) => this.handle(m),
    });
    void this.watchConsumer(messages);
    return messages;
  }

  /** nats.js resumes a consume after a reconnect by itself; this reopens it if it ends anyway. */
  private async keepConsuming(): Promise<void> {
    let delayMs = 0;
    while (!this.stopping && !this.nc.isClosed()) {
      const messages = this.messages;
      if (messages) {
        const err = await messages.closed();
        if (this.stopping) break;
        this.log.warn('metric consumer ended; reopening it', { error: err ? String(err) : undefined });
        this.messages = null;
      }
      delayMs = Math.min(5000, Math.max(250, delayMs * 2));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wakeLoop = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeLoop = null;
      if (this.stopping || this.nc.isClosed()) break;
      try {
        // The stream or the consumer may be gone (a server that lost its store): recreate them.
        await this.ensureResources(await this.nc.jetstreamManager(), false);
        const messages = await this.openConsumer();
        if (this.stopping) {
          await messages.close();
          break;
        }
        this.messages = messages;
        delayMs = 0;
        this.log.info('metric consumer reopened');
      } catch (err) {
        this.warner.warn('reopen', 'could not reopen the metric consumer; retrying', { error: String(err) });
      }
    }
  }

  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const s of await messages.status()) {
        if (s.type === ConsumerEvents.ConsumerNotFound || s.type === ConsumerEvents.StreamNotFound) {
          // The client would look for them forever; close so keepConsuming recreates them.
          this.log.warn('metric stream or consumer missing; recreating it', { event: s.type });
          void messages.close();
        } else if (s.type === ConsumerEvents.HeartbeatsMissed) {
          this.log.debug('metric consumer missed heartbeats', { count: s.data });
        }
      }
    } catch {
      // Ends with the consumer.
    }
  }

  private handle(m: JsMsg): void {
    try {
      this.check(m);
    } finally {
      if (m.seq > this.handledThrough) {
        this.handledThrough = m.seq;
        if (this.handledThrough >= this.replayTarget) this.markCaughtUp();
      }
    }
  }

  private check(m: JsMsg): void {
    try {
      if (m.data.length > METRIC_LIMITS.maxMessageBytes) return this.reject(m, 'oversized', `${m.data.length} bytes`);
      let raw: unknown;
      try {
        raw = JSON.parse(decoder.decode(m.data));
      } catch (err) {
        return this.reject(m, 'bad_json', (err as Error).message);
      }
      const parsed = metricBatchSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return this.reject(m, 'schema', issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid');
      }
      const batch = parsed.data;
      // A subject names its trial; a body naming another would put points on the wrong trial.
      const where = parseMetricsSubject(m.subject);
      if (!where || where.sweepId !== batch.sweepId || where.trialId !== batch.trialId) {
        return this.reject(m, 'subject_mismatch', `body is ${batch.sweepId}/${batch.trialId}`);
      }
      // Before anything is kept: a made-up trial id must cost no memory.
      const refused = this.admit?.(where.agentId, batch);
      if (refused) return this.reject(m, refused, `agent ${where.agentId}, trial ${batch.trialId}`);
      this.accept(batch, m);
    } catch (err) {
      this.reject(m, 'internal', String(err));
    }
  }

  private reject(m: JsMsg, reason: RejectReason, detail: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    this.warner.warn(`reject:${reason}`, 'rejected a metric message', { reason, subject: m.subject, detail });
    ack(m);
  }

  private accept(batch: MetricBatch, m: JsMsg): void {
    const key = `${batch.sweepId}.${batch.trialId}`;
    let tp = this.trials.get(key);
    if (!tp) {
      tp = { applied: new SeqSet(), firstExpected: this.replayAll ? 1 : null, held: new Map(), gapTimer: null };
      this.trials.set(key, tp);
    }
    const seq = batch.seq;
    if (tp.applied.has(seq)) {
      this.counters.duplicates++;
      ack(m);
      return;
    }
    const held = tp.held.get(seq);
    if (held) {
      this.counters.duplicates++;
      held.msgs.push(m);
      return;
    }
    const next = tp.applied.isEmpty ? (tp.firstExpected ?? seq) : tp.applied.max + 1;
    if (seq === next) {
      this.apply(tp, batch, [m]);
      this.releaseConsecutive(tp);
    } else if (seq < next) {
      this.counters.late++;
      this.apply(tp, batch, [m]);
    } else {
      tp.held.set(seq, { batch, msgs: [m] });
      this.counters.held++;
      if (!tp.gapTimer) this.armGapTimer(tp, key);
    }
  }

  private apply(tp: TrialProgress, batch: MetricBatch, msgs: JsMsg[]): void {
    tp.applied.add(batch.seq);
    try {
      const refused = this.onBatch(batch);
      if (refused) {
        this.rejected[refused] = (this.rejected[refused] ?? 0) + 1;
        this.warner.warn(`reject:${refused}`, 'refused a metric batch', { reason: refused, trial: batch.trialId, seq: batch.seq });
      } else {
        this.counters.batches++;
        this.counters.points += batch.points.length;
      }
    } catch (err) {
      // Not retried: the same batch would most likely fail the same way, forever.
      this.counters.handlerErrors++;
      this.warner.warn('handler', 'metric handler threw; batch skipped', { trial: batch.trialId, seq: batch.seq, error: String(err) });
    }
    for (const m of msgs) ack(m);
  }

  private releaseConsecutive(tp: TrialProgress): void {
    for (;;) {
      const h = tp.held.get(tp.applied.max + 1);
      if (!h) break;
      tp.held.delete(h.batch.seq);
      this.counters.held--;
      this.apply(tp, h.batch, h.msgs);
    }
    if (tp.held.size === 0 && tp.gapTimer) {
      clearTimeout(tp.gapTimer);
      tp.gapTimer = null;
    }
  }

  private armGapTimer(tp: TrialProgress, key: string): void {
    tp.gapTimer = setTimeout(() => {
      tp.gapTimer = null;
      if (tp.held.size === 0 || this.stopping) return;
      const first = Math.min(...tp.held.keys());
      const h = tp.held.get(first)!;
      tp.held.delete(first);
      this.counters.held--;
      this.counters.gapsSkipped++;
      this.log.warn('metric batches missing; applying later ones without them', {
        trial: key,
        missingFrom: tp.applied.max + 1,
        missingTo: first - 1,
      });
      this.apply(tp, h.batch, h.msgs);
      this.releaseConsecutive(tp);
      // A further gap among the rest gets its own full wait.
      if (tp.held.size > 0 && !tp.gapTimer) this.armGapTimer(tp, key);
    }, this.gapTimeoutMs);
  }

}

function ack(m: JsMsg): void {
  try {
    m.ack();
  } catch {
    // Connection closed: JetStream redelivers it and the duplicate check catches it.
  }
}
