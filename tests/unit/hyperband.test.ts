/**
 * Hyperband against W&B's own answers (tests/fixtures/conformance/hyperband.json, computed with
 * wandb/sweeps), then exact cases for what the file does not pin down: incremental decisions
 * as values arrive, and the reasons recorded.
 *
 * The rule is built from each case's raw `metric` and `early_terminate`, not through
 * parseConfig: Sweeper's parser refuses four of these configs that W&B's stopping path accepts
 * (an extra key, a misspelt goal, method bayes), and the stopping decision is still W&B's there.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Float, isNumeric, parseTypedJson, toNumber } from '../../domain/values.js';
import { ConfigError, parseConfig } from '../../controller/config/index.js';
import {
  HyperbandRule,
  createStopMonitor,
  createStoppingRule,
  hyperbandBands,
  type StopDecision,
  type StoppingConfig,
} from '../../controller/stopping/index.js';
import { stopDecisions, stopRuns, type RunForStopping } from '../../controller/optimizer/stop-runs.js';
import type { TrialState } from '../../domain/trial-state.js';

interface Case {
  name: string;
  note: string;
  config: StoppingConfig & Record<string, unknown>;
  runs: Array<{ name: string; state: string; history: unknown[] }>;
  expected_stop: string[] | null;
  expected_bands?: number[];
  expected_thresholds?: Array<number | null>;
  expected_error?: string;
}

const file = new URL('../fixtures/conformance/hyperband.json', import.meta.url);
const cases = parseTypedJson(readFileSync(file, 'utf8')) as unknown as Case[];

function historyValue(v: unknown): number | null {
  if (v === null) return null;
  if (isNumeric(v)) return toNumber(v);
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new Error(`unexpected history value ${JSON.stringify(v)}`);
}

/** W&B's `killed` is Sweeper's `stopped`. */
const stateOf = (s: string): TrialState => (s === 'killed' ? 'stopped' : (s as TrialState));

const runsOf = (c: Case): RunForStopping[] =>
  c.runs.map((r) => ({ id: r.name, state: stateOf(r.state), history: r.history.map(historyValue) }));

describe('hyperband.json: W&B stop_runs conformance', () => {
  it('has the cases this suite expects', () => {
    expect(cases.length).toBe(50);
    expect(cases.filter((c) => c.expected_error).length).toBe(8);
  });

  for (const c of cases) {
    if (c.expected_error) {
      it(`${c.name}: refused (${c.note})`, () => {
        expect(() => stopRuns(c.config, runsOf(c))).toThrow();
      });
      continue;
    }
    it(`${c.name}: ${c.note}`, () => {
      expect([...stopRuns(c.config, runsOf(c))].sort()).toEqual(c.expected_stop);
    });
    it(`${c.name}: brackets and thresholds`, () => {
      const spec = c.config.early_terminate!;
      expect(hyperbandBands(spec).filter((b) => b <= 200)).toEqual(c.expected_bands);
      const rule = createStoppingRule(c.config) as HyperbandRule;
      for (const run of runsOf(c)) {
        if (run.state !== 'running') rule.ended(run.id, run.state);
        for (const v of run.history) if (v !== null && Number.isFinite(v)) rule.report(run.id, v);
      }
      const thresholds = c.expected_bands!.map((b) => rule.thresholdAt(b));
      // W&B's zeros are ints or -0.0 by how they were negated; the sign of a zero decides nothing.
      expect(thresholds.map((t) => t + 0)).toEqual(c.expected_thresholds!.map((t) => (t ?? Infinity) + 0));
    });
  }
});

const minimize = (early_terminate: Record<string, unknown>): StoppingConfig => ({
  metric: { name: 'loss', goal: 'minimize' },
  early_terminate: { type: 'hyperband', ...early_terminate },
});

function feed(rule: HyperbandRule, id: string, values: number[]): StopDecision[] {
  return values.flatMap((v) => rule.report(id, v));
}

