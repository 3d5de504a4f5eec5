/**
 * Stopping rules by `early_terminate.type`. The controller asks `createStoppingRule` and then
 * only talks to the `StoppingRule` interface; `stopRuns` is the same decision as a pure library
 * call, in the spirit of W&B's `stop_runs(config, runs)`.
 */
import { UsageError } from '../../domain/errors.js';
import type { TrialState } from '../strategies/types.js';
import { AshaRule } from './asha.js';
import { HyperbandRule } from './hyperband.js';
import { MedianRule } from './median.js';
import { StopMonitor } from './monitor.js';
import type { StopDecision, StoppingConfig, StoppingRule } from './types.js';

/** The rule the config asks for, or null when it has no `early_terminate`. */
export function createStoppingRule(config: StoppingConfig): StoppingRule | null {
  const spec = config.early_terminate;
  if (spec === undefined) return null;
  switch (spec.type) {
    case 'hyperband':
      return new HyperbandRule(config);
    case 'asha':
      return new AshaRule(config);
    case 'median':
      return new MedianRule(config);
    default:
      throw new UsageError(`early_terminate.type: unknown type '${String(spec.type)}' (supported: hyperband, asha, median)`);
  }
}

/** The controller's per-sweep monitor for the config's rule, or null when it has none. */
export function createStopMonitor(config: StoppingConfig): StopMonitor | null {
  const rule = createStoppingRule(config);
  return rule && config.metric ? new StopMonitor(rule, config.metric.name) : null;
}

export interface RunForStopping {
  id: string;
  state: TrialState;
  /**
   * The sweep metric's logged values in order: null for a row without it; NaN and infinities
   * are skipped like W&B's filtered history.
   */
  history: ReadonlyArray<number | null>;
}

/**
 * Which running trials to stop now, judged on everything they have logged: every trial's values
 * count (whatever its state), only running ones are judged. One decision per trial, in input order.
 */
export function stopDecisions(config: StoppingConfig, runs: readonly RunForStopping[]): StopDecision[] {
  const rule = createStoppingRule(config);
  if (!rule) return [];
  for (const run of runs) {
    if (run.state !== 'running') rule.ended(run.id, run.state);
    for (const v of run.history) if (v !== null && Number.isFinite(v)) rule.report(run.id, v);
  }
  const out: StopDecision[] = [];
  for (const run of runs) {
    if (run.state !== 'running') continue;
    const d = rule.judge(run.id);
    if (d) out.push(d);
  }
  return out;
}

/** The ids `stopDecisions` would stop, as W&B's `stop_runs` answers. */
export function stopRuns(config: StoppingConfig, runs: readonly RunForStopping[]): string[] {
  return stopDecisions(config, runs).map((d) => d.trialId);
}

export type * from './types.js';
export { STOPPING_TYPES, HYPERBAND_DEFAULTS, ASHA_DEFAULTS, ASHA_FITS, MEDIAN_DEFAULTS } from './types.js';
export { HyperbandRule, hyperbandBands } from './hyperband.js';
export { AshaRule, ashaRungs, ashaFit } from './asha.js';
export { MedianRule } from './median.js';
export { StopMonitor, type SeriesView } from './monitor.js';
