/**
 * Ask/tell without servers: the strategies as an optimiser object, for a training loop, a
 * notebook or another language's harness (through `sweeper suggest`). It keeps the trials in
 * memory and hands them to the same `Strategy` the controller uses, so a sweep driven here
 * proposes exactly what the controller would for the same config, seed and results.
 *
 *   const opt = createOptimizer(config, { seed: 7 });
 *   for (let t = opt.ask(); t; t = opt.ask()) opt.tell(t.id, train(t.params));
 *
 * Asked trials count as running until told, so several can be out at once (parallel workers).
 * A trial's result is final: telling it twice is an error, as in Optuna.
 */
import { UsageError } from '../../domain/errors.js';
import type { Params } from '../../domain/values.js';
import { looseValueKey } from '../../domain/params.js';
import { objectiveOf } from '../../domain/objective.js';
import { toParsedConfig } from '../config/parse.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { createStrategy } from '../strategies/index.js';
import { askNext } from './ask.js';
import type { Strategy, TrialObservation, TrialState } from '../strategies/types.js';

export interface AskedTrial {
  id: string;
  params: Params;
}

/**
 * A result: the metric's value (finished), or how the trial ended with the value it reached, if
 * any. NaN and infinities count as no value.
 */
export type TellResult = number | { value: number | null; state?: 'finished' | 'stopped' } | { state: 'failed'; value?: number | null };

export interface OptimizerOptions {
  /** Default: the config's seed, else 0. */
  seed?: number;
}

/** A tell that cannot apply: an unknown trial, or one that already has its result. */
export class TellError extends UsageError {}

export interface Optimizer {
  readonly config: SweepConfig;
  readonly seed: number;
  /** The next trial to run, or null when the search is over (see `finishReason`). */
  ask(): AskedTrial | null;
  /**
   * Records a result, for a trial by id or by its parameters. Parameters that match no trial
   * still running are recorded as a new trial (results from elsewhere, to warm-start a search).
   */
  tell(trial: string | Params, result: TellResult): void;
  /** Every trial so far, in the order asked. */
  trials(): readonly TrialObservation[];
  /** The best trial with a value, per the metric's goal. */
  best(): TrialObservation | undefined;
  /** Why `ask` returned null ('run_cap 20 reached', 'search space exhausted'), once it has. */
  readonly finishReason: string | undefined;
}

export function createOptimizer(config: SweepConfig | Record<string, unknown>, options: OptimizerOptions = {}): Optimizer {
  const parsed = toParsedConfig(config);
  const seed = options.seed ?? parsed.seed ?? 0;
  const strategy: Strategy = createStrategy(parsed, { seed });
  const trials: TrialObservation[] = [];
  const objective = objectiveOf(parsed.metric);
  let finishReason: string | undefined;

  const add = (params: Params, state: TrialState, value: number | null): TrialObservation => {
    const trial: TrialObservation = { id: String(trials.length + 1), params, state, value };
    trials.push(trial);
    return trial;
  };

  return {
    config: parsed,
    seed,
    get finishReason() {
      return finishReason;
    },
    ask() {
      const next = askNext(parsed, strategy, trials);
      if (next.kind !== 'params') {
        finishReason = next.kind === 'full' && next.byRunCap ? next.reason : 'search space exhausted';
        return null;
      }
      const trial = add(next.params, 'running', null);
      return { id: trial.id, params: next.params };
    },
    tell(target, result) {
      const { state, value } = normalise(result);
      if (typeof target === 'string') {
        const index = trials.findIndex((t) => t.id === target);
        if (index < 0) throw new TellError(`unknown trial '${target}'`);
        if (trials[index].state !== 'running') throw new TellError(`trial '${target}' already has its result (${trials[index].state})`);
        trials[index] = { ...trials[index], state, value };
        return;
      }
      const key = looseValueKey(target);
      const index = trials.findIndex((t) => t.state === 'running' && looseValueKey(t.params) === key);
      if (index >= 0) trials[index] = { ...trials[index], state, value };
      else add(target, state, value);
    },
    trials: () => trials.map((t) => ({ ...t })),
    best() {
      let best: TrialObservation | undefined;
      for (const t of trials) if (t.value !== null && (best === undefined || (objective ? objective.better(t.value, best.value!) : t.value < best.value!))) best = t;
      return best && { ...best };
    },
  };
}

function normalise(result: TellResult): { state: TrialState; value: number | null } {
  const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  if (typeof result === 'number') return { state: 'finished', value: finite(result) };
  if (result === null || typeof result !== 'object') throw new TellError('a result is a number, {value}, or {state: "failed"}');
  const state = result.state ?? 'finished';
  if (!['finished', 'stopped', 'failed'].includes(state)) throw new TellError(`unknown state '${String(state)}' (finished, stopped or failed)`);
  return { state, value: finite(result.value) };
}
