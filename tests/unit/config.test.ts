import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildCommand } from '../../agent/command.js';
import { UsageError } from '../../domain/errors.js';
import { MAX_ARGV_ENTRIES, MAX_ARGV_ENTRY_CHARS } from '../../common/limits.js';
import { Float } from '../../domain/values.js';
import {
  ConfigError,
  inferDistribution,
  isParsedConfig,
  loadConfigFile,
  loadConfigText,
  parseConfig,
  parseConfigFile,
  parseConfigText,
  toParsedConfig,
  type ConfigIssue,
} from '../../controller/config/index.js';
import { decodeConfig, encodeConfig } from '../../controller/config/codec.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/configs/${name}`, import.meta.url));

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const issuesOf = (fn: () => unknown): ConfigIssue[] => configError(fn).issues;
/** The issues of a random sweep with the given parameters section. */
const paramIssues = (parameters: unknown) => issuesOf(() => parseConfig({ method: 'random', parameters }));
const param = (spec: unknown) => parseConfig({ method: 'random', parameters: { p: spec } }).config.parameters.p;

describe('accepting W&B configs', () => {
  it('normalizes a full random sweep from a YAML file', async () => {
    const { config, warnings } = await parseConfigFile(fixture('random-full.yaml'));
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      method: 'random',
      metric: { name: 'val_loss', goal: 'minimize' },
      parameters: {
        lr: { kind: 'leaf', distribution: 'log_uniform_values', min: 1e-5, max: 0.1 },
        batch_size: { kind: 'leaf', distribution: 'categorical', values: [16, 32, 64] },
        dropout: { kind: 'leaf', distribution: 'uniform', min: new Float(0), max: 0.5 },
        epochs: { kind: 'leaf', distribution: 'constant', value: 10 },
        optimizer: {
          kind: 'nested',
          parameters: {
            name: { kind: 'leaf', distribution: 'categorical', values: ['adam', 'sgd'] },
            momentum: { kind: 'leaf', distribution: 'uniform', min: 0.8, max: 0.99 },
          },
        },
      },
      early_terminate: { type: 'hyperband', min_iter: 3, eta: 3, strict: true },
      run_cap: 20,
      command: ['${env}', 'python', '${program}', '${args}'],
      program: 'train.py',
      name: 'lr-search',
      description: 'learning rate and batch size',
      seed: 7,
    });
    expect(config).not.toHaveProperty('project');
    expect(config).not.toHaveProperty('entity');
  });

  it('reads JSON (tab-indented too) and keeps 1.0 a float', async () => {
    const { config } = await parseConfigFile(fixture('grid.json'));
    expect(config.parameters.lr).toEqual({ kind: 'leaf', distribution: 'categorical', values: [0.1, new Float(1), 0.001] });
    expect(config.parameters.layers).toEqual({ kind: 'leaf', distribution: 'int_uniform', min: 1, max: 3 });
  });

  it('keeps parameters in config order', () => {
    const { config } = parseConfigText('method: grid\nparameters:\n  zeta: {value: 1}\n  alpha: {value: 2}\n  mid: {value: 3}\n');
    expect(Object.keys(config.parameters)).toEqual(['zeta', 'alpha', 'mid']);
  });

  it('needs no metric for grid or random, and defaults the goal to minimize', () => {
    expect(parseConfig({ method: 'grid', parameters: { a: { value: 1 } } }).config.metric).toBeUndefined();
    expect(parseConfig({ method: 'random', metric: { name: 'acc' }, parameters: { a: { value: 1 } } }).config.metric).toEqual({
      name: 'acc',
      goal: 'minimize',
    });
    expect(parseConfigText('method: grid\nmetric: {name: acc, goal: maximize, target: 0.99}\nparameters: {a: {value: 1}}').config.metric).toEqual({
      name: 'acc',
      goal: 'maximize',
      target: 0.99,
    });
  });

  it('accepts integral floats where W&B accepts an integer (run_cap: 10.0)', () => {
    expect(parseConfigText('method: grid\nrun_cap: 10.0\nseed: 0\nparameters: {a: {value: 1}}').config).toMatchObject({ run_cap: 10, seed: 0 });
  });

  it('accepts plain objects from library code, with Float for integral floats', () => {
    expect(param({ min: 0, max: 1 })).toEqual({ kind: 'leaf', distribution: 'int_uniform', min: 0, max: 1 });
    expect(param({ min: new Float(0), max: 1 })).toEqual({ kind: 'leaf', distribution: 'uniform', min: new Float(0), max: 1 });
  });

  it('keeps categorical values as given, Floats and nested values included', () => {
    expect(param({ values: [1, new Float(1), 'a', null, [1, 2], { k: true }] })).toEqual({
      kind: 'leaf',
      distribution: 'categorical',
      values: [1, new Float(1), 'a', null, [1, 2], { k: true }],
    });
  });

  it('fills W&B defaults with their int/float typing', () => {
    expect(param({ distribution: 'q_uniform', min: 0, max: 10 })).toEqual({
      kind: 'leaf',
      distribution: 'q_uniform',
      min: 0,
      max: 10,
      q: new Float(1),
    });
    expect(param({ distribution: 'normal' })).toEqual({ kind: 'leaf', distribution: 'normal', mu: new Float(0), sigma: new Float(1) });
    expect(param({ distribution: 'q_log_normal' })).toEqual({
      kind: 'leaf',
      distribution: 'q_log_normal',
      mu: 0,
      sigma: 1,
      q: new Float(1),
    });
    expect(param({ distribution: 'beta', a: 2 })).toEqual({ kind: 'leaf', distribution: 'beta', a: 2, b: 1 });
  });
});