describe('brackets', () => {
  it('max_iter and s: divided by eta up to s times, truncated, ascending', () => {
    expect(hyperbandBands({ type: 'hyperband', max_iter: 27, s: 2, eta: 3 })).toEqual([3, 9]);
    expect(hyperbandBands({ type: 'hyperband', max_iter: 81, s: 3 })).toEqual([3, 9, 27]);
    // Stops below 1 rather than adding a bracket 0.
    expect(hyperbandBands({ type: 'hyperband', max_iter: 9, s: 5 })).toEqual([1, 3]);
    // max_iter wins over min_iter.
    expect(hyperbandBands({ type: 'hyperband', max_iter: 27, s: 2, min_iter: 1 })).toEqual([3, 9]);
  });

  it('min_iter: min_iter·eta^k truncated, W&B\'s 100 of them', () => {
    const b = hyperbandBands({ type: 'hyperband', min_iter: 30, eta: 1.5 });
    expect(b.slice(0, 6)).toEqual([30, 45, 67, 101, 151, 227]);
    expect(b).toHaveLength(100);
    expect(hyperbandBands({ type: 'hyperband', min_iter: 3 }).slice(0, 4)).toEqual([3, 9, 27, 81]);
  });

  it('refuses what W&B refuses', () => {
    expect(() => hyperbandBands({ type: 'hyperband', max_iter: 2, s: 3 })).toThrow(/no hyperband brackets/);
    expect(() => hyperbandBands({ type: 'hyperband', eta: 3 })).toThrow(/min_iter, or max_iter and s/);
    expect(() => hyperbandBands({ type: 'hyperband', max_iter: 9 })).toThrow(/early_terminate.s/);
    expect(() => hyperbandBands({ type: 'hyperband', min_iter: 0 })).toThrow(/min_iter/);
    expect(() => hyperbandBands({ type: 'hyperband', min_iter: 3, eta: 1 })).toThrow(/eta/);
  });
});

describe('thresholds and decisions', () => {
  it('threshold is element floor(count/eta) of the values at the bracket; strictly greater stops', () => {
    const rule = new HyperbandRule(minimize({ min_iter: 1, eta: 2 }));
    expect(rule.thresholdAt(1)).toBe(Infinity);
    rule.ended('a', 'finished');
    rule.report('a', 4);
    rule.ended('b', 'finished');
    rule.report('b', 2);
    // [2, 4], index 1: 4.
    expect(rule.thresholdAt(1)).toBe(4);
    expect(rule.report('c', 4)).toEqual([]); // [2, 4, 4]: index 1 is 4, and 4 > 4 is false
    const d = rule.report('d', 5); // [2, 4, 4, 5]: index 2 is 4
    expect(d).toEqual([
      { trialId: 'd', rule: 'hyperband', at: 1, value: 5, threshold: 4, reason: 'hyperband: value 5 > threshold 4 at bracket 1' },
    ]);
  });

  it('ties stop nothing', () => {
    expect(stopRuns(minimize({ min_iter: 1, eta: 2 }), ['a', 'b', 'c', 'd'].map((id) => ({ id, state: 'running', history: [1] })))).toEqual([]);
  });

  it('strict judges the value at the bracket; non-strict the best so far', () => {
    const runs: RunForStopping[] = [
      { id: 'a', state: 'finished', history: [5, 3, 3] },
      { id: 'b', state: 'finished', history: [5, 2, 2] },
      // At bracket 2 its value is 6, but it logged 1 before.
      { id: 'c', state: 'running', history: [1, 6] },
    ];
    expect(stopRuns(minimize({ min_iter: 2, eta: 2 }), runs)).toEqual(['c']);
    expect(stopRuns(minimize({ min_iter: 2, eta: 2, strict: false }), runs)).toEqual([]);
    // Non-strict uses the whole history, values past the bracket included.
    const later: RunForStopping[] = [...runs.slice(0, 2), { id: 'c', state: 'running', history: [9, 9, 9] }];
    expect(stopDecisions(minimize({ min_iter: 2, eta: 2, strict: false }), later).map((d) => d.reason)).toEqual([
      'hyperband: best value 9 > threshold 3 at bracket 2',
    ]);
  });

  it('maximize negates: a lower value is worse, and the reason says so in the logged orientation', () => {
    const config: StoppingConfig = { metric: { name: 'acc', goal: 'maximize' }, early_terminate: { type: 'hyperband', min_iter: 1, eta: 3 } };
    const runs: RunForStopping[] = [
      { id: 'a', state: 'finished', history: [0.9] },
      { id: 'b', state: 'running', history: [0.5] },
      { id: 'c', state: 'running', history: [0.95] },
    ];
    // Negated: [-0.95, -0.9, -0.5], index 1.
    expect(stopDecisions(config, runs)).toEqual([
      { trialId: 'b', rule: 'hyperband', at: 1, value: 0.5, threshold: 0.9, reason: 'hyperband: value 0.5 < threshold 0.9 at bracket 1' },
    ]);
  });

  it('skips missing, NaN and infinite values: iterations count valid values only', () => {
    const runs: RunForStopping[] = [
      { id: 'a', state: 'finished', history: [5, 1] },
      { id: 'b', state: 'finished', history: [5, 2] },
      { id: 'c', state: 'running', history: [5, NaN, null, Infinity, 3] },
    ];
    expect(stopDecisions(minimize({ min_iter: 2, eta: 2 }), runs).map((d) => d.reason)).toEqual(['hyperband: value 3 > threshold 2 at bracket 2']);
    // With only one valid value it has not reached bracket 2 at all.
    runs[2] = { id: 'c', state: 'running', history: [5, NaN, 30] };
    expect(stopRuns(minimize({ min_iter: 2, eta: 2 }), [...runs.slice(0, 2), { id: 'c', state: 'running', history: [5, NaN, null] }])).toEqual([]);
  });

  it('finished, failed, crashed and stopped trials count toward thresholds but are never stopped', () => {
    const config = minimize({ min_iter: 1, eta: 2 });
    const states: TrialState[] = ['finished', 'failed', 'crashed', 'stopped'];
    const runs: RunForStopping[] = [
      ...states.map((state, i) => ({ id: state, state, history: [i + 1] })),
      { id: 'good', state: 'running', history: [0] },
      { id: 'bad', state: 'running', history: [3.5] },
    ];
    // [0, 1, 2, 3, 3.5, 4], index 3: 3.
    expect(stopRuns(config, runs)).toEqual(['bad']);
    expect(stopRuns(config, runs.map((r) => ({ ...r, state: r.state === 'running' ? r.state : 'finished' })))).toEqual(['bad']);
  });

  it('is judged at the largest bracket reached, even past the last one', () => {
    const rule = new HyperbandRule(minimize({ max_iter: 8, s: 2, eta: 2 }));
    rule.ended('a', 'finished');
    feed(rule, 'a', [9, 8, 7, 6, 5, 4]);
    rule.ended('b', 'finished');
    feed(rule, 'b', [9, 7, 5, 3]);
    expect(feed(rule, 'c', [9, 8, 7, 8, 1, 1, 1, 1, 1, 1])).toEqual([
      expect.objectContaining({ trialId: 'c', at: 4, value: 8, threshold: 8 - 2 }),
    ]);
  });
});

