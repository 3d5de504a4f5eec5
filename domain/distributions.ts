/**
 * W&B's parameter distributions and what each one is: which keys describe it, whether it lives on
 * a log scale, whether it is rounded to a step, whether a grid can enumerate it. The config
 * parser, the strategies and the dashboard read these traits here instead of each listing the
 * distributions that have them.
 */

export const DISTRIBUTIONS = [
  'constant',
  'categorical',
  'categorical_w_probabilities',
  'int_uniform',
  'uniform',
  'q_uniform',
  'log_uniform',
  'log_uniform_values',
  'q_log_uniform',
  'q_log_uniform_values',
  'inv_log_uniform',
  'inv_log_uniform_values',
  'normal',
  'q_normal',
  'log_normal',
  'q_log_normal',
  'beta',
  'q_beta',
] as const;
export type Distribution = (typeof DISTRIBUTIONS)[number];

/**
 * The keys that describe a distribution: `value`; `values`; `min` and `max`; `mu` and `sigma`;
 * `a` and `b`. A quantized one adds `q`, a weighted categorical `probabilities`.
 */
export type DistributionFamily = 'constant' | 'categorical' | 'bounded' | 'normal' | 'beta';

export interface DistributionTraits {
  family: DistributionFamily;
  /** categorical_w_probabilities: each value has its own probability. */
  weighted: boolean;
  /** int_uniform: integer bounds, integer values. */
  integer: boolean;
  /**
   * Values spread over orders of magnitude (log_*, q_log_*, inv_log_*, log_normal, q_log_normal):
   * a learning rate's 1e-4 and 1e-3 are as far apart as 1e-3 and 1e-2. Charts use a log axis.
   */
  logScale: boolean;
  /** inv_log_*: the value is e^-x, so the direction of the range is flipped. */
  inverted: boolean;
  /** The `_values` forms take the values themselves as bounds, on a log scale: they must be positive. */
  positiveBounds: boolean;
  /**
   * Set on W&B's older log forms, whose bounds are natural-log exponents (log_uniform takes
   * e^min to e^max): the form that takes the values themselves.
   */
  valuesForm?: Distribution;
  /** q_*: drawn from `continuous` and rounded to a multiple of q. */
  quantized: boolean;
  /** The distribution drawn from before rounding: the q_ form's base, itself otherwise. */
  continuous: Distribution;
  /** A grid can enumerate it: constant, categorical, int_uniform and q_uniform. */
  gridable: boolean;
}

type Options = Partial<Omit<DistributionTraits, 'family' | 'continuous'>> & { continuous?: Distribution };

function traits(family: DistributionFamily, self: Distribution, options: Options = {}): DistributionTraits {
  return {
    family,
    weighted: false,
    integer: false,
    logScale: false,
    inverted: false,
    positiveBounds: false,
    quantized: options.continuous !== undefined,
    gridable: false,
    ...options,
    continuous: options.continuous ?? self,
  };
}

export const DISTRIBUTION_TRAITS: Readonly<Record<Distribution, Readonly<DistributionTraits>>> = {
  constant: traits('constant', 'constant', { gridable: true }),
  categorical: traits('categorical', 'categorical', { gridable: true }),
  categorical_w_probabilities: traits('categorical', 'categorical_w_probabilities', { weighted: true }),
  int_uniform: traits('bounded', 'int_uniform', { integer: true, gridable: true }),
  uniform: traits('bounded', 'uniform'),
  q_uniform: traits('bounded', 'q_uniform', { continuous: 'uniform', gridable: true }),
  log_uniform: traits('bounded', 'log_uniform', { logScale: true, valuesForm: 'log_uniform_values' }),
  log_uniform_values: traits('bounded', 'log_uniform_values', { logScale: true, positiveBounds: true }),
  q_log_uniform: traits('bounded', 'q_log_uniform', { logScale: true, valuesForm: 'q_log_uniform_values', continuous: 'log_uniform' }),
  q_log_uniform_values: traits('bounded', 'q_log_uniform_values', { logScale: true, positiveBounds: true, continuous: 'log_uniform_values' }),
  inv_log_uniform: traits('bounded', 'inv_log_uniform', { logScale: true, inverted: true, valuesForm: 'inv_log_uniform_values' }),
  inv_log_uniform_values: traits('bounded', 'inv_log_uniform_values', { logScale: true, inverted: true, positiveBounds: true }),
  normal: traits('normal', 'normal'),
  q_normal: traits('normal', 'q_normal', { continuous: 'normal' }),
  log_normal: traits('normal', 'log_normal', { logScale: true }),
  q_log_normal: traits('normal', 'q_log_normal', { logScale: true, continuous: 'log_normal' }),
  beta: traits('beta', 'beta'),
  q_beta: traits('beta', 'q_beta', { continuous: 'beta' }),
};

export function isDistribution(s: unknown): s is Distribution {
  return typeof s === 'string' && Object.hasOwn(DISTRIBUTION_TRAITS, s);
}

/** Whether values of this distribution are best shown and searched on a log scale. */
export function isLogScale(distribution: Distribution): boolean {
  return DISTRIBUTION_TRAITS[distribution].logScale;
}