describe('int and float in YAML', () => {
  it('reads 1e-5 as a number (YAML 1.2), not a string as PyYAML does', () => {
    expect(loadConfigText('x: 1e-5')).toEqual({ x: 0.00001 });
    expect(param({ distribution: 'log_uniform_values', min: loadConfigText('1e-5'), max: 1 })).toMatchObject({ min: 0.00001 });
  });

  it('boxes integral float literals and leaves ints and strings alone', () => {
    expect(loadConfigText('a: 3.0\nb: 1e5\nc: 3\nd: "3.0"\ne: -0.0\nf: 0x1e\ng: 2.5\nh: yes\ni: .inf\n')).toEqual({
      a: new Float(3),
      b: new Float(100000),
      c: 3,
      d: '3.0',
      e: new Float(-0),
      f: 30,
      g: 2.5,
      h: 'yes',
      i: Infinity,
    });
  });

  it('keeps the boxing through anchors, aliases and merge keys', () => {
    expect(loadConfigText('base: &b {lo: 0.0}\nx:\n  <<: *b\n  hi: 1\ny: *b\n')).toEqual({
      base: { lo: new Float(0) },
      x: { lo: new Float(0), hi: 1 },
      y: { lo: new Float(0) },
    });
  });

  it('infers uniform from min: 0.0 and int_uniform from min: 0', () => {
    const { config } = parseConfigText('method: random\nparameters:\n  f: {min: 0.0, max: 1}\n  i: {min: 0, max: 1}\n');
    expect(config.parameters.f).toEqual({ kind: 'leaf', distribution: 'uniform', min: new Float(0), max: 1 });
    expect(config.parameters.i).toEqual({ kind: 'leaf', distribution: 'int_uniform', min: 0, max: 1 });
  });
});

describe('malformed files', () => {
  it('reports the line and column of a YAML syntax error', () => {
    const err = configError(() => parseConfigText('method: grid\nparameters:\n  a: {values: [1, 2}\n', 'sweep.yaml'));
    expect(err.issues).toEqual([
      { path: '', message: 'sweep.yaml:3:20: Flow sequence in block collection must be sufficiently indented and end with a ]' },
    ]);
  });

  it('reports line and column without a file name too', () => {
    expect(issuesOf(() => loadConfigText('{"method": "grid",\n "parameters": {"a": 1}\n'))).toEqual([
      { path: '', message: 'line 3, column 1: Flow map must end with a }' },
    ]);
  });

  it('rejects duplicate keys', () => {
    expect(issuesOf(() => loadConfigText('method: grid\nmethod: random\n', 'sweep.yaml'))).toEqual([
      { path: '', message: "sweep.yaml:2:1: duplicate key 'method'" },
    ]);
    expect(issuesOf(() => loadConfigText('{"a": {"x": 1, "x": 2}}'))).toEqual([
      { path: '', message: 'line 1, column 16: duplicate key "x"' },
    ]);
  });

  it('rejects several YAML documents in one file', () => {
    expect(issuesOf(() => loadConfigText('method: grid\n---\nmethod: random\n'))[0].message).toMatch(/^line 2, column 1: .*multiple documents/);
  });

  it('reports a missing file as a ConfigError', async () => {
    await expect(loadConfigFile('/nonexistent/sweep.yaml')).rejects.toThrow(
      new ConfigError([{ path: '', message: "cannot read config file '/nonexistent/sweep.yaml': no such file" }]),
    );
    await expect(parseConfigFile('/nonexistent/sweep.yaml')).rejects.toBeInstanceOf(ConfigError);
  });

  it('rejects a config that is not a mapping', () => {
    expect(issuesOf(() => parseConfigText('- a\n- b\n'))).toEqual([
      { path: '', message: 'expected a sweep config mapping (method, parameters, ...), got a list' },
    ]);
    expect(issuesOf(() => parseConfigText(''))).toEqual([
      { path: '', message: 'expected a sweep config mapping (method, parameters, ...), got null' },
    ]);
  });
});

