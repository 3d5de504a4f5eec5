/**
 * Multivariate TPE (a Sweeper extension; Bergstra et al. 2011, Falkner et al. 2018): the trials
 * are split into the best γ(n) and the rest, each group becomes a Parzen density over the
 * encoded space (space.ts) with one product kernel per trial, so interactions between parameters
 * are kept, and the next point is the candidate drawn from the good density that maximises
 * l(x)/g(x).
 *
 * - The first 10 trials come from a maximin Latin hypercube (trial k gets point k).
 * - The good group is the best γ(n) = min(⌈0.3·n⌉, 25) observations, weighted by rank
 *   ((γ − r)/γ)², so the best few shape l(x) most while the group stays wide enough to explore;
 *   in the bad group older trials weigh less once there are more than 25 (Optuna's default).
 *   Both densities include a wide prior component, so nothing is ruled out.
 * - Numeric coordinates: truncated Gaussian kernels with one bandwidth per density, Scott's
 *   rule 0.1·n^(−1/(D+4)) of the range, clipped below at range/min(100, n + 1); categorical
 *   coordinates: the trial's category plus 1/n of the prior's (Optuna's smoothing). Integers
 *   and quantized values are rounded after sampling. 24 candidates are drawn from l(x).
 *   These settings were chosen on benchmark seeds 0–39 and checked on seeds 100–139.
 * - Parallel agents: running trials are left out of both densities, and a candidate closer than
 *   one bandwidth of the good density to a running trial is passed over while another candidate
 *   exists (see MIN_PENDING_DISTANCE), as is a point already taken. Failed trials are imputed as
 *   for bayes (history.ts).
 *
 * Deterministic: the RNG is seeded with (seed, number of trials).
 */
import type { SweepConfig } from '../../domain/sweep-config.js';
import { latinHypercube } from './numerics/design.js';
import { bestCandidate, readHistory } from './history.js';
import { gaussian, normalCdf, seededRng as uniform, type Rng } from './numerics/sampling.js';
import { SearchSpace } from './space.js';
import type { Strategy, StrategyOptions, Suggestion, TrialObservation } from './types.js';

const STARTUP_TRIALS = 10;
const CANDIDATES = 24;
/** Scott's-rule bandwidth factor, as a fraction of the range. */
const BANDWIDTH = 0.1;
const PRIOR_WEIGHT = 1;
/**
 * How close a suggestion may come to a running trial, in bandwidths of the good density (see
 * distanceInBandwidths). A candidate that near sits inside the kernel the running trial will add
 * to l(x) or g(x) once its result is in, so that result will say most of what the candidate
 * could. This replaced the constant liar (running trials in the bad group), which also thinned
 * every other bad kernel's weight and so made regions already known to be bad look better. On the
 * 8-agent bench, seeds 0–19, geometric-mean regret at 50 trials against the liar: running trials
 * left out, 19% lower; plus a minimum distance of 0.5 or 1 bandwidth, 27%; 2 bandwidths, 11% (it
 * pushes the batch off the good region); distances of 0.05–0.2 of the range instead, no better
 * than none. On held-out seeds 100–119: left out 8%, 0.5 bandwidths 10%, 1 bandwidth 23% lower.
 */
const MIN_PENDING_DISTANCE = 1;
const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

