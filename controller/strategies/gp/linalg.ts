/**
 * Dense symmetric linear algebra on row-major Float64Arrays, just what a Gaussian process needs:
 * a Cholesky factor, triangular solves and the inverse from the factor.
 *
 * The factor is computed row by row (Cholesky–Banachiewicz): row i depends only on rows before
 * it, so the factor of a matrix is, bit for bit, the leading block of the factor of any matrix
 * that extends it. The posterior relies on that to put running trials after the observations.
 * Inner loops are dot products over contiguous rows, which is what V8 runs fastest.
 */
import { SweeperError } from '../../../domain/errors.js';

/** The matrix is not positive definite, even after the largest jitter. */
export class NotPositiveDefiniteError extends SweeperError {
  constructor(readonly row: number) {
    super(`matrix is not positive definite (row ${row})`);
    this.name = 'NotPositiveDefiniteError';
  }
}

/**
 * Lower Cholesky factor of the symmetric n×n matrix `a` (only its lower triangle is read), into
 * `out` (may be `a` itself); the strict upper triangle of `out` is zeroed. Rows before
 * `startRow` are taken as already factored in `out`. Returns false when a pivot is not positive,
 * leaving `out` partly written.
 */
export function choleskyInPlace(a: Float64Array, n: number, out: Float64Array = a, startRow = 0): boolean {
  for (let i = startRow; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= out[ri + k] * out[rj + k];
      if (i === j) {
        if (!(s > 0)) return false;
        out[ri + i] = Math.sqrt(s);
      } else {
        out[ri + j] = s / out[rj + j];
      }
    }
    for (let j = i + 1; j < n; j++) out[ri + j] = 0;
  }
  return true;
}

/**
 * The Cholesky factor of `a`, adding `jitter · mean(diag)` to the diagonal when the matrix is
 * numerically singular (a repeated point with tiny noise). Returns the factor and the jitter used.
 */
export function cholesky(a: Float64Array, n: number): { l: Float64Array; jitter: number } {
  const l = new Float64Array(n * n);
  if (choleskyInPlace(a, n, l)) return { l, jitter: 0 };
  let meanDiag = 0;
  for (let i = 0; i < n; i++) meanDiag += a[i * n + i];
  meanDiag = n > 0 ? meanDiag / n : 1;
  const work = new Float64Array(a);
  let added = 0;
  for (const rel of [1e-10, 1e-8, 1e-6, 1e-4, 1e-2]) {
    const jitter = rel * meanDiag;
    for (let i = 0; i < n; i++) work[i * n + i] += jitter - added;
    added = jitter;
    if (choleskyInPlace(work, n, l)) return { l, jitter };
  }
  throw new NotPositiveDefiniteError(n);
}

/** Solves L x = b in place (L lower triangular, row-major n×n). */
export function solveLower(l: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[ri + k] * b[k];
    b[i] = s / l[ri + i];
  }
  return b;
}

/** Solves Lᵀ x = b in place; column-oriented so that it still walks rows of L. */
export function solveUpper(l: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    const xi = b[i] / l[ri + i];
    b[i] = xi;
    for (let k = 0; k < i; k++) b[k] -= l[ri + k] * xi;
  }
  return b;
}

/** Solves (L Lᵀ) x = b in place. */
export function solveCholesky(l: Float64Array, n: number, b: Float64Array): Float64Array {
  return solveUpper(l, n, solveLower(l, n, b));
}

/** Σ log L_ii: half the log-determinant of L Lᵀ. */
export function halfLogDet(l: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(l[i * n + i]);
  return s;
}

/**
 * (L Lᵀ)⁻¹ as a full symmetric row-major matrix. L⁻¹ is formed row by row; the product
 * L⁻ᵀ L⁻¹ then accumulates one row of L⁻¹ at a time, so every inner loop is contiguous.
 */
export function inverseFromCholesky(l: Float64Array, n: number): Float64Array {
  // u = L⁻¹, lower triangular: u[i][j] = -(Σ_{k=j}^{i-1} L[i][k] u[k][j]) / L[i][i].
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const inv = 1 / l[ri + i];
    u[ri + i] = inv;
    // Accumulate Σ_k L[i][k] · row k of u into row i, row by row.
    for (let k = 0; k < i; k++) {
      const lik = l[ri + k];
      if (lik === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) u[ri + j] -= lik * u[rk + j];
    }
    for (let j = 0; j < i; j++) u[ri + j] *= inv;
  }
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let i = 0; i <= k; i++) {
      const uki = u[rk + i];
      if (uki === 0) continue;
      const ri = i * n;
      for (let j = 0; j <= i; j++) out[ri + j] += uki * u[rk + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
  return out;
}