describe('reporting every problem', () => {
  it('lists all problems at once, in file order, one per line', () => {
    const err = configError(() =>
      parseConfigText(
        [
          'metirc: {name: loss}',
          'method: random',
          'run_cap: ten',
          'parameters:',
          '  lr: {distribution: log_uniformm, min: 0.1, max: 0.01}',
          '  wd: {min: 0.1, max: 0.01}',
          '  drop: {values: [0.1, 0.2], probabilities: [0.5, 0.4]}',
          '  bs: {valuez: [16, 32]}',
          'seed: -1',
        ].join('\n'),
      ),
    );
    expect(err.issues).toEqual([
      { path: 'metirc', message: "unknown key (did you mean 'metric'?)" },
      { path: 'run_cap', message: 'expected a positive integer, got "ten"' },
      { path: 'parameters.lr.distribution', message: "unknown distribution 'log_uniformm' (did you mean 'log_uniform'?)" },
      { path: 'parameters.wd.max', message: 'must be greater than min (min=0.1, max=0.01)' },
      { path: 'parameters.drop.probabilities', message: 'must sum to 1, got 0.9' },
      { path: 'parameters.bs', message: "cannot infer a distribution: give 'value', 'values', 'min' and 'max', 'distribution', or nested 'parameters'" },
      { path: 'parameters.bs.valuez', message: "unknown key (did you mean 'value'?)" },
      { path: 'seed', message: 'expected an integer >= 0, got -1' },
    ]);
    expect(err.message.split('\n')).toEqual(err.issues.map((i) => `${i.path}: ${i.message}`));
    expect(err).toBeInstanceOf(UsageError);
  });

  it('names missing required keys', () => {
    expect(issuesOf(() => parseConfig({}))).toEqual([
      { path: 'method', message: 'required (grid, random, bayes or tpe)' },
      { path: 'parameters', message: 'required: a mapping of parameter names to their specs' },
    ]);
    expect(issuesOf(() => parseConfig({ method: 'grid', metric: { goal: 'maximize' }, parameters: {} }))).toEqual([
      { path: 'metric.name', message: 'required' },
      { path: 'parameters', message: 'must define at least one parameter' },
    ]);
  });

  it('names wrong types of top-level fields', () => {
    expect(
      issuesOf(() =>
        parseConfig({
          method: 3,
          metric: 'loss',
          parameters: [1],
          command: ['python', 3],
          program: false,
          run_cap: 0,
        }),
      ),
    ).toEqual([
      { path: 'method', message: "expected 'grid', 'random', 'bayes' or 'tpe', got 3" },
      { path: 'metric', message: 'expected a mapping with \'name\' and \'goal\', got "loss"' },
      { path: 'parameters', message: 'expected a mapping of parameter names to their specs, got a list' },
      { path: 'command[1]', message: 'expected a string, got 3' },
      { path: 'program', message: 'expected a string, got false' },
      { path: 'run_cap', message: 'expected a positive integer, got 0' },
    ]);
  });

  it('suggests close keys and values, and stays quiet when nothing is close', () => {
    expect(
      issuesOf(() =>
        parseConfig({
          methd: 'grid',
          metric: { name: 'loss', goal: 'minimise', nmae: 'x' },
          parameters: { a: { value: 1 } },
          zzz: 1,
        }),
      ),
    ).toEqual([
      { path: 'method', message: 'required (grid, random, bayes or tpe)' },
      { path: 'methd', message: "unknown key (did you mean 'method'?)" },
      { path: 'metric.goal', message: "expected 'minimize' or 'maximize', got \"minimise\" (did you mean 'minimize'?)" },
      { path: 'metric.nmae', message: "unknown key (did you mean 'name'?)" },
      { path: 'zzz', message: 'unknown key' },
    ]);
    expect(issuesOf(() => parseConfig({ method: 'gird', parameters: { a: { value: 1 } } }))).toEqual([
      { path: 'method', message: "unknown method 'gird' (did you mean 'grid'?)" },
    ]);
  });

  it('says which W&B keys Sweeper does not support', () => {
    expect(issuesOf(() => parseConfig({ method: 'grid', parameters: { a: { value: 1 } }, controller: { type: 'local' } }))).toEqual([
      { path: 'controller', message: 'W&B key not supported by Sweeper; remove it' },
    ]);
  });
});

describe('methods bayes and tpe', () => {
  it('are accepted with a metric, and keep impute settings', () => {
    const { config } = parseConfigText('method: bayes\nmetric: {name: loss, impute: best, impute_while_running: false}\nparameters: {lr: {min: 0.0, max: 1.0}}\n');
    expect(config.method).toBe('bayes');
    expect(config.metric).toEqual({ name: 'loss', goal: 'minimize', impute: 'best', impute_while_running: 'false' });
    expect(parseConfigText('method: tpe\nmetric: {name: acc, goal: maximize, impute: -1}\nparameters: {lr: {min: 0.0, max: 1.0}}\n').config.metric).toEqual({
      name: 'acc',
      goal: 'maximize',
      impute: -1,
    });
  });

  it('need a metric, reported alongside the other problems', () => {
    expect(issuesOf(() => parseConfig({ method: 'bayes', parameters: { a: {} } }))).toEqual([
      { path: 'metric', message: "required for method 'bayes' (it searches for the best value of the metric)" },
      { path: 'parameters.a', message: "cannot infer a distribution: give 'value', 'values', 'min' and 'max', 'distribution', or nested 'parameters'" },
    ]);
  });

  it('check impute values, and warn that latest reads the best value', () => {
    expect(issuesOf(() => parseConfigText('method: bayes\nmetric: {name: loss, impute: average}\nparameters: {a: {min: 0, max: 1}}\n'))).toEqual([
      { path: 'metric.impute', message: `expected 'worst', 'best', 'latest' or a number, got "average"` },
    ]);
    const { warnings } = parseConfigText('method: bayes\nmetric: {name: loss, impute: latest}\nparameters: {a: {min: 0, max: 1}}\n');
    expect(warnings.map((w) => w.path)).toEqual(['metric.impute']);
  });
});