describe('stopRuns validates a raw config as the config parser does', () => {
  // a and b finished; c at bracket 2 is worse than the threshold (element 1 of [2, 3, 6]).
  const runs: RunForStopping[] = [
    { id: 'a', state: 'finished', history: [5, 3, 3] },
    { id: 'b', state: 'finished', history: [5, 2, 2] },
    { id: 'c', state: 'running', history: [1, 6] },
  ];
  const issuesOf = (config: unknown): unknown => {
    try {
      stopRuns(config as StoppingConfig, runs);
    } catch (e) {
      if (e instanceof ConfigError) return e.issues;
      throw e;
    }
    return 'accepted';
  };

  it('refuses a non-integer min_iter (2.5 would run bands 2, 7, 22, 67), as W&B does', () => {
    expect(() => hyperbandBands({ type: 'hyperband', min_iter: 2.5 })).toThrow('early_terminate.min_iter: expected a positive integer, got 2.5');
    expect(() => stopRuns(minimize({ min_iter: 2.5, eta: 3 }), runs)).toThrow(ConfigError);
    expect(issuesOf(minimize({ min_iter: 2.5, eta: 3 }))).toEqual([{ path: 'early_terminate.min_iter', message: 'expected a positive integer, got 2.5' }]);
    expect(() => stopDecisions(minimize({ min_iter: 2.5 }), runs)).toThrow('early_terminate.min_iter: expected a positive integer, got 2.5');
  });

  it('accepts an integral float where an integer goes, as the parser and W&B do', () => {
    expect(stopRuns(minimize({ min_iter: new Float(2), eta: 2 }), runs)).toEqual(['c']);
    expect(stopRuns(minimize({ min_iter: 2, eta: 2 }), runs)).toEqual(['c']);
  });

  it('reports every problem of metric and early_terminate at once, in the words of the parser', () => {
    expect(issuesOf({ metric: { name: '' }, early_terminate: { type: 'hyperband', min_iter: 0, eta: 1, strict: 'yes' } })).toEqual([
      { path: 'metric.name', message: 'expected a metric name, got ""' },
      { path: 'early_terminate.min_iter', message: 'expected a positive integer, got 0' },
      { path: 'early_terminate.eta', message: 'expected a number greater than 1, got 1' },
      { path: 'early_terminate.strict', message: 'expected true or false, got "yes"' },
    ]);
    expect(issuesOf({ early_terminate: { type: 'hyperband', min_iter: 3 } })).toEqual([
      { path: 'metric', message: 'required when early_terminate is set (stopping compares runs on it)' },
    ]);
    expect(issuesOf({ metric: 'loss', early_terminate: { type: 'hyperband', min_iter: 3 } })).toEqual([
      { path: 'metric', message: 'expected a mapping with \'name\' and \'goal\', got "loss"' },
    ]);
    expect(issuesOf(minimize({ eta: '3', min_iter: 3 }))).toEqual([{ path: 'early_terminate.eta', message: 'expected a number greater than 1, got "3"' }]);
    expect(issuesOf(minimize({ max_iter: 2, s: 3 }))).toEqual([
      { path: 'early_terminate.max_iter', message: 'gives no hyperband bands: max_iter / eta = 0.667 is below 1; increase max_iter or decrease eta' },
    ]);
    expect(issuesOf({ metric: { name: 'loss' }, early_terminate: { type: 'hyperbnd', min_iter: 3 } })).toEqual([
      { path: 'early_terminate.type', message: "unknown early_terminate type 'hyperbnd' (did you mean 'hyperband'?)" },
    ]);
  });

  it('reads what W&B\'s stop_runs tolerates as it does: unknown keys dropped, any goal but maximize minimizes', () => {
    const lenient = { metric: { name: 'loss', goal: 'minimise', target: 'x' }, early_terminate: { type: 'hyperband', min_iter: 2, eta: 2, extra_key: 1 } };
    expect(stopRuns(lenient as unknown as StoppingConfig, runs)).toEqual(['c']);
  });

  it('uses a parsed config as it is, and answers alike', () => {
    const { config } = parseConfig({ method: 'random', metric: { name: 'loss' }, early_terminate: { type: 'hyperband', min_iter: 2, eta: 2 }, parameters: { x: { values: [1] } } });
    expect(stopRuns(config, runs)).toEqual(['c']);
  });

  it('stops nothing without early_terminate', () => {
    expect(stopRuns({ metric: { name: 'loss' } }, runs)).toEqual([]);
  });
});

