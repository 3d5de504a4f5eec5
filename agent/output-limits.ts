/**
 * What one trial's live output may cost, and the pure bookkeeping that holds it to that: each
 * line cut to a size, a rate in lines and bytes per second, a bound on what waits while NATS is
 * slow, and batches cut by count, size or age. Whatever is over a limit is dropped and counted,
 * never waited for: the agent reads the program's pipes at the program's pace, whatever NATS does.
 */
import { OUTPUT_LIMITS, type OutputLineWire } from '../common/output-wire.js';
import { truncateUtf8 } from './output-tail.js';

export interface OutputLimits {
  /** UTF-8 bytes kept of each line; longer ones end in '…'. At most OUTPUT_LIMITS.maxLineBytes. */
  maxLineBytes: number;
  /** Lines per second a trial may send, on average; a burst of up to one second's worth passes at once. */
  linesPerSecond: number;
  /** Bytes per second, likewise. */
  bytesPerSecond: number;
  /** Bytes a trial may have waiting (a batch on the wire, NATS away); past it new lines are dropped. */
  maxPendingBytes: number;
  /** A batch leaves once it holds this many bytes or lines, or at the next flush. */
  maxBatchBytes: number;
  maxBatchLines: number;
  /** How often what waits is sent, full batch or not. */
  flushIntervalMs: number;
}

/**
 * The defaults: far above what a training script prints (a line per step or epoch, a progress bar
 * redrawn a few times a second), far below what would cost the controller or NATS anything that
 * matters (a 1,000-trial sweep of such trials is a few megabytes a second at most).
 */
export const DEFAULT_OUTPUT_LIMITS: Readonly<OutputLimits> = Object.freeze({
  maxLineBytes: OUTPUT_LIMITS.maxLineBytes,
  linesPerSecond: 1000,
  bytesPerSecond: 256 * 1024,
  maxPendingBytes: 512 * 1024,
  maxBatchBytes: 64 * 1024,
  maxBatchLines: 1000,
  flushIntervalMs: 250,
});

export function outputLimits(given: Partial<OutputLimits> = {}): Readonly<OutputLimits> {
  const l = { ...DEFAULT_OUTPUT_LIMITS, ...given };
  return Object.freeze({
    ...l,
    maxLineBytes: Math.max(16, Math.min(Math.floor(l.maxLineBytes), OUTPUT_LIMITS.maxLineBytes)),
    maxBatchLines: Math.max(1, Math.min(Math.floor(l.maxBatchLines), OUTPUT_LIMITS.maxLinesPerBatch)),
    // Room under the message limit for the JSON around the lines.
    maxBatchBytes: Math.max(1, Math.min(l.maxBatchBytes, OUTPUT_LIMITS.maxMessageBytes / 2)),
  });
}

/**
 * A token bucket in two units at once: lines and bytes. Full at start, it holds one second of
 * each and refills continuously; a line passes only when both have room for it.
 */
export class RateLimiter {
  private lines: number;
  private bytes: number;
  private at: number;

  constructor(
    private readonly linesPerSecond: number,
    private readonly bytesPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lines = linesPerSecond;
    this.bytes = bytesPerSecond;
    this.at = now();
  }

  take(bytes: number): boolean {
    const t = this.now();
    const dt = Math.max(0, t - this.at) / 1000;
    this.at = t;
    this.lines = Math.min(this.linesPerSecond, this.lines + dt * this.linesPerSecond);
    this.bytes = Math.min(this.bytesPerSecond, this.bytes + dt * this.bytesPerSecond);
    if (this.lines < 1 || this.bytes < bytes) return false;
    this.lines -= 1;
    this.bytes -= bytes;
    return true;
  }
}

/** What a batch carries: the lines, and what was dropped since the previous batch. Bytes count each line's newline. */
export interface OutputChunk {
  lines: OutputLineWire[];
  droppedLines: number;
  droppedBytes: number;
  bytes: number;
}

