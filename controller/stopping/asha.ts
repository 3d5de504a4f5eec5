/**
 * Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel
 * Hyperparameter Tuning", MLSys 2020), as a stopping rule: rungs at min_iter·eta^k iterations
 * (truncated, below max_iter when given). When a trial reaches a rung it is compared with every
 * trial that has reached that rung so far, in any state, itself included: it continues only if
 * its value there is among the best max(1, floor(count/eta)), ties continuing. So the first
 * arrivals at a rung continue only while they are the best so far there, as in Optuna's
 * successive halving. Decisions are made on arrival and never revisited: that is what makes it
 * asynchronous (no trial waits for a rung to fill).
 *
 * The value a trial is judged on at a rung (`fit`): with `trend` (the default) it is the
 * least-squares line through the values the trial logged since its previous rung (all of them at
 * the first rung), read at the rung; with `last` it is the value logged there, as in the paper.
 * One noisy point decides a trial's fate at a rung; the line averages the noise over the whole
 * interval (a window of one or two values is the last value itself), and it reads a trial that is
 * still improving at its current slope rather than behind it. Both the rung list and the per-trial
 * sums stay O(1) per value. `npm run bench:stopping`: at the same steps, more of the best configs
 * finish (min_iter 3, eta 3: 43% to 45% of the top 10 on the bench's seeds, 44% to 48% on 30 others).
 */
import { UsageError } from '../../domain/errors.js';
import type { Objective } from '../../domain/objective.js';
import { isCount, type EarlyTerminateSpec } from '../../domain/sweep-config.js';
import type { TrialState } from '../../domain/trial-state.js';
import { toNumber } from '../../domain/values.js';
import { insertSorted, lowerBound } from './sorted.js';
import { fmt, objectiveFor, readKey, readKeys } from './spec.js';
import type { StopDecision, StoppingCheck, StoppingConfig, StoppingKeys, StoppingRule } from './types.js';

/** What asha judges at a rung: the trend line through the values since the previous rung, or the last value. */
export const ASHA_FITS = ['trend', 'last'] as const;
export type AshaFit = (typeof ASHA_FITS)[number];

/**
 * Chosen with `npm run bench:stopping`: as few steps as W&B's hyperband (min_iter 3, eta 3) with
 * more of the best configs allowed to finish; the trend fit adds some at the same steps.
 */
export const ASHA_DEFAULTS = { min_iter: 3, eta: 3, fit: 'trend' } as const;

/** Sweeper's extension, with the defaults the benchmark chose. */
export const ASHA_KEYS = {
  /** The first rung, in iterations; later rungs at min_iter·eta^k. */
  min_iter: { kind: 'count', min: 1, default: ASHA_DEFAULTS.min_iter },
  eta: { kind: 'number', above: 1, default: ASHA_DEFAULTS.eta },
  /** Where trials end on their own: no rung at or past it. */
  max_iter: { kind: 'count', min: 1 },
  /** `trend`: the least-squares line since the previous rung, read at the rung; `last`: the value there. */
  fit: { kind: 'choice', choices: ASHA_FITS, default: ASHA_DEFAULTS.fit },
} as const satisfies StoppingKeys;

/** A max_iter at or below min_iter leaves no rung. */
export const checkAsha: StoppingCheck = (raw, issues) => {
  const minIter = isCount(raw.min_iter, 1) ? toNumber(raw.min_iter) : ASHA_DEFAULTS.min_iter;
  if (isCount(raw.max_iter, 1) && toNumber(raw.max_iter) <= minIter) {
    issues.push({ path: 'early_terminate.max_iter', message: `must be greater than min_iter (${minIter}): no rung lies below it` });
  }
};

/** No trial logs this many values; it bounds the rung list when eta is barely above 1. */
const LAST_RUNG = 2 ** 31;

/** The distinct rungs, ascending. */
export function ashaRungs(spec: EarlyTerminateSpec): number[] {
  const { min_iter: minIter, eta, max_iter } = readKeys(spec, ASHA_KEYS);
  const maxIter = max_iter ?? Infinity;
  const rungs: number[] = [];
  for (let at = minIter; ; at *= eta) {
    const rung = Math.trunc(at);
    if (rung >= maxIter || rung > LAST_RUNG) break;
    if (rung >= 1 && rung !== rungs[rungs.length - 1]) rungs.push(rung);
  }
  return rungs;
}

