/**
 * A Gaussian process on the encoded search space: constant mean (its generalised-least-squares
 * estimate, so it needs no hyperparameter), ARD Matérn-5/2 kernel, Gaussian noise.
 *
 * Hyperparameters θ = [log ℓ_1 … log ℓ_D, log s², log σ²_n] are fitted by maximising the marginal
 * likelihood times weak priors (MAP), with analytic gradients and box-constrained L-BFGS from
 * several starts. The lengthscale prior is the dimension-scaled log-normal of Hvarfner et al.
 * (2024), which keeps a model fitted to a handful of points from collapsing onto short
 * lengthscales in higher dimensions; the noise prior favours small noise without forbidding it.
 */
import { matern52, matern52Slope, scaledSqDist, dimSqDiff } from './kernel.js';
import { cholesky, choleskyInPlace, halfLogDet, inverseFromCholesky, solveCholesky, solveLower, solveUpper } from './linalg.js';
import { minimizeBox } from '../numerics/lbfgs.js';

export interface GpTrainingData {
  /** n×D row-major inputs: numeric dimensions in [0, 1], categorical ones a category index. */
  x: Float64Array;
  /** n outputs, already transformed to roughly zero mean and unit variance. */
  y: Float64Array;
  n: number;
  /** D flags, 1 for a categorical dimension. */
  categorical: Uint8Array;
}

const LN_2PI = Math.log(2 * Math.PI);
const LS_SCALE = Math.sqrt(3);
const SIGNAL_LOC = 0;
const SIGNAL_SCALE = 1;
/**
 * The noise prior, log-normal with its mode at exp(NOISE_LOC − NOISE_SCALE²) ≈ 1.4e-3 of the
 * standardised output variance (BoTorch's default, LogNormal(−4, 1), has it at 6.7e-3). A prior
 * that puts much less mass on moderate noise (LogNormal(−6, 1.5), mode 2.6e-4) let rugged
 * objectives such as Ackley be fitted by interpolating their ripples with very short
 * lengthscales and near-zero noise, after which log EI scatters trials instead of following the
 * broad trend; this one lets the ripples be read as noise when that explains the data better,
 * while smooth objectives still fit with small noise.
 */
const NOISE_LOC = -5;
const NOISE_SCALE = 1.25;

/** Where the lengthscale prior is centred, in log ℓ, for D dimensions. */
export function lengthscalePriorLoc(D: number): number {
  return Math.SQRT2 + 0.5 * Math.log(D);
}

export interface ThetaBounds {
  lower: Float64Array;
  upper: Float64Array;
}

export function thetaBounds(D: number): ThetaBounds {
  const lower = new Float64Array(D + 2);
  const upper = new Float64Array(D + 2);
  for (let d = 0; d < D; d++) {
    lower[d] = Math.log(0.01);
    upper[d] = Math.log(100);
  }
  lower[D] = Math.log(0.05);
  upper[D] = Math.log(20);
  lower[D + 1] = Math.log(1e-6);
  upper[D + 1] = Math.log(0.5);
  return { lower, upper };
}

/**
 * The mode of the priors: every lengthscale at the log-normal's mode, unit signal variance, the
 * noise prior's mode. A sound first start for the fit.
 */
export function defaultTheta(D: number): Float64Array {
  const theta = new Float64Array(D + 2);
  const lsMode = lengthscalePriorLoc(D) - LS_SCALE * LS_SCALE;
  for (let d = 0; d < D; d++) theta[d] = lsMode;
  theta[D] = SIGNAL_LOC;
  theta[D + 1] = NOISE_LOC - NOISE_SCALE * NOISE_SCALE;
  return theta;
}

/**
 * The negative log marginal likelihood plus negative log priors, and its gradient, for one data
 * set. Pairwise squared differences are computed once and shared by every evaluation.
 */
export class GpObjective {
  private readonly d2: Float64Array;
  private readonly D: number;
  private readonly lsLoc: number;

