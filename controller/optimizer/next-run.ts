/**
 * The pure core as a library call, in the spirit of W&B's `next_run(config, runs)`: given a sweep
 * config and the runs so far, the parameters of the next run, or null when the search space is
 * used up or run_cap is reached. No servers, no I/O.
 */
import type { Params } from '../../domain/values.js';
import { toParsedConfig } from '../config/parse.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { createStrategy } from '../strategies/index.js';
import { askNext } from './ask.js';
import type { TrialObservation, TrialState } from '../strategies/types.js';

export interface RunSoFar {
  params: Params;
  /** Default 'finished'. */
  state?: TrialState;
  /** Best value of the sweep metric the run logged, if any. */
  value?: number | null;
}

/**
 * @param config a validated `SweepConfig`, or a raw W&B config object (validated here; throws
 *   `ConfigError` listing every problem)
 * @param options.seed overrides the config's `seed` (default 0), so repeated calls agree
 */
export function nextRun(config: SweepConfig | Record<string, unknown>, runs: readonly RunSoFar[], options: { seed?: number } = {}): Params | null {
  const parsed = toParsedConfig(config);
  const strategy = createStrategy(parsed, { seed: options.seed ?? parsed.seed ?? 0 });
  const observations: TrialObservation[] = runs.map((r, i) => ({
    id: String(i + 1),
    params: r.params,
    state: r.state ?? 'finished',
    value: r.value ?? null,
  }));
  const next = askNext(parsed, strategy, observations);
  return next.kind === 'params' ? next.params : null;
}
