import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Float, parseTypedJson, stringifyTyped, type ParamValue, type Params } from '../../domain/values.js';
import { parseConfig } from '../../controller/config/parse.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { GridConfigError, arange, createGridStrategy, validateGridConfig } from '../../controller/strategies/grid.js';
import { looseValueKey, wandbValueKey } from '../../domain/params.js';
import { createStrategy } from '../../controller/strategies/index.js';
import type { TrialObservation, TrialState } from '../../controller/strategies/types.js';

interface GridCase {
  name: string;
  note: string;
  config: { [key: string]: ParamValue };
  existing_runs: { params: Params; state: string }[];
  n: number;
  expected: (Params | null)[] | null;
  expected_error?: string;
}

const cases = parseTypedJson(
  readFileSync(new URL('../fixtures/conformance/grid.json', import.meta.url), 'utf8'),
) as unknown as GridCase[];

/** W&B's run states onto Sweeper's: W&B's `killed` is a stopped trial. */
const STATES: { [state: string]: TrialState } = {
  running: 'running',
  finished: 'finished',
  failed: 'failed',
  crashed: 'crashed',
  killed: 'stopped',
};

function trial(i: number, params: Params, state: TrialState = 'finished'): TrialObservation {
  return { id: `t${i}`, params, state, value: null };
}

/**
 * The config as parsed but without the grid check, which the parser may or may not run: the
 * distribution it infers does not depend on the method.
 */
function parseWithoutGridCheck(raw: { [key: string]: ParamValue }): SweepConfig {
  const { config } = parseConfig({ ...raw, method: 'random' });
  return { ...config, method: 'grid' };
}

/** What `n` requests give, as W&B's `grid_search_next_runs(runs, config, n=n)` reports it. */
function run(strategy: ReturnType<typeof createGridStrategy>, existing: TrialObservation[], n: number) {
  const trials = [...existing];
  const out: (Params | null)[] = [];
  for (let i = 0; i < n; i++) {
    const s = strategy.suggest(trials);
    if (s.kind === 'exhausted') {
      out.push(null);
      break;
    }
    out.push(s.params);
    trials.push(trial(trials.length, s.params, 'running'));
  }
  return out;
}

// Typed JSON keeps 1 and 1.0 apart and keeps key order, which W&B's answers also fix.
const typed = (ps: (Params | null)[]) => ps.map((p) => (p === null ? 'null' : stringifyTyped(p)));

describe('grid matches W&B (grid.json)', () => {
  for (const c of cases) {
    if (c.expected_error !== undefined) {
      it(`${c.name}: refused`, () => {
        const config = parseWithoutGridCheck(c.config);
        const issues = validateGridConfig(config);
        expect(issues.length).toBeGreaterThan(0);
        expect(issues[0].path).toMatch(/^parameters\.v1$/);
        expect(() => createGridStrategy(config, { seed: 0 })).toThrow(GridConfigError);
      });
      continue;
    }
    it(c.name, () => {
      const { config } = parseConfig(c.config);
      const strategy = createGridStrategy(config, { seed: 0 });
      const existing = c.existing_runs.map((r, i) => trial(i, r.params, STATES[r.state]));
      expect(typed(run(strategy, existing, c.n))).toEqual(typed(c.expected ?? []));
    });
  }
});

