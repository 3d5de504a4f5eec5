/**
 * Log expected improvement for minimisation (Ament et al., "Unexpected improvements to expected
 * improvement", 2023). Plain EI underflows to exactly 0 a few standard deviations away from the
 * incumbent, which leaves an optimiser with a flat surface and no gradient; its logarithm stays
 * finite and smooth everywhere, so a local search can climb out of those regions.
 *
 * With z = (best − μ)/σ, EI = σ · h(z) and h(z) = φ(z) + z Φ(z). For z ≤ −3, h is computed as
 * φ(z) · q/(x + q) with x = −z and q from Laplace's continued fraction for the Mills ratio,
 * R(x) = 1/(x + q), q = 1/(x + 2/(x + 3/(x + …))): it has no cancellation however far out z is.
 */
import { normalCdf } from '../numerics/sampling.js';

const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
/** Where the direct formula gives way to the continued fraction. */
const TAIL = -3;

function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z - LN_SQRT_2PI);
}

/** q(x) = 1/(x + 2/(x + 3/(x + …))) for x ≥ 3, by the modified Lentz method. */
function millsTail(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = f;
  let d = 0;
  for (let n = 2; n < 5000; n++) {
    d = x + n * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = x + n / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) <= 1e-16) break;
  }
  return 1 / f;
}

/** log h(z) and d log h / dz = Φ(z)/h(z). */
export function logH(z: number): { value: number; slope: number } {
  if (z > TAIL) {
    const cdf = normalCdf(z);
    const h = normalPdf(z) + z * cdf;
    return { value: Math.log(h), slope: cdf / h };
  }
  const x = -z;
  const q = millsTail(x);
  return { value: -0.5 * z * z - LN_SQRT_2PI + Math.log(q) - Math.log(x + q), slope: 1 / q };
}

/** Expected improvement below `best` of a normal with this mean and standard deviation. */
export function expectedImprovement(mean: number, sigma: number, best: number): number {
  if (!(sigma > 0)) return Math.max(best - mean, 0);
  return sigma * Math.exp(logH((best - mean) / sigma).value);
}

/** log EI; −Infinity only when σ = 0 and the mean is no better than `best`. */
export function logExpectedImprovement(mean: number, sigma: number, best: number): number {
  if (!(sigma > 0)) return Math.log(Math.max(best - mean, 0));
  return Math.log(sigma) + logH((best - mean) / sigma).value;
}

/**
 * log EI at a point whose posterior mean and variance have the given gradients; writes the
 * gradient of log EI into `grad` (same length).
 */
export function logEiWithGradient(
  mean: number,
  variance: number,
  best: number,
  gradMean: Float64Array,
  gradVar: Float64Array,
  grad: Float64Array,
): number {
  const sigma = Math.sqrt(variance);
  const z = (best - mean) / sigma;
  const { value, slope } = logH(z);
  for (let d = 0; d < grad.length; d++) {
    const dSigma = gradVar[d] / (2 * sigma);
    const dz = -(gradMean[d] + z * dSigma) / sigma;
    grad[d] = dSigma / sigma + slope * dz;
  }
  return Math.log(sigma) + value;
}
