/**
 * The contract every strategy keeps, whatever its algorithm: the controller, `nextRun` and a
 * restarted controller all rely on it and never ask which method they hold. Written against the
 * public entry points only (`createStrategy`, the `Strategy` interface, `parseConfigText`), so a
 * refactor of the algorithms underneath is pinned by it.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../controller/config/parse.js';
import { createStrategy } from '../../controller/strategies/index.js';
import type { Strategy, Suggestion, TrialObservation, TrialState } from '../../controller/strategies/types.js';
import { isPlainObject, leafEntries } from '../../domain/params.js';
import type { LeafParam, Method, ParamSpecs, SweepConfig } from '../../domain/sweep-config.js';
import { isFloatValue, isIntValue, isNumeric, stringifyTyped, toNumber, type ParamValue, type Params } from '../../domain/values.js';

const SEED = 11;

/** Configs each method can run: flat and nested, int/float/categorical/log, both goals. */
const CONFIGS: Record<Method, Record<string, string>> = {
  grid: {
    'flat, minimize': `
method: grid
metric: {name: loss, goal: minimize}
parameters:
  lr: {values: [0.1, 0.01, 0.001]}
  layers: {min: 1, max: 3}
  act: {values: [relu, tanh]}
`,
    'nested with q_uniform and a constant, maximize': `
method: grid
metric: {name: acc, goal: maximize}
parameters:
  batch: {values: [16, 32]}
  opt:
    parameters:
      name: {values: [sgd, adam]}
      momentum: {value: 0.9}
  frac: {distribution: q_uniform, min: 0.0, max: 1.0, q: 0.25}
`,
  },
  random: continuousConfigs('random'),
  bayes: continuousConfigs('bayes'),
  tpe: continuousConfigs('tpe'),
};

function continuousConfigs(method: Method): Record<string, string> {
  return {
    'flat, minimize': `
method: ${method}
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -1.0, max: 2.0}
  n: {min: 1, max: 8}
  lr: {distribution: log_uniform_values, min: 1.0e-4, max: 0.1}
  kind: {values: [a, b, c]}
`,
    'nested with log_uniform, q_uniform and a constant, maximize': `
method: ${method}
metric: {name: acc, goal: maximize}
parameters:
  opt:
    parameters:
      lr: {distribution: log_uniform, min: -5.0, max: 0.0}
      beta: {min: 0.8, max: 0.999}
      name: {value: adam}
  arch: {values: [small, big]}
  depth: {distribution: q_uniform, min: 0, max: 10, q: 2}
`,
  };
}

const CASES = Object.entries(CONFIGS).flatMap(([method, configs]) =>
  Object.entries(configs).map(([name, text]) => ({ method: method as Method, name, config: parseConfigText(text).config })),
);
const MODEL_BASED = CASES.filter((c) => c.method === 'bayes' || c.method === 'tpe');

/** Enough observations for every model-based method to leave its initial design (bayes 8 here, tpe 10). */
const MODEL_OBSERVATIONS = 12;

/** A deterministic, non-trivial value of any parameters: every leaf moves it. */
function objective(params: Params): number {
  let sum = 0;
  const visit = (v: ParamValue, depth: number): void => {
    if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) visit(x, depth + k.length);
    else if (isNumeric(v)) sum += Math.sin(1.7 * toNumber(v) + depth);
    else if (typeof v === 'string') sum += (v.charCodeAt(0) % 5) * 0.3 + v.length * 0.05;
  };
  visit(params, 0);
  return sum;
}

const key = (p: Params) => stringifyTyped(p);

/** The state trial i ends in, so that every sequence mixes what the controller passes in. */
function stateOf(i: number, mix: boolean): TrialState {
  if (!mix) return 'finished';
  if (i % 7 === 3) return 'failed';
  if (i % 7 === 5) return 'crashed';
  if (i % 6 === 4) return 'running';
  return 'finished';
}

/** A trial as the controller reports it: a value only when the metric was logged. */
function observe(i: number, params: Params, state: TrialState): TrialObservation {
  const value = state === 'finished' || state === 'crashed' ? objective(params) : state === 'failed' && i % 2 === 0 ? objective(params) : null;
  return { id: String(i + 1), params, state, value };
}

/**
 * n suggestions in a row, each becoming a trial before the next ask. `check` sees every
 * suggestion with the trials it was made from; stops early when the space is used up.
 */
function drive(strategy: Strategy, n: number, opts: { mix?: boolean; check?: (s: Suggestion, trials: readonly TrialObservation[]) => void } = {}): TrialObservation[] {
  const trials: TrialObservation[] = [];
  for (let i = 0; i < n; i++) {
    const s = strategy.suggest(trials);
    opts.check?.(s, trials);
    if (s.kind !== 'params') break;
    trials.push(observe(i, s.params, stateOf(i, opts.mix ?? true)));
  }
  return trials;
}