export function createTpeStrategy(config: SweepConfig, options: StrategyOptions): Strategy {
  const space = new SearchSpace(config.parameters);
  const D = space.D;
  let design: Float64Array[] | undefined;

  return {
    method: 'tpe',
    size: () => undefined,
    suggest(trials: readonly TrialObservation[]): Suggestion {
      const rng = uniform(`${options.seed}:tpe:${trials.length}`);
      if (D === 0) return { kind: 'params', params: space.decode(new Float64Array(0)) };
      const history = readHistory(space, config, trials);
      let point: Float64Array | undefined;
      if (trials.length >= STARTUP_TRIALS && history.values.length >= 2) {
        const g = gamma(history.values.length);
        const order = history.values.map((_, i) => i).sort((a, b) => history.values[a] - history.values[b] || a - b);
        const good = new Parzen(space, order.slice(0, g).map((i) => history.points[i]), rankWeights(g));
        // In trial order, so that older trials weigh less. Running trials are in neither density.
        const above = order.slice(g).sort((a, b) => a - b);
        const bad = new Parzen(space, above.map((i) => history.points[i]));
        const scored: { p: Float64Array; s: number }[] = [];
        for (let c = 0; c < CANDIDATES; c++) {
          const p = good.sample(rng);
          scored.push({ p, s: good.logDensity(p) - bad.logDensity(p) });
        }
        scored.sort((a, b) => b.s - a.s);
        const crowded = (p: Float64Array) => distanceInBandwidths(space, p, history.pending, good.bandwidths) < MIN_PENDING_DISTANCE;
        point = bestCandidate(
          scored.map(({ p }) => p),
          (p) => history.taken.has(space.keyOfPoint(p)),
          crowded,
        );
      }
      if (point === undefined && trials.length < STARTUP_TRIALS) {
        design ??= latinHypercube(STARTUP_TRIALS, D, uniform(`${options.seed}:tpe-design`)).map((u) => space.fromUnit(u));
        point = design[trials.length];
      }
      return { kind: 'params', params: space.decode(space.untakenPoint(point, history.taken, rng)) };
    },
  };
}

/**
 * The distance from p to the nearest of `others`, Euclidean over the numeric coordinates each
 * divided by its bandwidth `sigma[d]`; a point in another category on any categorical coordinate
 * is infinitely far (its kernel shares little with p's). Infinity when there are no others.
 */
export function distanceInBandwidths(space: SearchSpace, p: Float64Array, others: readonly Float64Array[], sigma: Float64Array): number {
  let nearest = Infinity;
  for (const q of others) {
    let s = 0;
    for (let d = 0; d < space.D && s < Infinity; d++) {
      if (space.dims[d].kind === 'categorical') s = p[d] === q[d] ? s : Infinity;
      else s += ((p[d] - q[d]) / sigma[d]) ** 2;
    }
    nearest = Math.min(nearest, Math.sqrt(s));
  }
  return nearest;
}

/** How many of n observations form the good group. */
function gamma(n: number): number {
  return Math.max(1, Math.min(Math.ceil(0.3 * n), 25));
}

/**
 * Weights of the good group, best first: ((n − r)/n)² for rank r, so the best few points shape
 * the good density most while the group stays wide enough to keep exploring.
 */
function rankWeights(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, r) => ((n - r) / n) ** 2);
}

/** Optuna's default weights: flat for the last 25 observations, a ramp for older ones. */
function observationWeights(n: number): Float64Array {
  const w = new Float64Array(n).fill(1);
  const ramp = n - 25;
  if (ramp > 0) for (let i = 0; i < ramp; i++) w[i] = ramp === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (ramp - 1);
  return w;
}

function logSumExp(xs: Float64Array): number {
  let max = -Infinity;
  for (const x of xs) max = Math.max(max, x);
  if (max === -Infinity) return max;
  let s = 0;
  for (const x of xs) s += Math.exp(x - max);
  return max + Math.log(s);
}

/**
 * A weighted mixture of product kernels, one per point plus a prior component (the centre of
 * the space with a bandwidth as wide as the space, uniform over categories by their weights).
 */
class Parzen {
  private readonly points: Float64Array[];
  private readonly logWeights: Float64Array;
  private readonly weights: Float64Array;
  /** Per numeric dimension: the bandwidth of the point kernels (0 for categorical ones). */
  private readonly sigma: Float64Array;
  /** Per categorical dimension: how much of the prior each point kernel mixes in. */
  private readonly smoothing: number;