describe('nested parameters', () => {
  it('nests to any depth', () => {
    const { config } = parseConfigText(
      'method: grid\nparameters:\n  a:\n    parameters:\n      b:\n        parameters:\n          c: {values: [1, 2]}\n      d: {value: x}\n',
    );
    expect(config.parameters).toEqual({
      a: {
        kind: 'nested',
        parameters: {
          b: { kind: 'nested', parameters: { c: { kind: 'leaf', distribution: 'categorical', values: [1, 2] } } },
          d: { kind: 'leaf', distribution: 'constant', value: 'x' },
        },
      },
    });
  });

  it('reports problems with their full path', () => {
    expect(
      paramIssues({
        opt: { parameters: { lr: { min: 1, max: 0 }, 'bad name': { value: 1 }, inner: { parameters: {} } } },
        mixed: { parameters: { x: { value: 1 } }, values: [1] },
      }),
    ).toEqual([
      { path: 'parameters.opt.parameters.lr.max', message: 'must be greater than min (min=1, max=0)' },
      {
        path: 'parameters.opt.parameters.bad name',
        message: "invalid parameter name 'bad name': must start with a letter or '_' and hold only letters, digits, '_', '.' or '-'",
      },
      { path: 'parameters.opt.parameters.inner.parameters', message: 'must define at least one parameter' },
      { path: 'parameters.mixed.values', message: "not allowed beside 'parameters' (a nested parameter holds only 'parameters')" },
    ]);
  });
});

describe('parameter names', () => {
  it('match W&B pattern ^[A-Za-z_][A-Za-z0-9_.-]*$', () => {
    const ok = { _x: { value: 1 }, 'lr-1.b_2': { value: 1 }, A: { value: 1 } };
    expect(Object.keys(parseConfig({ method: 'grid', parameters: ok }).config.parameters)).toEqual(['_x', 'lr-1.b_2', 'A']);
    expect(paramIssues({ '1lr': { value: 1 }, '-x': { value: 1 }, 'a/b': { value: 1 } }).map((i) => i.path)).toEqual([
      'parameters.1lr',
      'parameters.-x',
      'parameters.a/b',
    ]);
  });
});

