/**
 * The live output the controller holds of one trial: the last lines of its stdout and of its
 * stderr, each in a ring bounded by lines and characters, so memory stays flat however much the
 * trial prints. Pure: output-log.ts feeds it from JetStream.
 *
 * Every line has a seq, increasing through the trial in the order the stream holds the lines:
 * `streamSeq * 1024 + index in its batch` (batches hold under 1024 lines, output-wire.ts). It is
 * the same after a controller restart, which rebuilds the rings from the stream, so a client that
 * follows from its last seq (`WatchTrialOutput`) neither misses nor repeats a line.
 */
import { streamOfWire, type OutputBatch, type OutputStreamName } from '../../common/output-wire.js';

export interface HeldLine {
  seq: number;
  stream: OutputStreamName;
  /** When the agent read it, ms since the epoch (0 for lines from a trial's end report). */
  at: number;
  text: string;
}

/** Positions per batch in a line's seq: more than a batch may hold (OUTPUT_LIMITS.maxLinesPerBatch). */
export const SEQ_PER_BATCH = 1024;

export function lineSeq(streamSeq: number, index: number): number {
  return streamSeq * SEQ_PER_BATCH + index;
}

/** One stream's last lines, oldest first, in increasing seq. */
export class LineRing {
  private buf: HeldLine[] = [];
  /** Index in `buf` of the oldest line. */
  private head = 0;
  private chars = 0;

  constructor(
    private maxLines: number,
    private maxChars: number,
  ) {}

  get size(): number {
    return this.buf.length - this.head;
  }

  get heldChars(): number {
    return this.chars;
  }

  push(line: HeldLine): void {
    this.buf.push(line);
    this.chars += line.text.length;
    this.evict();
  }

  /** Holds at most this from now on (a trial that ended keeps less). */
  shrink(maxLines: number, maxChars: number): void {
    this.maxLines = Math.min(this.maxLines, maxLines);
    this.maxChars = Math.min(this.maxChars, maxChars);
    this.evict();
  }

  /** The index (from the oldest) of the first line with a seq above `seq`. */
  firstAfter(seq: number): number {
    let lo = this.head;
    let hi = this.buf.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.buf[mid].seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  at(i: number): HeldLine {
    return this.buf[this.head + i];
  }

  /** The last `n` lines' texts within `maxChars` (the newest kept), oldest first. */
  last(n: number, maxChars: number): string[] {
    const out: string[] = [];
    let chars = 0;
    for (let i = this.size - 1; i >= 0 && out.length < n; i--) {
      const text = this.at(i).text;
      if (out.length > 0 && chars + text.length > maxChars) break;
      chars += text.length;
      out.push(text);
    }
    return out.reverse();
  }

  private evict(): void {
    while (this.size > 0 && (this.size > this.maxLines || this.chars > this.maxChars)) {
      this.chars -= this.buf[this.head].text.length;
      this.head++;
    }
    // Compact now and then rather than shifting on every eviction.
    if (this.head > 1024 && this.head * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
  }
}

export interface RingLimits {
  linesPerStream: number;
  charsPerStream: number;
}

export class TrialOutputRing {
  readonly stdout: LineRing;
  readonly stderr: LineRing;
  /** Lines (and bytes) the trial's agents said they did not send, all runs together. */
  droppedLines = 0;
  droppedBytes = 0;
  /** Lines taken in, ever (the rings keep the last of them). */
  received = 0;
  /** The run of the newest batch, and whether that batch was its run's last. */
  private lastRun = '';
  private lastWasFinal = false;

  constructor(limits: RingLimits) {
    this.stdout = new LineRing(limits.linesPerStream, limits.charsPerStream);
    this.stderr = new LineRing(limits.linesPerStream, limits.charsPerStream);
  }

  /** A batch the stream holds at `streamSeq`; batches come in stream order. */
  add(batch: OutputBatch, streamSeq: number): void {
    batch.lines.forEach((l, i) => {
      const stream = streamOfWire(l.s);
      this.ring(stream).push({ seq: lineSeq(streamSeq, i), stream, at: l.t, text: l.x });
    });
    this.received += batch.lines.length;
    this.droppedLines += batch.droppedLines ?? 0;
    this.droppedBytes += batch.droppedBytes ?? 0;
    this.lastRun = batch.run;
    this.lastWasFinal = batch.final === true;
  }

  /** Whether the newest run has sent its final batch: nothing more is coming from it. */
  get finalSeen(): boolean {
    return this.lastWasFinal;
  }

  get run(): string {
    return this.lastRun;
  }

  get size(): number {
    return this.stdout.size + this.stderr.size;
  }

  ring(stream: OutputStreamName): LineRing {
    return stream === 'stdout' ? this.stdout : this.stderr;
  }

  /**
   * Both streams' lines with a seq above `seq`, merged in seq order, oldest first, up to
   * `maxChars` of text (at least one line, when there is one).
   */
  after(seq: number, maxChars = Infinity): HeldLine[] {
    const out: HeldLine[] = [];
    let i = this.stdout.firstAfter(seq);
    let j = this.stderr.firstAfter(seq);
    let chars = 0;
    while (i < this.stdout.size || j < this.stderr.size) {
      const a = i < this.stdout.size ? this.stdout.at(i) : undefined;
      const b = j < this.stderr.size ? this.stderr.at(j) : undefined;
      const next = !b || (a && a.seq < b.seq) ? a! : b;
      if (out.length > 0 && chars + next.text.length > maxChars) break;
      chars += next.text.length;
      out.push(next);
      if (next === a) i++;
      else j++;
    }
    return out;
  }

  shrink(limits: RingLimits): void {
    this.stdout.shrink(limits.linesPerStream, limits.charsPerStream);
    this.stderr.shrink(limits.linesPerStream, limits.charsPerStream);
  }
}
