/**
 * A ceiling for `npm run bench:stopping`: how many of the ten best configs a rule far better
 * informed than any real one lets finish within a budget of steps, on these very curves.
 *
 * It cheats three times, in its own favour. It knows the generator: each trial's final value is
 * estimated by its posterior mean given the values seen so far, with the prior sampled from
 * `drawCurve` itself and the true noise level. It runs synchronously: every trial is cut at the
 * same steps, ranked against all 200 at once, which an asynchronous rule that must decide on
 * arrival cannot do. And its schedule is chosen in hindsight: of every schedule of up to four
 * cuts (at steps 3, 5, 9, 15, 27, keeping a number of trials from KEEPS), the best on these
 * seeds within the budget is reported. It is not a proof of optimality (ranking by posterior
 * mean is not the best rule for "is it in the top 10"), but it tells which targets the curves
 * put out of reach.
 */
import { drawCurve, NOISE, rng, STEPS, TRIALS, type Curve } from './learning-curves.js';

const CUTS = [3, 5, 9, 15, 27];
const KEEPS = [120, 100, 80, 60, 50, 40, 30, 25, 20, 16, 14, 12, 10];
const PRIOR_SAMPLES = 20_000;
const TOP = 10;

export interface Ceiling {
  top: number;
  steps: number;
  /** e.g. `3:80 9:30 15:16 27:12` (step: trials kept). */
  schedule: string;
}

/** The prior: noise-free values at steps 1..27 and the truth at step 81 of many drawn configs. */
function prior(): { early: Float64Array; truth: Float64Array } {
  const u = rng(0x5eed);
  const width = CUTS[CUTS.length - 1];
  const early = new Float64Array(PRIOR_SAMPLES * width);
  const truth = new Float64Array(PRIOR_SAMPLES);
  for (let m = 0; m < PRIOR_SAMPLES; m++) {
    const at = drawCurve(u);
    for (let t = 1; t <= width; t++) early[m * width + t - 1] = at(t);
    truth[m] = at(STEPS);
  }
  return { early, truth };
}

/** Posterior mean of the final value given the first n observed values, per trial. */
function posteriorMeans(cs: Curve[], n: number, p: ReturnType<typeof prior>): Float64Array {
  const width = CUTS[CUTS.length - 1];
  const out = new Float64Array(cs.length);
  const logw = new Float64Array(PRIOR_SAMPLES);
  cs.forEach((c, i) => {
    let max = -Infinity;
    for (let m = 0; m < PRIOR_SAMPLES; m++) {
      let s = 0;
      for (let t = 0; t < n; t++) {
        const d = (c.observed[t] - p.early[m * width + t]) / NOISE;
        s -= 0.5 * d * d;
      }
      logw[m] = s;
      if (s > max) max = s;
    }
    let wsum = 0;
    let acc = 0;
    for (let m = 0; m < PRIOR_SAMPLES; m++) {
      const w = Math.exp(logw[m] - max);
      wsum += w;
      acc += w * p.truth[m];
    }
    out[i] = acc / wsum;
  });
  return out;
}

/** Per budget: the most top-10 configs finishing, as a share, of any schedule spending at most that share of the steps. */
export function bestWithin(all: Curve[][], budgets: number[]): Ceiling[] {
  const p = prior();
  const means = all.map((cs) => CUTS.map((n) => posteriorMeans(cs, n, p)));
  const tops = all.map((cs) => new Set(cs.map((c, i) => [c.truth, i] as const).sort((a, b) => a[0] - b[0]).slice(0, TOP).map(([, i]) => i)));
  const best: Ceiling[] = budgets.map(() => ({ top: 0, steps: 0, schedule: '' }));
  const run = (schedule: Array<[number, number]>) => {
    let steps = 0;
    let top = 0;
    all.forEach((cs, s) => {
      let alive = cs.map((_, i) => i);
      let done = 0;
      for (const [cut, keep] of schedule) {
        steps += alive.length * (CUTS[cut] - done);
        done = CUTS[cut];
        const m = means[s][cut];
        alive = alive.sort((a, b) => m[a] - m[b]).slice(0, keep);
      }
      steps += alive.length * (STEPS - done);
      top += alive.filter((i) => tops[s].has(i)).length / TOP;
    });
    const share = steps / (all.length * TRIALS * STEPS);
    top /= all.length;
    budgets.forEach((budget, b) => {
      if (share <= budget && top > best[b].top) best[b] = { top, steps: share, schedule: schedule.map(([c, k]) => `${CUTS[c]}:${k}`).join(' ') };
    });
  };
  const search = (from: number, below: number, schedule: Array<[number, number]>) => {
    if (schedule.length > 0) run(schedule);
    if (schedule.length === 4) return;
    for (let cut = from; cut < CUTS.length; cut++) {
      for (const keep of KEEPS) if (keep < below) search(cut + 1, keep, [...schedule, [cut, keep]]);
    }
  };
  search(0, TRIALS, []);
  return best;
}
