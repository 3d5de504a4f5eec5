/**
 * What running trials are taken to come out at (gp/pending.ts) and how the posterior conditions
 * on them: the rules themselves, the means the observed data predict at the pending points
 * (against a two-point closed form), the kriging believer leaving the mean untouched, and the
 * distance to the nearest pending point.
 */
import { describe, expect, it } from 'vitest';
import { GpPosterior, type GpTrainingData } from '../../controller/strategies/gp/gp.js';
import { constantLiar, krigingBeliever } from '../../controller/strategies/gp/pending.js';

const f64 = (xs: number[]) => Float64Array.from(xs);
const matern = (r: number) => (1 + Math.sqrt(5) * r + (5 * r * r) / 3) * Math.exp(-Math.sqrt(5) * r);

/** Two observations on a line, at 0 and 0.5, of +1 and −1. */
const twoPoints: GpTrainingData = { x: f64([0, 0.5]), y: f64([1, -1]), n: 2, categorical: Uint8Array.from([0]) };
const noise = 1e-4;
/** ℓ = 0.5, unit signal variance. */
const theta = f64([Math.log(0.5), 0, Math.log(noise)]);

describe('pending outcome rules', () => {
  it('the constant liar gives every pending point the lie', () => {
    expect(Array.from(constantLiar(0.5)(f64([1, -2, 3])))).toEqual([0.5, 0.5, 0.5]);
    expect(constantLiar(0.5)(f64([]))).toHaveLength(0);
  });

  it('the kriging believer gives each pending point its predicted mean, in a copy', () => {
    const predicted = f64([0.25, -1.5]);
    const believed = krigingBeliever(predicted);
    expect(Array.from(believed)).toEqual([0.25, -1.5]);
    expect(believed).not.toBe(predicted);
  });
});

describe('GP posterior with pending points', () => {
  it('hands the rule the means the observed data alone predict there', () => {
    // By symmetry the constant mean is 0 and K⁻¹y = y / (1 + noise − k(0, 0.5)), so the mean at
    // x is (k(x, 0) − k(x, 0.5)) / (1 + noise − k(0, 0.5)); the first pending point does not
    // move the second's prediction.
    let seen = new Float64Array(0);
    const posterior = new GpPosterior(twoPoints, theta, {
      x: f64([0.25, 1]),
      outcomes: (predicted) => {
        seen = new Float64Array(predicted);
        return constantLiar(7)(predicted);
      },
    });
    const denominator = 1 + noise - matern(1);
    expect(posterior.mean0).toBeCloseTo(0, 14);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeCloseTo(0, 14);
    expect(seen[1]).toBeCloseTo((matern(2) - matern(1)) / denominator, 14);
    expect(Array.from(posterior.pendingOutcomes)).toEqual([7, 7]);
  });

  it('under the kriging believer keeps the mean and lowers the variance around pending points', () => {
    const plain = new GpPosterior(twoPoints, theta);
    const pending = f64([0.9]);
    const believer = new GpPosterior(twoPoints, theta, { x: pending, outcomes: krigingBeliever });
    expect(believer.pendingOutcomes[0]).toBeCloseTo(plain.predict(pending).mean, 14);
    for (const q of [0.1, 0.7, 0.85, 1]) {
      expect(believer.predict(f64([q])).mean).toBeCloseTo(plain.predict(f64([q])).mean, 12);
    }
    expect(believer.predict(pending).variance).toBeLessThan(plain.predict(pending).variance / 100);
  });

  it('measures the distance to the nearest pending point in lengthscales', () => {
    const posterior = new GpPosterior(twoPoints, theta, { x: f64([0.25, 1]), outcomes: krigingBeliever });
    // ℓ = 0.5: 0.05 away from 0.25 is a tenth of a lengthscale.
    expect(posterior.distanceToPending(f64([0.3]))).toBeCloseTo(0.1, 14);
    expect(posterior.distanceToPending(f64([0.9]))).toBeCloseTo(0.2, 14);
    expect(new GpPosterior(twoPoints, theta).distanceToPending(f64([0.3]))).toBe(Infinity);
  });
});
