/**
 * The stopping-rule interface. A rule is pure, like a strategy: it is told each trial's valid
 * values of the sweep metric as they arrive and which trials have ended, and it answers with the
 * running trials to stop. It never touches the network or the clock, so the controller, the
 * library's `stopRuns` (controller/optimizer/stop-runs.ts) and the benchmark's simulator drive
 * the same code. Each rule also lists its `early_terminate` keys and checks, which the config
 * parser asks for through the registry in index.ts.
 *
 * Rules are incremental: a value costs a binary search and a splice into the lists the rule
 * keeps, never a pass over every trial of the sweep.
 */
import type { ConfigIssue, EarlyTerminateSpec, MetricSpec } from '../../domain/sweep-config.js';
import type { TrialState } from '../../domain/trial-state.js';

export const STOPPING_TYPES = ['hyperband', 'asha', 'median'] as const;
export type StoppingType = (typeof STOPPING_TYPES)[number];

/**
 * One key of an `early_terminate` mapping: what it holds and its default. Each rule lists its
 * keys; the config parser turns the list into its schema and messages, and fills the defaults,
 * so a rule sees what will run.
 */
export type StoppingKey =
  /** An integer at least `min`; `10.0` is accepted, as W&B's JSON schema does for integers. */
  | { kind: 'count'; min: 0 | 1; default?: number }
  /** A finite number greater than `above`. */
  | { kind: 'number'; above: number; default?: number }
  | { kind: 'boolean'; default?: boolean }
  | { kind: 'choice'; choices: readonly string[]; default?: string };

/** A rule's keys besides `type`, in the order messages list them. */
export type StoppingKeys = Readonly<Record<string, StoppingKey>>;

/**
 * What the keys cannot say one by one (which go together, whether the rungs exist), checked on
 * the raw mapping so that it is reported alongside type errors. Paths start at `early_terminate`.
 */
export type StoppingCheck = (raw: Readonly<Record<string, unknown>>, issues: ConfigIssue[], warnings: ConfigIssue[]) => void;

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
