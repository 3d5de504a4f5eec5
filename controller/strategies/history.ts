/**
 * What a model-based strategy learns from the trials so far, following W&B's `metric.impute`:
 *
 * - finished or stopped with a value: observed at its value (a stopped trial's best value so
 *   far is what it showed before a person or a stopping rule ended it);
 * - failed, or finished/stopped without a value: imputed. `impute: worst` (the default) uses the
 *   worst value observed so far, `best` and `latest` the trial's own best logged value when it
 *   has one (Sweeper keeps each trial's best value, so `latest` reads as `best`) and the worst
 *   otherwise, and a number (a Sweeper extension) uses that number. Before anything has been
 *   observed there is no worst, and such a trial only counts as taken;
 * - crashed: left out, since the agent died rather than the parameters, and the controller runs
 *   the same parameters again;
 * - running or preempted (to be continued): a point whose result is coming (the strategy plans around it), unless
 *   `impute_while_running` is set and the trial has logged a value, which is then observed.
 *
 * Values are turned to minimisation (negated for `goal: maximize`). Every trial's parameters,
 * whatever its state, are `taken`, so the same point is not proposed twice.
 */
import { objectiveOf } from '../../domain/objective.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import type { SearchSpace } from './space.js';
import type { TrialObservation } from './types.js';

export interface History {
  /** Observed points, in trial order. */
  points: Float64Array[];
  /** Their values, to be minimised. */
  values: number[];
  /** Points whose results are still to come. */
  pending: Float64Array[];
  /** Keys (`SearchSpace.keyOfParams`) of every trial so far. */
  taken: Set<string>;
}

export function readHistory(space: SearchSpace, config: SweepConfig, trials: readonly TrialObservation[]): History {
  const metric = config.metric;
  // The parser requires a metric for bayes and tpe; a config built without one is minimised.
  const objective = objectiveOf(metric);
  const toMinimize = (v: number) => (objective ? objective.toMinimize(v) : v);
  const impute = metric?.impute ?? 'worst';
  const whileRunning = metric?.impute_while_running ?? 'false';
  const taken = new Set<string>();
  const pending: Float64Array[] = [];
  // Imputed entries wait for the worst value, known only once every trial has been read.
  const entries: { point: Float64Array; value: number | undefined }[] = [];
  let worst = -Infinity;

  for (const t of trials) {
    const key = space.keyOfParams(t.params);
    if (key !== undefined) taken.add(key);
    const point = space.encode(t.params);
    if (!point) continue;
    const value = t.value !== null && Number.isFinite(t.value) ? toMinimize(t.value) : undefined;
    switch (t.state) {
      case 'finished':
      case 'stopped':
        if (value !== undefined) {
          entries.push({ point, value });
          worst = Math.max(worst, value);
        } else {
          entries.push({ point, value: imputed(impute, undefined, toMinimize) });
        }
        break;
      case 'failed':
        entries.push({ point, value: imputed(impute, value, toMinimize) });
        break;
      case 'running':
      // A preempted trial will be continued: its result is still coming.
      case 'preempted':
        if (whileRunning !== 'false' && value !== undefined) entries.push({ point, value });
        else pending.push(point);
        break;
      case 'crashed':
        break;
    }
  }

  const points: Float64Array[] = [];
  const values: number[] = [];
  for (const e of entries) {
    const v = e.value ?? (worst > -Infinity ? worst : undefined);
    if (v === undefined) continue;
    points.push(e.point);
    values.push(v);
  }
  return { points, values, pending, taken };
}

/** The imputed value, or undefined for "the worst observed", which is filled in afterwards. */
function imputed(
  impute: NonNullable<NonNullable<SweepConfig['metric']>['impute']>,
  own: number | undefined,
  toMinimize: (v: number) => number,
): number | undefined {
  if (typeof impute === 'number') return toMinimize(impute);
  if (impute === 'worst') return undefined;
  return own;
}

/**
 * The first candidate (best first) no trial has run and not crowded; failing that, the first one
 * no trial has run (a crowded point beats a random one); undefined when every one has been run.
 */
export function bestCandidate<T>(ranked: readonly T[], taken: (p: T) => boolean, crowded: (p: T) => boolean): T | undefined {
  let fallback: T | undefined;
  for (const p of ranked) {
    if (taken(p)) continue;
    if (!crowded(p)) return p;
    fallback ??= p;
  }
  return fallback;
}
