/**
 * The rules of W&B's sweep config, field by field: zod schemas for the top level, `metric` and
 * `early_terminate`, and a table of keys and defaults for each parameter distribution (the
 * parameter tree itself is walked in parse.ts, where messages can name the distribution).
 * What a method or a stopping rule needs of a config comes from their registries
 * (controller/strategies, controller/stopping), what a distribution is from domain/distributions.
 *
 * Every schema carries its own message: zod's defaults ("Invalid input") do not tell a user
 * what to write instead.
 */
import { z } from 'zod';
import { DISTRIBUTIONS, DISTRIBUTION_TRAITS, type Distribution } from '../../domain/distributions.js';
import { GOALS } from '../../domain/objective.js';
import { Float, toNumber } from '../../domain/values.js';
import { isCount, isFiniteNumber, METHODS } from '../../domain/sweep-config.js';
import { STOPPING_RULES, STOPPING_TYPES, keyAccepts, keyExpectation, type StoppingKey, type StoppingRuleEntry, type StoppingType } from '../stopping/index.js';
import { describe, didYouMean } from './errors.js';

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
export const IMPUTE_STRATEGIES = ['worst', 'best', 'latest'] as const;

/** W&B's pattern for parameter names. */
export const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The keys each mapping accepts, by the dotted path of the mapping, for "did you mean". */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': TOP_LEVEL_KEYS,
  metric: METRIC_KEYS,
};

/** `a, b or c`, each quoted when `quote` is set. */
function orList(words: readonly string[], quote = false): string {
  const shown = words.map((w) => (quote ? `'${w}'` : w));
  return shown.length <= 1 ? shown.join('') : `${shown.slice(0, -1).join(', ')} or ${shown[shown.length - 1]}`;
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
  const use = `use ${orList(METHODS)}`;
  if (v === undefined) return `required (${orList(METHODS)})`;
  if (typeof v !== 'string') return `expected ${orList(METHODS, true)}, got ${describe(v)}`;
  if (v === 'custom') return `method 'custom' is not supported by Sweeper; ${use}`;
  const hint = didYouMean(v, METHODS);
  return hint ? `unknown method '${v}'${hint}` : `unknown method '${v}'; ${use}`;
}

const method = z.custom<(typeof METHODS)[number]>((v) => (METHODS as readonly unknown[]).includes(v), {
  error: (iss) => methodMessage(iss.input),
});

const goal = z.custom<(typeof GOALS)[number]>((v) => (GOALS as readonly unknown[]).includes(v), {
  error: (iss) => {
    const hint = typeof iss.input === 'string' ? didYouMean(iss.input, GOALS) : '';
    return `expected ${orList(GOALS, true)}, got ${describe(iss.input)}${hint}`;
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
    type: z.custom<StoppingType>((v) => typeof v === 'string' && (STOPPING_TYPES as readonly string[]).includes(v), {
      error: (iss) => {
        const v = iss.input;
        const supported = `supported: ${STOPPING_TYPES.join(', ')}`;
        if (v === undefined) return `required (${supported})`;
        if (typeof v !== 'string') return `expected a string, got ${describe(v)} (${supported})`;
        const hint = didYouMean(v, STOPPING_TYPES);
        return hint ? `unknown early_terminate type '${v}'${hint}` : `unknown early_terminate type '${v}' (${supported})`;
      },
    }),
  },
  { error: (iss) => `expected a mapping with a 'type' key, got ${describe(iss.input)}` },
);

/** One key of a stopping rule, in the rule's own words (stopping/spec.ts), with its default filled. */
function stoppingKeySchema(key: StoppingKey): z.ZodType {
  const value = expected<unknown>(keyExpectation(key), (v) => keyAccepts(key, v));
  const plain = key.kind === 'count' || key.kind === 'number' ? value.transform((v) => toNumber(v as number | Float)) : value;
  return key.default === undefined ? plain.optional() : plain.default(key.default as never);
}

export interface EarlyTerminateRule {
  /** Every key the mapping may hold, `type` first, for "did you mean". */
  keys: readonly string[];
  schema: z.ZodType;
  check: StoppingRuleEntry['check'];
}

function earlyTerminateRule(type: StoppingType, entry: StoppingRuleEntry): EarlyTerminateRule {
  const shape: Record<string, z.ZodType> = { type: z.literal(type) };
  for (const [name, key] of Object.entries(entry.keys)) shape[name] = stoppingKeySchema(key);
  return { keys: Object.keys(shape), schema: z.strictObject(shape), check: entry.check };
}

/** Per early_terminate type, from the stopping registry: its keys, its schema and its cross-key checks. */
export const EARLY_TERMINATE_RULES = Object.fromEntries(
  STOPPING_TYPES.map((type) => [type, earlyTerminateRule(type, STOPPING_RULES[type])]),
) as Record<StoppingType, EarlyTerminateRule>;

/** Every key a leaf or nested parameter may hold, for "unknown key" hints. */
export const PARAM_KEYS = ['distribution', 'value', 'values', 'probabilities', 'min', 'max', 'mu', 'sigma', 'q', 'a', 'b', 'parameters'] as const;
export type ParamKey = (typeof PARAM_KEYS)[number];

export interface DistributionRule {
  required: readonly ParamKey[];
  optional: readonly ParamKey[];
  /** Filled when absent, typed as W&B's schema writes them. */
  defaults: () => Partial<Record<'mu' | 'sigma' | 'a' | 'b' | 'q', number | Float>>;
}

/** The keys that describe each family (domain/distributions.ts), before `q`. */
const FAMILY_KEYS = {
  constant: { required: ['value'], optional: [] },
  categorical: { required: ['values'], optional: [] },
  bounded: { required: ['min', 'max'], optional: [] },
  normal: { required: [], optional: ['mu', 'sigma'] },
  beta: { required: [], optional: ['a', 'b'] },
} as const satisfies Record<string, { required: readonly ParamKey[]; optional: readonly ParamKey[] }>;

/**
 * W&B's schema gives `normal` and `log_normal` the float defaults 0.0 / 1.0 but their q_
 * variants the ints 0 / 1; params.json confirms both. Only `q`'s type changes what is drawn,
 * but the filled config is mirrored exactly.
 */
function familyDefaults(distribution: Distribution): Partial<Record<'mu' | 'sigma' | 'a' | 'b', number | Float>> {
  const { family, quantized } = DISTRIBUTION_TRAITS[distribution];
  if (family === 'normal') return quantized ? { mu: 0, sigma: 1 } : { mu: new Float(0), sigma: new Float(1) };
  if (family === 'beta') return { a: 1, b: 1 };
  return {};
}

function distributionRule(distribution: Distribution): DistributionRule {
  const traits = DISTRIBUTION_TRAITS[distribution];
  const keys = FAMILY_KEYS[traits.family];
  return {
    required: traits.weighted ? [...keys.required, 'probabilities'] : keys.required,
    optional: traits.quantized ? [...keys.optional, 'q'] : keys.optional,
    defaults: () => ({ ...familyDefaults(distribution), ...(traits.quantized ? { q: new Float(1) } : {}) }),
  };
}

/** The keys and defaults of each distribution, from its traits. */
export const DISTRIBUTION_RULES = Object.fromEntries(DISTRIBUTIONS.map((d) => [d, distributionRule(d)])) as Record<
  Distribution,
  DistributionRule
>;
