/**
 * ASHA as a stopping rule: rungs, the top-1/eta rule with its first arrivals, decisions on
 * arrival only, and its config keys.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../controller/config/index.js';
import { AshaRule, ashaRungs, type StoppingConfig } from '../../controller/stopping/index.js';
import { stopDecisions } from '../../controller/optimizer/stop-runs.js';

const config = (early: Record<string, unknown>, goal: 'minimize' | 'maximize' = 'minimize'): StoppingConfig => ({
  metric: { name: 'loss', goal },
  early_terminate: { type: 'asha', ...early },
});

describe('rungs', () => {
  it('min_iter·eta^k truncated, distinct, below max_iter', () => {
    expect(ashaRungs({ type: 'asha', min_iter: 1, eta: 3 }).slice(0, 5)).toEqual([1, 3, 9, 27, 81]);
    expect(ashaRungs({ type: 'asha', min_iter: 3, eta: 3, max_iter: 81 })).toEqual([3, 9, 27]);
    expect(ashaRungs({ type: 'asha', min_iter: 1, eta: 1.5 }).slice(0, 6)).toEqual([1, 2, 3, 5, 7, 11]);
    expect(ashaRungs({ type: 'asha', min_iter: 2, eta: 2, max_iter: 3 })).toEqual([2]);
  });

  it('defaults: min_iter 3, eta 3', () => {
    expect(ashaRungs({ type: 'asha' }).slice(0, 3)).toEqual([3, 9, 27]);
  });
});

describe('the top 1/eta continue', () => {
  it('first arrivals continue only while they are the best at the rung; ties continue', () => {
    const rule = new AshaRule(config({ min_iter: 1, eta: 3 }));
    expect(rule.report('a', 5)).toEqual([]); // [5]: keep 1, rank 0
    expect(rule.report('b', 6)).toEqual([
      { trialId: 'b', rule: 'asha', at: 1, value: 6, threshold: 5, reason: 'asha: value 6 > cutoff 5 at rung 1 (rank 2 of 2, top 1 continue)' },
    ]);
    expect(rule.report('c', 4)).toEqual([]); // best so far
    expect(rule.report('d', 4.5).map((d) => d.trialId)).toEqual(['d']); // [4, 4.5, 5, 6]: keep 1
    expect(rule.report('e', 4)).toEqual([]); // ties the best
    // [4, 4, 4.2, 4.5, 5, 6]: keep 2, and 4.2 is third.
    expect(rule.report('f', 4.2).map((d) => d.reason)).toEqual(['asha: value 4.2 > cutoff 4 at rung 1 (rank 3 of 6, top 2 continue)']);
    expect(rule.report('g', 3.9)).toEqual([]);
  });

  it('judges only on arriving at a rung, and never revisits a decision', () => {
    const rule = new AshaRule(config({ min_iter: 2, eta: 2 }));
    expect([5, 5].flatMap((v) => rule.report('a', v))).toEqual([]);
    // b reaches rung 2 with 1 and then logs badly: nothing until rung 4.
    expect([9, 1, 50].flatMap((v) => rule.report('b', v))).toEqual([]);
    // a continued at rung 2 as the first arrival; better arrivals do not stop it afterwards.
    expect([9, 0.5].flatMap((v) => rule.report('c', v))).toEqual([]);
    expect([5, 5].flatMap((v) => rule.report('a', v))).toEqual([]);
    // At rung 4 b (50 at its 3rd value, 7 at its 4th) arrives after a (5): [5, 7], keep 1.
    expect(rule.report('b', 7).map((d) => d.at)).toEqual([4]);
  });

  it('maximize: higher is better, and the reason says so', () => {
    const rule = new AshaRule(config({ min_iter: 1, eta: 2 }, 'maximize'));
    expect(rule.report('a', 0.9)).toEqual([]);
    expect(rule.report('b', 0.7).map((d) => d.reason)).toEqual(['asha: value 0.7 < cutoff 0.9 at rung 1 (rank 2 of 2, top 1 continue)']);
    expect(rule.report('c', 0.95)).toEqual([]);
  });

  it('ended trials count but are never stopped', () => {
    const rule = new AshaRule(config({ min_iter: 1, eta: 3 }));
    rule.ended('done', 'finished');
    expect(rule.report('done', 1)).toEqual([]);
    rule.ended('late', 'crashed');
    expect(rule.report('late', 9)).toEqual([]);
    expect(rule.report('x', 2).map((d) => d.trialId)).toEqual(['x']); // [1, 2, 9]: keep 1
  });

  it('no rung at or past max_iter: a trial there runs to its end', () => {
    const rule = new AshaRule(config({ min_iter: 1, eta: 2, max_iter: 2 }));
    expect([1, 1].flatMap((v) => rule.report('a', v))).toEqual([]);
    expect([1, 99, 99].flatMap((v) => rule.report('b', v))).toEqual([]);
  });

  it('stopDecisions judges each running trial at its last rung against every value there now', () => {
    const runs = [
      { id: 'a', state: 'finished' as const, history: [1, 1, 1] },
      { id: 'b', state: 'running' as const, history: [2, 2, 2] },
      { id: 'c', state: 'running' as const, history: [3] },
      { id: 'd', state: 'running' as const, history: [0, NaN, null] },
    ];
    expect(stopDecisions(config({ min_iter: 1, eta: 3 }), runs).map((d) => [d.trialId, d.at])).toEqual([
      ['b', 3],
      ['c', 1],
    ]);
  });
});

describe('fit: the trend since the previous rung', () => {
  it('judges the least-squares line through the values since the previous rung, read at the rung', () => {
    // Rungs 3, 9, ...: a's 3, 2, 1 lie on a line that reads 1 at the rung.
    const rule = new AshaRule(config({ min_iter: 3, eta: 3 }));
    expect([3, 2, 1].flatMap((v) => rule.report('a', v))).toEqual([]);
    // b: line through (0, 9), (1, 1), (2, 5): slope -2, mean 5, read at x=2: 3. [1, 3]: keep 1.
    expect([9, 1, 5].flatMap((v) => rule.report('b', v))).toEqual([
      { trialId: 'b', rule: 'asha', at: 3, value: 3, threshold: 1, reason: 'asha: trend value 3 > cutoff 1 at rung 3 (rank 2 of 2, top 1 continue)' },
    ]);
    // c: slope -1, mean 5/3, read at x=2: 2/3, the best of [2/3, 1, 3]: it continues.
    expect([2.5, 2, 0.5].flatMap((v) => rule.report('c', v))).toEqual([]);
    // With fit last, the same values are judged on the last one: b's 5.
    const last = new AshaRule(config({ min_iter: 3, eta: 3, fit: 'last' }));
    expect([3, 2, 1].flatMap((v) => last.report('a', v))).toEqual([]);
    expect([9, 1, 5].flatMap((v) => last.report('b', v)).map((d) => [d.value, d.reason])).toEqual([
      [5, 'asha: value 5 > cutoff 1 at rung 3 (rank 2 of 2, top 1 continue)'],
    ]);
  });

  it('the window restarts at each rung; one or two values are the last value itself', () => {
    const rule = new AshaRule(config({ min_iter: 2, eta: 2 })); // rungs 2, 4, 8, ...
    expect([5, 4].flatMap((v) => rule.report('a', v))).toEqual([]); // rung 2: 4
    expect([9, 6].flatMap((v) => rule.report('b', v)).map((d) => [d.at, d.value])).toEqual([[2, 6]]); // [4, 6]: keep 1
    expect([1, 3].flatMap((v) => rule.report('a', v))).toEqual([]); // rung 4 on (1, 3) only: 3
    // c: rung 2 on (2, 2): 2, the best; rung 4 on (4, 3.5) alone, not on all four values: 3.5 > 3.
    expect([2, 2].flatMap((v) => rule.report('c', v))).toEqual([]);
    expect([4, 3.5].flatMap((v) => rule.report('c', v)).map((d) => [d.at, d.value, d.threshold])).toEqual([[4, 3.5, 3]]);
  });

  it('maximize: the line is read on the logged values', () => {
    const rule = new AshaRule(config({ min_iter: 3, eta: 2 }, 'maximize'));
    expect([0.1, 0.5, 0.6].flatMap((v) => rule.report('a', v))).toEqual([]); // slope 0.25, mean 0.4: 0.65
    expect([0.2, 0.5, 0.5].flatMap((v) => rule.report('b', v)).map((d) => d.value)).toEqual([0.55]); // slope 0.15, mean 0.4
  });

  it('refuses an unknown fit', () => {
    expect(() => new AshaRule(config({ fit: 'mean' }))).toThrow("early_terminate.fit: expected 'trend' or 'last', got \"mean\"");
  });
});

describe('config', () => {
  const base = { method: 'random', metric: { name: 'loss' }, parameters: { a: { min: 0.0, max: 1.0 } } };
  const issues = (early_terminate: unknown) => {
    try {
      parseConfig({ ...base, early_terminate });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.issues;
      throw err;
    }
  };

  it('fills the defaults', () => {
    expect(parseConfig({ ...base, early_terminate: { type: 'asha' } }).config.early_terminate).toEqual({ type: 'asha', min_iter: 3, eta: 3, fit: 'trend' });
    expect(parseConfig({ ...base, early_terminate: { type: 'asha', min_iter: 1, eta: 4, max_iter: 64 } }).config.early_terminate).toEqual({
      type: 'asha',
      min_iter: 1,
      eta: 4,
      max_iter: 64,
      fit: 'trend',
    });
    expect(parseConfig({ ...base, early_terminate: { type: 'asha', fit: 'last' } }).config.early_terminate).toMatchObject({ fit: 'last' });
  });

  it('checks keys and values, naming asha\'s own keys', () => {
    expect(issues({ type: 'asha', fit: 'mean' })).toEqual([{ path: 'early_terminate.fit', message: 'expected \'trend\' or \'last\', got "mean"' }]);
    expect(issues({ type: 'asha', min_iter: 0, eta: 1, max_itr: 9, strict: true })).toEqual([
      { path: 'early_terminate.min_iter', message: 'expected a positive integer, got 0' },
      { path: 'early_terminate.eta', message: 'expected a number greater than 1, got 1' },
      { path: 'early_terminate.max_itr', message: "unknown key (did you mean 'max_iter'?)" },
      { path: 'early_terminate.strict', message: 'unknown key (expected one of: type, min_iter, eta, max_iter, fit)' },
    ]);
    expect(issues({ type: 'asha', min_iter: 9, max_iter: 9 })).toEqual([
      { path: 'early_terminate.max_iter', message: 'must be greater than min_iter (9): no rung lies below it' },
    ]);
    expect(issues({ type: 'ashaa' })).toEqual([{ path: 'early_terminate.type', message: "unknown early_terminate type 'ashaa' (did you mean 'asha'?)" }]);
  });

  it('stopDecisions checks a raw config as the parser does', () => {
    const runs = [{ id: 'a', state: 'running' as const, history: [1, 2, 3] }];
    expect(() => stopDecisions(config({ min_iter: 3, max_iter: 3 }), runs)).toThrow(
      new ConfigError([{ path: 'early_terminate.max_iter', message: 'must be greater than min_iter (3): no rung lies below it' }]),
    );
    expect(() => stopDecisions(config({ fit: 'mean' }), runs)).toThrow('early_terminate.fit: expected \'trend\' or \'last\', got "mean"');
  });
});