describe('incremental decisions', () => {
  it('a tightened threshold stops other running trials already judged at that bracket', () => {
    const rule = new HyperbandRule(minimize({ min_iter: 2, eta: 2 }));
    expect(feed(rule, 'a', [0, 6])).toEqual([]); // [6] → 6
    expect(feed(rule, 'b', [0, 5])).toEqual([]); // [5, 6] → 6
    // [1, 5, 6] → 5: a, judged at bracket 2 since its second value, goes now.
    expect(feed(rule, 'c', [0, 1])).toEqual([
      { trialId: 'a', rule: 'hyperband', at: 2, value: 6, threshold: 5, reason: 'hyperband: value 6 > threshold 5 at bracket 2' },
    ]);
    expect(feed(rule, 'd', [0, 1])).toEqual([]); // [1, 1, 5, 6] → 5
    expect(feed(rule, 'e', [0, 0]).map((d) => d.trialId)).toEqual(['b']); // [0, 1, 1, 5, 6] → 1
  });

  it('stops each trial once, the condemned ones as the threshold falls', () => {
    const rule = new HyperbandRule(minimize({ min_iter: 1, eta: 2 }));
    const stopped: string[] = [];
    const report = (id: string, v: number) => stopped.push(...rule.report(id, v).map((d) => d.trialId));
    // Values at bracket 1 arrive worst first: each new best lowers the threshold.
    report('t1', 10); // [10] → 10
    report('t2', 9); // [9, 10] → 10
    report('t3', 8); // [8, 9, 10] → 9: t1 (10) goes
    expect(stopped).toEqual(['t1']);
    report('t4', 7); // [7, 8, 9, 10] → 9
    report('t5', 6); // [6..10] → 8: t2 (9) goes
    expect(stopped).toEqual(['t1', 't2']);
    report('t6', 1); // [1, 6..10] → 8
    report('t7', 1); // [1, 1, 6..10] → 7: t3 (8) goes
    expect(stopped).toEqual(['t1', 't2', 't3']);
    // t1 keeps counting, and is not returned again.
    rule.ended('t1', 'stopped');
    report('t8', 0.5);
    expect(stopped.filter((id) => id === 't1')).toHaveLength(1);
  });

  it('a trial that moves on to the next bracket is judged there, not where it was', () => {
    const rule = new HyperbandRule(minimize({ min_iter: 1, eta: 2 }));
    rule.ended('ref', 'finished');
    feed(rule, 'ref', [1, 1]);
    expect(feed(rule, 'y', [3, 1])).toEqual([]); // bracket 1: [1, 3] → 3; bracket 2: [1, 1] → 1
    expect(feed(rule, 'v', [3])).toEqual([]); // bracket 1: [1, 3, 3] → 3
    expect(feed(rule, 'z', [0])).toEqual([]); // [0, 1, 3, 3] → 3
    // [0, 0, 1, 3, 3] → 1: v (3 at bracket 1) goes; y's 3 there no longer matters.
    expect(feed(rule, 'w', [0]).map((d) => d.trialId)).toEqual(['v']);
  });

  it('non-strict: a better best value keeps the trial sorted, so a later threshold judges it right', () => {
    const rule = new HyperbandRule(minimize({ min_iter: 1, eta: 2, strict: false }));
    expect(feed(rule, 'a', [10, 2])).toEqual([]); // judged on 2 from now on
    expect(feed(rule, 'b', [9])).toEqual([]); // [9, 10] → 10
    expect(feed(rule, 'c', [3])).toEqual([]); // [3, 9, 10] → 9
    expect(feed(rule, 'd', [3])).toEqual([]); // [3, 3, 9, 10] → 9
    // [1, 3, 3, 9, 10] → 3: b (9) goes; a's value at the bracket was 10, but its best is 2.
    expect(feed(rule, 'e', [1]).map((d) => d.reason)).toEqual(['hyperband: best value 9 > threshold 3 at bracket 1']);
  });

  it('agrees with the snapshot (W&B recomputing everything) after every value of a random sweep', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const strict of [true, false]) {
      for (const goal of ['minimize', 'maximize'] as const) {
        const config: StoppingConfig = { metric: { name: 'm', goal }, early_terminate: { type: 'hyperband', min_iter: 2, eta: 2.5, strict } };
        const rule = createStoppingRule(config)!;
        const runs: Array<RunForStopping & { history: number[] }> = [];
        const condemned = new Set<string>();
        for (let k = 0; k < 600; k++) {
          const r = rand();
          let run = runs.find((x) => x.state === 'running' && !condemned.has(x.id) && rand() < 0.3);
          if (!run || r < 0.05) {
            run = { id: `t${runs.length}`, state: 'running', history: [] };
            runs.push(run);
          }
          const v = Math.round(rand() * 20) / 2;
          run.history.push(v);
          for (const d of rule.report(run.id, v)) condemned.add(d.trialId);
          if (rand() < 0.05) {
            run.state = 'finished';
            rule.ended(run.id, 'finished');
          }
          // Whatever the snapshot stops now was stopped incrementally by now (or has ended).
          const snapshot = stopRuns(config, runs.map((x) => ({ ...x, state: condemned.has(x.id) ? 'stopped' : x.state })));
          expect(snapshot).toEqual([]);
        }
        expect(condemned.size).toBeGreaterThan(0);
      }
    }
  });
});