describe('grid', () => {
  // Parsed as random, then gridded: parseConfig itself refuses what a grid cannot enumerate,
  // and these tests look at the grid's own checks.
  const config = (parameters: { [key: string]: ParamValue }): SweepConfig => ({
    ...parseConfig({ method: 'random', parameters }).config,
    method: 'grid',
  });

  it('reports the path of a parameter that cannot be gridded', () => {
    const issues = validateGridConfig(
      config({
        lr: { distribution: 'log_uniform_values', min: 1e-4, max: 0.1 },
        opt: { parameters: { momentum: { min: new Float(0), max: new Float(1) } } },
        bs: { values: [1, 2] },
      }),
    );
    expect(issues).toEqual([
      {
        path: 'parameters.lr',
        message: "distribution 'log_uniform_values' cannot be used with method grid; use values, int_uniform or q_uniform",
      },
      {
        path: 'parameters.opt.parameters.momentum',
        message: "distribution 'uniform' cannot be used with method grid; use values, int_uniform or q_uniform",
      },
    ]);
    try {
      createStrategy(config({ lr: { distribution: 'normal' } }), { seed: 1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(GridConfigError);
      expect((e as Error).message).toBe(
        "parameters.lr: distribution 'normal' cannot be used with method grid; use values, int_uniform or q_uniform",
      );
    }
  });

  it('refuses axes that are empty or absurdly long', () => {
    expect(validateGridConfig(config({ v: { distribution: 'q_uniform', min: 0, max: 1e9, q: 1 } }))[0].message).toMatch(
      /expands to 1000000000 values/,
    );
    expect(validateGridConfig(config({ v: { distribution: 'int_uniform', min: 0, max: 10 } }))).toEqual([]);
  });

  it('size counts distinct points; constants add none', () => {
    const s = createGridStrategy(
      config({ a: { values: [1, 2, 1.5, 2] }, b: { min: 1, max: 3 }, c: { value: 'x' } }),
      { seed: 0 },
    );
    expect(s.size()).toBe(9);
    expect(createGridStrategy(config({ c: { value: 'x' } }), { seed: 0 }).size()).toBe(1);
  });

  it('a fresh strategy resumes where the last left off (state lives in the trials)', () => {
    const cfg = config({ a: { values: [1, 2, 3] }, b: { values: ['x', 'y'] } });
    const first = run(createGridStrategy(cfg, { seed: 0 }), [], 3);
    const trials = first.map((p, i) => trial(i, p as Params));
    const rest = run(createGridStrategy(cfg, { seed: 9 }), trials, 10);
    expect(typed([...first, ...rest])).toEqual(typed(run(createGridStrategy(cfg, { seed: 0 }), [], 10)));
  });

  it('returns copies: changing a suggestion does not change the grid', () => {
    const s = createGridStrategy(config({ d: { values: [{ k: [1, 2] }] } }), { seed: 0 });
    const first = s.suggest([]);
    if (first.kind !== 'params') throw new Error('expected params');
    ((first.params.d as { k: number[] }).k).push(3);
    const again = s.suggest([]);
    expect(again.kind === 'params' && stringifyTyped(again.params)).toBe('{"d":{"k":[1,2]}}');
  });

  it('keys values as W&B hashes them', () => {
    expect(wandbValueKey(new Float(3))).toBe(wandbValueKey(3));
    expect(wandbValueKey(new Float(-0))).toBe(wandbValueKey(0));
    expect(wandbValueKey(true)).not.toBe(wandbValueKey(1));
    expect(wandbValueKey('1')).not.toBe(wandbValueKey(1));
    expect(wandbValueKey({ a: 1, b: 2 })).toBe(wandbValueKey({ b: 2, a: 1 }));
    expect(wandbValueKey([new Float(1)])).not.toBe(wandbValueKey([1]));
  });

  it('the loose key (tell by parameters) compares numbers by value at any depth, and nothing else loosely', () => {
    expect(looseValueKey([new Float(1)])).toBe(looseValueKey([1]));
    expect(looseValueKey({ a: { b: new Float(3) } })).toBe(looseValueKey({ a: { b: 3 } }));
    expect(looseValueKey({ a: 1, b: 2 })).toBe(looseValueKey({ b: 2, a: 1 }));
    expect(looseValueKey(true)).not.toBe(looseValueKey(1));
    expect(looseValueKey('1')).not.toBe(looseValueKey(1));
    expect(looseValueKey(null)).not.toBe(looseValueKey('null'));
  });

  it('expands q_uniform as numpy arange does', () => {
    expect(arange(0, 10, 5)).toEqual([0, 5]);
    expect(arange(0, 1, 0.25).map(String)).toEqual(['0.0', '0.25', '0.5', '0.75']);
    expect(arange(new Float(1), 1.3, 0.1).map(String)).toEqual(['1.0', '1.1', '1.2000000000000002', '1.3000000000000003']);
    expect(arange(3, 3, 1)).toEqual([]);
  });

  // Its speed (about 20 ms here) is measured by the strategies bench, not asserted: tests never time.
  it('finds the next free point of a large grid with many trials run', () => {
    // 100,000 points; the first 10,000 already run, in shuffled order.
    const cfg = config({
      a: { values: Array.from({ length: 10 }, (_, i) => i) },
      b: { values: Array.from({ length: 10 }, (_, i) => `b${i}`) },
      c: { values: Array.from({ length: 10 }, (_, i) => i / 10 + 0.05) },
      d: { min: 0, max: 99 },
    });
    const s = createGridStrategy(cfg, { seed: 0 });
    expect(s.size()).toBe(100_000);
    const trials: TrialObservation[] = [];
    for (let i = 0; i < 10_000; i++) {
      const j = (i * 7919) % 10_000;
      trials.push(
        trial(i, { a: 0, b: `b${Math.floor(j / 1000)}`, c: Math.floor(j / 100) % 10 / 10 + 0.05, d: j % 100 }),
      );
    }
    const next = s.suggest(trials);
    expect(next.kind === 'params' && stringifyTyped(next.params)).toBe('{"a":1,"b":"b0","c":0.05,"d":0}');
  });
});
