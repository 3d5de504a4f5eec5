/**
 * Special functions behind the inverse CDFs: the normal quantile (scipy's `ndtri`) and the inverse
 * of the regularized incomplete beta function (scipy's `btdtri`). W&B draws normal and beta values
 * through scipy, and Sweeper promises the same values to a relative 1e-9, so these are computed to
 * near machine precision rather than with the usual few-digit approximations.
 *
 * Everything here is built from convergent series and continued fractions refined by Newton or
 * Halley steps, so no table of fitted coefficients has to be trusted.
 */

const SQRT_PI = Math.sqrt(Math.PI);
const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const EPS = 1e-16;

/**
 * Below this argument erf's series is cheap and exact; above it erfc's continued fraction takes
 * under a hundred terms, and 1 − erf would lose more than a digit and a half of erfc.
 */
const ERF_SERIES_LIMIT = 1.5;

/**
 * erf(z) for small |z| from the series with only positive terms,
 * erf(z) = 2/√π · e^{-z²} · Σ 2ⁿ z^{2n+1} / (1·3·…·(2n+1)): the usual alternating series loses
 * digits to cancellation once z passes 1.
 */
function erfSeries(z: number): number {
  const z2 = 2 * z * z;
  let term = z;
  let sum = z;
  for (let n = 1; n < 500; n++) {
    term *= z2 / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= EPS * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * Math.exp(-z * z) * sum;
}

/**
 * erfc(z) for z ≥ 1.5 from Laplace's continued fraction
 * e^{-z²}/√π · 1/(z + ½/(z + 1/(z + 3/2/(z + …)))), evaluated with the modified Lentz method.
 * It keeps full relative precision deep in the tail, where 1 − erf(z) would round to 0.
 */
function erfcFraction(z: number): number {
  const tiny = 1e-300;
  let f = z;
  let c = f;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = z + a * d;
    if (d === 0) d = tiny;
    d = 1 / d;
    c = z + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) <= EPS) break;
  }
  return Math.exp(-z * z) / SQRT_PI / f;
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (Math.abs(x) < ERF_SERIES_LIMIT) return erfSeries(x);
  return x > 0 ? 1 - erfcFraction(x) : erfcFraction(-x) - 1;
}

export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= ERF_SERIES_LIMIT) return erfcFraction(x);
  if (x <= -ERF_SERIES_LIMIT) return 2 - erfcFraction(-x);
  return 1 - erfSeries(x);
}

/** Standard normal density. */
function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x - LN_SQRT_2PI);
}

/**
 * Φ(x) − p, arranged so that neither term cancels the other: around the median both sides are
 * written relative to ½, in the lower tail Φ comes straight from erfc's fraction.
 */
function normalCdfMinus(x: number, p: number): number {
  const z = x / Math.SQRT2;
  if (Math.abs(z) < ERF_SERIES_LIMIT) return 0.5 - p + 0.5 * erfSeries(z);
  if (x < 0) return 0.5 * erfcFraction(-z) - p;
  return 1 - p - 0.5 * erfcFraction(z);
}

/**
 * The standard normal quantile Φ⁻¹(p), as scipy's `ndtri`: −∞ at 0, +∞ at 1, NaN outside [0, 1].
 * Abramowitz & Stegun 26.2.23 (error under 5e-4) gives the start; Halley's method, cubically
 * convergent, takes it to machine precision in two or three steps.
 */
export function ndtri(p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  // 1 − p is exact for p ≥ ½, so solving in the lower half loses nothing.
  if (p > 0.5) return -ndtri(1 - p);
  const t = Math.sqrt(-2 * Math.log(p));
  let x = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1 + t * (1.432788 + t * (0.189269 + t * 0.001308))));
  for (let i = 0; i < 50; i++) {
    const step = normalCdfMinus(x, p) / normalPdf(x);
    const next = x - step / (1 + (x * step) / 2);
    const done = Math.abs(next - x) <= 4 * Number.EPSILON * Math.abs(next);
    x = next;
    if (done) break;
  }
  return x;
}

