/**
 * Randomness and the normal distribution as the model-based strategies use them. Every draw comes
 * from an RNG seeded with a string built from the sweep's seed and what is being drawn, so a
 * suggestion is a function of its inputs (see random.ts for the same rule).
 */
import seedrandom from 'seedrandom';
import { erfc } from './special.js';

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** 53-bit uniforms: the plain seedrandom call carries 32 bits, too coarse for log scales. */
export function seededRng(seed: string): Rng {
  const rng = seedrandom(seed);
  return () => rng.double();
}

export function unitVector(D: number, rng: Rng): Float64Array {
  const u = new Float64Array(D);
  for (let d = 0; d < D; d++) u[d] = rng();
  return u;
}

/** A standard normal draw (Box–Muller). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Φ(t), accurate in both tails. */
export function normalCdf(t: number): number {
  return 0.5 * erfc(-t / Math.SQRT2);
}