describe('parameter specs', () => {
  it('checks probabilities: length, sign, sum', () => {
    expect(paramIssues({ p: { values: [1, 2, 3], probabilities: [0.5, 0.5] } })).toEqual([
      { path: 'parameters.p.probabilities', message: 'expected 3 probabilities (one per value), got 2' },
    ]);
    expect(paramIssues({ p: { values: [1, 2], probabilities: [1.5, -0.5] } })).toEqual([
      { path: 'parameters.p.probabilities[1]', message: 'must be at least 0, got -0.5' },
    ]);
    expect(paramIssues({ p: { values: [1, 2], probabilities: ['a', 1] } })).toEqual([
      { path: 'parameters.p.probabilities[0]', message: 'expected a number, got "a"' },
    ]);
    expect(paramIssues({ p: { distribution: 'categorical', values: [1], probabilities: [1] } })).toEqual([
      {
        path: 'parameters.p.probabilities',
        message: "not used by distribution 'categorical' (its keys: distribution, values); use 'categorical_w_probabilities'",
      },
    ]);
    // Ten tenths add up to 0.9999999999999999: within the 1e-6 tolerance.
    expect(param({ values: [...Array(10).keys()], probabilities: Array(10).fill(0.1) })).toMatchObject({
      distribution: 'categorical_w_probabilities',
    });
  });

  it('checks bounds', () => {
    expect(
      paramIssues({
        eq: { min: 1, max: 1 },
        iu: { distribution: 'int_uniform', min: 0.5, max: new Float(2) },
        str: { min: '0', max: '1' },
        half: { min: 1 },
        lv: { distribution: 'log_uniform_values', min: 0, max: 1 },
        nan: { min: NaN, max: 1 },
      }),
    ).toEqual([
      { path: 'parameters.eq.max', message: 'must be greater than min (min=1, max=1)' },
      { path: 'parameters.iu.min', message: 'expected an integer, got 0.5' },
      { path: 'parameters.iu.max', message: 'expected an integer, got 2.0 (written as a float; drop the decimal point)' },
      { path: 'parameters.str.min', message: 'expected a number, got "0"' },
      { path: 'parameters.str.max', message: 'expected a number, got "1"' },
      { path: 'parameters.half.max', message: "required for distribution 'int_uniform' (inferred from 'min')" },
      {
        path: 'parameters.lv.min',
        message: "must be greater than 0 for 'log_uniform_values' (its bounds are the values themselves, on a log scale), got 0",
      },
      { path: 'parameters.nan.min', message: 'expected a finite number, got NaN' },
    ]);
  });

  it('checks the other numeric keys', () => {
    expect(
      paramIssues({
        n: { distribution: 'normal', sigma: -0.1 },
        q: { distribution: 'q_uniform', min: 0, max: 1, q: 0 },
        b: { distribution: 'beta', a: 0, b: true },
        m: { distribution: 'q_normal', mu: null },
      }),
    ).toEqual([
      { path: 'parameters.n.sigma', message: 'must be greater than 0, got -0.1' },
      { path: 'parameters.q.q', message: 'must be greater than 0, got 0' },
      { path: 'parameters.b.a', message: 'must be greater than 0, got 0' },
      { path: 'parameters.b.b', message: 'expected a number, got true' },
      { path: 'parameters.m.mu', message: 'expected a number, got null' },
    ]);
  });

  it('rejects keys a distribution does not use, saying why', () => {
    expect(
      paramIssues({
        u: { distribution: 'uniform', min: 0, max: 1, q: 0.1 },
        i: { min: 0, max: 10, q: 2 },
        c: { value: 1, values: [1] },
        e: { values: [1, 2], desc: 'x' },
        n: { mu: 0, sigma: 1 },
        d: { distribution: 7 },
      }),
    ).toEqual([
      { path: 'parameters.u.q', message: "not used by distribution 'uniform' (its keys: distribution, min, max)" },
      {
        path: 'parameters.i.q',
        message: "not used by distribution 'int_uniform', which was inferred from min and max; set 'distribution' to choose another",
      },
      {
        path: 'parameters.c.values',
        message: "not used by distribution 'constant', which was inferred from 'value'; set 'distribution' to choose another",
      },
      { path: 'parameters.e.desc', message: 'unknown key' },
      { path: 'parameters.n', message: "cannot infer a distribution from mu, sigma; set 'distribution' (e.g. 'normal', 'q_uniform', 'beta')" },
      { path: 'parameters.d.distribution', message: 'expected a distribution name, got 7' },
    ]);
  });

  it('rejects empty and non-list values, and specs that are not mappings', () => {
    expect(paramIssues({ a: { values: [] }, b: { values: 'abc' }, c: 0.1, d: { value: undefined } })).toEqual([
      { path: 'parameters.a.values', message: 'must list at least one value' },
      { path: 'parameters.b.values', message: 'expected a list of values, got "abc"' },
      {
        path: 'parameters.c',
        message: "expected a mapping with 'value', 'values', 'min' and 'max', 'distribution' or 'parameters', got 0.1",
      },
      { path: 'parameters.d', message: "cannot infer a distribution: give 'value', 'values', 'min' and 'max', 'distribution', or nested 'parameters'" },
    ]);
  });

  it('rejects values a program could not receive (library callers)', () => {
    expect(paramIssues({ a: { values: [1, { f: () => 1 }] }, b: { value: new Date(0) } })).toEqual([
      { path: 'parameters.a.values[1].f', message: 'unsupported value (function); use null, booleans, numbers, strings, lists or mappings' },
      { path: 'parameters.b.value', message: 'unsupported value (object); use null, booleans, numbers, strings, lists or mappings' },
    ]);
  });

  it('warns that log_uniform bounds are exponents', () => {
    const { config, warnings } = parseConfig({
      method: 'random',
      parameters: {
        a: { distribution: 'log_uniform', min: -4, max: 0 },
        b: { distribution: 'q_log_uniform', min: 0, max: 5 },
        c: { distribution: 'inv_log_uniform', min: 0, max: 5 },
        d: { distribution: 'log_uniform_values', min: 1e-4, max: 1 },
      },
    });
    expect(config.parameters.a).toEqual({ kind: 'leaf', distribution: 'log_uniform', min: -4, max: 0 });
    expect(warnings).toEqual([
      {
        path: 'parameters.a.distribution',
        message: "'log_uniform' takes natural-log exponents as bounds (values from e^min to e^max); to give the values themselves, use 'log_uniform_values'",
      },
      {
        path: 'parameters.b.distribution',
        message:
          "'q_log_uniform' takes natural-log exponents as bounds (values from e^min to e^max); to give the values themselves, use 'q_log_uniform_values'",
      },
      {
        path: 'parameters.c.distribution',
        message:
          "'inv_log_uniform' takes natural-log exponents as bounds (values from e^-max to e^-min); to give the values themselves, use 'inv_log_uniform_values'",
      },
    ]);
  });

  it('carries warnings on the error too', () => {
    const err = configError(() =>
      parseConfig({ method: 'random', parameters: { a: { distribution: 'log_uniform', min: -4, max: 0 }, b: {} } }),
    );
    expect(err.warnings.map((w) => w.path)).toEqual(['parameters.a.distribution']);
  });
});

describe('inferDistribution', () => {
  it('follows W&B: explicit name, then value, values, probabilities, min/max typing', () => {
    expect(inferDistribution({ distribution: 'beta' })).toBe('beta');
    expect(inferDistribution({ distribution: 'betta' })).toBeUndefined();
    expect(inferDistribution({ value: [1] })).toBe('constant');
    expect(inferDistribution({ values: [1] })).toBe('categorical');
    expect(inferDistribution({ values: [1], probabilities: [1] })).toBe('categorical_w_probabilities');
    expect(inferDistribution({ min: 0, max: 1 })).toBe('int_uniform');
    expect(inferDistribution({ min: 0, max: new Float(1) })).toBe('uniform');
    expect(inferDistribution({ min: 0, max: 0.5 })).toBe('uniform');
    expect(inferDistribution({ mu: 0 })).toBeUndefined();
    expect(inferDistribution({ parameters: { a: { value: 1 } } })).toBeUndefined();
  });
});

