/**
 * The last lines of a trial's stdout or stderr, kept for `sweeper logs` and for failure reports.
 * Memory stays bounded however much a trial prints: a fixed number of lines, each cut to a
 * fixed number of UTF-8 bytes.
 */
export interface OutputTailOptions {
  /** Lines kept; older ones are dropped. Default 200. */
  maxLines?: number;
  /** Bytes kept of each line (UTF-8); longer lines end in '…'. Default 4 KiB. */
  maxLineBytes?: number;
}

export class OutputTail {
  readonly maxLines: number;
  readonly maxLineBytes: number;
  private readonly ring: string[] = [];
  /** Index in `ring` of the oldest line once the ring is full. */
  private head = 0;
  private total = 0;

  constructor(opts: OutputTailOptions = {}) {
    this.maxLines = Math.max(1, Math.floor(opts.maxLines ?? 200));
    this.maxLineBytes = Math.max(4, Math.floor(opts.maxLineBytes ?? 4096));
  }

  push(line: string): void {
    const kept = truncateUtf8(line, this.maxLineBytes);
    this.total++;
    if (this.ring.length < this.maxLines) {
      this.ring.push(kept);
      return;
    }
    this.ring[this.head] = kept;
    this.head = (this.head + 1) % this.maxLines;
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    return [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  /** Lines pushed that are no longer kept. */
  get dropped(): number {
    return this.total - this.ring.length;
  }
}

export function truncateUtf8(line: string, maxBytes: number): string {
  // Three bytes per UTF-16 unit is the worst case, so most lines skip the encoding.
  if (line.length * 3 <= maxBytes) return line;
  const buf = Buffer.from(line, 'utf8');
  if (buf.length <= maxBytes) return line;
  // Leave room for the marker, and back up so no multi-byte character is cut in half.
  let end = maxBytes - 3;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8') + '…';
}
