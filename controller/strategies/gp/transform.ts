/**
 * Output transforms for the GP. Objective values are often far from Gaussian: a loss that blows
 * up in part of the space (a learning rate too large, a valley's walls) puts a few huge values
 * beside many small ones, and a GP fitted to those spends its variance on the outliers and sees
 * the region that matters as flat. The values are standardised, then warped by the Yeo–Johnson
 * power transform whose λ makes them most Gaussian (maximum likelihood, as HEBO does), then
 * standardised again. The transform is monotone, so the best point stays the best.
 */

function standardise(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i] / n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (values[i] - mean) ** 2 / n;
  const scale = variance > 0 ? Math.sqrt(variance) : 1;
  return Float64Array.from(values, (v) => (v - mean) / scale);
}

/** The Yeo–Johnson transform of y with parameter λ. */
export function yeoJohnson(y: number, lambda: number): number {
  if (y >= 0) return Math.abs(lambda) < 1e-9 ? Math.log1p(y) : ((y + 1) ** lambda - 1) / lambda;
  const l2 = 2 - lambda;
  return Math.abs(l2) < 1e-9 ? -Math.log1p(-y) : -((1 - y) ** l2 - 1) / l2;
}

/** Profile log-likelihood of λ: normal fit of the transformed values plus the Jacobian. */
function yeoJohnsonLogLik(y: Float64Array, lambda: number): number {
  const n = y.length;
  let mean = 0;
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    t[i] = yeoJohnson(y[i], lambda);
    mean += t[i] / n;
  }
  let variance = 0;
  let jacobian = 0;
  for (let i = 0; i < n; i++) {
    variance += (t[i] - mean) ** 2 / n;
    jacobian += Math.sign(y[i]) * Math.log1p(Math.abs(y[i]));
  }
  if (!(variance > 0)) return -Infinity;
  return -0.5 * n * Math.log(variance) + (lambda - 1) * jacobian;
}

const MIN_LAMBDA = -2;
const MAX_LAMBDA = 3;

/** The λ in [−2, 3] that maximises the likelihood: a grid, then golden-section refinement. */
export function fitYeoJohnson(y: Float64Array): number {
  let best = 1;
  let bestLik = yeoJohnsonLogLik(y, 1);
  for (let lambda = MIN_LAMBDA; lambda <= MAX_LAMBDA + 1e-9; lambda += 0.25) {
    const lik = yeoJohnsonLogLik(y, lambda);
    if (lik > bestLik) {
      bestLik = lik;
      best = lambda;
    }
  }
  let lo = Math.max(MIN_LAMBDA, best - 0.25);
  let hi = Math.min(MAX_LAMBDA, best + 0.25);
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 30; i++) {
    const a = hi - g * (hi - lo);
    const b = lo + g * (hi - lo);
    if (yeoJohnsonLogLik(y, a) > yeoJohnsonLogLik(y, b)) hi = b;
    else lo = a;
  }
  const refined = (lo + hi) / 2;
  return yeoJohnsonLogLik(y, refined) > bestLik ? refined : best;
}

/** Values ready for the GP: standardised, warped towards Gaussian, standardised again. */
export function transformOutputs(values: ArrayLike<number>): Float64Array {
  const z = standardise(values);
  if (z.length < 3) return z;
  const lambda = fitYeoJohnson(z);
  return standardise(Float64Array.from(z, (v) => yeoJohnson(v, lambda)));
}
