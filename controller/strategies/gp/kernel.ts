/**
 * The ARD Matérn-5/2 kernel over a mixed space. Numeric dimensions contribute their scaled
 * squared difference; a categorical dimension contributes 1 when the two categories differ and 0
 * when they match (the Hamming distance, which is one-hot encoding with one lengthscale per
 * parameter), so categories are never ordered. With w_d = 1/ℓ_d²:
 *
 *   r² = Σ_d w_d δ_d²,   k(x, y) = s² · (1 + √5 r + 5r²/3) · exp(−√5 r)
 */
export const SQRT5 = Math.sqrt(5);

/** The Matérn-5/2 correlation at scaled distance r ≥ 0. */
export function matern52(r: number): number {
  const a = SQRT5 * r;
  return (1 + a + (a * a) / 3) * Math.exp(-a);
}

/**
 * −(1/r) · d matern52/dr = (5/3)(1 + √5 r) exp(−√5 r): finite at r = 0, and what every gradient
 * (with respect to lengthscales or to inputs) multiplies by.
 */
export function matern52Slope(r: number): number {
  const a = SQRT5 * r;
  return (5 / 3) * (1 + a) * Math.exp(-a);
}

/** The per-dimension squared difference the kernel uses: numeric or Hamming. */
export function dimSqDiff(a: number, b: number, categorical: boolean): number {
  if (categorical) return a === b ? 0 : 1;
  const d = a - b;
  return d * d;
}

/**
 * r² between row i of `x` and the point `y` (offset `yo`), both with D columns; `w` holds the
 * inverse squared lengthscales.
 */
export function scaledSqDist(
  x: Float64Array,
  i: number,
  y: Float64Array,
  yo: number,
  w: Float64Array,
  categorical: Uint8Array,
): number {
  const D = w.length;
  const xo = i * D;
  let r2 = 0;
  for (let d = 0; d < D; d++) r2 += w[d] * dimSqDiff(x[xo + d], y[yo + d], categorical[d] === 1);
  return r2;
}
