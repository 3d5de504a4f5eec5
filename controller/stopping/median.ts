/**
 * The median stopping rule (Golovin et al., "Google Vizier", KDD 2017; Optuna's MedianPruner):
 * once `min_trials` trials have finished, a running trial past its first `warmup_steps` values
 * is stopped when its best value so far is strictly worse than the median of the other trials'
 * values at the same step (every trial that logged that many values, in any state). A step is
 * the position of a value among the trial's valid values, as for hyperband. Each value judges
 * only the trial that logged it.
 */
import { UsageError } from '../../domain/errors.js';
import type { Objective } from '../../domain/objective.js';
import type { TrialState } from '../../domain/trial-state.js';
import { insertSorted, lowerBound } from './sorted.js';
import { fmt, objectiveFor, readKeys } from './spec.js';
import type { StopDecision, StoppingCheck, StoppingConfig, StoppingKeys, StoppingRule } from './types.js';

export const MEDIAN_DEFAULTS = { warmup_steps: 5, min_trials: 5 } as const;

export const MEDIAN_KEYS = {
  /** Nothing is stopped before a trial has this many values. */
  warmup_steps: { kind: 'count', min: 0, default: MEDIAN_DEFAULTS.warmup_steps },
  /** Nothing is stopped before this many trials have finished. */
  min_trials: { kind: 'count', min: 0, default: MEDIAN_DEFAULTS.min_trials },
} as const satisfies StoppingKeys;

/** Its keys are independent: nothing to check beyond each one. */
export const checkMedian: StoppingCheck = () => {};

interface TrialEntry {
  n: number;
  /** Oriented: the last value and the best so far. */
  last: number;
  best: number;
  candidate: boolean;
  finished: boolean;
}

export class MedianRule implements StoppingRule {
  readonly type = 'median';
  readonly warmupSteps: number;
  readonly minTrials: number;
  private readonly o: Objective;
  /** Per step (index step - 1): every trial's oriented value there, sorted. */
  private readonly steps: number[][] = [];
  private readonly trials = new Map<string, TrialEntry>();
  private finished = 0;

  constructor(config: StoppingConfig) {
    const spec = config.early_terminate;
    if (!spec || spec.type !== 'median') throw new UsageError("early_terminate.type: expected 'median'");
    this.o = objectiveFor(config);
    const keys = readKeys(spec, MEDIAN_KEYS);
    this.warmupSteps = keys.warmup_steps;
    this.minTrials = keys.min_trials;
  }

  report(trialId: string, value: number): StopDecision[] {
    const t = this.entry(trialId, true);
    const v = this.o.sign * value;
    t.n++;
    t.last = v;
    if (v < t.best) t.best = v;
    const at = (this.steps[t.n - 1] ??= []);
    insertSorted(at, v);
    if (!t.candidate) return [];
    const d = this.verdict(trialId, t);
    if (d) t.candidate = false;
    return d ? [d] : [];
  }

  ended(trialId: string, state: TrialState): void {
    const t = this.entry(trialId, false);
    t.candidate = false;
    if (state === 'finished' && !t.finished) {
      t.finished = true;
      this.finished++;
    }
  }

  judge(trialId: string): StopDecision | null {
    const t = this.trials.get(trialId);
    return t && t.n > 0 ? this.verdict(trialId, t) : null;
  }

  private entry(trialId: string, running: boolean): TrialEntry {
    let t = this.trials.get(trialId);
    if (!t) {
      t = { n: 0, last: NaN, best: Infinity, candidate: running, finished: false };
      this.trials.set(trialId, t);
    }
    return t;
  }

  private verdict(trialId: string, t: TrialEntry): StopDecision | null {
    if (t.n <= this.warmupSteps || this.finished < this.minTrials) return null;
    const a = this.steps[t.n - 1];
    const others = a.length - 1;
    if (others < 1) return null;
    // The others are the sorted list with one copy of this trial's own value left out.
    const own = lowerBound(a, t.last);
    const other = (k: number) => a[k < own ? k : k + 1];
    const median = others % 2 === 1 ? other((others - 1) / 2) : (other(others / 2 - 1) + other(others / 2)) / 2;
    if (!(t.best > median)) return null;
    const value = this.o.sign * t.best;
    const bar = this.o.sign * median;
    return {
      trialId,
      rule: 'median',
      at: t.n,
      value,
      threshold: bar,
      reason: `median: best value ${fmt(value)} ${this.o.worseSymbol} median ${fmt(bar)} of ${others} other trials at iteration ${t.n}`,
    };
  }
}