  constructor(readonly data: GpTrainingData) {
    const { x, n, categorical } = data;
    const D = categorical.length;
    this.D = D;
    this.lsLoc = lengthscalePriorLoc(D);
    this.d2 = new Float64Array(((n * (n - 1)) / 2) * D);
    let p = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++, p++) {
        for (let d = 0; d < D; d++) this.d2[p * D + d] = dimSqDiff(x[i * D + d], x[j * D + d], categorical[d] === 1);
      }
    }
  }

  evaluate(theta: Float64Array, grad: Float64Array): number {
    const { n, y } = this.data;
    const D = this.D;
    const d2 = this.d2;
    const w = new Float64Array(D);
    for (let d = 0; d < D; d++) w[d] = Math.exp(-2 * theta[d]);
    const s2 = Math.exp(theta[D]);
    const noise = Math.exp(theta[D + 1]);

    const k = new Float64Array(n * n);
    const slopes = new Float64Array((n * (n - 1)) / 2);
    let p = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++, p++) {
        let r2 = 0;
        const o = p * D;
        for (let d = 0; d < D; d++) r2 += w[d] * d2[o + d];
        const r = Math.sqrt(r2);
        k[i * n + j] = s2 * matern52(r);
        slopes[p] = s2 * matern52Slope(r);
      }
      k[i * n + i] = s2 + noise;
    }
    const kernel = new Float64Array(k);
    if (!choleskyInPlace(k, n)) return Infinity;
    const l = k;

    const a1 = solveCholesky(l, n, new Float64Array(n).fill(1));
    const ay = solveCholesky(l, n, new Float64Array(y));
    let s1 = 0;
    let sy = 0;
    for (let i = 0; i < n; i++) {
      s1 += a1[i];
      sy += ay[i];
    }
    const c = sy / s1;
    const alpha = new Float64Array(n);
    let quad = 0;
    for (let i = 0; i < n; i++) {
      alpha[i] = ay[i] - c * a1[i];
      quad += (y[i] - c) * alpha[i];
    }
    let value = 0.5 * quad + halfLogDet(l, n) + 0.5 * n * LN_2PI;

    // ∂/∂θ of ½ yᵀK⁻¹y + ½ log|K| is −½ tr(W ∂K/∂θ) with W = ααᵀ − K⁻¹ (c stays at its
    // optimum, so it contributes nothing).
    const kinv = inverseFromCholesky(l, n);
    grad.fill(0);
    let trDiag = 0;
    let trSignal = 0;
    p = 0;
    for (let i = 0; i < n; i++) {
      const ai = alpha[i];
      for (let j = 0; j < i; j++, p++) {
        const wij = ai * alpha[j] - kinv[i * n + j];
        trSignal += 2 * wij * kernel[i * n + j];
        const g = 2 * wij * slopes[p];
        if (g === 0) continue;
        const o = p * D;
        for (let d = 0; d < D; d++) grad[d] += g * d2[o + d];
      }
      trDiag += ai * ai - kinv[i * n + i];
    }
    for (let d = 0; d < D; d++) grad[d] *= -0.5 * w[d];
    grad[D] = -0.5 * (trSignal + s2 * trDiag);
    grad[D + 1] = -0.5 * noise * trDiag;

    // Log-normal priors on ℓ and σ²_n (densities on the values, hence the +θ Jacobian term),
    // normal on log s².
    const lsVar = LS_SCALE * LS_SCALE;
    for (let d = 0; d < D; d++) {
      const u = theta[d] - this.lsLoc;
      value += (u * u) / (2 * lsVar) + theta[d];
      grad[d] += u / lsVar + 1;
    }
    const us = theta[D] - SIGNAL_LOC;
    value += (us * us) / (2 * SIGNAL_SCALE * SIGNAL_SCALE);
    grad[D] += us / (SIGNAL_SCALE * SIGNAL_SCALE);
    const un = theta[D + 1] - NOISE_LOC;
    value += (un * un) / (2 * NOISE_SCALE * NOISE_SCALE) + theta[D + 1];
    grad[D + 1] += un / (NOISE_SCALE * NOISE_SCALE) + 1;
    return value;
  }
}

/** The first `rows` rows of a Cholesky factor stored with row stride `stride`. */
export interface KnownFactor {
  l: Float64Array;
  stride: number;
  rows: number;
}

export interface FitOptions {
  /** Starting points in θ; the best local optimum over all of them wins. */
  starts: readonly Float64Array[];
  maxIter: number;
}

/** MAP hyperparameters: the best of a local L-BFGS descent from each start. */
export function fitHyperparameters(data: GpTrainingData, options: FitOptions): { theta: Float64Array; value: number } {
  const D = data.categorical.length;
  const objective = new GpObjective(data);
  const { lower, upper } = thetaBounds(D);
  let best: { theta: Float64Array; value: number } = { theta: defaultTheta(D), value: Infinity };
  for (const start of options.starts) {
    const r = minimizeBox((t, g) => objective.evaluate(t, g), start, { lower, upper, maxIter: options.maxIter, relTol: 1e-7, gradTol: 1e-5 });
    if (r.f < best.value) best = { theta: r.x, value: r.f };
  }
  return best;
}

