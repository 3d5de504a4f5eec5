/**
 * The Gaussian-process building blocks with exact expectations: kernel values, Cholesky on
 * matrices with known factors, EI and log EI against values computed with mpmath at 40 digits,
 * and analytic gradients against finite differences.
 */
import { describe, expect, it } from 'vitest';
import { expectedImprovement, logEiWithGradient, logExpectedImprovement, logH } from '../../controller/strategies/gp/acquisition.js';
import { latinHypercube } from '../../controller/strategies/numerics/design.js';
import { defaultTheta, GpObjective, GpPosterior, type GpTrainingData } from '../../controller/strategies/gp/gp.js';
import { matern52, matern52Slope, scaledSqDist } from '../../controller/strategies/gp/kernel.js';
import { minimizeBox } from '../../controller/strategies/numerics/lbfgs.js';
import { constantLiar } from '../../controller/strategies/gp/pending.js';
import {
  cholesky,
  choleskyInPlace,
  halfLogDet,
  inverseFromCholesky,
  NotPositiveDefiniteError,
  solveCholesky,
} from '../../controller/strategies/gp/linalg.js';
import { fitYeoJohnson, transformOutputs, yeoJohnson } from '../../controller/strategies/gp/transform.js';

const f64 = (xs: number[]) => Float64Array.from(xs);

describe('Matérn-5/2 kernel', () => {
  it('has the closed-form values (1 + √5 r + 5r²/3) e^{−√5 r}', () => {
    expect(matern52(0)).toBe(1);
    expect(matern52(1)).toBeCloseTo(0.52399410883182031059, 15);
    expect(matern52(0.5)).toBeCloseTo(0.82864914241812531308, 15);
    // −(1/r) dk/dr = (5/3)(1 + √5 r) e^{−√5 r}
    expect(matern52Slope(0)).toBeCloseTo(5 / 3, 15);
    const h = 1e-6;
    expect(-(matern52(0.7 + h) - matern52(0.7 - h)) / (2 * h) / 0.7).toBeCloseTo(matern52Slope(0.7), 8);
  });

  it('scales numeric dimensions by their lengthscales and compares categories for equality', () => {
    const x = f64([0.2, 1, 0.5]);
    const y = f64([0.5, 3, 0.5]);
    const w = f64([1 / 0.5 ** 2, 1 / 2 ** 2, 4]);
    const categorical = Uint8Array.from([0, 1, 0]);
    // (0.3/0.5)² + [1 ≠ 3]/2² + 0
    expect(scaledSqDist(x, 0, y, 0, w, categorical)).toBeCloseTo(0.36 + 0.25, 15);
    // Category 1 and 3 are as far apart as 1 and 2: no order.
    expect(scaledSqDist(x, 0, f64([0.2, 2, 0.5]), 0, w, categorical)).toBeCloseTo(0.25, 15);
  });
});

describe('Cholesky', () => {
  it('factors a matrix with a known integer factor exactly', () => {
    const a = f64([4, 12, -16, 12, 37, -43, -16, -43, 98]);
    const { l, jitter } = cholesky(a, 3);
    expect(jitter).toBe(0);
    expect(Array.from(l)).toEqual([2, 0, 0, 6, 1, 0, -8, 5, 3]);
    expect(halfLogDet(l, 3)).toBeCloseTo(Math.log(2 * 1 * 3), 15);
  });

  it('solves and inverts through the factor', () => {
    const a = f64([4, 12, -16, 12, 37, -43, -16, -43, 98]);
    const { l } = cholesky(a, 3);
    // a · [1, 2, 3] = [−20, −43, 192]
    expect(Array.from(solveCholesky(l, 3, f64([-20, -43, 192]))).map((v) => Math.round(v * 1e9) / 1e9)).toEqual([1, 2, 3]);
    const inv = inverseFromCholesky(l, 3);
    const expected = [49.36111111111111, -13.555555555555555, 2.1111111111111111, -13.555555555555555, 3.7777777777777777, -0.5555555555555556, 2.1111111111111111, -0.5555555555555556, 0.1111111111111111];
    inv.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 10));
  });

  it('extends a factor row by row: the leading block is the factor of the leading matrix', () => {
    const a = f64([4, 12, -16, 12, 37, -43, -16, -43, 98]);
    const lead = cholesky(f64([4, 12, 12, 37]), 2).l;
    const k = new Float64Array(9);
    k.set([lead[0], 0], 0);
    k.set([lead[2], lead[3]], 3);
    k.set([-16, -43, 98], 6);
    expect(choleskyInPlace(k, 3, k, 2)).toBe(true);
    expect(Array.from(k)).toEqual(Array.from(cholesky(a, 3).l));
  });

  it('adds jitter to a singular matrix and refuses an indefinite one', () => {
    const { jitter } = cholesky(f64([1, 1, 1, 1]), 2);
    expect(jitter).toBeGreaterThan(0);
    expect(() => cholesky(f64([-1, 0, 0, -1]), 2)).toThrow(NotPositiveDefiniteError);
  });
});

