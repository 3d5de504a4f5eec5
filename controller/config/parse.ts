/**
 * Validating a loaded sweep config and normalizing it into a `SweepConfig`: every parameter's
 * distribution inferred and W&B's defaults filled in, every problem reported at once.
 *
 * The parameter tree is checked by hand rather than by a zod union: W&B picks the first of
 * nineteen shapes that matches, and a union's failure says little about which one was meant.
 * Here the shape is decided first (from `distribution`, or from the keys as W&B infers it), and
 * every message can then name the distribution the user asked for.
 */
import type { z } from 'zod';
import { DISTRIBUTIONS, DISTRIBUTION_TRAITS, isDistribution, type Distribution } from '../../domain/distributions.js';
import { Float, isIntValue, isNumeric, toNumber } from '../../domain/values.js';
import {
  isFiniteNumber,
  isParsedConfig,
  markParsed,
  type ConfigIssue,
  type EarlyTerminateSpec,
  type LeafParam,
  type MetricSpec,
  type ParamSpec,
  type ParamSpecs,
  type ParsedConfig,
  type SweepConfig,
} from '../../domain/sweep-config.js';
import { strategyEntry } from '../strategies/index.js';
import { argvIssues } from './argv.js';
import { ConfigError, describe, didYouMean } from './errors.js';
import { loadConfigFile, loadConfigText } from './load.js';
import {
  DISTRIBUTION_RULES,
  EARLY_TERMINATE_RULES,
  KNOWN_KEYS,
  PARAM_KEYS,
  PARAMETER_NAME,
  UNSUPPORTED_WANDB_KEYS,
  earlyTerminateTypeSchema,
  metricSchema,
  sweepConfigSchema,
} from './schema.js';

export { isParsedConfig };

/** Problems and warnings, collected over the whole walk. */
type Report = { issues: ConfigIssue[]; warnings: ConfigIssue[] };

const child = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);
const item = (path: string, i: number) => `${path}[${i}]`;

