/** TPE: determinism, every distribution, nested parameters, parallel asks, better than random. */
import { describe, expect, it } from 'vitest';
import { stringifyTyped } from '../../common/values.js';
import { createStrategy } from '../../controller/strategies/index.js';
import {
  expectDistinctNewBatch,
  expectSoundOnEveryDistribution,
  askParallel,
  bestValue,
  everyDistribution,
  everyDistributionLoss,
  quadratic,
  quadraticLoss,
  runSequential,
} from '../fixtures/strategies.js';

describe('tpe', () => {
  it('gives the same suggestion for the same config, seed and trials', () => {
    const q = quadratic('tpe');
    const first = runSequential(createStrategy(q, { seed: 9 }), 16, quadraticLoss);
    const again = runSequential(createStrategy(q, { seed: 9 }), 16, quadraticLoss);
    expect(again.map((t) => stringifyTyped(t.params))).toEqual(first.map((t) => stringifyTyped(t.params)));
    const other = createStrategy(q, { seed: 10 });
    expect(stringifyTyped(other.suggest(first))).not.toBe(stringifyTyped(createStrategy(q, { seed: 9 }).suggest(first)));
  });

  it('handles every distribution, nested parameters and constants', () => {
    const config = everyDistribution('tpe');
    expectSoundOnEveryDistribution(config, runSequential(createStrategy(config, { seed: 1 }), 25, everyDistributionLoss));
  });

  it('gives 8 agents asking at once 8 different points, none already run', () => {
    const q = quadratic('tpe');
    const strategy = createStrategy(q, { seed: 2 });
    const done = runSequential(strategy, 12, quadraticLoss);
    const batch = askParallel(strategy, done, 8);
    expect(batch).toHaveLength(8);
    expectDistinctNewBatch(q, done, batch);
  });

  it('finds a better point than random search on a simple function', () => {
    const tpe = runSequential(createStrategy(quadratic('tpe'), { seed: 3 }), 40, quadraticLoss);
    const random = runSequential(createStrategy(quadratic('random'), { seed: 3 }), 40, quadraticLoss);
    expect(bestValue(tpe)).toBeLessThan(bestValue(random));
  });

  it('maximising a value is minimising its negation', () => {
    const max = runSequential(createStrategy(quadratic('tpe', 'maximize'), { seed: 5 }), 20, (p) => -quadraticLoss(p));
    const min = runSequential(createStrategy(quadratic('tpe'), { seed: 5 }), 20, quadraticLoss);
    expect(max.map((t) => stringifyTyped(t.params))).toEqual(min.map((t) => stringifyTyped(t.params)));
  });
});