/** Why `params` is not a point of the config's space, or '' when it is. */
function outsideSpace(specs: ParamSpecs, params: Params, where = ''): string {
  const wanted = Object.keys(specs).sort();
  const got = Object.keys(params).sort();
  if (wanted.join() !== got.join()) return `${where || 'top level'}: keys ${got.join(',')}, config has ${wanted.join(',')}`;
  for (const name of wanted) {
    const spec = specs[name];
    const value = params[name];
    const path = where ? `${where}.${name}` : name;
    if (spec.kind === 'nested') {
      if (!isPlainObject(value)) return `${path}: expected a nested object, got ${stringifyTyped(value)}`;
      const inner = outsideSpace(spec.parameters, value, path);
      if (inner) return inner;
    } else {
      const why = outsideLeaf(spec, value);
      if (why) return `${path} = ${stringifyTyped(value)}: ${why}`;
    }
  }
  return '';
}

const within = (x: number, lo: number, hi: number) => x >= lo - 1e-12 * Math.abs(lo) && x <= hi + 1e-12 * Math.abs(hi);

function outsideLeaf(p: LeafParam, v: ParamValue): string {
  const min = p.min === undefined ? NaN : toNumber(p.min);
  const max = p.max === undefined ? NaN : toNumber(p.max);
  switch (p.distribution) {
    case 'constant':
      return stringifyTyped(v) === stringifyTyped(p.value ?? null) ? '' : 'not the constant';
    case 'categorical':
    case 'categorical_w_probabilities':
      return (p.values ?? []).some((c) => stringifyTyped(c) === stringifyTyped(v)) ? '' : 'not one of the values';
    case 'int_uniform':
      if (!isIntValue(v)) return 'not an int';
      return within(v, min, max) ? '' : `outside [${min}, ${max}]`;
    case 'uniform':
    case 'log_uniform_values':
      if (!isNumeric(v) || !isFloatValue(v)) return 'not a float';
      return within(toNumber(v), min, max) ? '' : `outside [${min}, ${max}]`;
    case 'log_uniform':
      if (!isNumeric(v) || !isFloatValue(v)) return 'not a float';
      return within(toNumber(v), Math.exp(min), Math.exp(max)) ? '' : `outside [e^${min}, e^${max}]`;
    case 'q_uniform': {
      if (!isNumeric(v)) return 'not a number';
      const q = toNumber(p.q ?? 1);
      const intQ = p.q !== undefined && isIntValue(p.q);
      if (intQ !== isIntValue(v)) return intQ ? 'not an int (q is an int)' : 'not a float (q is a float)';
      const x = toNumber(v);
      const steps = x / q;
      if (Math.abs(steps - Math.round(steps)) > 1e-9) return `not a multiple of q ${q}`;
      // W&B rounds a uniform draw to the nearest multiple, which may lie half a step outside.
      return within(x, min - q / 2, max + q / 2) ? '' : `outside [${min}, ${max}] by more than q/2`;
    }
    default:
      return isNumeric(v) && Number.isFinite(toNumber(v)) ? '' : 'not a finite number';
  }
}

function expectWellFormed(s: Suggestion): void {
  if (s.kind === 'params') {
    expect(Object.keys(s).sort()).toEqual(['kind', 'params']);
    expect(isPlainObject(s.params)).toBe(true);
  } else {
    expect(s).toEqual({ kind: 'exhausted' });
  }
}

describe.each(CASES)('strategy $method ($name)', ({ method, config }) => {
  const make = (seed = SEED) => createStrategy(config, { seed });
  const budget = method === 'grid' ? 30 : method === 'random' ? 40 : MODEL_OBSERVATIONS;

  it('answers only {kind: params} or {kind: exhausted}, with every point inside the space and shaped like the config', () => {
    const strategy = make();
    expect(strategy.method).toBe(method);
    drive(strategy, budget, {
      check: (s) => {
        expectWellFormed(s);
        if (s.kind === 'params') expect(outsideSpace(config.parameters, s.params)).toBe('');
      },
    });
  });

  it('is deterministic: the same config, seed and trials give the same suggestion, from the same strategy and from a fresh one', () => {
    const strategy = make();
    drive(strategy, budget, {
      check: (s, trials) => {
        // A fresh strategy is what a restarted controller (or `nextRun`) builds.
        expect(make().suggest(trials)).toEqual(s);
        expect(strategy.suggest(trials)).toEqual(s);
      },
    });
    // And a whole second run, asked in the same order, proposes the same points.
    expect(drive(make(), budget).map((t) => key(t.params))).toEqual(drive(make(), budget).map((t) => key(t.params)));
  });

  it('does not use the value of a crashed trial: the agent died, not the parameters', () => {
    const trials = drive(make(), MODEL_OBSERVATIONS, { mix: false });
    const crashed = (value: number | null): TrialObservation[] => [
      ...trials,
      { id: 'crashed', params: trials[2].params, state: 'crashed', value },
    ];
    const strategy = make();
    const withNull = strategy.suggest(crashed(null));
    expect(strategy.suggest(crashed(-1e6))).toEqual(withNull);
    expect(make().suggest(crashed(1e6))).toEqual(withNull);
  });

  if (method === 'grid') {
    it('has a finite size, which is the number of distinct points it suggests before it is exhausted', () => {
      const strategy = make();
      const size = strategy.size();
      expect(size).toBeTypeOf('number');
      expect(Number.isSafeInteger(size) && size! > 0).toBe(true);
      const seen = new Set<string>();
      let last: Suggestion | undefined;
      const trials = drive(strategy, size! + 2, { mix: false, check: (s) => (last = s) });
      for (const t of trials) seen.add(key(t.params));
      expect(trials).toHaveLength(size!);
      expect(seen.size).toBe(size);
      expect(last).toEqual({ kind: 'exhausted' });
      // Exhausted stays exhausted.
      expect(strategy.suggest(trials)).toEqual({ kind: 'exhausted' });
    });

    it("never suggests a running trial's parameters", () => {
      const strategy = make();
      const size = strategy.size()!;
      const running: TrialObservation[] = [];
      for (let i = 0; i < size; i++) {
        const s = strategy.suggest(running);
        if (s.kind !== 'params') throw new Error(`exhausted after ${i} of ${size} running trials`);
        expect(running.map((t) => key(t.params))).not.toContain(key(s.params));
        running.push({ id: String(i + 1), params: s.params, state: 'running', value: null });
      }
      expect(strategy.suggest(running)).toEqual({ kind: 'exhausted' });
    });
  } else {
    it('has no finite size and is never exhausted', () => {
      const strategy = make();
      expect(strategy.size()).toBeUndefined();
      drive(strategy, budget, { check: (s) => expect(s.kind).toBe('params') });
    });
  }
});

