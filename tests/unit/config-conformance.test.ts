/**
 * W&B's own answers (tests/fixtures/conformance, computed with wandb/sweeps) for inference, defaults
 * and config errors. The files are read with a typed JSON parse: `1.0` must stay a float.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTypedJson, stringifyTyped, type ParamValue } from '../../domain/values.js';
import { ConfigError, inferDistribution, parseConfig, type ParamSpec } from '../../controller/config/index.js';

const dir = new URL('../fixtures/conformance/', import.meta.url);
const load = <T>(name: string) => parseTypedJson(readFileSync(new URL(name, dir), 'utf8')) as unknown as T[];

interface ParamCase {
  name: string;
  config: Record<string, unknown>;
  inferred: string | null;
  filled?: Record<string, ParamValue>;
  error?: string;
  expected_error?: string;
}
interface SweepCase {
  name: string;
  config: Record<string, unknown>;
  expected_error?: string;
}

/** Typed JSON with sorted keys: equal only when values and their int/float typing agree. */
function canonical(v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort);
    if (x !== null && typeof x === 'object' && x.constructor === Object) {
      return Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, y]) => [k, sort(y)]));
    }
    return x;
  };
  return stringifyTyped(sort(v) as ParamValue);
}

function issuesOf(fn: () => unknown): ConfigError['issues'] | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
}

const paramCases = load<ParamCase>('params.json');
const wrap = (config: unknown) => ({ method: 'random', parameters: { p: config } });

describe('params.json: inference and defaults', () => {
  it('has cases', () => {
    expect(paramCases.length).toBeGreaterThan(50);
  });

  for (const c of paramCases) {
    const error = c.error ?? c.expected_error;
    if (error !== undefined) continue;
    it(c.name, () => {
      expect(inferDistribution(c.config)).toBe(c.inferred);
      const { config } = parseConfig(wrap(c.config));
      const { kind, ...leaf } = config.parameters.p as ParamSpec & Record<string, unknown>;
      expect(kind).toBe('leaf');
      expect(leaf.distribution).toBe(c.inferred);
      // LeafParam keeps probabilities as plain numbers: weights are never handed to a program,
      // so W&B's `0.0` and Sweeper's `0` mean the same thing there.
      const filled = { ...c.filled };
      if (Array.isArray(filled.probabilities)) filled.probabilities = filled.probabilities.map(Number);
      expect(canonical(leaf)).toBe(canonical(filled));
    });
  }
});

describe('params.json: configs W&B rejects', () => {
  for (const c of paramCases) {
    const error = c.error ?? c.expected_error;
    if (error === undefined) continue;
    it(`${c.name} (${error})`, () => {
      if (c.config.parameters !== undefined) {
        // W&B rejects `{parameters: ...}` as a single hyperparameter, but inside a sweep config's
        // parameters it is a nested parameter, which W&B accepts there too.
        expect(inferDistribution(c.config)).toBeUndefined();
        expect(parseConfig(wrap(c.config)).config.parameters.p.kind).toBe('nested');
        return;
      }
      const issues = issuesOf(() => parseConfig(wrap(c.config)));
      expect(issues).toBeDefined();
      for (const issue of issues ?? []) expect(issue.path).toMatch(/^parameters\.p(\.|$)/);
    });
  }
});

describe('grid.json: configs parse', () => {
  const cases = load<SweepCase>('grid.json');
  it('has cases', () => expect(cases.length).toBeGreaterThan(0));
  for (const c of cases) {
    it(c.name, () => {
      const issues = issuesOf(() => parseConfig(c.config));
      if (c.expected_error === undefined) {
        expect(issues).toBeUndefined();
      } else {
        // A grid cannot enumerate probabilities or continuous distributions: the parser reports
        // it at validation, naming the parameter.
        expect(issues?.map((i) => i.path)).toEqual(['parameters.v1']);
      }
    });
  }
});

/**
 * hyperband.json's configs: W&B's errors are config errors here. Sweeper is stricter where W&B's
 * stopping path quietly tolerates a config that its schema rejects.
 */
describe('hyperband.json: configs', () => {
  const cases = load<SweepCase>('hyperband.json');
  const stricter: Record<string, string[]> = {
    '10d_extra_key_no_runs': ['metric.goal', 'early_terminate.extra_key'],
    '10e_extra_key_with_runs': ['early_terminate.extra_key'],
    x04_goal_misspelt: ['metric.goal'],
  };
  it('has cases', () => expect(cases.length).toBeGreaterThan(0));
  for (const c of cases) {
    it(c.name, () => {
      const issues = issuesOf(() => parseConfig(c.config));
      if (c.expected_error !== undefined) expect(issues?.length).toBeGreaterThan(0);
      else if (stricter[c.name]) expect(issues?.map((i) => i.path)).toEqual(stricter[c.name]);
      else expect(issues).toBeUndefined();
    });
  }
});