const STIRLING_SHIFT = 15;
/** B₂ₖ / (2k(2k−1)) for k = 1..7: the Stirling series for ln Γ. */
const STIRLING_TERMS = [
  1 / 12,
  -1 / 360,
  1 / 1260,
  -1 / 1680,
  1 / 1188,
  -691 / 360360,
  1 / 156,
];

/**
 * ln Γ(x) for x > 0: the Stirling series once x ≥ 15 (the first omitted term is below 1e-19 there),
 * after shifting smaller arguments up with Γ(x+1) = x Γ(x).
 */
export function lnGamma(x: number): number {
  if (!(x > 0)) return NaN;
  let shift = 0;
  while (x < STIRLING_SHIFT) {
    shift += Math.log(x);
    x += 1;
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  let series = 0;
  let power = inv;
  for (const c of STIRLING_TERMS) {
    series += c * power;
    power *= inv2;
  }
  return (x - 0.5) * Math.log(x) - x + LN_SQRT_2PI + series - shift;
}

export function lnBeta(a: number, b: number): number {
  return lnGamma(a) + lnGamma(b) - lnGamma(a + b);
}

/** The continued fraction of I_x(a, b) (converges fast for x < (a+1)/(a+b+2)), modified Lentz. */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m < 10000; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) <= EPS) break;
  }
  return f;
}

/** The regularized incomplete beta function I_x(a, b), the beta distribution's CDF. */
export function incompleteBeta(a: number, b: number, x: number): number {
  if (Number.isNaN(x) || !(a > 0) || !(b > 0)) return NaN;
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const logFront = a * Math.log(x) + b * Math.log1p(-x) - lnBeta(a, b);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaFraction(a, b, x)) / a;
  return 1 - (Math.exp(logFront) * betaFraction(b, a, 1 - x)) / b;
}

/**
 * x with I_x(a, b) = p, as scipy's `btdtri` / `beta.ppf`. The root is sought from whichever end
 * of [0, 1] it lies nearer, through the symmetry I_x(a, b) = 1 − I_{1−x}(b, a), so a root close to
 * 0 or to 1 keeps its relative precision.
 */
export function incompleteBetaInv(a: number, b: number, p: number): number {
  if (Number.isNaN(p) || p < 0 || p > 1 || !(a > 0) || !(b > 0)) return NaN;
  if (p === 0) return 0;
  if (p === 1) return 1;
  if (incompleteBeta(a, b, 0.5) >= p) return betaRootBelowHalf(a, b, p);
  return 1 - betaRootBelowHalf(b, a, 1 - p);
}

/**
 * The root of I_x(a, b) = p known to lie in (0, ½]. Newton's method on ln I against ln x, which is
 * nearly linear near 0 where I_x ≈ x^a / (a·B(a, b)) (plain Newton crawls there when a is small),
 * kept inside a shrinking bracket: a step that leaves it falls back to bisection, geometric while
 * the bracket spans orders of magnitude, so it always converges.
 */
function betaRootBelowHalf(a: number, b: number, p: number): number {
  const lnB = lnBeta(a, b);
  const lnP = Math.log(p);
  let lo = 0;
  let hi = 0.5;
  // The power law above, solved for x: exact in the limit x → 0.
  let x = Math.exp((lnP + Math.log(a) + lnB) / a);
  if (!(x > 0 && x < hi)) x = hi / 2;
  for (let i = 0; i < 5000; i++) {
    const cdf = incompleteBeta(a, b, x);
    if (cdf === p) return x;
    if (cdf < p) lo = x;
    else hi = x;
    let next = NaN;
    if (cdf > 0) {
      const lnDensity = (a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x) - lnB;
      // d ln I / d ln x = x·density / I
      const slope = Math.exp(Math.log(x) + lnDensity) / cdf;
      next = x * Math.exp(-(Math.log(cdf) - lnP) / slope);
    }
    if (!(next > lo && next < hi)) {
      if (lo === 0) next = hi / 16;
      else if (hi > 4 * lo) next = Math.sqrt(lo * hi);
      else next = lo + (hi - lo) / 2;
    }
    if (Math.abs(next - x) <= 2 * Number.EPSILON * next || hi - lo <= 2 * Number.EPSILON * hi) {
      return next;
    }
    x = next;
  }
  return x;
}