describe.each(MODEL_BASED)('model-based strategy $method ($name)', ({ config }) => {
  const make = () => createStrategy(config, { seed: SEED });

  it('uses the values: with enough observations the suggestion differs from the one without values, and from the one with values reversed', () => {
    const trials = drive(make(), MODEL_OBSERVATIONS, { mix: false });
    const withValues = make().suggest(trials);
    const valueless = make().suggest(trials.map((t) => ({ ...t, value: null })));
    const reversed = make().suggest(trials.map((t) => ({ ...t, value: -t.value! })));
    expect(withValues.kind).toBe('params');
    expect(withValues).not.toEqual(valueless);
    expect(withValues).not.toEqual(reversed);
  });

  it.each([
    { impute: 'worst', whileRunning: 'false' },
    { impute: 'best', whileRunning: 'worst' },
    { impute: 'latest', whileRunning: 'latest' },
    { impute: '2.5', whileRunning: 'best' },
  ])('imputes failed trials (impute $impute, impute_while_running $whileRunning) without throwing', ({ impute, whileRunning }) => {
    const metric = { ...config.metric!, impute: impute === '2.5' ? 2.5 : (impute as 'worst'), impute_while_running: whileRunning as 'false' };
    const imputing: SweepConfig = { ...config, metric };
    const strategy = createStrategy(imputing, { seed: SEED });
    const trials: TrialObservation[] = [];
    // The first trial fails before anything is observed (no worst yet), later ones fail with
    // and without a value, and some still run with a value so far.
    for (let i = 0; i < MODEL_OBSERVATIONS; i++) {
      const s = strategy.suggest(trials);
      expect(s.kind).toBe('params');
      if (s.kind !== 'params') return;
      expect(outsideSpace(config.parameters, s.params)).toBe('');
      const state: TrialState = i === 0 || i % 3 === 1 ? 'failed' : i % 5 === 2 ? 'running' : 'finished';
      const value = state === 'failed' && i % 2 === 0 ? null : objective(s.params);
      trials.push({ id: String(i + 1), params: s.params, state, value: i === 0 ? null : value });
    }
    const last = createStrategy(imputing, { seed: SEED }).suggest(trials);
    expect(last).toEqual(strategy.suggest(trials));
    // Every trial failed: nothing observed at all, still a suggestion.
    const allFailed = trials.map((t) => ({ ...t, state: 'failed' as const, value: null }));
    expect(createStrategy(imputing, { seed: SEED }).suggest(allFailed).kind).toBe('params');
  });
});

// The space check must be able to fail, or every "inside the space" above passes vacuously.
describe('the space check of this suite', () => {
  it.each(CASES)('refuses a point of $method ($name) with a leaf missing, a leaf added or a value out of range', ({ config }) => {
    const s = createStrategy(config, { seed: SEED }).suggest([]);
    if (s.kind !== 'params') throw new Error('no first suggestion');
    expect(outsideSpace(config.parameters, s.params)).toBe('');
    const rest = Object.keys(s.params).slice(1);
    expect(outsideSpace(config.parameters, Object.fromEntries(rest.map((k) => [k, s.params[k]])))).not.toBe('');
    expect(outsideSpace(config.parameters, { ...s.params, extra: 1 })).not.toBe('');
    const leaf = leafEntries(config.parameters).find((l) => l.param.distribution !== 'constant')!;
    const broken = structuredClone(s.params);
    let at: Params = broken;
    for (const name of leaf.path.slice(0, -1)) at = at[name] as Params;
    at[leaf.path[leaf.path.length - 1]] = 'not a value of this space';
    expect(outsideSpace(config.parameters, broken)).not.toBe('');
  });
});