function isMapping(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Assigns without letting a key such as `__proto__` reach the prototype. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Validate a loaded config tree (from `loadConfigText`, or a plain object from library code).
 * A library caller who means a float with an integral value must pass `new Float(x)`: a plain
 * `0` is an int, which makes `{min: 0, max: 1}` an int_uniform as it is in W&B.
 */
export function parseConfig(input: unknown): ParsedConfig {
  if (!isMapping(input)) {
    throw new ConfigError([{ path: '', message: `expected a sweep config mapping (method, parameters, ...), got ${describe(input)}` }]);
  }
  const report: Report = { issues: [], warnings: [] };

  const top = sweepConfigSchema.safeParse(input);
  if (!top.success) report.issues.push(...fromZod(top.error, ''));

  const parameters = parseParameters(input.parameters, 'parameters', report);

  const earlyTerminate = parseStopping(input, report);

  if (strategyEntry(input.method)?.needsMetric && input.metric === undefined) {
    report.issues.push({ path: 'metric', message: `required for method '${String(input.method)}' (it searches for the best value of the metric)` });
  }

  if (!top.success || report.issues.length > 0 || parameters === undefined) {
    throw new ConfigError(inFileOrder(report.issues, input), report.warnings);
  }

  const d = top.data;
  const metric = d.metric && compact({ ...d.metric });
  for (const key of ['impute', 'impute_while_running'] as const) {
    if (metric?.[key] === 'latest') {
      report.warnings.push({ path: `metric.${key}`, message: "'latest' uses the trial's best value: Sweeper's strategies see each trial's best value, not its last" });
    }
  }
  // Reassembled in a fixed order so that two equal configs compare and print the same.
  const config: SweepConfig = metric ? { method: d.method, metric, parameters } : { method: d.method, parameters };
  const parts: Partial<SweepConfig> = {
    early_terminate: earlyTerminate,
    run_cap: d.run_cap,
    command: d.command,
    program: d.program,
    name: d.name,
    description: d.description,
    seed: d.seed,
  };
  for (const [k, v] of Object.entries(parts)) if (v !== undefined) Object.assign(config, { [k]: v });
  // What the method cannot run (distributions a grid cannot enumerate) is a config error, reported
  // with the rest at validation; so is an argv that the agent could not report back (see argv.ts).
  const late = [...(strategyEntry(config.method)?.validate?.(config) ?? []), ...argvIssues(config)];
  if (late.length > 0) throw new ConfigError(inFileOrder(late, input), report.warnings);
  return { config: markParsed(config), warnings: report.warnings };
}

/**
 * A config as the library needs it: one from the parser as it is, anything else validated by
 * `parseConfig` (throws `ConfigError` listing every problem; warnings are dropped).
 */
export function toParsedConfig(config: SweepConfig | Record<string, unknown>): SweepConfig {
  return isParsedConfig(config) ? config : parseConfig(config).config;
}

/** What a stopping rule reads of a config, validated. */
export interface StoppingKeysConfig {
  metric?: MetricSpec;
  early_terminate?: EarlyTerminateSpec;
}

/**
 * The two keys a stopping rule reads, `metric` and `early_terminate`, validated exactly as
 * `parseConfig` validates them (defaults filled), for a library call given only these two.
 * Throws `ConfigError` listing every problem.
 */
export function parseStoppingKeys(input: { metric?: unknown; early_terminate?: unknown }): StoppingKeysConfig {
  const report: Report = { issues: [], warnings: [] };
  const metric = input.metric === undefined ? undefined : metricSchema.safeParse(input.metric);
  if (metric && !metric.success) report.issues.push(...fromZod(metric.error, 'metric'));
  const earlyTerminate = parseStopping(input, report);
  if (report.issues.length > 0) throw new ConfigError(inFileOrder(report.issues, input), report.warnings);
  const out: StoppingKeysConfig = {};
  if (metric?.success) out.metric = compact({ ...metric.data });
  if (earlyTerminate) out.early_terminate = earlyTerminate;
  return out;
}

/** `early_terminate`, and the metric it needs. */
function parseStopping(input: { metric?: unknown; early_terminate?: unknown }, report: Report): EarlyTerminateSpec | undefined {
  if (input.early_terminate === undefined) return undefined;
  const earlyTerminate = parseEarlyTerminate(input.early_terminate, report);
  if (input.metric === undefined) {
    report.issues.push({ path: 'metric', message: 'required when early_terminate is set (stopping compares runs on it)' });
  }
  return earlyTerminate;
}

export function parseConfigText(text: string, filename?: string): ParsedConfig {
  return parseConfig(loadConfigText(text, filename));
}

export async function parseConfigFile(path: string): Promise<ParsedConfig> {
  return parseConfig(await loadConfigFile(path));
}

/** The same object without its undefined entries, so that equal configs compare equal. */
function compact<T extends object>(obj: T): T {
  for (const [k, v] of Object.entries(obj)) if (v === undefined) delete (obj as Record<string, unknown>)[k];
  return obj;
}

/**
 * Problems sorted by where their top-level key sits in the file, so they read top to bottom;
 * missing keys come first, since a misspelling of one is usually what follows.
 */
function inFileOrder(issues: ConfigIssue[], input: Record<string, unknown>): ConfigIssue[] {
  // A map, not indexOf: a config of 100,000 unknown keys would otherwise take minutes to sort.
  const ranks = new Map(Object.keys(input).map((k, i) => [k, i]));
  const rank = (path: string) => (path === '' ? -2 : (ranks.get(path.split(/[.[]/)[0]) ?? -1));
  return issues
    .map((issue, i) => ({ issue, i, r: rank(issue.path) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.issue);
}

/** `known`: the keys of the mapping at `prefix`, where they depend on more than its path. */
function fromZod(error: z.ZodError, prefix: string, known?: readonly string[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of error.issues) {
    const path = iss.path.reduce<string>(
      (p, seg) => (typeof seg === 'number' ? item(p, seg) : child(p, String(seg))),
      prefix,
    );
    if (iss.code === 'unrecognized_keys') {
      const keys = (path === prefix ? known : undefined) ?? KNOWN_KEYS[path] ?? [];
      for (const key of iss.keys) out.push({ path: child(path, key), message: unknownKey(key, keys, path === '') });
    } else {
      out.push({ path, message: iss.message });
    }
  }
  return out;
}

function unknownKey(key: string, known: readonly string[], topLevel: boolean): string {
  if (topLevel && UNSUPPORTED_WANDB_KEYS.includes(key)) return 'W&B key not supported by Sweeper; remove it';
  const hint = didYouMean(key, known);
  if (hint || known.length === 0 || known.length > 6) return `unknown key${hint}`;
  return `unknown key (expected one of: ${known.join(', ')})`;
}

function parseEarlyTerminate(raw: unknown, report: Report): EarlyTerminateSpec | undefined {
  const head = earlyTerminateTypeSchema.safeParse(raw);
  if (!head.success) {
    report.issues.push(...fromZod(head.error, 'early_terminate'));
    return undefined;
  }
  const rule = EARLY_TERMINATE_RULES[head.data.type];
  const parsed = rule.schema.safeParse(raw);
  if (!parsed.success) report.issues.push(...fromZod(parsed.error, 'early_terminate', rule.keys));
  rule.check(head.data, report.issues, report.warnings);
  return parsed.success ? (parsed.data as EarlyTerminateSpec) : undefined;
}

function parseParameters(raw: unknown, path: string, report: Report): ParamSpecs | undefined {
  if (raw === undefined) {
    report.issues.push({ path, message: 'required: a mapping of parameter names to their specs' });
    return undefined;
  }
  if (!isMapping(raw)) {
    report.issues.push({ path, message: `expected a mapping of parameter names to their specs, got ${describe(raw)}` });
    return undefined;
  }
  const before = report.issues.length;
  const entries = Object.entries(raw);
  if (entries.length === 0) report.issues.push({ path, message: 'must define at least one parameter' });
  const specs: ParamSpecs = {};
  for (const [name, spec] of entries) {
    const p = child(path, name);
    if (!PARAMETER_NAME.test(name)) {
      report.issues.push({
        path: p,
        message: `invalid parameter name '${name}': must start with a letter or '_' and hold only letters, digits, '_', '.' or '-'`,
      });
    }
    const parsed = parseParam(spec, p, report);
    if (parsed) setOwn(specs, name, parsed);
  }
  return report.issues.length === before ? specs : undefined;
}

function parseParam(spec: unknown, path: string, report: Report): ParamSpec | undefined {
  if (!isMapping(spec)) {
    report.issues.push({
      path,
      message: `expected a mapping with 'value', 'values', 'min' and 'max', 'distribution' or 'parameters', got ${describe(spec)}`,
    });
    return undefined;
  }
  if (spec.parameters !== undefined) {
    for (const key of Object.keys(spec)) {
      if (key !== 'parameters') {
        report.issues.push({ path: child(path, key), message: "not allowed beside 'parameters' (a nested parameter holds only 'parameters')" });
      }
    }
    const nested = parseParameters(spec.parameters, child(path, 'parameters'), report);
    return nested && { kind: 'nested', parameters: nested };
  }
  return parseLeaf(spec, path, report);
}

interface Shape {
  distribution: Distribution;
  /** The keys W&B would infer the distribution from; undefined when it was given explicitly. */
  from?: string;
}

/**
 * W&B's inference from the keys alone. A valid spec matches one shape only, so the order here
 * merely decides which distribution an invalid mix of keys is reported against.
 */
function inferFromKeys(raw: Record<string, unknown>): Shape | undefined {
  const has = (k: string) => raw[k] !== undefined;
  if (has('value')) return { distribution: 'constant', from: "'value'" };
  if (has('probabilities')) return { distribution: 'categorical_w_probabilities', from: "'probabilities'" };
  if (has('values')) return { distribution: 'categorical', from: "'values'" };
  if (has('min') || has('max')) {
    const bounds = [raw.min, raw.max].filter((v) => v !== undefined);
    // Two ints make int_uniform; one number written as a float makes the range continuous.
    const distribution = bounds.every(isIntValue) ? 'int_uniform' : 'uniform';
    const from = has('min') && has('max') ? 'min and max' : has('min') ? "'min'" : "'max'";
    return { distribution, from };
  }
  return undefined;
}

/**
 * The distribution a parameter spec asks for: the explicit `distribution` when it names one,
 * otherwise what W&B infers from the keys. Undefined for nested parameters and unknown shapes.
 */
export function inferDistribution(raw: Record<string, unknown>): Distribution | undefined {
  if (raw.parameters !== undefined) return undefined;
  const d = raw.distribution;
  if (d !== undefined) return typeof d === 'string' && isDistribution(d) ? d : undefined;
  return inferFromKeys(raw)?.distribution;
}

function leafShape(spec: Record<string, unknown>, path: string, report: Report): Shape | undefined {
  const d = spec.distribution;
  let shape: Shape | undefined;
  if (d !== undefined) {
    if (typeof d === 'string' && isDistribution(d)) return { distribution: d };
    const hint = typeof d === 'string' ? didYouMean(d, DISTRIBUTIONS) : '';
    report.issues.push({
      path: child(path, 'distribution'),
      message:
        typeof d !== 'string'
          ? `expected a distribution name, got ${describe(d)}`
          : hint
            ? `unknown distribution '${d}'${hint}`
            : `unknown distribution '${d}' (expected one of: ${DISTRIBUTIONS.join(', ')})`,
    });
  } else {
    shape = inferFromKeys(spec);
    if (!shape) {
      const distributionKeys = Object.keys(spec).filter((k) => ['mu', 'sigma', 'q', 'a', 'b'].includes(k));
      report.issues.push({
        path,
        message:
          distributionKeys.length > 0
            ? `cannot infer a distribution from ${distributionKeys.join(', ')}; set 'distribution' (e.g. 'normal', 'q_uniform', 'beta')`
            : "cannot infer a distribution: give 'value', 'values', 'min' and 'max', 'distribution', or nested 'parameters'",
      });
    }
  }
  if (!shape) {
    // Without a distribution only the keys nobody uses can be reported.
    for (const key of Object.keys(spec)) {
      if (!(PARAM_KEYS as readonly string[]).includes(key)) {
        report.issues.push({ path: child(path, key), message: `unknown key${didYouMean(key, PARAM_KEYS)}` });
      }
    }
  }
  return shape;
}

function keyNotAllowed(key: string, shape: Shape, allowed: readonly string[]): string {
  const { distribution, from } = shape;
  if (!(PARAM_KEYS as readonly string[]).includes(key)) {
    return `unknown key${didYouMean(key, allowed) || didYouMean(key, PARAM_KEYS)}`;
  }
  if (from !== undefined) {
    return `not used by distribution '${distribution}', which was inferred from ${from}; set 'distribution' to choose another`;
  }
  const alternative =
    distribution === 'categorical' && key === 'probabilities' ? "; use 'categorical_w_probabilities'" : '';
  return `not used by distribution '${distribution}' (its keys: ${allowed.join(', ')})${alternative}`;
}

type Check = (v: unknown) => string | undefined;

const finite: Check = (v) =>
  isFiniteNumber(v) ? undefined : isNumeric(v) ? `expected a finite number, got ${describe(v)}` : `expected a number, got ${describe(v)}`;

const positive: Check = (v) => finite(v) ?? (toNumber(v as number) > 0 ? undefined : `must be greater than 0, got ${describe(v)}`);

const integer: Check = (v) => {
  if (isIntValue(v)) return undefined;
  const writtenAsFloat = v instanceof Float || Object.is(v, -0);
  return `expected an integer, got ${describe(v)}${writtenAsFloat ? ' (written as a float; drop the decimal point)' : ''}`;
};

/** Anything a program can be handed: what YAML and JSON can express. */
function valueProblem(v: unknown, path: string): ConfigIssue | undefined {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number' || v instanceof Float) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = valueProblem(v[i], item(path, i));
      if (p) return p;
    }
    return undefined;
  }
  if (isMapping(v)) {
    for (const [k, x] of Object.entries(v)) {
      const p = valueProblem(x, child(path, k));
      if (p) return p;
    }
    return undefined;
  }
  return {
    path,
    message: `unsupported value (${v === undefined ? 'undefined' : typeof v}); use null, booleans, numbers, strings, lists or mappings`,
  };
}

function parseLeaf(spec: Record<string, unknown>, path: string, report: Report): LeafParam | undefined {
  const before = report.issues.length;
  const fail = (key: string, message: string) => report.issues.push({ path: child(path, key), message });
  const shape = leafShape(spec, path, report);
  if (!shape) return undefined;
  const { distribution } = shape;
  const rule = DISTRIBUTION_RULES[distribution];
  const allowed = ['distribution', ...rule.required, ...rule.optional];

  for (const key of Object.keys(spec)) {
    if (!allowed.includes(key)) fail(key, keyNotAllowed(key, shape, allowed));
  }
  for (const key of rule.required) {
    if (spec[key] === undefined) {
      fail(key, `required for distribution '${distribution}'${shape.from ? ` (inferred from ${shape.from})` : ''}`);
    }
  }

  const leaf: LeafParam = { kind: 'leaf', distribution };
  const present = (key: string) => allowed.includes(key) && spec[key] !== undefined;
  const numeric = (key: 'min' | 'max' | 'mu' | 'sigma' | 'a' | 'b' | 'q', check: Check): number | Float | undefined => {
    if (!present(key)) return undefined;
    const problem = check(spec[key]);
    if (problem) {
      fail(key, problem);
      return undefined;
    }
    return spec[key] as number | Float;
  };

  if (present('value')) {
    const problem = valueProblem(spec.value, child(path, 'value'));
    if (problem) report.issues.push(problem);
    else leaf.value = spec.value as LeafParam['value'];
  }

  if (present('values')) {
    const values = spec.values;
    if (!Array.isArray(values)) fail('values', `expected a list of values, got ${describe(values)}`);
    else if (values.length === 0) fail('values', 'must list at least one value');
    else {
      const problem = values.map((v, i) => valueProblem(v, item(child(path, 'values'), i))).find((p) => p !== undefined);
      if (problem) report.issues.push(problem);
      else leaf.values = [...(values as NonNullable<LeafParam['values']>)];
    }
  }

  if (present('probabilities')) {
    const probs = spec.probabilities;
    const p = child(path, 'probabilities');
    if (!Array.isArray(probs)) fail('probabilities', `expected a list of numbers, got ${describe(probs)}`);
    else {
      const problems: ConfigIssue[] = [];
      probs.forEach((x, i) => {
        const problem = finite(x) ?? (toNumber(x as number) >= 0 ? undefined : `must be at least 0, got ${describe(x)}`);
        if (problem) problems.push({ path: item(p, i), message: problem });
      });
      report.issues.push(...problems);
      const values = spec.values;
      if (Array.isArray(values) && values.length > 0 && probs.length !== values.length) {
        fail('probabilities', `expected ${values.length} probabilities (one per value), got ${probs.length}`);
      } else if (problems.length === 0) {
        const numbers = probs.map((x) => toNumber(x as number));
        const sum = numbers.reduce((s, x) => s + x, 0);
        if (Math.abs(sum - 1) > 1e-6) fail('probabilities', `must sum to 1, got ${Number(sum.toPrecision(10))}`);
        else leaf.probabilities = numbers;
      }
    }
  }

  const traits = DISTRIBUTION_TRAITS[distribution];
  const boundCheck: Check = traits.integer ? integer : finite;
  const min = numeric(
    'min',
    traits.positiveBounds
      ? (v) =>
          finite(v) ??
          (toNumber(v as number) > 0
            ? undefined
            : `must be greater than 0 for '${distribution}' (its bounds are the values themselves, on a log scale), got ${describe(v)}`)
      : boundCheck,
  );
  const max = numeric('max', boundCheck);
  if (min !== undefined && max !== undefined) {
    if (toNumber(min) < toNumber(max)) {
      leaf.min = min;
      leaf.max = max;
    } else {
      fail('max', `must be greater than min (min=${describe(min)}, max=${describe(max)})`);
    }
  }

  const defaults = rule.defaults();
  const mu = numeric('mu', finite) ?? defaults.mu;
  const sigma = numeric('sigma', positive) ?? defaults.sigma;
  const a = numeric('a', positive) ?? defaults.a;
  const b = numeric('b', positive) ?? defaults.b;
  const q = numeric('q', positive) ?? defaults.q;
  Object.assign(leaf, Object.fromEntries(Object.entries({ mu, sigma, a, b, q }).filter(([, v]) => v !== undefined)));

  if (traits.valuesForm) {
    report.warnings.push({
      path: child(path, 'distribution'),
      message:
        `'${distribution}' takes natural-log exponents as bounds (values from ` +
        `${traits.inverted ? 'e^-max to e^-min' : 'e^min to e^max'}); to give the values themselves, use '${traits.valuesForm}'`,
    });
  }

  return report.issues.length === before ? leaf : undefined;
}
