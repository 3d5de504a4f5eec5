/**
 * Box-constrained limited-memory BFGS, small and deterministic: the two-loop recursion for the
 * direction, variables held at a bound while the gradient pushes them outward, and a
 * backtracking (Armijo) search along the projected path. Used both to fit the GP's
 * hyperparameters and to maximise the acquisition function.
 */

/** f(x), writing ∇f(x) into `grad`. May return Infinity for a point it cannot evaluate. */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface MinimizeOptions {
  lower: Float64Array;
  upper: Float64Array;
  maxIter: number;
  /** Stop when the projected gradient's largest component is below this. */
  gradTol?: number;
  /** Stop when an iteration improves f by less than this, relative to max(|f|, 1). */
  relTol?: number;
  /** Pairs kept for the inverse-Hessian estimate. */
  memory?: number;
}

export interface MinimizeResult {
  x: Float64Array;
  f: number;
  iterations: number;
  evaluations: number;
}

function project(x: Float64Array, lower: Float64Array, upper: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] = Math.min(upper[i], Math.max(lower[i], x[i]));
}

/** A gradient component that would move a variable sitting on its bound out of the box. */
function blocked(x: number, g: number, lo: number, hi: number): boolean {
  return (x <= lo && g > 0) || (x >= hi && g < 0);
}

export function minimizeBox(f: Objective, x0: Float64Array, options: MinimizeOptions): MinimizeResult {
  const { lower, upper, maxIter } = options;
  const gradTol = options.gradTol ?? 1e-6;
  const relTol = options.relTol ?? 1e-9;
  const m = options.memory ?? 8;
  const n = x0.length;
  const x = new Float64Array(x0);
  project(x, lower, upper);
  let g = new Float64Array(n);
  let fx = f(x, g);
  let evaluations = 1;
  if (!Number.isFinite(fx)) return { x, f: fx, iterations: 0, evaluations };

  const sList: Float64Array[] = [];
  const yList: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(n);
  const alpha = new Float64Array(m);
  const xNew = new Float64Array(n);
  let gNew = new Float64Array(n);
  let iterations = 0;

  for (; iterations < maxIter; iterations++) {
    let pg = 0;
    for (let i = 0; i < n; i++) if (!blocked(x[i], g[i], lower[i], upper[i])) pg = Math.max(pg, Math.abs(g[i]));
    if (pg < gradTol) break;

    // Two-loop recursion on the free variables.
    for (let i = 0; i < n; i++) d[i] = blocked(x[i], g[i], lower[i], upper[i]) ? 0 : -g[i];
    const k = sList.length;
    for (let j = k - 1; j >= 0; j--) {
      let a = 0;
      const s = sList[j];
      for (let i = 0; i < n; i++) a += s[i] * d[i];
      a *= rho[j];
      alpha[j] = a;
      const y = yList[j];
      for (let i = 0; i < n; i++) d[i] -= a * y[i];
    }
    if (k > 0) {
      const s = sList[k - 1];
      const y = yList[k - 1];
      let sy = 0;
      let yy = 0;
      for (let i = 0; i < n; i++) {
        sy += s[i] * y[i];
        yy += y[i] * y[i];
      }
      const gamma = sy / yy;
      for (let i = 0; i < n; i++) d[i] *= gamma;
    }
    for (let j = 0; j < k; j++) {
      let b = 0;
      const y = yList[j];
      for (let i = 0; i < n; i++) b += y[i] * d[i];
      b *= rho[j];
      const s = sList[j];
      for (let i = 0; i < n; i++) d[i] += (alpha[j] - b) * s[i];
    }
    for (let i = 0; i < n; i++) if (blocked(x[i], g[i], lower[i], upper[i]) || blocked(x[i], -d[i], lower[i], upper[i])) d[i] = 0;
    let slope = 0;
    for (let i = 0; i < n; i++) slope += g[i] * d[i];
    if (!(slope < 0)) {
      // The curvature estimate went bad: restart from steepest descent.
      sList.length = 0;
      yList.length = 0;
      rho.length = 0;
      slope = 0;
      for (let i = 0; i < n; i++) {
        d[i] = blocked(x[i], g[i], lower[i], upper[i]) ? 0 : -g[i];
        slope += g[i] * d[i];
      }
      if (!(slope < 0)) break;
    }

    // The first step has no curvature to scale it: keep it to a unit move.
    let t = 1;
    if (k === 0) {
      let dmax = 0;
      for (let i = 0; i < n; i++) dmax = Math.max(dmax, Math.abs(d[i]));
      if (dmax > 0) t = Math.min(1, 1 / dmax);
    }
    let fNew = Infinity;
    let accepted = false;
    for (let ls = 0; ls < 30; ls++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + t * d[i];
      project(xNew, lower, upper);
      let decrease = 0;
      for (let i = 0; i < n; i++) decrease += g[i] * (xNew[i] - x[i]);
      fNew = f(xNew, gNew);
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= fx + 1e-4 * decrease) {
        accepted = true;
        break;
      }
      t *= 0.5;
    }
    if (!accepted) break;

    const s = new Float64Array(n);
    const y = new Float64Array(n);
    let sy = 0;
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
      sy += s[i] * y[i];
    }
    if (sy > 1e-12) {
      if (sList.length === m) {
        sList.shift();
        yList.shift();
        rho.shift();
      }
      sList.push(s);
      yList.push(y);
      rho.push(1 / sy);
    }
    const improvement = fx - fNew;
    x.set(xNew);
    fx = fNew;
    [g, gNew] = [gNew, g];
    if (improvement <= relTol * Math.max(Math.abs(fx), 1)) {
      iterations++;
      break;
    }
  }
  return { x, f: fx, iterations, evaluations };
}
