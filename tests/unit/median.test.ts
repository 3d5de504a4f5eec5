/**
 * The median stopping rule: the median of the other trials at the same step, the trial's best so
 * far, warm-up steps and the minimum number of finished trials, and its config keys.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../controller/config/index.js';
import { MedianRule, type StopDecision, type StoppingConfig } from '../../controller/stopping/index.js';
import { stopDecisions } from '../../controller/optimizer/stop-runs.js';
import type { TrialState } from '../../domain/trial-state.js';

const config = (early: Record<string, unknown>, goal: 'minimize' | 'maximize' = 'minimize'): StoppingConfig => ({
  metric: { name: 'loss', goal },
  early_terminate: { type: 'median', ...early },
});

function run(rule: MedianRule, id: string, values: number[], end?: TrialState): StopDecision[] {
  const out = values.flatMap((v) => rule.report(id, v));
  if (end) rule.ended(id, end);
  return out;
}

describe('the median of the other trials at the same step', () => {
  it('stops a trial whose best so far is strictly worse; the median of an even count is the mean of the middle two', () => {
    const rule = new MedianRule(config({ warmup_steps: 0, min_trials: 2 }));
    run(rule, 'a', [3, 2, 1], 'finished');
    run(rule, 'b', [5, 4, 3], 'finished');
    expect(rule.report('c', 4)).toEqual([]); // others at step 1: [3, 5] → 4; 4 > 4 is false
    expect(rule.report('c', 3.5)).toEqual([
      {
        trialId: 'c',
        rule: 'median',
        at: 2,
        value: 3.5,
        threshold: 3,
        reason: 'median: best value 3.5 > median 3 of 2 other trials at iteration 2',
      },
    ]);
  });

  it('compares the best so far, not the last value, and leaves its own value out', () => {
    const rule = new MedianRule(config({ warmup_steps: 0, min_trials: 0 }));
    run(rule, 'a', [5, 5, 5]);
    run(rule, 'b', [6, 6, 6]);
    // Its own 9 at step 3 would make the median of all three 6; of the others it is 5.5,
    // and its best (1) is far below.
    expect(run(rule, 'c', [1, 9, 9])).toEqual([]);
    // d at step 1: others [1, 5, 6] → 5, and its best is 7.
    expect(run(rule, 'd', [7, 7, 7]).map((d) => [d.at, d.threshold])).toEqual([[1, 5]]);
  });

  it('counts every trial at the step, stopped ones included; judges only the one reporting', () => {
    const rule = new MedianRule(config({ warmup_steps: 0, min_trials: 0 }));
    run(rule, 'a', [1], 'stopped');
    expect(run(rule, 'b', [2]).map((d) => d.trialId)).toEqual(['b']);
    // A better newcomer does not stop the running trial c retroactively.
    expect(run(rule, 'c', [1])).toEqual([]);
    expect(run(rule, 'd', [0])).toEqual([]);
  });

  it('waits for warmup_steps values and for min_trials finished trials', () => {
    const rule = new MedianRule(config({ warmup_steps: 2, min_trials: 2 }));
    run(rule, 'a', [1, 1, 1, 1, 1, 1], 'finished');
    // One finished trial: nothing yet.
    expect(run(rule, 'x', [9, 9, 9])).toEqual([]);
    // A stopped or failed trial is not a finished one.
    run(rule, 'f', [1, 1, 1, 1, 1, 1], 'failed');
    expect(rule.report('x', 9)).toEqual([]);
    run(rule, 'b', [1, 1, 1, 1, 1, 1], 'finished');
    // Past the warm-up and two finished trials: judged at its next value.
    expect(run(rule, 'y', [9, 9])).toEqual([]);
    expect(run(rule, 'y', [9]).map((d) => d.at)).toEqual([3]);
    expect(rule.report('x', 9).map((d) => d.at)).toEqual([5]);
  });

  it('maximize: lower is worse', () => {
    const rule = new MedianRule(config({ warmup_steps: 0, min_trials: 0 }, 'maximize'));
    run(rule, 'a', [0.8]);
    run(rule, 'b', [0.9]);
    expect(run(rule, 'c', [0.7]).map((d) => d.reason)).toEqual(['median: best value 0.7 < median 0.85 of 2 other trials at iteration 1']);
    expect(run(rule, 'd', [0.85])).toEqual([]);
  });

  it('a trial alone at its step is not judged', () => {
    const rule = new MedianRule(config({ warmup_steps: 0, min_trials: 0 }));
    expect(run(rule, 'a', [9, 9, 9])).toEqual([]);
  });

  it('stopDecisions: a snapshot over running trials', () => {
    const runs = [
      { id: 'a', state: 'finished' as const, history: [1, 1] },
      { id: 'b', state: 'finished' as const, history: [2, 2] },
      { id: 'c', state: 'running' as const, history: [3, NaN, 3] },
      { id: 'd', state: 'running' as const, history: [1.5] },
    ];
    expect(stopDecisions(config({ warmup_steps: 1, min_trials: 2 }), runs).map((d) => d.trialId)).toEqual(['c']);
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
    expect(parseConfig({ ...base, early_terminate: { type: 'median' } }).config.early_terminate).toEqual({
      type: 'median',
      warmup_steps: 5,
      min_trials: 5,
    });
  });

  it('checks keys and values', () => {
    expect(issues({ type: 'median', warmup_steps: -1, min_trials: 1.5, warmup: 3 })).toEqual([
      { path: 'early_terminate.warmup_steps', message: 'expected an integer >= 0, got -1' },
      { path: 'early_terminate.min_trials', message: 'expected an integer >= 0, got 1.5' },
      { path: 'early_terminate.warmup', message: 'unknown key (expected one of: type, warmup_steps, min_trials)' },
    ]);
  });

  it('stopDecisions checks a raw config as the parser does', () => {
    const runs = [{ id: 'a', state: 'running' as const, history: [1, 2, 3] }];
    try {
      stopDecisions(config({ warmup_steps: -1, min_trials: 1.5 }), runs);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).issues).toEqual([
        { path: 'early_terminate.warmup_steps', message: 'expected an integer >= 0, got -1' },
        { path: 'early_terminate.min_trials', message: 'expected an integer >= 0, got 1.5' },
      ]);
    }
  });
});
