/**
 * Random search: every leaf drawn from its distribution, independently for each trial.
 *
 * Suggestion number k draws from an RNG seeded with (seed, k), k being how many trials exist, so
 * the sequence does not depend on the process: a restarted controller, or `sweeper suggest` run
 * on its own, proposes exactly what the first process would have. Leaves are drawn in
 * `leafEntries` order, which depends only on the names.
 */
import seedrandom from 'seedrandom';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { sample } from './distributions.js';
import { leafEntries, nestParams } from '../../domain/params.js';
import type { Strategy, StrategyOptions, Suggestion, TrialObservation } from './types.js';

export function createRandomStrategy(config: SweepConfig, options: StrategyOptions): Strategy {
  const leaves = leafEntries(config.parameters);
  return {
    method: 'random',
    size: () => undefined,
    suggest(trials: readonly TrialObservation[]): Suggestion {
      const rng = seedrandom(`${options.seed}:${trials.length}`);
      // double() carries 53 random bits; the plain call carries 32, too coarse for log scales.
      const uniform = () => rng.double();
      const values = leaves.map(({ path, param }) => ({ path, value: sample(param, uniform) }));
      return { kind: 'params', params: nestParams(values) };
    },
  };
}