describe('expected improvement', () => {
  // mpmath, 40 digits: σ·(φ(z) + zΦ(z)) with z = (best − μ)/σ.
  const cases: [number, number, number, number, number][] = [
    [0, 1, 0, 0.39894228040143267794, -0.91893853320467274178],
    [1, 2, 0, 0.39559311480261205919, -0.92736908382737460985],
    [0.3, 0.5, 1, 0.71833407135423270398, -0.33082053770564185691],
    [12, 0.5, 1, 3.2590977530441555689e-109, -249.80032474214816522],
  ];
  it.each(cases)('at μ=%d, σ=%d, best=%d', (mean, sigma, best, ei, logEi) => {
    expect(expectedImprovement(mean, sigma, best) / ei).toBeCloseTo(1, 13);
    expect(logExpectedImprovement(mean, sigma, best)).toBeCloseTo(logEi, 12);
  });

  it('keeps log EI finite and exact where EI underflows', () => {
    expect(expectedImprovement(40, 1, 0)).toBe(0);
    expect(logExpectedImprovement(40, 1, 0)).toBeCloseTo(-808.29856835661996024, 10);
    expect(logExpectedImprovement(1e4, 1, 0) / -50000019.339619307157).toBeCloseTo(1, 14);
  });

  it('is continuous where the formula switches to the continued fraction', () => {
    expect(logH(-3 + 1e-12).value).toBeCloseTo(logH(-3 - 1e-12).value, 10);
    expect(logH(-3 + 1e-12).slope).toBeCloseTo(logH(-3 - 1e-12).slope, 8);
  });

  it('has the gradient of its definition', () => {
    const gm = f64([0.7, -0.2]);
    const gv = f64([0.1, 0.4]);
    const grad = new Float64Array(2);
    const value = logEiWithGradient(0.4, 0.3, 0.1, gm, gv, grad);
    expect(value).toBeCloseTo(logExpectedImprovement(0.4, Math.sqrt(0.3), 0.1), 14);
    const h = 1e-6;
    for (let d = 0; d < 2; d++) {
      const up = logExpectedImprovement(0.4 + h * gm[d], Math.sqrt(0.3 + h * gv[d]), 0.1);
      const down = logExpectedImprovement(0.4 - h * gm[d], Math.sqrt(0.3 - h * gv[d]), 0.1);
      expect(grad[d]).toBeCloseTo((up - down) / (2 * h), 7);
    }
  });
});

function toyData(): GpTrainingData {
  const points = latinHypercube(12, 3, mulberry(3));
  const x = new Float64Array(12 * 3);
  const y = new Float64Array(12);
  points.forEach((p, i) => {
    x.set([p[0], p[1], Math.floor(p[2] * 3)], i * 3);
    y[i] = Math.sin(4 * p[0]) + p[1] * p[1] + (Math.floor(p[2] * 3) === 1 ? 0.5 : 0);
  });
  return { x, y: transformOutputs(y), n: 12, categorical: Uint8Array.from([0, 0, 1]) };
}

