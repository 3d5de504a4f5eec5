import { describe, expect, it } from 'vitest';
import { Float, isFloatValue, stringifyTyped, type ParamValue, type Params } from '../../domain/values.js';
import { parseConfig } from '../../controller/config/parse.js';
import { createStrategy } from '../../controller/strategies/index.js';
import { createRandomStrategy } from '../../controller/strategies/random.js';
import type { Strategy, TrialObservation } from '../../controller/strategies/types.js';

const config = parseConfig({
  method: 'random',
  parameters: {
    lr: { distribution: 'log_uniform_values', min: 1e-5, max: 0.1 },
    batch: { values: [16, 32, 64] },
    epochs: { min: 1, max: 20 },
    dropout: { min: new Float(0), max: 0.5 },
    opt: {
      parameters: {
        name: { value: 'adam' },
        beta: { distribution: 'q_uniform', min: 0.8, max: 0.99, q: 0.01 },
        warmup: { distribution: 'q_uniform', min: 0, max: 100, q: 10 },
      },
    },
    'a-b': { distribution: 'normal' },
  },
}).config;

function trial(i: number, params: Params): TrialObservation {
  return { id: `t${i}`, params, state: 'finished', value: null };
}

/** Ask n times, each suggestion becoming a trial before the next request. */
function sequence(strategy: Strategy, n: number): string[] {
  const trials: TrialObservation[] = [];
  for (let i = 0; i < n; i++) {
    const s = strategy.suggest(trials);
    if (s.kind !== 'params') throw new Error('random search never runs out');
    trials.push(trial(i, s.params));
  }
  return trials.map((t) => stringifyTyped(t.params));
}

describe('random search', () => {
  it('is reproducible: the same seed gives the same sequence', () => {
    expect(sequence(createRandomStrategy(config, { seed: 7 }), 25)).toEqual(
      sequence(createRandomStrategy(config, { seed: 7 }), 25),
    );
  });

  it('a different seed gives a different sequence', () => {
    const a = sequence(createRandomStrategy(config, { seed: 7 }), 10);
    const b = sequence(createRandomStrategy(config, { seed: 8 }), 10);
    expect(a.filter((p, i) => p === b[i])).toEqual([]);
  });

  it('suggestion k depends only on (seed, k): safe across restarts', () => {
    const whole = sequence(createRandomStrategy(config, { seed: 3 }), 12);
    // A fresh process that is handed the first 9 trials, whatever they were, proposes the 10th.
    const restarted = createRandomStrategy(config, { seed: 3 });
    const history = Array.from({ length: 9 }, (_, i) => trial(i, { anything: i }));
    const tenth = restarted.suggest(history);
    expect(tenth.kind === 'params' && stringifyTyped(tenth.params)).toBe(whole[9]);
    // Asking twice without a new trial repeats the answer rather than advancing.
    expect(restarted.suggest(history)).toEqual(restarted.suggest(history));
  });

  it('builds nested objects, keyed as W&B keys them, with W&B typing', () => {
    const s = createRandomStrategy(config, { seed: 1 }).suggest([]);
    if (s.kind !== 'params') throw new Error('expected params');
    const p = s.params;
    // Top-level leaves first (code-point order), then nested objects.
    expect(Object.keys(p)).toEqual(['a-b', 'batch', 'dropout', 'epochs', 'lr', 'opt']);
    expect(Object.keys(p.opt as object)).toEqual(['beta', 'name', 'warmup']);
    const opt = p.opt as { [k: string]: ParamValue };
    expect(opt.name).toBe('adam');
    expect(Number.isInteger(p.epochs) && !isFloatValue(p.epochs)).toBe(true);
    expect(isFloatValue(p.dropout)).toBe(true);
    expect(isFloatValue(opt.beta)).toBe(true);
    expect(Number.isInteger(opt.warmup) && !isFloatValue(opt.warmup)).toBe(true);
    expect([16, 32, 64]).toContain(p.batch);
  });

  it('stays within each distribution over many draws', () => {
    const s = createRandomStrategy(config, { seed: 11 });
    for (let k = 0; k < 500; k++) {
      const got = s.suggest(Array.from({ length: k }, (_, i) => trial(i, {})));
      if (got.kind !== 'params') throw new Error('expected params');
      const p = got.params as { [k: string]: number } & { opt: { [k: string]: number } };
      expect(p.lr).toBeGreaterThanOrEqual(1e-5);
      expect(p.lr).toBeLessThanOrEqual(0.1);
      expect(p.epochs).toBeGreaterThanOrEqual(1);
      expect(p.epochs).toBeLessThanOrEqual(20);
      expect(Number(p.opt.warmup) % 10).toBe(0);
    }
  });

  it('has no size and is created by method', () => {
    const s = createStrategy(config, { seed: 0 });
    expect(s.method).toBe('random');
    expect(s.size()).toBeUndefined();
    expect(createStrategy({ ...config, method: 'bayes' }, { seed: 0 }).method).toBe('bayes');
  });
});
