/**
 * The live output of trials, for `sweeper logs` (GetTrial, WatchTrialOutput) and the dashboard's
 * trial page: an ordered consumer of the SWEEPER_OUTPUT stream feeds one bounded ring per trial
 * (output-ring.ts). Nothing of it is event-sourced state: on start the consumer reads the stream
 * from its first message, so a restarted controller holds again what the old one held.
 *
 * The stream keeps, per subject (one trial's output from one agent), the last
 * OUTPUT_STREAM_LIMITS.maxBatchesPerSubject batches, none older than the max age, and all of it
 * within a total size, dropping the oldest first: the last lines of a trial outlive its agent and
 * the controller, and the stream cannot grow without bound.
 *
 * Every message is checked before anything of it is kept, in the order that costs least: its
 * subject (the trial must exist and be held by the agent the subject names, as for metrics,
 * see SweepService.admitMetrics), its size, then its JSON and schema. A refused message is
 * counted by reason. Once a trial has ended with its tails reported (its end event keeps them),
 * its ring is let go after a while; a trial whose end carried no tails (its agent died) keeps the
 * last lines of its ring, which are then all there is.
 */
import { DiscardPolicy, NatsError, RetentionPolicy, StorageType, nanos } from 'nats';
import type { ConsumerMessages, JetStreamManager, JsMsg, NatsConnection, StreamConfig } from 'nats';
import type { Logger } from '../../common/log.js';
import { ThrottledWarner } from '../../common/log.js';
import { OUTPUT_LIMITS, OUTPUT_STREAM, OUTPUT_SUBJECT_PREFIX, outputBatchSchema, parseOutputSubject, type OutputStreamName } from '../../common/output-wire.js';
import { IllegalStateError } from '../../domain/errors.js';
import { isTerminal, type TrialState } from '../../domain/trial-state.js';
import type { TrialRecord } from './state.js';
import { TrialOutputRing, type HeldLine, type RingLimits } from './output-ring.js';

/** What the output log needs to know of a trial. */
export type OutputTrial = Pick<TrialRecord, 'sweepId' | 'agentId' | 'state' | 'endedAt' | 'stdoutTail' | 'stderrTail'>;

/** The stream's limits: per subject and in time, and in all. */
export const OUTPUT_STREAM_LIMITS = {
  maxBatchesPerSubject: 2000,
  maxAgeMs: 7 * 24 * 3600_000,
  maxBytes: 1024 ** 3,
} as const;

export interface OutputStoreOptions {
  log: Logger;
  /** The trial, or undefined when there is none by that id. */
  trialOf: (trialId: string) => OutputTrial | undefined;
  /** Lines kept per stream of a trial that runs (default 2,000), and their characters (default 512 Ki). */
  linesPerStream?: number;
  charsPerStream?: number;
  /** What a trial that ended with no tails reported keeps (default 200 lines, 64 Ki characters per stream). */
  endedLinesPerStream?: number;
  endedCharsPerStream?: number;
  /** How long the ring of a trial that ended with its tails is kept, for the last lines of followers (default 60 s). */
  keepEndedMs?: number;
  now?: () => number;
}

export interface OutputLogOptions extends OutputStoreOptions {
  nc: NatsConnection;
  /** How often ended trials' rings are let go or cut down (default 10 s). */
  compactIntervalMs?: number;
  /** Copies of the stream on a NATS cluster, when it is created. */
  streamReplicas?: number;
}

export type OutputRejectReason = 'oversized' | 'bad_json' | 'schema' | 'subject_mismatch' | 'unknown_trial' | 'not_holder' | 'internal';

export interface OutputLogStats {
  /** Batches and lines taken into the rings. */
  batches: number;
  lines: number;
  /** Batches of trials long ended with their tails reported: read past, not kept. */
  skipped: number;
  /** Trials whose ring is held now, and their lines. */
  trials: number;
  heldLines: number;
  rejected: Partial<Record<OutputRejectReason, number>>;
}

const decoder = new TextDecoder();

/**
 * The rings of every trial whose output is held, fed one stream message at a time: admission,
 * the rings, and letting go of them. Pure; OutputLog feeds it from JetStream.
 */
