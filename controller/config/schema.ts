/**
 * The rules of W&B's sweep config, field by field: zod schemas for the top level, `metric` and
 * `early_terminate`, and a table of keys and defaults for each parameter distribution (the
 * parameter tree itself is walked in parse.ts, where messages can name the distribution).
 *
 * Every schema carries its own message: zod's defaults ("Invalid input") do not tell a user
 * what to write instead.
 */
import { z } from 'zod';
import { Float, isNumeric, toNumber } from '../../domain/values.js';
import { describe, didYouMean } from './errors.js';
import type { ConfigIssue, Distribution } from '../../domain/sweep-config.js';
import { ASHA_DEFAULTS, ASHA_FITS, MEDIAN_DEFAULTS } from '../stopping/types.js';

export const TOP_LEVEL_KEYS = [
  'method',
  'metric',
  'parameters',
  'early_terminate',
  'run_cap',
  'command',
  'program',
  'name',
  'description',
  'project',
  'entity',
  'seed',
] as const;

/** W&B keys that Sweeper has no use for and that would silently change nothing if accepted. */
export const UNSUPPORTED_WANDB_KEYS = ['apiVersion', 'kind', 'controller', 'job', 'image_uri', 'metrics', 'scheduler'];

export const METRIC_KEYS = ['name', 'goal', 'target', 'impute', 'impute_while_running'] as const;
export const GOALS = ['minimize', 'maximize'] as const;
export const SUPPORTED_METHODS = ['grid', 'random', 'bayes', 'tpe'] as const;
export const IMPUTE_STRATEGIES = ['worst', 'best', 'latest'] as const;
export const EARLY_TERMINATE_TYPES = ['hyperband', 'asha', 'median'] as const;
export const HYPERBAND_KEYS = ['type', 'min_iter', 'max_iter', 's', 'eta', 'strict'] as const;
export const ASHA_KEYS = ['type', 'min_iter', 'eta', 'max_iter', 'fit'] as const;
export const MEDIAN_KEYS = ['type', 'warmup_steps', 'min_trials'] as const;

/** W&B's pattern for parameter names. */
export const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The keys each mapping accepts, by the dotted path of the mapping, for "did you mean". */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': TOP_LEVEL_KEYS,
  metric: METRIC_KEYS,
  early_terminate: HYPERBAND_KEYS,
};

export function isFiniteNumber(v: unknown): v is number | Float {
  return isNumeric(v) && Number.isFinite(toNumber(v));
}

/** An integer count; `10.0` is accepted, as W&B's JSON schema does for `integer` fields. */
function isCount(v: unknown, min: number): v is number | Float {
  return isNumeric(v) && Number.isSafeInteger(toNumber(v)) && toNumber(v) >= min;
}

/** A field that is either absent (`required`) or the wrong thing (`expected X, got Y`). */
function expected<T>(what: string, test: (v: unknown) => boolean) {
  return z.custom<T>((v) => test(v), {
    error: (iss) => (iss.input === undefined ? 'required' : `expected ${what}, got ${describe(iss.input)}`),
  });
}

const positiveInt = expected<number | Float>('a positive integer', (v) => isCount(v, 1)).transform(toNumber);
const nonNegativeInt = expected<number | Float>('an integer >= 0', (v) => isCount(v, 0)).transform(toNumber);
const text = (what = 'a string') => expected<string>(what, (v) => typeof v === 'string');

function methodMessage(v: unknown): string {
  const use = 'use grid, random, bayes or tpe';
  if (v === undefined) return 'required (grid, random, bayes or tpe)';
  if (typeof v !== 'string') return `expected 'grid', 'random', 'bayes' or 'tpe', got ${describe(v)}`;
  if (v === 'custom') return `method 'custom' is not supported by Sweeper; ${use}`;
  const hint = didYouMean(v, SUPPORTED_METHODS);
  return hint ? `unknown method '${v}'${hint}` : `unknown method '${v}'; ${use}`;
}

const method = z.custom<(typeof SUPPORTED_METHODS)[number]>((v) => (SUPPORTED_METHODS as readonly unknown[]).includes(v), {
  error: (iss) => methodMessage(iss.input),
});

const goal = z.custom<(typeof GOALS)[number]>((v) => v === 'minimize' || v === 'maximize', {
  error: (iss) => {
    const hint = typeof iss.input === 'string' ? didYouMean(iss.input, GOALS) : '';
    return `expected 'minimize' or 'maximize', got ${describe(iss.input)}${hint}`;
  },
});

