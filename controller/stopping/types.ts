/**
 * The stopping-rule interface. A rule is pure, like a strategy: it is told each trial's valid
 * values of the sweep metric as they arrive and which trials have ended, and it answers with the
 * running trials to stop. It never touches the network or the clock, so the controller, the
 * library's `stopRuns` and the benchmark's simulator drive the same code.
 *
 * Rules are incremental: a value costs a binary search and a splice into the lists the rule
 * keeps, never a pass over every trial of the sweep.
 */
import type { MetricSpec, EarlyTerminateSpec } from '../../domain/sweep-config.js';
import type { TrialState } from '../strategies/types.js';

export const STOPPING_TYPES = ['hyperband', 'asha', 'median'] as const;
export type StoppingType = (typeof STOPPING_TYPES)[number];

/** W&B's defaults. */
export const HYPERBAND_DEFAULTS = { eta: 3, strict: true } as const;

/** What asha judges at a rung: the trend line through the values since the previous rung, or the last value. */
export const ASHA_FITS = ['trend', 'last'] as const;
export type AshaFit = (typeof ASHA_FITS)[number];

/**
 * Chosen with `npm run bench:stopping`: as few steps as W&B's hyperband (min_iter 3, eta 3) with
 * more of the best configs allowed to finish; the trend fit adds some at the same steps.
 */
export const ASHA_DEFAULTS = { min_iter: 3, eta: 3, fit: 'trend' } as const;
export const MEDIAN_DEFAULTS = { warmup_steps: 5, min_trials: 5 } as const;

export interface HyperbandSpec {
  type: 'hyperband';
  min_iter?: number;
  max_iter?: number;
  s?: number;
  eta?: number;
  strict?: boolean;
}

export interface AshaSpec {
  type: 'asha';
  /** The first rung, in iterations; later rungs at min_iter·eta^k. */
  min_iter?: number;
  eta?: number;
  /** Where trials end on their own: no rung at or past it. */
  max_iter?: number;
  /** `trend` (default): the least-squares line since the previous rung, read at the rung; `last`: the value there. */
  fit?: AshaFit;
}

export interface MedianSpec {
  type: 'median';
  /** Nothing is stopped before a trial has this many values. */
  warmup_steps?: number;
  /** Nothing is stopped before this many trials have finished. */
  min_trials?: number;
}

export type StoppingSpec = HyperbandSpec | AshaSpec | MedianSpec;

/**
 * What a rule reads from a sweep config: a parsed `SweepConfig` fits, and so does a bare
 * `{metric, early_terminate}`. A missing goal means minimize, missing keys take the defaults.
 */
export interface StoppingConfig {
  metric?: Pick<MetricSpec, 'name'> & { goal?: MetricSpec['goal'] };
  early_terminate?: EarlyTerminateSpec;
}

export interface StopDecision {
  trialId: string;
  rule: StoppingType;
  /** The bracket (hyperband), rung (asha) or step (median) it was judged at, in iterations. */
  at: number;
  /** The value judged and the bar it missed, as logged (not negated for maximize). */
  value: number;
  threshold: number;
  /** For people: rule, where, value and bar, e.g. `hyperband: value 0.93 > threshold 0.41 at bracket 9`. */
  reason: string;
}

export interface StoppingRule {
  readonly type: StoppingType;
  /**
   * The trial's next valid value of the sweep metric, as logged. A trial first seen here is
   * running. Returns the running trials this value condemns (the trial itself, or others when a
   * threshold tightens); a trial is returned at most once.
   */
  report(trialId: string, value: number): StopDecision[];
  /** The trial is no longer running (it may not have reported yet); its values keep counting. */
  ended(trialId: string, state: TrialState): void;
  /**
   * Judges the trial on everything reported so far, whatever was decided before: a snapshot,
   * as W&B's `stop_runs` computes it. Null when it may continue.
   */
  judge(trialId: string): StopDecision | null;
}