/** Why lines were dropped, for the agent's log. */
export interface DropCounts {
  /** Over the rate limit. */
  rate: number;
  /** Waiting past maxPendingBytes (NATS slow or away). */
  backlog: number;
  bytes: number;
}

/**
 * One trial's lines on their way out: cut, rate-limited, held up to maxPendingBytes, and handed
 * out in chunks of at most maxBatchLines / maxBatchBytes. Every call is O(1) per line.
 */
export class OutputBuffer {
  private readonly limiter: RateLimiter;
  private pending: OutputLineWire[] = [];
  /** The UTF-8 size of each pending line, with its newline. */
  private sizes: number[] = [];
  /** Bytes of the pending lines, and of those plus the chunks cut and not yet released. */
  private queuedBytes = 0;
  private heldBytes = 0;
  private droppedLinesSinceCut = 0;
  private droppedBytesSinceCut = 0;
  readonly dropped: DropCounts = { rate: 0, backlog: 0, bytes: 0 };
  /** Lines accepted so far. */
  kept = 0;

  constructor(
    private readonly limits: Readonly<OutputLimits>,
    private readonly now: () => number = Date.now,
  ) {
    this.limiter = new RateLimiter(limits.linesPerSecond, limits.bytesPerSecond, now);
  }

  /** Takes a line, or drops and counts it; true when kept. */
  add(stream: 'stdout' | 'stderr', line: string): boolean {
    const text = truncateUtf8(line, this.limits.maxLineBytes);
    // With its newline: an empty line is not free, so a flood of them is bounded too.
    const bytes = Buffer.byteLength(text, 'utf8') + 1;
    if (this.heldBytes + bytes > this.limits.maxPendingBytes) return this.drop('backlog', bytes);
    if (!this.limiter.take(bytes)) return this.drop('rate', bytes);
    this.pending.push({ s: stream === 'stdout' ? 'o' : 'e', t: this.now(), x: text });
    this.sizes.push(bytes);
    this.queuedBytes += bytes;
    this.heldBytes += bytes;
    this.kept++;
    return true;
  }

  /** Whether a full batch waits. */
  get full(): boolean {
    return this.pending.length >= this.limits.maxBatchLines || this.queuedBytes >= this.limits.maxBatchBytes;
  }

  /** Whether there is anything to send: lines, or a count of dropped ones. */
  get hasPending(): boolean {
    return this.pending.length > 0 || this.droppedLinesSinceCut > 0;
  }

  get pendingLines(): number {
    return this.pending.length;
  }

  get totalDropped(): number {
    return this.dropped.rate + this.dropped.backlog;
  }

  /**
   * The oldest lines, up to a batch's worth, with the drops counted since the previous cut. Their
   * bytes stay counted as pending until `release`, so what is on the wire counts against the bound.
   */
  cut(): OutputChunk {
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < this.limits.maxBatchLines) {
      if (n > 0 && bytes + this.sizes[n] > this.limits.maxBatchBytes) break;
      bytes += this.sizes[n];
      n++;
    }
    this.sizes.splice(0, n);
    this.queuedBytes -= bytes;
    const chunk: OutputChunk = { lines: this.pending.splice(0, n), droppedLines: this.droppedLinesSinceCut, droppedBytes: this.droppedBytesSinceCut, bytes };
    this.droppedLinesSinceCut = 0;
    this.droppedBytesSinceCut = 0;
    return chunk;
  }

  /** A cut chunk is off our hands (acknowledged, or given up on). */
  release(chunk: OutputChunk): void {
    this.heldBytes -= chunk.bytes;
  }

  private drop(reason: 'rate' | 'backlog', bytes: number): false {
    this.dropped[reason]++;
    this.dropped.bytes += bytes;
    this.droppedLinesSinceCut++;
    this.droppedBytesSinceCut += bytes;
    return false;
  }
}