export function ashaFit(spec: EarlyTerminateSpec): AshaFit {
  return readKey(spec, 'fit', ASHA_KEYS.fit);
}

interface TrialEntry {
  n: number;
  /** Index of the last rung reached, -1 before the first, and the oriented value judged there. */
  rung: number;
  atRung: number;
  /** Whether atRung is a trend line's reading (three values or more) rather than a logged value. */
  fitted: boolean;
  candidate: boolean;
  /** Since the last rung reached: count, Σx, Σy, Σxy, Σx² of (position, oriented value). */
  k: number;
  sx: number;
  sy: number;
  sxy: number;
  sxx: number;
}

export class AshaRule implements StoppingRule {
  readonly type = 'asha';
  readonly rungs: readonly number[];
  readonly fit: AshaFit;
  private readonly eta: number;
  private readonly o: Objective;
  /** Per rung: the oriented values of every trial that reached it, sorted. */
  private readonly values: number[][];
  private readonly trials = new Map<string, TrialEntry>();

  constructor(config: StoppingConfig) {
    const spec = config.early_terminate;
    if (!spec || spec.type !== 'asha') throw new UsageError("early_terminate.type: expected 'asha'");
    this.o = objectiveFor(config);
    this.rungs = ashaRungs(spec);
    this.eta = readKey(spec, 'eta', ASHA_KEYS.eta);
    this.fit = ashaFit(spec);
    this.values = this.rungs.map(() => []);
  }

  report(trialId: string, value: number): StopDecision[] {
    const t = this.entry(trialId, true);
    t.n++;
    const next = t.rung + 1;
    if (next >= this.rungs.length) return [];
    const y = this.o.sign * value;
    if (this.fit === 'trend') {
      const x = t.k++;
      t.sx += x;
      t.sy += y;
      t.sxy += x * y;
      t.sxx += x * x;
    }
    if (t.n !== this.rungs[next]) return [];
    t.fitted = this.fit === 'trend' && t.k >= 3;
    const v = t.fitted ? trendAtEnd(t) : y;
    t.k = t.sx = t.sy = t.sxy = t.sxx = 0;
    insertSorted(this.values[next], v);
    t.rung = next;
    t.atRung = v;
    if (!t.candidate) return [];
    const d = this.verdict(trialId, t);
    if (d) t.candidate = false;
    return d ? [d] : [];
  }

  ended(trialId: string, _state: TrialState): void {
    this.entry(trialId, false).candidate = false;
  }

  judge(trialId: string): StopDecision | null {
    const t = this.trials.get(trialId);
    return t && t.rung >= 0 ? this.verdict(trialId, t) : null;
  }

  private entry(trialId: string, running: boolean): TrialEntry {
    let t = this.trials.get(trialId);
    if (!t) {
      t = { n: 0, rung: -1, atRung: NaN, fitted: false, candidate: running, k: 0, sx: 0, sy: 0, sxy: 0, sxx: 0 };
      this.trials.set(trialId, t);
    }
    return t;
  }

  private verdict(trialId: string, t: TrialEntry): StopDecision | null {
    const a = this.values[t.rung];
    const keep = Math.max(1, Math.floor(a.length / this.eta));
    const rank = lowerBound(a, t.atRung);
    if (rank < keep) return null;
    const value = this.o.sign * t.atRung;
    const cutoff = this.o.sign * a[keep - 1];
    const rung = this.rungs[t.rung];
    return {
      trialId,
      rule: 'asha',
      at: rung,
      value,
      threshold: cutoff,
      reason: `asha: ${t.fitted ? 'trend value' : 'value'} ${fmt(value)} ${this.o.worseSymbol} cutoff ${fmt(cutoff)} at rung ${rung} (rank ${rank + 1} of ${a.length}, top ${keep} continue)`,
    };
  }
}

/** The least-squares line through the window's points, read at its last position (k - 1). */
function trendAtEnd(t: TrialEntry): number {
  const { k, sx, sy, sxy, sxx } = t;
  const den = k * sxx - sx * sx;
  if (k < 2 || !(den > 0)) return sy / k;
  const slope = (k * sxy - sx * sy) / den;
  return (sy - slope * sx) / k + slope * (k - 1);
}
