/**
 * Bayesian search: the encoding of every distribution, the history (impute rules), determinism,
 * parallel asks, and that it searches better than random on a simple function.
 */
import { describe, expect, it } from 'vitest';
import { Float, isFloatValue, isIntValue, stringifyTyped, type Params } from '../../domain/values.js';
import { parseConfigText } from '../../controller/config/parse.js';
import { createBayesStrategy, fitSize, initialDesignSize } from '../../controller/strategies/bayes.js';
import { readHistory } from '../../controller/strategies/history.js';
import { createStrategy } from '../../controller/strategies/index.js';
import { SearchSpace } from '../../controller/strategies/space.js';
import type { TrialObservation } from '../../controller/strategies/types.js';
import { expectDistinctNewBatch, expectSoundOnEveryDistribution, askParallel, bestValue, everyDistribution, everyDistributionLoss, quadratic, quadraticLoss, runSequential, expectDeterministicParallelBatch } from '../fixtures/strategies.js';

const config = everyDistribution('bayes');
const space = new SearchSpace(config.parameters);
const dimOf = (name: string) => space.dims.findIndex((d) => d.leaf.path.join('.') === name);

describe('the encoded space', () => {
  it('has one dimension per searchable leaf; constants and single-value leaves ride along', () => {
    const names = space.dims.map((d) => d.leaf.path.join('.'));
    expect(names).not.toContain('const');
    expect(names).not.toContain('opt.momentum');
    expect(names).toContain('opt.lr');
    expect(space.dims[dimOf('cat')].kind).toBe('categorical');
    expect(space.categorical[dimOf('cat')]).toBe(1);
    expect(space.categorical[dimOf('uni')]).toBe(0);
  });

  it('maps numeric values through their prior CDF', () => {
    const encoded = (name: string, value: number | Float) => {
      const p = space.decode(new Float64Array(space.D).fill(0.5));
      const path = space.dims[dimOf(name)].leaf.path;
      if (path.length === 2) (p[path[0]] as Params)[path[1]] = value;
      else p[path[0]] = value;
      return space.encode(p)![dimOf(name)];
    };
    expect(encoded('uni', 0.5)).toBeCloseTo(0.5, 15);
    expect(encoded('int', 3)).toBeCloseTo(2.5 / 6, 15);
    expect(encoded('luv', 1e-2)).toBeCloseTo(0.5, 14);
    expect(encoded('lu', Math.exp(-1))).toBeCloseTo(0.5, 14);
    expect(encoded('iluv', 0.1)).toBeCloseTo(1 / 3, 14);
    expect(encoded('norm', new Float(1))).toBeCloseTo(0.5, 15);
    expect(encoded('lnorm', new Float(1))).toBeCloseTo(0.5, 15);
    // I_0.2(2, 5) = 1 − 0.8⁶ − 6·0.2·0.8⁵
    expect(encoded('beta', 0.2)).toBeCloseTo(0.34464, 12);
    expect(encoded('opt.lr', 1e-3)).toBeCloseTo(0.5, 14);
  });

  it('decodes every distribution to values of the right type, inside the range, idempotently', () => {
    for (let d = 0; d < space.D; d++) {
      const dim = space.dims[d];
      const { param } = dim.leaf;
      for (const z of [0, 0.013, 0.25, 0.5, 0.77, 0.999, 1]) {
        const point = new Float64Array(space.D).fill(0.5);
        point[d] = dim.kind === 'categorical' ? Math.round(z * (dim.values.length - 1)) : z;
        space.snap(point);
        const value = space.valueAt(d, point[d]);
        // Snapping is idempotent, and re-encoding the value gives back the same point.
        expect(space.keyOfPoint(space.snap(new Float64Array(point)))).toBe(space.keyOfPoint(point));
        const again = space.encode(space.decode(point))!;
        if (dim.kind === 'numeric' && !dim.discrete) expect(Number(space.valueAt(d, again[d]))).toBeCloseTo(Number(value), 12);
        else expect(space.valueAt(d, again[d])).toEqual(value);
        if (dim.kind === 'categorical') {
          expect(dim.values).toContain(value);
          expect(value).not.toBe('z');
          continue;
        }
        const n = Number(value);
        if (param.min !== undefined) {
          // The older log families take natural-log exponents as bounds.
          const exponents = ['log_uniform', 'q_log_uniform', 'inv_log_uniform'].includes(param.distribution);
          const inverse = param.distribution === 'inv_log_uniform';
          const lo = exponents ? Math.exp(inverse ? -Number(param.max) : Number(param.min)) : Number(param.min);
          const hi = exponents ? Math.exp(inverse ? -Number(param.min) : Number(param.max)) : Number(param.max);
          const slack = (param.q === undefined ? 0 : Number(param.q)) + 1e-12 * Math.abs(hi);
          expect(n).toBeGreaterThanOrEqual(lo - slack);
          expect(n).toBeLessThanOrEqual(hi + slack);
        }
        const intTyped = param.distribution === 'int_uniform' || (param.distribution.startsWith('q_') && isIntValue(param.q));
        if (intTyped) expect(isIntValue(value)).toBe(true);
        else expect(isFloatValue(value)).toBe(true);
      }
    }
  });

  it('gives the program nested parameters with the constants', () => {
    const p = space.decode(new Float64Array(space.D).fill(0.5));
    expect(p.const).toBe('hello');
    expect((p.opt as Params).momentum).toBe(0.9);
    expect(Object.keys(p.opt as Params).sort()).toEqual(['lr', 'momentum']);
  });
});