export class OutputStore {
  private readonly rings = new Map<string, TrialOutputRing>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly running: RingLimits;
  private readonly ended: RingLimits;
  private readonly keepEndedMs: number;
  private readonly now: () => number;
  protected readonly log: Logger;
  protected readonly warner: ThrottledWarner;
  private readonly counters = { batches: 0, lines: 0, skipped: 0 };
  private readonly rejected: Partial<Record<OutputRejectReason, number>> = {};

  constructor(private readonly opts: OutputStoreOptions) {
    this.log = opts.log;
    this.warner = new ThrottledWarner(opts.log);
    this.running = { linesPerStream: opts.linesPerStream ?? 2000, charsPerStream: opts.charsPerStream ?? 512 * 1024 };
    this.ended = { linesPerStream: opts.endedLinesPerStream ?? 200, charsPerStream: opts.endedCharsPerStream ?? 64 * 1024 };
    this.keepEndedMs = opts.keepEndedMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The trial's ring, when its output is held. */
  ring(trialId: string): TrialOutputRing | undefined {
    return this.rings.get(trialId);
  }

  /** Called after each batch of the trial is taken in; returns the unsubscribe. Keep it cheap. */
  watch(trialId: string, listener: () => void): () => void {
    let set = this.listeners.get(trialId);
    if (!set) {
      set = new Set();
      this.listeners.set(trialId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(trialId) === set) this.listeners.delete(trialId);
    };
  }

  /**
   * Resolves true once the trial's newest run has sent its final batch (its agent sends it right
   * before reporting the end), false after `timeoutMs` without it (an agent that died sends none).
   */
  awaitFinal(trialId: string, timeoutMs: number): Promise<boolean> {
    if (this.rings.get(trialId)?.finalSeen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (seen: boolean) => {
        clearTimeout(timer);
        unwatch();
        resolve(seen);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const unwatch = this.watch(trialId, () => {
        if (this.rings.get(trialId)?.finalSeen) done(true);
      });
    });
  }

  stats(): OutputLogStats {
    let heldLines = 0;
    for (const r of this.rings.values()) heldLines += r.size;
    return { ...this.counters, trials: this.rings.size, heldLines, rejected: { ...this.rejected } };
  }

  /** Refusals by reason, named apart from the metric ingest's (`output_not_holder`...), for GetStats. */
  rejections(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.rejected).map(([k, v]) => [`output_${k}`, v ?? 0]));
  }

  /** Lets go of the rings of trials long ended with their tails, and cuts down those of trials that ended without. */
  compact(): void {
    const now = this.now();
    for (const [id, ring] of this.rings) {
      const trial = this.opts.trialOf(id);
      if (!trial) {
        this.rings.delete(id);
        continue;
      }
      if (!isTerminal(trial.state)) continue;
      if (hasTails(trial)) {
        if (now - trial.endedAt > this.keepEndedMs) this.rings.delete(id);
      } else {
        ring.shrink(this.ended);
      }
    }
  }

  /** Forgets every ring (the stream is read again from its start). */
  clear(): void {
    this.rings.clear();
  }

  /** Takes in one message of the stream (its subject, body and stream sequence). */
  handle(m: Pick<JsMsg, 'subject' | 'data' | 'seq'>): void {
    try {
      this.check(m);
    } catch (err) {
      this.reject(m, 'internal', String(err));
    }
  }

  private check(m: Pick<JsMsg, 'subject' | 'data' | 'seq'>): void {
    const where = parseOutputSubject(m.subject);
    if (!where) return this.reject(m, 'subject_mismatch', 'not an output subject');
    // Before anything of the message is read: a made-up trial id must cost no memory.
    const trial = this.opts.trialOf(where.trialId);
    if (!trial || trial.sweepId !== where.sweepId) return this.reject(m, 'unknown_trial', `trial ${where.trialId}`);
    if (trial.agentId !== where.agentId) return this.reject(m, 'not_holder', `agent ${where.agentId}, trial ${where.trialId}`);
    // A restart reads the whole stream: the output of trials long over is not worth parsing.
    if (!this.rings.has(where.trialId) && isTerminal(trial.state) && hasTails(trial) && this.now() - trial.endedAt > this.keepEndedMs) {
      this.counters.skipped++;
      return;
    }
    if (m.data.length > OUTPUT_LIMITS.maxMessageBytes) return this.reject(m, 'oversized', `${m.data.length} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(decoder.decode(m.data));
    } catch (err) {
      return this.reject(m, 'bad_json', (err as Error).message);
    }
    const parsed = outputBatchSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.reject(m, 'schema', issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid');
    }
    const batch = parsed.data;
    if (batch.sweepId !== where.sweepId || batch.trialId !== where.trialId) {
      return this.reject(m, 'subject_mismatch', `body is ${batch.sweepId}/${batch.trialId}`);
    }
    let ring = this.rings.get(batch.trialId);
    if (!ring) {
      ring = new TrialOutputRing(this.running);
      this.rings.set(batch.trialId, ring);
    }
    ring.add(batch, m.seq);
    // An ended trial with no tails keeps only what the end leaves it, even while its stream is replayed.
    if (isTerminal(trial.state) && !hasTails(trial)) ring.shrink(this.ended);
    this.counters.batches++;
    this.counters.lines += batch.lines.length;
    const set = this.listeners.get(batch.trialId);
    if (set) for (const fn of [...set]) fn();
  }

  private reject(m: Pick<JsMsg, 'subject'>, reason: OutputRejectReason, detail: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    this.warner.warn(`reject:${reason}`, 'rejected an output message', { reason, subject: m.subject, detail });
  }
}

/** The output store fed by an ordered consumer of SWEEPER_OUTPUT, read from its first message. */
export class OutputLog extends OutputStore {
  private messages: ConsumerMessages | null = null;
  private compactTimer?: NodeJS.Timeout;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private readonly nc: NatsConnection;
  private readonly logOpts: OutputLogOptions;

  constructor(opts: OutputLogOptions) {
    super(opts);
    this.nc = opts.nc;
    this.logOpts = opts;
  }

  /** Ensures the stream and starts reading it from its first message. Rejects if NATS cannot set it up. */
  async start(): Promise<void> {
    if (this.loop) throw new IllegalStateError('OutputLog already started');
    await ensureOutputStream(await this.nc.jetstreamManager(), this.logOpts.streamReplicas);
    this.messages = await this.openConsumer();
    this.loop = this.keepConsuming();
    this.compactTimer = setInterval(() => this.compact(), this.logOpts.compactIntervalMs ?? 10_000);
    this.compactTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.compactTimer);
    await this.messages?.close().catch(() => undefined);
    await this.loop;
  }

  private async openConsumer(): Promise<ConsumerMessages> {
    // Ordered: no acks, no durable state; it restarts itself after a gap, from where it was. It
    // starts at the stream's first message unless told otherwise (and refuses DeliverPolicy.All,
    // which it would send with a start sequence).
    const consumer = await this.nc.jetstream().consumers.get(OUTPUT_STREAM);
    return consumer.consume({ max_messages: 256, expires: 5000, callback: (m) => this.handle(m) });
  }

  /** Reopens the consumer if it ends anyway (the stream was lost with a server's store). */
  private async keepConsuming(): Promise<void> {
    let delayMs = 0;
    while (!this.stopping && !this.nc.isClosed()) {
      if (this.messages) {
        const err = await this.messages.closed();
        if (this.stopping) break;
        this.log.warn('output consumer ended; reopening it', { error: err ? String(err) : undefined });
        this.messages = null;
      }
      delayMs = Math.min(5000, Math.max(250, delayMs * 2));
      await new Promise((r) => setTimeout(r, delayMs));
      if (this.stopping || this.nc.isClosed()) break;
      try {
        await ensureOutputStream(await this.nc.jetstreamManager(), this.logOpts.streamReplicas);
        // The rings are rebuilt from the stream's start: what they held may no longer match it.
        this.clear();
        this.messages = await this.openConsumer();
        delayMs = 0;
      } catch (e) {
        this.warner.warn('reopen', 'could not reopen the output consumer; retrying', { error: String(e) });
      }
    }
  }
}

/** Whether the trial's end report kept output tails (its end event holds them). */
function hasTails(trial: OutputTrial): boolean {
  return trial.stdoutTail.length > 0 || trial.stderrTail.length > 0;
}

/** A lookup of trials for the output log, from anything that throws for an unknown id (SweepService.getTrial). */
export function trialLookup(getTrial: (trialId: string) => OutputTrial): (trialId: string) => OutputTrial | undefined {
  return (trialId) => {
    try {
      return getTrial(trialId);
    } catch {
      return undefined;
    }
  };
}

/**
 * Creates SWEEPER_OUTPUT, or brings an existing one to these limits. Old messages go first when
 * a limit is reached: the newest lines are the ones worth having.
 */
export async function ensureOutputStream(jsm: JetStreamManager, replicas?: number): Promise<void> {
  const want: Partial<StreamConfig> = {
    subjects: [`${OUTPUT_SUBJECT_PREFIX}.>`],
    max_msgs_per_subject: OUTPUT_STREAM_LIMITS.maxBatchesPerSubject,
    max_age: nanos(OUTPUT_STREAM_LIMITS.maxAgeMs),
    max_bytes: OUTPUT_STREAM_LIMITS.maxBytes,
    max_msg_size: OUTPUT_LIMITS.maxMessageBytes,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(120_000),
  };
  let info;
  try {
    info = await jsm.streams.info(OUTPUT_STREAM);
  } catch (err) {
    if (!(err instanceof NatsError && err.api_error?.err_code === STREAM_NOT_FOUND)) throw err;
    try {
      await jsm.streams.add({ name: OUTPUT_STREAM, storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: replicas ?? 1, ...want });
      return;
    } catch (e) {
      // Another controller made it between our lookup and our add: bring it to our limits below.
      if (!(e instanceof NatsError && e.api_error?.err_code === STREAM_NAME_IN_USE)) throw e;
      info = await jsm.streams.info(OUTPUT_STREAM);
    }
  }
  const c = info.config as unknown as Record<string, unknown>;
  const differs = Object.entries(want).some(([k, v]) => JSON.stringify(c[k]) !== JSON.stringify(v));
  if (differs) await jsm.streams.update(OUTPUT_STREAM, { ...info.config, ...want });
}

const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;

/** What a client is shown of a trial's output: live lines from its ring, or the tails its end report kept. */
export interface OutputView {
  state: TrialState;
  /** The lines come from the live stream (the trial runs, or its agent died), not from the end report. */
  live: boolean;
  droppedLines: number;
  lines: HeldLine[];
}

/**
 * The trial's output after `afterSeq`: from its ring while it runs, or when its end reported no
 * tails; otherwise the end report's tails (stdout then stderr, seq 1, 2, ... as they have none).
 * At most about `maxChars` of text.
 */
export function outputView(trial: OutputTrial, ring: TrialOutputRing | undefined, afterSeq: number, maxChars = Infinity): OutputView {
  const droppedLines = ring?.droppedLines ?? 0;
  const fromRing = ring !== undefined && ring.size > 0 && (!isTerminal(trial.state) || !hasTails(trial));
  if (fromRing) return { state: trial.state, live: true, droppedLines, lines: ring.after(afterSeq, maxChars) };
  const lines: HeldLine[] = [];
  let seq = 0;
  let chars = 0;
  const take = (stream: OutputStreamName, texts: string[]) => {
    for (const text of texts) {
      seq++;
      if (seq <= afterSeq) continue;
      if (lines.length > 0 && chars + text.length > maxChars) return;
      chars += text.length;
      lines.push({ seq, stream, at: 0, text });
    }
  };
  take('stdout', trial.stdoutTail);
  take('stderr', trial.stderrTail);
  return { state: trial.state, live: false, droppedLines, lines };
}

/**
 * The tails GetTrial shows: the live ring's last lines while the trial runs (or when its end
 * reported none), else the end report's.
 */
export function outputTails(trial: OutputTrial, ring: TrialOutputRing | undefined, maxLines: number, maxChars: number): { stdout: string[]; stderr: string[]; live: boolean; droppedLines: number } {
  const droppedLines = ring?.droppedLines ?? 0;
  if (ring !== undefined && ring.size > 0 && (!isTerminal(trial.state) || !hasTails(trial))) {
    return { stdout: ring.stdout.last(maxLines, maxChars), stderr: ring.stderr.last(maxLines, maxChars), live: true, droppedLines };
  }
  return { stdout: trial.stdoutTail, stderr: trial.stderrTail, live: false, droppedLines };
}