/**
 * The outcomes (standardised) the pending points are taken to have, given the means the observed
 * data predict there; see gp/pending.ts.
 */
export type PendingOutcomes = (predicted: Float64Array) => Float64Array;

const NO_PENDING = { x: new Float64Array(0), outcomes: (): Float64Array => new Float64Array(0) };

/**
 * The posterior of a fitted GP, optionally also conditioned on pending points (running trials)
 * as if they had come out as `outcomes` says: the variance around them drops and the mean moves
 * to the assumed outcomes, so a strategy looks elsewhere while they run. The pending rows come
 * after the observed ones, so the observed block of the factor is exactly the factor of the
 * observed data, and the rows below it give the means predicted at the pending points cheaply;
 * the constant mean is estimated from the observed data alone.
 */
export class GpPosterior {
  readonly D: number;
  readonly n: number;
  readonly m: number;
  readonly mean0: number;
  readonly signal: number;
  /** The outcomes the pending points were taken to have. */
  readonly pendingOutcomes: Float64Array;
  private readonly x: Float64Array;
  private readonly l: Float64Array;
  private readonly alpha: Float64Array;
  private readonly w: Float64Array;
  private readonly categorical: Uint8Array;
  private readonly kvec: Float64Array;
  private readonly slopes: Float64Array;
  private readonly v: Float64Array;

  /**
   * The factor of the observed block, when it was computed without jitter (and so can seed the
   * factor of a data set that extends this one).
   */
  readonly observedFactor: KnownFactor | undefined;

