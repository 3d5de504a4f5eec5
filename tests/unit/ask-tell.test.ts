/** The ask/tell optimiser: the same strategy the controller drives, over trials held in memory. */
import { describe, expect, it } from 'vitest';
import { stringifyTyped } from '../../domain/values.js';
import { createOptimizer, TellError } from '../../controller/optimizer/ask-tell.js';
import { createStrategy } from '../../controller/strategies/index.js';
import { nextRun } from '../../controller/optimizer/next-run.js';
import { parseConfig } from '../../controller/config/parse.js';
import { ConfigError } from '../../controller/config/errors.js';
import { quadratic, quadraticLoss, runSequential } from '../fixtures/strategies.js';

describe('createOptimizer', () => {
  it('proposes what the strategy proposes for the same results', () => {
    const config = quadratic('bayes');
    const opt = createOptimizer(config, { seed: 6 });
    for (let i = 0; i < 8; i++) {
      const t = opt.ask()!;
      opt.tell(t.id, quadraticLoss(t.params));
    }
    const direct = runSequential(createStrategy(config, { seed: 6 }), 8, quadraticLoss);
    expect(opt.trials().map((t) => stringifyTyped(t.params))).toEqual(direct.map((t) => stringifyTyped(t.params)));
    expect(opt.best()!.value).toBe(Math.min(...direct.map((t) => t.value!)));
  });

  it('keeps asked trials running until told, and accepts results by parameters', () => {
    const opt = createOptimizer(quadratic('tpe'), { seed: 1 });
    const a = opt.ask()!;
    const b = opt.ask()!;
    expect(opt.trials().map((t) => t.state)).toEqual(['running', 'running']);
    opt.tell(JSON.parse(JSON.stringify(b.params)), 0.5);
    opt.tell(a.id, { state: 'failed' });
    expect(opt.trials().map((t) => [t.state, t.value])).toEqual([
      ['failed', null],
      ['finished', 0.5],
    ]);
    // Parameters nobody asked for: a result from elsewhere, recorded as a new trial.
    opt.tell({ x: 0.3, y: 7, kind: 'q' }, 0.01);
    expect(opt.trials()).toHaveLength(3);
    expect(opt.best()!.params).toEqual({ x: 0.3, y: 7, kind: 'q' });
  });

  it('refuses a second result for a trial and an unknown trial', () => {
    const opt = createOptimizer(quadratic('random'), { seed: 1 });
    const t = opt.ask()!;
    opt.tell(t.id, 1);
    expect(() => opt.tell(t.id, 2)).toThrow(TellError);
    expect(() => opt.tell('99', 2)).toThrow(/unknown trial/);
  });

  it('stops at run_cap and when a grid is used up, saying why', () => {
    const capped = createOptimizer({ method: 'random', run_cap: 2, parameters: { a: { values: [1, 2, 3] } } }, { seed: 0 });
    expect(capped.ask()).not.toBeNull();
    expect(capped.ask()).not.toBeNull();
    expect(capped.ask()).toBeNull();
    expect(capped.finishReason).toBe('run_cap 2 reached');
    const grid = createOptimizer({ method: 'grid', parameters: { a: { values: [1, 2] } } });
    grid.ask();
    grid.ask();
    expect(grid.ask()).toBeNull();
    expect(grid.finishReason).toBe('search space exhausted');
  });

  it('reads a maximised metric the right way round', () => {
    const opt = createOptimizer(quadratic('random', 'maximize'), { seed: 2 });
    for (const v of [1, 5, 3]) opt.tell(opt.ask()!.id, v);
    expect(opt.best()!.value).toBe(5);
  });
});

describe('library entry points validate a raw config exactly as parseConfig does', () => {
  const messages = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    }
    throw new Error('expected a ConfigError');
  };

  it('nextRun refuses a raw config with no parameters, as W&B raises', () => {
    const raw = { method: 'random', parameters: {} };
    expect(messages(() => nextRun(raw, []))).toEqual(messages(() => parseConfig(raw)));
  });

  it('createOptimizer refuses unknown keys and a run_cap that is not a number', () => {
    const raw = { method: 'random', bogus: 1, run_cap: 'x', parameters: { a: { values: [1, 2] } } };
    const got = messages(() => createOptimizer(raw));
    expect(got).toEqual(messages(() => parseConfig(raw)));
    expect(got.some((m) => m.startsWith('bogus'))).toBe(true);
    expect(got.some((m) => m.startsWith('run_cap'))).toBe(true);
  });

  it('a parsed config is taken as it is', () => {
    const { config } = parseConfig({ method: 'grid', parameters: { a: { values: [1, 2] } } });
    expect(nextRun(config, [])).toEqual({ a: 1 });
    expect(createOptimizer(config).config).toBe(config);
  });
});
