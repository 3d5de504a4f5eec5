/**
 * The sweep configuration after validation: W&B's sweep config with every parameter's
 * distribution inferred and W&B's defaults filled in. Strategies and stopping rules read only this.
 */
import type { Distribution } from './distributions.js';
import type { Goal } from './objective.js';
import { isNumeric, toNumber, type Float, type ParamValue } from './values.js';

export { DISTRIBUTIONS, type Distribution } from './distributions.js';

export const METHODS = ['grid', 'random', 'bayes', 'tpe'] as const;
export type Method = (typeof METHODS)[number];

/**
 * One leaf parameter. Numbers keep their int/float typing (`Float` boxes integral floats), since
 * W&B's inference and the type of the values it draws depend on it: a q_* distribution yields
 * ints when `q` is an int, floats otherwise (default q is the float 1.0).
 */
export interface LeafParam {
  kind: 'leaf';
  distribution: Distribution;
  /** constant */
  value?: ParamValue;
  /** categorical, categorical_w_probabilities */
  values?: ParamValue[];
  probabilities?: number[];
  /** bounded families (uniform, int_uniform, q_uniform, log_*, inv_log_*, q_log_*) */
  min?: number | Float;
  max?: number | Float;
  /** normal families; defaults mu 0, sigma 1 */
  mu?: number | Float;
  sigma?: number | Float;
  /** beta families; defaults a 1, b 1 */
  a?: number | Float;
  b?: number | Float;
  /** q_* families; default the float 1.0 */
  q?: number | Float;
}

export interface NestedParam {
  kind: 'nested';
  parameters: ParamSpecs;
}

export type ParamSpec = LeafParam | NestedParam;

/** Parameter name to spec. Object key order is the config's order; strategies sort as W&B does. */
export type ParamSpecs = { [name: string]: ParamSpec };

export interface MetricSpec {
  name: string;
  goal: Goal;
  target?: number;
  /** bayes/tpe: the value given to failed trials (W&B's, default 'worst'; a number is a Sweeper extension). */
  impute?: 'worst' | 'best' | 'latest' | number;
  /** bayes/tpe: whether running trials' values so far are used (W&B's, default 'false'). */
  impute_while_running?: 'false' | 'worst' | 'best' | 'latest';
}

/** `early_terminate` is validated structurally here; the stopping rules interpret it. */
export interface EarlyTerminateSpec {
  type: string;
  [key: string]: unknown;
}

export interface SweepConfig {
  method: Method;
  metric?: MetricSpec;
  parameters: ParamSpecs;
  early_terminate?: EarlyTerminateSpec;
  run_cap?: number;
  /** The command template (W&B macros such as `${args}`); default `${env} ${interpreter} ${program} ${args}`. */
  command?: string[];
  program?: string;
  name?: string;
  description?: string;
  /** Sweeper extension: seed for reproducible sweeps. */
  seed?: number;
}

/** One problem found in a config, with the dotted path to it (`parameters.lr.max`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** A finite number as a config may hold one: a plain number or a boxed float. */
export function isFiniteNumber(v: unknown): v is number | Float {
  return isNumeric(v) && Number.isFinite(toNumber(v));
}

/** An integer of at least `min`, as W&B's JSON schema reads an `integer` field: `10.0` is one. */
export function isCount(v: unknown, min: number): v is number | Float {
  return isNumeric(v) && Number.isSafeInteger(toNumber(v)) && toNumber(v) >= min;
}

export interface ParsedConfig {
  config: SweepConfig;
  warnings: ConfigIssue[];
}

/**
 * The configs the config parser produced (and the codec decoded: the event log stores parsed
 * configs only). A library function given a config asks `isParsedConfig` whether it still needs
 * validating, and the grid whether its own checks already ran. Kept by identity, so a copy is
 * not branded and is validated again: safe, only slower. A parsed config is never changed.
 */
const parsedConfigs = new WeakSet<object>();

/** For the config parser and codec only: records that `config` came out of them. */
export function markParsed<T extends SweepConfig>(config: T): T {
  parsedConfigs.add(config);
  return config;
}

/** Whether `config` is one the config parser produced, as it produced it. */
export function isParsedConfig(config: unknown): config is SweepConfig {
  return typeof config === 'object' && config !== null && parsedConfigs.has(config);
}