export const metricSchema = z.strictObject(
  {
    name: expected<string>('a metric name', (v) => typeof v === 'string' && v !== ''),
    goal: goal.default('minimize'),
    target: expected<number | Float>('a number', isFiniteNumber).transform(toNumber).optional(),
    impute: expected<(typeof IMPUTE_STRATEGIES)[number] | number | Float>(
      "'worst', 'best', 'latest' or a number",
      (v) => (IMPUTE_STRATEGIES as readonly unknown[]).includes(v) || isFiniteNumber(v),
    )
      .transform((v) => (typeof v === 'string' ? v : toNumber(v)))
      .optional(),
    // YAML reads a bare `false` as a boolean; W&B's schema spells it as a string.
    impute_while_running: expected<'false' | false | (typeof IMPUTE_STRATEGIES)[number]>(
      "'false', 'worst', 'best' or 'latest'",
      (v) => v === 'false' || v === false || (IMPUTE_STRATEGIES as readonly unknown[]).includes(v),
    )
      .transform((v) => (v === false ? 'false' : v))
      .optional(),
  },
  { error: (iss) => `expected a mapping with 'name' and 'goal', got ${describe(iss.input)}` },
);

const command = z
  .array(text(), { error: (iss) => `expected a list of strings, got ${describe(iss.input)}` })
  .min(1, { error: 'must not be empty (leave command out to use the default)' });

/**
 * The top level. `parameters` and `early_terminate` are only declared here: parse.ts validates
 * them with messages that depend on what else the mapping holds.
 */
export const sweepConfigSchema = z.strictObject({
  method,
  metric: metricSchema.optional(),
  parameters: z.unknown().optional(),
  early_terminate: z.unknown().optional(),
  run_cap: positiveInt.optional(),
  command: command.optional(),
  program: text().optional(),
  name: text().optional(),
  description: text().optional(),
  project: text().optional(),
  entity: text().optional(),
  seed: nonNegativeInt.optional(),
});

/** `type` first, so that an unknown type is reported without a cascade about its other keys. */
export const earlyTerminateTypeSchema = z.looseObject(
  {
    type: z.custom<string>((v) => typeof v === 'string' && (EARLY_TERMINATE_TYPES as readonly string[]).includes(v), {
      error: (iss) => {
        const v = iss.input;
        const supported = `supported: ${EARLY_TERMINATE_TYPES.join(', ')}`;
        if (v === undefined) return `required (${supported})`;
        if (typeof v !== 'string') return `expected a string, got ${describe(v)} (${supported})`;
        const hint = didYouMean(v, EARLY_TERMINATE_TYPES);
        return hint ? `unknown early_terminate type '${v}'${hint}` : `unknown early_terminate type '${v}' (${supported})`;
      },
    }),
  },
  { error: (iss) => `expected a mapping with a 'type' key, got ${describe(iss.input)}` },
);

/** Defaults as W&B fills them (`eta` 3, `strict` true), so stopping rules see what will run. */
export const hyperbandSchema = z.strictObject({
  type: z.literal('hyperband'),
  min_iter: positiveInt.optional(),
  max_iter: positiveInt.optional(),
  s: positiveInt.optional(),
  eta: expected<number | Float>('a number greater than 1', (v) => isFiniteNumber(v) && toNumber(v) > 1)
    .transform(toNumber)
    .default(3),
  strict: expected<boolean>('true or false', (v) => typeof v === 'boolean').default(true),
});

/** Sweeper's extensions, with the defaults the benchmark chose (see controller/stopping/types.ts). */
export const ashaSchema = z.strictObject({
  type: z.literal('asha'),
  min_iter: positiveInt.default(ASHA_DEFAULTS.min_iter),
  eta: expected<number | Float>('a number greater than 1', (v) => isFiniteNumber(v) && toNumber(v) > 1)
    .transform(toNumber)
    .default(ASHA_DEFAULTS.eta),
  max_iter: positiveInt.optional(),
  fit: expected<(typeof ASHA_FITS)[number]>("'trend' or 'last'", (v) => (ASHA_FITS as readonly unknown[]).includes(v)).default(ASHA_DEFAULTS.fit),
});

export const medianSchema = z.strictObject({
  type: z.literal('median'),
  warmup_steps: nonNegativeInt.default(MEDIAN_DEFAULTS.warmup_steps),
  min_trials: nonNegativeInt.default(MEDIAN_DEFAULTS.min_trials),
});

function checkAsha(raw: Record<string, unknown>, issues: ConfigIssue[]): void {
  const minIter = isCount(raw.min_iter, 1) ? toNumber(raw.min_iter) : ASHA_DEFAULTS.min_iter;
  if (isCount(raw.max_iter, 1) && toNumber(raw.max_iter) <= minIter) {
    issues.push({ path: 'early_terminate.max_iter', message: `must be greater than min_iter (${minIter}): no rung lies below it` });
  }
}

/** Per early_terminate type: its keys (for "did you mean"), its schema and its cross-key checks. */
export const EARLY_TERMINATE_RULES: Record<
  (typeof EARLY_TERMINATE_TYPES)[number],
  { keys: readonly string[]; schema: z.ZodType; check: (raw: Record<string, unknown>, issues: ConfigIssue[], warnings: ConfigIssue[]) => void }
> = {
  hyperband: { keys: HYPERBAND_KEYS, schema: hyperbandSchema, check: checkHyperband },
  asha: { keys: ASHA_KEYS, schema: ashaSchema, check: checkAsha },
  median: { keys: MEDIAN_KEYS, schema: medianSchema, check: () => {} },
};