describe('early_terminate', () => {
  const base = { method: 'grid', metric: { name: 'loss' }, parameters: { a: { values: [1, 2] } } };
  const et = (early_terminate: unknown, extra: Record<string, unknown> = {}) =>
    issuesOf(() => parseConfig({ ...base, ...extra, early_terminate }));

  it('fills hyperband defaults (eta 3, strict true)', () => {
    expect(parseConfig({ ...base, early_terminate: { type: 'hyperband', max_iter: 27, s: 2 } }).config.early_terminate).toEqual({
      type: 'hyperband',
      max_iter: 27,
      s: 2,
      eta: 3,
      strict: true,
    });
    expect(parseConfig({ ...base, early_terminate: { type: 'hyperband', min_iter: 1, eta: 1.5, strict: false } }).config.early_terminate).toEqual({
      type: 'hyperband',
      min_iter: 1,
      eta: 1.5,
      strict: false,
    });
  });

  it('requires a metric', () => {
    expect(et({ type: 'hyperband', min_iter: 3 }, { metric: undefined })).toEqual([
      { path: 'metric', message: 'required when early_terminate is set (stopping compares runs on it)' },
    ]);
  });

  it('checks the type', () => {
    expect(et('hyperband')).toEqual([{ path: 'early_terminate', message: 'expected a mapping with a \'type\' key, got "hyperband"' }]);
    expect(et({ min_iter: 3 })).toEqual([{ path: 'early_terminate.type', message: 'required (supported: hyperband, asha, median)' }]);
    expect(et({ type: 'invalid type', min_iter: 3 })).toEqual([
      { path: 'early_terminate.type', message: "unknown early_terminate type 'invalid type' (supported: hyperband, asha, median)" },
    ]);
    expect(et({ type: 'hyperbnad', min_iter: 3 })).toEqual([
      { path: 'early_terminate.type', message: "unknown early_terminate type 'hyperbnad' (did you mean 'hyperband'?)" },
    ]);
  });

  it('checks hyperband keys and values', () => {
    expect(et({ type: 'hyperband', min_iter: 0, eta: 1, strict: 'yes', max_itr: 9 })).toEqual([
      { path: 'early_terminate.min_iter', message: 'expected a positive integer, got 0' },
      { path: 'early_terminate.eta', message: 'expected a number greater than 1, got 1' },
      { path: 'early_terminate.strict', message: 'expected true or false, got "yes"' },
      { path: 'early_terminate.max_itr', message: "unknown key (did you mean 'max_iter'?)" },
    ]);
  });

  it('needs min_iter, or max_iter with s, giving at least one band', () => {
    expect(et({ type: 'hyperband', eta: 3 })).toEqual([{ path: 'early_terminate', message: 'hyperband needs min_iter, or max_iter and s' }]);
    expect(et({ type: 'hyperband', max_iter: 9 })).toEqual([
      { path: 'early_terminate.s', message: 'required with max_iter (the number of bands below max_iter)' },
    ]);
    expect(et({ type: 'hyperband', max_iter: 2, s: 3, eta: 3 })).toEqual([
      {
        path: 'early_terminate.max_iter',
        message: 'gives no hyperband bands: max_iter / eta = 0.667 is below 1; increase max_iter or decrease eta',
      },
    ]);
  });

  it('warns about keys hyperband will ignore', () => {
    const { warnings } = parseConfig({ ...base, early_terminate: { type: 'hyperband', min_iter: 1, max_iter: 27, s: 2 } });
    expect(warnings).toEqual([{ path: 'early_terminate.min_iter', message: 'ignored: max_iter and s define the bands' }]);
  });
});

describe('parsed configs (isParsedConfig, toParsedConfig)', () => {
  const raw = { method: 'random', parameters: { x: { values: [1, 2] } } };

  it('marks what the parser and the codec produce, and nothing else', async () => {
    const parsed = parseConfig(raw).config;
    expect(isParsedConfig(parsed)).toBe(true);
    expect(isParsedConfig(parseConfigText('method: grid\nparameters: {x: {values: [1]}}\n').config)).toBe(true);
    expect(isParsedConfig((await parseConfigFile(fixture('random-full.yaml'))).config)).toBe(true);
    expect(isParsedConfig(decodeConfig(encodeConfig(parsed)))).toBe(true);
    // A copy may have been changed since: it is not the parser's.
    expect(isParsedConfig({ ...parsed })).toBe(false);
    expect(isParsedConfig(structuredClone(parsed))).toBe(false);
    expect(isParsedConfig(raw)).toBe(false);
    for (const v of [undefined, null, 'random', 3, []]) expect(isParsedConfig(v)).toBe(false);
  });

  it('toParsedConfig returns a parsed config as it is', () => {
    const parsed = parseConfig(raw).config;
    expect(toParsedConfig(parsed)).toBe(parsed);
  });

  it('toParsedConfig parses anything else exactly as parseConfig does', () => {
    const parsed = toParsedConfig(raw);
    expect(parsed).toEqual(parseConfig(raw).config);
    expect(isParsedConfig(parsed)).toBe(true);
    // What W&B raises on, and what parseConfig refuses: an empty parameters mapping,
    expect(issuesOf(() => toParsedConfig({ method: 'random', parameters: {} }))).toEqual([
      { path: 'parameters', message: 'must define at least one parameter' },
    ]);
    // unknown keys and mistyped values beside a valid search space,
    expect(issuesOf(() => toParsedConfig({ ...raw, bogus: 1, run_cap: 'x' }))).toEqual([
      { path: 'bogus', message: 'unknown key' },
      { path: 'run_cap', message: 'expected a positive integer, got "x"' },
    ]);
    // and a copy of a parsed config, whose parameters are no longer W&B's shape.
    expect(issuesOf(() => toParsedConfig({ ...parseConfig(raw).config }))).toEqual([{ path: 'parameters.x.kind', message: 'unknown key' }]);
  });
});

