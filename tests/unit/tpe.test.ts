/**
 * TPE: determinism, every distribution, nested parameters, parallel asks (spread out, and the
 * same for the same trials), better than random; the pure helpers that keep a batch apart.
 */
import { describe, expect, it } from 'vitest';
import { stringifyTyped } from '../../domain/values.js';
import { parseConfigText } from '../../controller/config/parse.js';
import { createStrategy } from '../../controller/strategies/index.js';
import { SearchSpace } from '../../controller/strategies/space.js';
import { bestCandidate } from '../../controller/strategies/history.js';
import { distanceInBandwidths } from '../../controller/strategies/tpe.js';
import { expectDistinctNewBatch, expectSoundOnEveryDistribution, askParallel, bestValue, everyDistribution, everyDistributionLoss, quadratic, quadraticLoss, runSequential, expectDeterministicParallelBatch } from '../fixtures/strategies.js';

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

  it('keeps a batch asked at once apart: no two points with the same category within 0.1 of the range', () => {
    const q = quadratic('tpe');
    const s = new SearchSpace(q.parameters);
    const kind = s.dims.findIndex((d) => d.kind === 'categorical');
    const strategy = createStrategy(q, { seed: 6 });
    const done = runSequential(strategy, 12, quadraticLoss);
    const points = askParallel(strategy, done, 8).map((p) => s.encode(p)!);
    let closest = Infinity;
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < i; j++) {
        if (points[i][kind] !== points[j][kind]) continue;
        closest = Math.min(closest, Math.hypot(...Array.from(points[i], (z, d) => (d === kind ? 0 : z - points[j][d]))));
      }
    }
    expect(closest).toBeGreaterThan(0.1);
  });

  it('gives the same parallel batch for the same seed and trials, running ones included', () => {
    expectDeterministicParallelBatch('tpe', 12);
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

describe('tpe helpers', () => {
  const space = new SearchSpace(parseConfigText('method: tpe\nmetric: {name: loss}\nparameters:\n  a: {min: 0.0, max: 1.0}\n  b: {min: 0.0, max: 1.0}\n  c: {values: [u, v]}\n').config.parameters);
  const sigma = Float64Array.from(space.dims, (d) => (d.kind === 'categorical' ? 0 : d.leaf.path.join('.') === 'a' ? 0.125 : 0.25));
  const at = (a: number, b: number, c: number) => {
    const p = new Float64Array(3);
    space.dims.forEach((d, i) => (p[i] = d.kind === 'categorical' ? c : d.leaf.path.join('.') === 'a' ? a : b));
    return p;
  };

  it('measures the distance to the nearest other point in bandwidths, other categories infinitely far', () => {
    const p = at(0.5, 0.25, 0);
    expect(distanceInBandwidths(space, p, [at(0.875, 0.75, 0)], sigma)).toBe(Math.sqrt(13));
    expect(distanceInBandwidths(space, p, [at(0.875, 0.75, 0), at(0.5, 0.5, 0), at(0.5, 0.25, 1)], sigma)).toBe(1);
    expect(distanceInBandwidths(space, p, [at(0.5, 0.25, 1)], sigma)).toBe(Infinity);
    expect(distanceInBandwidths(space, p, [p], sigma)).toBe(0);
    expect(distanceInBandwidths(space, p, [], sigma)).toBe(Infinity);
  });

  it('picks the best candidate neither taken nor crowded, else the best one not taken', () => {
    const taken = (x: number) => x % 2 === 0;
    expect(bestCandidate([4, 3, 5, 7], taken, (x) => x < 5)).toBe(5);
    expect(bestCandidate([4, 3, 5, 7], taken, () => true)).toBe(3);
    expect(bestCandidate([4, 3, 5, 7], taken, () => false)).toBe(3);
    expect(bestCandidate([2, 4], taken, () => false)).toBeUndefined();
    expect(bestCandidate([], taken, () => false)).toBeUndefined();
  });
});