describe('the history a model learns from', () => {
  const q = quadratic('bayes');
  const s = new SearchSpace(q.parameters);
  const p = (x: number): Params => ({ x, y: 3, kind: 'p' });
  const trials: TrialObservation[] = [
    { id: '1', params: p(0.1), state: 'finished', value: 2 },
    { id: '2', params: p(0.2), state: 'failed', value: null },
    { id: '3', params: p(0.3), state: 'finished', value: 5 },
    { id: '4', params: p(0.4), state: 'crashed', value: 1 },
    { id: '5', params: p(0.5), state: 'running', value: 0.5 },
    { id: '6', params: p(0.6), state: 'stopped', value: 3 },
    { id: '7', params: p(0.7), state: 'failed', value: 1.5 },
  ];

  it('imputes failed trials with the worst value by default, skips crashed ones, plans around running ones', () => {
    const h = readHistory(s, q, trials);
    expect(h.values).toEqual([2, 5, 5, 3, 5]);
    expect(h.pending).toHaveLength(1);
    expect(h.taken.size).toBe(7);
  });

  it("follows impute: best, a number, impute_while_running and goal: maximize", () => {
    expect(readHistory(s, { ...q, metric: { name: 'loss', goal: 'minimize', impute: 'best' } }, trials).values).toEqual([2, 5, 5, 3, 1.5]);
    expect(readHistory(s, { ...q, metric: { name: 'loss', goal: 'minimize', impute: 10 } }, trials).values).toEqual([2, 10, 5, 3, 10]);
    const running = readHistory(s, { ...q, metric: { name: 'loss', goal: 'minimize', impute_while_running: 'best' } }, trials);
    expect(running.values).toEqual([2, 5, 5, 0.5, 3, 5]);
    expect(running.pending).toHaveLength(0);
    // Maximising: values are negated, and the worst is then the lowest raw value.
    expect(readHistory(s, quadratic('bayes', 'maximize'), trials).values).toEqual([-2, -2, -5, -3, -2]);
  });
});

describe('bayes', () => {
  it('sizes its initial design and its refit schedule as documented', () => {
    expect([1, 2, 3, 6, 10, 30].map(initialDesignSize)).toEqual([5, 5, 6, 12, 20, 20]);
    expect([10, 48, 52, 53, 100, 500].map(fitSize)).toEqual([10, 48, 48, 53, 97, 461]);
  });

  it('gives the same suggestion for the same config, seed and trials, whatever it computed before', () => {
    const q = quadratic('bayes');
    const trials = runSequential(createStrategy(q, { seed: 4 }), 12, quadraticLoss);
    const again = runSequential(createStrategy(q, { seed: 4 }), 12, quadraticLoss);
    expect(again.map((t) => stringifyTyped(t.params))).toEqual(trials.map((t) => stringifyTyped(t.params)));
    // A strategy that has cached fits for other data answers as a fresh one does.
    const warm = createBayesStrategy(q, { seed: 4 });
    warm.suggest(trials.slice(0, 11));
    warm.suggest(trials);
    const fresh = createBayesStrategy(q, { seed: 4 });
    expect(stringifyTyped(warm.suggest(trials.slice(0, 10)))).toBe(stringifyTyped(fresh.suggest(trials.slice(0, 10))));
    expect(stringifyTyped(createBayesStrategy(q, { seed: 5 }).suggest(trials))).not.toBe(stringifyTyped(fresh.suggest(trials)));
  });

  it('handles every distribution, nested parameters and constants through the model', () => {
    const strategy = createStrategy(config, { seed: 1 });
    expectSoundOnEveryDistribution(config, runSequential(strategy, initialDesignSize(space.D) + 2, everyDistributionLoss));
  });

  it('gives 8 agents asking at once 8 different, spread-out points', () => {
    const q = quadratic('bayes');
    const s = new SearchSpace(q.parameters);
    const strategy = createStrategy(q, { seed: 2 });
    const done = runSequential(strategy, 10, quadraticLoss);
    const batch = askParallel(strategy, done, 8);
    expect(batch).toHaveLength(8);
    expectDistinctNewBatch(q, done, batch);
    const points = batch.map((p) => s.encode(p)!);
    let closest = Infinity;
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < i; j++) closest = Math.min(closest, Math.hypot(points[i][0] - points[j][0], points[i][1] - points[j][1]) + (points[i][2] === points[j][2] ? 0 : 1));
    }
    expect(closest).toBeGreaterThan(0.01);
  });

  it('gives the same parallel batch for the same seed and trials, running ones included', () => {
    expectDeterministicParallelBatch('bayes', 10);
  });

  it('never repeats a point of a small discrete space until every point has run', () => {
    const small = parseConfigText('method: bayes\nmetric: {name: loss}\nparameters:\n  a: {values: [u, v]}\n  b: {min: 1, max: 3}\n').config;
    const trials = runSequential(createStrategy(small, { seed: 0 }), 6, (p) => Number(p.b) + (p.a === 'u' ? 1 : 0));
    expect(new Set(trials.map((t) => `${String(t.params.a)}${String(t.params.b)}`)).size).toBe(6);
  });

  it('finds a better point than random search on a simple function', () => {
    const bayes = runSequential(createStrategy(quadratic('bayes'), { seed: 3 }), 20, quadraticLoss);
    const random = runSequential(createStrategy(quadratic('random'), { seed: 3 }), 20, quadraticLoss);
    expect(bestValue(bayes)).toBeLessThan(bestValue(random));
    expect(bestValue(bayes)).toBeLessThan(0.01);
  });

  it('maximising a value is minimising its negation', () => {
    const max = runSequential(createStrategy(quadratic('bayes', 'maximize'), { seed: 3 }), 14, (p) => -quadraticLoss(p));
    const min = runSequential(createStrategy(quadratic('bayes'), { seed: 3 }), 14, quadraticLoss);
    expect(max.map((t) => stringifyTyped(t.params))).toEqual(min.map((t) => stringifyTyped(t.params)));
  });
});