describe('what a trial argv can hold (common/limits.ts)', () => {
  const LIMIT = 'an argument may hold at most 65536 characters';
  /** The issues of a config, none when it is valid. */
  const problems = (config: object): ConfigIssue[] => {
    try {
      parseConfig(config);
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return e.issues;
      throw e;
    }
  };
  const grid = (parameters: unknown, extra: object = {}) => problems({ method: 'grid', parameters, ...extra });
  const x = (n: number, c = 'x') => c.repeat(n);

  it('uses the limits the gRPC adapter enforces', () => {
    expect([MAX_ARGV_ENTRY_CHARS, MAX_ARGV_ENTRIES]).toEqual([65536, 1000]);
  });

  it('names a value too long for --name=value, and accepts one that just fits', () => {
    expect(grid({ x: { values: [1, 2, 3, x(100_000)] } })).toEqual([
      { path: 'parameters.x.values[3]', message: `makes '--x=...' an argument of 100004 characters; ${LIMIT}` },
    ]);
    expect(grid({ x: { values: [x(65532)] } })).toEqual([]);
    expect(grid({ x: { values: [x(65533)] } })).toEqual([
      { path: 'parameters.x.values[0]', message: `makes '--x=...' an argument of 65537 characters; ${LIMIT}` },
    ]);
    expect(paramIssues({ c: { value: x(70_000) } })).toEqual([
      { path: 'parameters.c.value', message: `makes '--c=...' an argument of 70004 characters; ${LIMIT}` },
    ]);
  });

  it('names a parameter name too long, shortened in the message', () => {
    const name = x(70_000, 'n');
    const err = configError(() => parseConfigText(JSON.stringify({ method: 'grid', parameters: { [name]: { values: [1, 2] } } })));
    expect(err.issues).toEqual([{ path: `parameters.${name}`, message: `makes '--${x(57, 'n')}...=...' an argument of at least 70003 characters; ${LIMIT}` }]);
    expect(err.message).toBe(`parameters.${x(57, 'n')}...: makes '--${x(57, 'n')}...=...' an argument of at least 70003 characters; ${LIMIT}`);
  });

  it('bounds a nested parameter, one value alone or its longest values together', () => {
    expect(grid({ opt: { parameters: { lr: { values: [x(70_000)] } } } })).toEqual([
      { path: 'parameters.opt.parameters.lr.values[0]', message: `makes '--opt=...' an argument of at least 70016 characters; ${LIMIT}` },
    ]);
    expect(grid({ opt: { parameters: { a: { values: [x(40_000)] }, b: { values: [x(40_000)] } } } })).toEqual([
      { path: 'parameters.opt', message: `its longest values together make '--opt={...}' an argument of up to 80024 characters; ${LIMIT}` },
    ]);
  });

  it('renders as the agent does: the bound is the argv entry buildCommand makes', () => {
    const params = { opt: { a: x(40_000, 'a'), b: x(40_000, 'b') } };
    const built = buildCommand({ command: ['${args}', '${args_json}'], params, cwd: '/', sweepId: 's', trialId: 't', env: {} });
    expect(built.argv.map((a) => a.length)).toEqual([80024, 80027]);
    const json = grid({ opt: { parameters: { a: { values: [x(40_000, 'a')] }, b: { values: [x(40_000, 'b')] } } } }, { command: ['${args_json}'] });
    expect(json).toEqual([
      {
        path: 'parameters',
        message: `their longest values together make \${args_json} (command[0]) an argument of up to 80027 characters; ${LIMIT}; parameters.opt alone takes 80025`,
      },
    ]);
  });

  it('bounds ${args_json}, all parameters in one argument, drawn numbers at 24 characters', () => {
    const command = ['python', 'train.py', '--config=${args_json}'];
    expect(grid({ a: { values: [x(40_000)] }, b: { values: [x(40_000)] } }, { command })).toEqual([
      {
        path: 'parameters',
        message: `their longest values together make \${args_json} (command[2]) an argument of up to 80027 characters; ${LIMIT}; parameters.a alone takes 40007`,
      },
    ]);
    // {"a": "x...", "b": <24 characters>}: 65496 + 41 characters fit, one more does not.
    const random = (a: number) => problems({ method: 'random', command: ['${args_json}'], parameters: { a: { values: [x(a)] }, b: { min: 0, max: 1 } } });
    expect(random(65496)).toEqual([]);
    expect(random(65497)).toEqual([
      {
        path: 'parameters',
        message: `their longest values together make \${args_json} (command[0]) an argument of up to 65537 characters; ${LIMIT}; parameters.a alone takes 65504`,
      },
    ]);
    // Non-ASCII is escaped (\u00e9): six characters each in JSON, one in --a=value.
    expect(grid({ a: { values: [x(11_000, 'é')] } }, { command: ['${args}', '${args_json}'] })).toEqual([
      { path: 'parameters.a.values[0]', message: `makes \${args_json} (command[1]) an argument of at least 66009 characters; ${LIMIT}` },
    ]);
    // ${args_json_file} writes them to a file: only its path is in argv.
    expect(grid({ a: { values: [x(100_000)] } }, { command: ['python', 'train.py', '${args_json_file}'] })).toEqual([]);
  });

  it('names a command entry or a program too long', () => {
    expect(grid({ a: { values: [1] } }, { command: ['python', x(70_000), '${args}'] })).toEqual([
      { path: 'command[1]', message: `is 70000 characters; ${LIMIT}` },
    ]);
    expect(grid({ a: { values: [1] } }, { command: ['--out=${envvar:OUT}' + x(70_000)] })).toEqual([
      { path: 'command[0]', message: `renders as at least 70006 characters; ${LIMIT}` },
    ]);
    expect(grid({ a: { values: [1] } }, { program: x(70_000) })).toEqual([{ path: 'program', message: `is 70000 characters; ${LIMIT}` }]);
  });

  it('bounds how many arguments the command expands to', () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { value: i }]));
    // The default command is `${env} ${interpreter} ${program} ${args}`: three plus one per parameter.
    expect(grid(many(997))).toEqual([]);
    expect(grid(many(998))).toEqual([
      { path: 'parameters', message: "998 top-level parameters make the default command up to 1001 arguments; a trial's argv may hold at most 1000 arguments" },
    ]);
    expect(grid(many(500), { command: ['${interpreter}', '${program}', '${args_no_equals}'] })).toEqual([
      { path: 'command', message: "expands to up to 1002 arguments with 500 top-level parameters; a trial's argv may hold at most 1000 arguments" },
    ]);
  });
});

