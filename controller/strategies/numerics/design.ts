/**
 * The initial space-filling design: a maximin Latin hypercube. Each of n points takes one of the
 * n equal slices of every axis (so every parameter's range is covered evenly, categories in
 * proportion to their weights), at a random place inside its slice; of several such designs the
 * one whose closest pair of points is farthest apart is kept, which rules out the clumped
 * designs a plain Latin hypercube sometimes draws.
 */
import type { Rng } from './sampling.js';

/** n points in [0, 1)^D, row-major. */
export function latinHypercube(n: number, D: number, rng: Rng, candidates = 20): Float64Array[] {
  let best: Float64Array[] = [];
  let bestSpread = -1;
  for (let c = 0; c < candidates; c++) {
    const design = Array.from({ length: n }, () => new Float64Array(D));
    for (let d = 0; d < D; d++) {
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (let i = 0; i < n; i++) design[i][d] = (order[i] + rng()) / n;
    }
    let spread = Infinity;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += (design[i][d] - design[j][d]) ** 2;
        spread = Math.min(spread, s);
      }
    }
    if (spread > bestSpread) {
      bestSpread = spread;
      best = design;
    }
  }
  return best;
}