  /**
   * @param known the first rows of the factor, from a posterior with the same hyperparameters
   *   whose observed points began with the same points: those rows are copied, not recomputed
   *   (row-by-row Cholesky gives them bit for bit).
   */
  constructor(data: GpTrainingData, theta: Float64Array, pending: { x: Float64Array; outcomes: PendingOutcomes } = NO_PENDING, known?: KnownFactor) {
    const D = data.categorical.length;
    this.D = D;
    this.n = data.n;
    this.categorical = data.categorical;
    const p = pending.x.length / D;
    const m = data.n + p;
    this.m = m;
    const x = new Float64Array(m * D);
    x.set(data.x.subarray(0, data.n * D));
    x.set(pending.x, data.n * D);
    this.x = x;
    this.w = new Float64Array(D);
    for (let d = 0; d < D; d++) this.w[d] = Math.exp(-2 * theta[d]);
    const s2 = Math.exp(theta[D]);
    const noise = Math.exp(theta[D + 1]);
    this.signal = s2;

    const n = data.n;
    const reused = known ? Math.min(known.rows, n) : 0;
    const k = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      if (i < reused) {
        k.set(known!.l.subarray(i * known!.stride, i * known!.stride + i + 1), i * m);
        continue;
      }
      for (let j = 0; j < i; j++) k[i * m + j] = s2 * matern52(Math.sqrt(scaledSqDist(x, i, x, j * D, this.w, this.categorical)));
      k[i * m + i] = s2 + noise;
    }
    let l: Float64Array = k;
    let exact = true;
    if (!choleskyInPlace(k, m, k, reused)) {
      // Rebuild and factor with jitter; the result no longer extends other factors exactly.
      const full = new Float64Array(m * m);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < i; j++) full[i * m + j] = s2 * matern52(Math.sqrt(scaledSqDist(x, i, x, j * D, this.w, this.categorical)));
        full[i * m + i] = s2 + noise;
      }
      l = cholesky(full, m).l;
      exact = false;
    }
    this.l = l;

    // The observed block of the factor is the leading n×n block of l, with row stride m.
    const lo = new Float64Array(n * n);
    for (let i = 0; i < n; i++) lo.set(l.subarray(i * m, i * m + n), i * n);
    this.observedFactor = exact ? { l: lo, stride: n, rows: n } : undefined;
    const a1 = solveCholesky(lo, n, new Float64Array(n).fill(1));
    const ay = solveCholesky(lo, n, new Float64Array(data.y));
    let s1 = 0;
    let sy = 0;
    for (let i = 0; i < n; i++) {
      s1 += a1[i];
      sy += ay[i];
    }
    this.mean0 = sy / s1;
    const residual = new Float64Array(m);
    for (let i = 0; i < n; i++) residual[i] = data.y[i] - this.mean0;
    this.pendingOutcomes = p === 0 ? new Float64Array(0) : pending.outcomes(predictedPending(l, m, n, solveLower(lo, n, residual.slice(0, n)), this.mean0));
    for (let j = 0; j < p; j++) residual[n + j] = this.pendingOutcomes[j] - this.mean0;
    this.alpha = solveCholesky(l, m, residual);

    this.kvec = new Float64Array(m);
    this.slopes = new Float64Array(m);
    this.v = new Float64Array(m);
  }

  /** The distance, in lengthscales as the kernel measures it, from `point` to the nearest pending point. */
  distanceToPending(point: Float64Array): number {
    let r2 = Infinity;
    for (let i = this.n; i < this.m; i++) r2 = Math.min(r2, scaledSqDist(this.x, i, point, 0, this.w, this.categorical));
    return Math.sqrt(r2);
  }

  /** Mean and variance of the latent function at the point `x` (offset `xo`). */
  predict(point: Float64Array, xo = 0): { mean: number; variance: number } {
    const { m, kvec, v } = this;
    let mean = this.mean0;
    for (let i = 0; i < m; i++) {
      const ki = this.signal * matern52(Math.sqrt(scaledSqDist(this.x, i, point, xo, this.w, this.categorical)));
      kvec[i] = ki;
      mean += ki * this.alpha[i];
    }
    v.set(kvec);
    solveLower(this.l, m, v);
    let vv = 0;
    for (let i = 0; i < m; i++) vv += v[i] * v[i];
    return { mean, variance: Math.max(this.signal - vv, 1e-12 * this.signal) };
  }

  /**
   * Mean and variance at `point` with their gradients with respect to the numeric coordinates
   * (categorical entries of the gradients are left at 0).
   */
  predictWithGradient(point: Float64Array, gradMean: Float64Array, gradVar: Float64Array): { mean: number; variance: number } {
    const { m, D, kvec, slopes, v, x, w, categorical } = this;
    let mean = this.mean0;
    for (let i = 0; i < m; i++) {
      const r = Math.sqrt(scaledSqDist(x, i, point, 0, w, categorical));
      kvec[i] = this.signal * matern52(r);
      slopes[i] = this.signal * matern52Slope(r);
      mean += kvec[i] * this.alpha[i];
    }
    v.set(kvec);
    solveLower(this.l, m, v);
    let vv = 0;
    for (let i = 0; i < m; i++) vv += v[i] * v[i];
    const raw = this.signal - vv;
    const variance = Math.max(raw, 1e-12 * this.signal);
    // β = K⁻¹k; ∂var/∂x = −2 βᵀ ∂k/∂x, ∂mean/∂x = αᵀ ∂k/∂x, ∂k_i/∂x_d = −slope_i · w_d (x_d − x_id).
    solveUpper(this.l, m, v);
    gradMean.fill(0);
    gradVar.fill(0);
    for (let i = 0; i < m; i++) {
      const a = this.alpha[i];
      const b = v[i];
      const s = slopes[i];
      const o = i * D;
      for (let d = 0; d < D; d++) {
        if (categorical[d] === 1) continue;
        const dk = -s * w[d] * (point[d] - x[o + d]);
        gradMean[d] += a * dk;
        gradVar[d] -= 2 * b * dk;
      }
    }
    if (raw <= 1e-12 * this.signal) gradVar.fill(0);
    return { mean, variance };
  }
}

/**
 * The means the observed data predict at the pending points, from a factor whose last m − n rows
 * are theirs: with L = [L₁₁ 0; L₂₁ L₂₂] and z = L₁₁⁻¹ r (r the observed residuals), they are
 * mean0 + L₂₁ z, since k₂₁ K₁₁⁻¹ = L₂₁ L₁₁⁻¹.
 */
function predictedPending(l: Float64Array, m: number, n: number, z: Float64Array, mean0: number): Float64Array {
  const out = new Float64Array(m - n);
  for (let a = 0; a < m - n; a++) {
    let s = mean0;
    for (let i = 0, row = (n + a) * m; i < n; i++) s += l[row + i] * z[i];
    out[a] = s;
  }
  return out;
}