describe('StopMonitor (what the controller drives)', () => {
  const series = (values: number[]) => ({ values: Float64Array.from(values), length: values.length });

  it('passes on only the values it has not seen, so feeding a series twice counts nothing twice', () => {
    const m = createStopMonitor(minimize({ min_iter: 1, eta: 3 }))!;
    expect(m.metric).toBe('loss');
    expect(m.update('a', 'finished', series([1]))).toEqual([]);
    expect(m.update('b', 'running', series([0.5]))).toEqual([]);
    expect(m.update('b', 'running', series([0.5]))).toEqual([]);
    expect(m.update('c', 'running', series([2])).map((d) => d.trialId)).toEqual(['c']); // [0.5, 1, 2] → 1
    // [0.5, 1, 1, 2] → 1, so d continues; had b's 0.5 counted twice, index 1 would be 0.5.
    expect(m.update('d', 'running', series([1]))).toEqual([]);
  });

  it('never stops a trial that has ended, and stops each trial once', () => {
    const m = createStopMonitor(minimize({ min_iter: 1, eta: 3 }))!;
    m.update('a', 'running', series([0]));
    m.ended('late', 'failed');
    expect(m.update('late', 'failed', series([9]))).toEqual([]);
    // [0, 9, 10] → 9: the failed trial's 9 counts.
    expect(m.update('b', 'running', series([10])).map((d) => d.trialId)).toEqual(['b']);
    expect(m.update('b', 'running', series([10, 10, 10]))).toEqual([]);
  });

  it('is null for a config without early_terminate', () => {
    expect(createStopMonitor({ metric: { name: 'loss', goal: 'minimize' } })).toBeNull();
  });
});
