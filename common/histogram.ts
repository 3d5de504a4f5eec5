/**
 * A fixed-memory latency histogram: log-spaced buckets (about 2% apart) from 0.1 ms to ~1 h, so
 * recording is O(1) and percentiles stay accurate to a couple of percent at any rate.
 */
const MIN_MS = 0.1;
const GROWTH = 1.02;
const BUCKETS = Math.ceil(Math.log(3_600_000 / MIN_MS) / Math.log(GROWTH)) + 2;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private maxSeen = 0;

  record(ms: number, times = 1): void {
    if (!Number.isFinite(ms)) return;
    const v = Math.max(0, ms);
    const i = v <= MIN_MS ? 0 : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(v / MIN_MS) / Math.log(GROWTH)));
    this.counts[i] += times;
    this.total += times;
    if (v > this.maxSeen) this.maxSeen = v;
  }

  get count(): number {
    return this.total;
  }

  /** The value below which a fraction `q` (0..1) of the recordings fall; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const target = q * this.total;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= target && this.counts[i] > 0) {
        // The bucket's upper edge, never above the largest value recorded.
        const upper = i === 0 ? MIN_MS : MIN_MS * GROWTH ** i;
        return Math.min(upper, this.maxSeen);
      }
    }
    return this.maxSeen;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.maxSeen = 0;
  }
}