/** A small deterministic generator for test data. */
function mulberry(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('GP hyperparameters', () => {
  it('have the analytic gradient of the negative log posterior', () => {
    const objective = new GpObjective(toyData());
    const theta = f64([-0.5, 0.2, -1, 0.3, -4]);
    const grad = new Float64Array(5);
    objective.evaluate(theta, grad);
    const h = 1e-6;
    for (let i = 0; i < theta.length; i++) {
      const up = new Float64Array(theta);
      const down = new Float64Array(theta);
      up[i] += h;
      down[i] -= h;
      const numeric = (objective.evaluate(up, new Float64Array(5)) - objective.evaluate(down, new Float64Array(5))) / (2 * h);
      expect(grad[i]).toBeCloseTo(numeric, 5);
    }
  });

  it('start at the priors’ modes', () => {
    const theta = defaultTheta(4);
    // log-normal lengthscale prior: mode at exp(√2 + ½ ln 4 − 3)
    expect(theta[0]).toBeCloseTo(Math.SQRT2 + 0.5 * Math.log(4) - 3, 15);
    expect(theta.length).toBe(6);
  });
});

describe('GP posterior', () => {
  it('interpolates its data, and takes pending points to come out at the lie', () => {
    const data = toyData();
    const theta = f64([-1, -1, 0, 0, Math.log(1e-6)]);
    const plain = new GpPosterior(data, theta);
    const at = data.x.subarray(0, 3);
    const { mean, variance } = plain.predict(at);
    expect(mean).toBeCloseTo(data.y[0], 4);
    expect(variance).toBeLessThan(1e-4);

    const far = f64([0.5, 0.5, 2]);
    const withPending = new GpPosterior(data, theta, { x: f64([0.5, 0.5, 2]), outcomes: constantLiar(3) });
    expect(withPending.predict(far).mean).toBeCloseTo(3, 4);
    expect(withPending.predict(far).variance).toBeLessThan(plain.predict(far).variance / 100);
    // Far from the pending point the posterior is the plain one.
    expect(withPending.predict(at).mean).toBeCloseTo(plain.predict(at).mean, 4);
  });

  it('has the gradients of its mean and variance', () => {
    const data = toyData();
    const post = new GpPosterior(data, f64([-1, -0.5, 0, 0, -5]), { x: f64([0.3, 0.6, 1]), outcomes: constantLiar(0.5) });
    const p = f64([0.41, 0.27, 1]);
    const gm = new Float64Array(3);
    const gv = new Float64Array(3);
    post.predictWithGradient(p, gm, gv);
    const h = 1e-6;
    for (let d = 0; d < 2; d++) {
      const up = new Float64Array(p);
      const down = new Float64Array(p);
      up[d] += h;
      down[d] -= h;
      expect(gm[d]).toBeCloseTo((post.predict(up).mean - post.predict(down).mean) / (2 * h), 6);
      expect(gv[d]).toBeCloseTo((post.predict(up).variance - post.predict(down).variance) / (2 * h), 6);
    }
    expect(gm[2]).toBe(0);
  });
});

describe('L-BFGS with bounds', () => {
  it('finds the minimum of a quadratic, held at a bound where the minimum lies outside', () => {
    // (x − 3)² + 10 (y + 1)² + x·y on x ∈ [0, 2], y ∈ [−5, 5]: x sticks at 2, then y = −1 − 2/20.
    const f = (p: Float64Array, g: Float64Array) => {
      const [x, y] = p;
      g[0] = 2 * (x - 3) + y;
      g[1] = 20 * (y + 1) + x;
      return (x - 3) ** 2 + 10 * (y + 1) ** 2 + x * y;
    };
    const r = minimizeBox(f, f64([0.5, 4]), { lower: f64([0, -5]), upper: f64([2, 5]), maxIter: 100, gradTol: 1e-10, relTol: 0 });
    expect(r.x[0]).toBe(2);
    expect(r.x[1]).toBeCloseTo(-1.1, 8);
  });
});

describe('output transform', () => {
  it('is the identity at λ = 1 and log1p at λ = 0', () => {
    expect(yeoJohnson(2.5, 1)).toBeCloseTo(2.5, 15);
    expect(yeoJohnson(-2.5, 1)).toBeCloseTo(-2.5, 15);
    expect(yeoJohnson(2.5, 0)).toBeCloseTo(Math.log(3.5), 15);
    expect(yeoJohnson(-2.5, 2)).toBeCloseTo(-Math.log(3.5), 15);
  });

  it('compresses a heavy upper tail and keeps the order', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 1000, 20000];
    expect(fitYeoJohnson(transformOutputs(values))).toBeLessThan(1);
    const t = transformOutputs(values);
    for (let i = 1; i < t.length; i++) expect(t[i]).toBeGreaterThan(t[i - 1]);
    const mean = t.reduce((a, b) => a + b, 0) / t.length;
    expect(mean).toBeCloseTo(0, 12);
  });
});