  constructor(
    private readonly space: SearchSpace,
    points: Float64Array[],
    given?: Float64Array,
  ) {
    this.points = points;
    const n = points.length;
    const D = space.D;
    const w = given ?? observationWeights(n);
    const weights = new Float64Array(n + 1);
    let total = PRIOR_WEIGHT;
    for (let i = 0; i < n; i++) total += w[i];
    for (let i = 0; i < n; i++) weights[i] = w[i] / total;
    weights[n] = PRIOR_WEIGHT / total;
    this.weights = weights;
    this.logWeights = Float64Array.from(weights, Math.log);
    this.sigma = new Float64Array(D);
    const kernels = n + 1;
    space.dims.forEach((dim, d) => {
      if (dim.kind !== 'numeric') return;
      const range = dim.zMax - dim.zMin;
      const minSigma = range / Math.min(100, 1 + kernels);
      this.sigma[d] = Math.max(BANDWIDTH * kernels ** (-1 / (D + 4)) * range, minSigma);
    });
    this.smoothing = PRIOR_WEIGHT / kernels;
  }

  /** Per dimension, the bandwidth of the point kernels; 0 on categorical dimensions. */
  get bandwidths(): Float64Array {
    return this.sigma;
  }

  /** Component j's (numeric) centre and bandwidth along dimension d; j = n is the prior. */
  private component(j: number, d: number): { mu: number; sigma: number } {
    const dim = this.space.dims[d];
    if (dim.kind !== 'numeric') throw new Error('not numeric');
    if (j === this.points.length) return { mu: (dim.zMin + dim.zMax) / 2, sigma: dim.zMax - dim.zMin };
    return { mu: this.points[j][d], sigma: this.sigma[d] };
  }

  /** Component j's probability of category c along categorical dimension d. */
  private categoryProbability(j: number, d: number, c: number): number {
    const dim = this.space.dims[d];
    if (dim.kind !== 'categorical') throw new Error('not categorical');
    if (j === this.points.length) return dim.weights[c];
    const own = this.points[j][d] === c ? 1 : 0;
    const k = dim.values.length;
    return (own + this.smoothing * k * dim.weights[c]) / (1 + this.smoothing * k);
  }

  sample(rng: Rng): Float64Array {
    let u = rng();
    let j = 0;
    while (j < this.weights.length - 1 && u >= this.weights[j]) u -= this.weights[j++];
    const D = this.space.D;
    const p = new Float64Array(D);
    for (let d = 0; d < D; d++) {
      const dim = this.space.dims[d];
      if (dim.kind === 'categorical') {
        let v = rng();
        let c = 0;
        for (; c < dim.values.length - 1; c++) {
          v -= this.categoryProbability(j, d, c);
          if (v < 0) break;
        }
        p[d] = c;
      } else {
        const { mu, sigma } = this.component(j, d);
        // Rejection is cheap: each kernel keeps a good share of its mass inside the range.
        let z = mu + sigma * gaussian(rng);
        for (let tries = 0; (z < dim.zMin || z > dim.zMax) && tries < 100; tries++) z = mu + sigma * gaussian(rng);
        p[d] = Math.min(dim.zMax, Math.max(dim.zMin, z));
      }
    }
    return this.space.snap(p);
  }

  logDensity(p: Float64Array): number {
    const kernels = this.weights.length;
    const terms = new Float64Array(kernels);
    for (let j = 0; j < kernels; j++) {
      let s = this.logWeights[j];
      for (let d = 0; d < this.space.D; d++) {
        const dim = this.space.dims[d];
        if (dim.kind === 'categorical') {
          s += Math.log(this.categoryProbability(j, d, p[d]));
        } else {
          const { mu, sigma } = this.component(j, d);
          const t = (p[d] - mu) / sigma;
          const mass = normalCdf((dim.zMax - mu) / sigma) - normalCdf((dim.zMin - mu) / sigma);
          s += -0.5 * t * t - LN_SQRT_2PI - Math.log(sigma) - Math.log(mass);
        }
      }
      terms[j] = s;
    }
    return logSumExp(terms);
  }
}