describe('hostile YAML', () => {
  const billionLaughs = () => {
    const lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (let i = 1; i < 9; i++) {
      const [prev, next] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
      lines.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    return lines.join('\n');
  };

  it('refuses an alias bomb, and still takes ordinary aliases', () => {
    expect(issuesOf(() => loadConfigText(billionLaughs(), 'bomb.yaml'))).toEqual([
      { path: '', message: "bomb.yaml: aliases expand too far (a YAML alias bomb?): at most 100 copies of an anchor's content" },
    ]);
    expect(loadConfigText('a: &a [1, 2]\nb: [*a, *a]\n')).toEqual({ a: [1, 2], b: [[1, 2], [1, 2]] });
  });

  it('refuses aliases that copy a big anchor past the size bound', () => {
    const text = `a: &a "${'x'.repeat(50_000)}"\nb: [${Array(99).fill('*a').join(', ')}]\n`;
    expect(issuesOf(() => loadConfigText(text))).toEqual([
      { path: '', message: 'too large once its aliases are expanded: more than 4194304 values and characters' },
    ]);
  });

  it('refuses deep nesting, quickly, in flow and in block style', () => {
    const started = Date.now();
    expect(issuesOf(() => loadConfigText('['.repeat(1024 * 1024)))).toEqual([{ path: '', message: 'line 1, column 65: nested more than 64 levels deep' }]);
    expect(issuesOf(() => loadConfigText(`x:\n  ${'{a: '.repeat(100)}1${'}'.repeat(100)}`, 'deep.yaml'))).toEqual([
      { path: '', message: 'deep.yaml:2:259: nested more than 64 levels deep' },
    ]);
    const block = Array.from({ length: 70 }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ' 1';
    expect(issuesOf(() => loadConfigText(block))).toEqual([{ path: '', message: 'nested more than 64 levels deep' }]);
    // 64 levels are fine.
    expect(() => loadConfigText(`${'['.repeat(64)}${']'.repeat(64)}`)).not.toThrow();
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('refuses a config too large to parse quickly, and lists at most 50 problems', () => {
    const started = Date.now();
    expect(issuesOf(() => loadConfigText('- 1\n'.repeat(250_000)))).toEqual([
      { path: '', message: 'too large: more than 100000 YAML tokens (keys, values, indicators); a sweep config needs far fewer' },
    ]);
    expect(Date.now() - started).toBeLessThan(3000);
    const err = configError(() => loadConfigText('k: 1\n'.repeat(100)));
    expect(err.issues).toHaveLength(99);
    expect(err.message.split('\n')).toEqual([
      ...Array.from({ length: 50 }, (_, i) => `line ${i + 2}, column 1: duplicate key 'k'`),
      '(and 49 more problems)',
    ]);
  });

  it('refuses scalars, lists and binary junk as configs', () => {
    const top = (got: string) => [{ path: '', message: `expected a sweep config mapping (method, parameters, ...), got ${got}` }];
    expect(issuesOf(() => parseConfigText('42'))).toEqual(top('42'));
    expect(issuesOf(() => parseConfigText('just some text'))).toEqual(top('"just some text"'));
    expect(issuesOf(() => parseConfigText('- method: grid\n'))).toEqual(top('a list'));
    expect(issuesOf(() => parseConfigText('!!binary aGVsbG8='))).toEqual(top('binary data'));
    expect(issuesOf(() => parseConfigText(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]).toString('latin1')))).toEqual(
      top('"\x7fELF\\u0002\\u0001\\u0001\\u0000"'),
    );
  });
});