/**
 * What zod cannot say field by field: which iteration keys go together, and whether the bands
 * W&B derives from them exist at all. Works on the raw mapping so it reports alongside type errors.
 */
export function checkHyperband(raw: Record<string, unknown>, issues: ConfigIssue[], warnings: ConfigIssue[]): void {
  const has = (k: string) => raw[k] !== undefined;
  if (!has('min_iter') && !has('max_iter')) {
    issues.push({ path: 'early_terminate', message: 'hyperband needs min_iter, or max_iter and s' });
    return;
  }
  if (has('max_iter') && !has('s')) {
    issues.push({ path: 'early_terminate.s', message: 'required with max_iter (the number of bands below max_iter)' });
  }
  if (has('max_iter') && has('s') && has('min_iter')) {
    warnings.push({ path: 'early_terminate.min_iter', message: 'ignored: max_iter and s define the bands' });
  }
  if (has('s') && !has('max_iter') && has('min_iter')) {
    warnings.push({ path: 'early_terminate.s', message: 'ignored without max_iter' });
  }
  const maxIter = raw.max_iter;
  const eta = raw.eta ?? 3;
  if (isCount(maxIter, 1) && has('s') && isFiniteNumber(eta) && toNumber(eta) > 1) {
    // W&B's first band is max_iter / eta; below 1 there are no bands and every run would continue.
    const first = toNumber(maxIter) / toNumber(eta);
    if (first < 1) {
      issues.push({
        path: 'early_terminate.max_iter',
        message: `gives no hyperband bands: max_iter / eta = ${Number(first.toPrecision(3))} is below 1; increase max_iter or decrease eta`,
      });
    }
  }
}

/** Every key a leaf or nested parameter may hold, for "unknown key" hints. */
export const PARAM_KEYS = ['distribution', 'value', 'values', 'probabilities', 'min', 'max', 'mu', 'sigma', 'q', 'a', 'b', 'parameters'] as const;
export type ParamKey = (typeof PARAM_KEYS)[number];

export interface DistributionRule {
  required: readonly ParamKey[];
  optional: readonly ParamKey[];
  /** Filled when absent, typed as W&B's schema writes them. */
  defaults: () => Partial<Record<'mu' | 'sigma' | 'a' | 'b' | 'q', number | Float>>;
  /** The `_values` form takes the bounds themselves, on a log scale: they must be positive. */
  positiveBounds?: boolean;
  /** The older form whose bounds are natural-log exponents, and the form to use instead. */
  exponentBoundsOf?: Distribution;
}

const none = () => ({});
const qOnly = () => ({ q: new Float(1) });
const bounded = (extra: Partial<DistributionRule> = {}): DistributionRule => ({
  required: ['min', 'max'],
  optional: [],
  defaults: none,
  ...extra,
});
const quantized = (extra: Partial<DistributionRule> = {}): DistributionRule =>
  bounded({ optional: ['q'], defaults: qOnly, ...extra });

/**
 * W&B's schema gives `normal` and `log_normal` the float defaults 0.0 / 1.0 but their q_
 * variants the ints 0 / 1; params.json confirms both. Only `q`'s type changes what is drawn,
 * but the filled config is mirrored exactly.
 */
export const DISTRIBUTION_RULES: Record<Distribution, DistributionRule> = {
  constant: { required: ['value'], optional: [], defaults: none },
  categorical: { required: ['values'], optional: [], defaults: none },
  categorical_w_probabilities: { required: ['values', 'probabilities'], optional: [], defaults: none },
  int_uniform: bounded(),
  uniform: bounded(),
  q_uniform: quantized(),
  log_uniform: bounded({ exponentBoundsOf: 'log_uniform_values' }),
  log_uniform_values: bounded({ positiveBounds: true }),
  q_log_uniform: quantized({ exponentBoundsOf: 'q_log_uniform_values' }),
  q_log_uniform_values: quantized({ positiveBounds: true }),
  inv_log_uniform: bounded({ exponentBoundsOf: 'inv_log_uniform_values' }),
  inv_log_uniform_values: bounded({ positiveBounds: true }),
  normal: { required: [], optional: ['mu', 'sigma'], defaults: () => ({ mu: new Float(0), sigma: new Float(1) }) },
  log_normal: { required: [], optional: ['mu', 'sigma'], defaults: () => ({ mu: new Float(0), sigma: new Float(1) }) },
  q_normal: { required: [], optional: ['mu', 'sigma', 'q'], defaults: () => ({ mu: 0, sigma: 1, q: new Float(1) }) },
  q_log_normal: { required: [], optional: ['mu', 'sigma', 'q'], defaults: () => ({ mu: 0, sigma: 1, q: new Float(1) }) },
  beta: { required: [], optional: ['a', 'b'], defaults: () => ({ a: 1, b: 1 }) },
  q_beta: { required: [], optional: ['a', 'b', 'q'], defaults: () => ({ a: 1, b: 1, q: new Float(1) }) },
};

