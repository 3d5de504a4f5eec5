/**
 * W&B's parameter distributions as inverse CDFs. Random search draws `ppf(param, u)` with u
 * uniform on [0, 1), exactly as W&B's `HyperParameter.sample` does, so the same u gives the value
 * W&B would give, with the same int/float typing (see tests/fixtures/conformance/params.json).
 *
 * The discrete families follow scipy's formulas step by step, quirks included: at u = 0 a
 * categorical gives its last value and an int_uniform gives min − 1, and a categorical with
 * probabilities gives its first value at u = 1. `sample` never passes 0, so random search cannot
 * hit the first two.
 */
import { Float, isIntValue, makeFloat, toNumber, type ParamValue } from '../../domain/values.js';
import { DISTRIBUTION_TRAITS, type Distribution, type DistributionTraits } from '../../domain/distributions.js';
import type { LeafParam } from '../../domain/sweep-config.js';
import { incompleteBetaInv, ndtri } from './numerics/special.js';

/** A source of uniform numbers in [0, 1). */
export type Uniform01 = () => number;

const DEFAULT_Q = new Float(1);

function num(v: number | Float | undefined, fallback: number): number {
  return v === undefined ? fallback : toNumber(v);
}

/** What a bounded family needs; the config parser guarantees both bounds are present. */
function bounds(param: LeafParam): { min: number; max: number } {
  if (param.min === undefined || param.max === undefined) {
    throw new Error(`distribution '${param.distribution}' needs min and max`);
  }
  return { min: toNumber(param.min), max: toNumber(param.max) };
}

/** numpy's `round` (and `rint`): ties go to the even neighbour; the sign of zero is kept. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const floor = Math.floor(x);
  const diff = x - floor;
  let r: number;
  if (diff < 0.5) r = floor;
  else if (diff > 0.5) r = floor + 1;
  else r = floor % 2 === 0 ? floor : floor + 1;
  // -0.4 rounds to -0.0 in numpy, and a float q keeps that sign: q_normal can yield -0.0.
  return r === 0 && (x < 0 || Object.is(x, -0)) ? -0 : r;
}

/**
 * The q_* step shared by every quantized family: `round(x / q) * q`, typed int when q is an int
 * (numpy's astype(int), which also turns -0.0 into 0) and float otherwise.
 */
function quantize(x: number, q: number | Float): ParamValue {
  const step = toNumber(q);
  const value = roundHalfEven(x / step) * step;
  if (isIntValue(q)) return Math.trunc(value) + 0;
  return makeFloat(value);
}

/** scipy's `uniform.ppf(u, loc=min, scale=max - min)`. */
function uniformPpf(u: number, min: number, max: number): number {
  return u * (max - min) + min;
}

/**
 * scipy's `randint.ppf(u, low, high)` (integers low..high−1), boundaries included: u = 0 gives
 * low − 1 and u = 1 gives high − 1. The second candidate absorbs rounding in u·(high − low).
 */
function randintPpf(u: number, low: number, high: number): number {
  if (u === 0) return low - 1;
  if (u === 1) return high - 1;
  const vals = Math.ceil(u * (high - low) + low) - 1;
  const below = Math.min(Math.max(vals - 1, low), high);
  const cdfBelow = (Math.floor(below) - low + 1) / (high - low);
  return cdfBelow >= u ? below : vals;
}

/** The parser guarantees a non-empty list; a library caller might not. */
function valuesOf(param: LeafParam): ParamValue[] {
  if (!param.values || param.values.length === 0) {
    throw new Error(`distribution '${param.distribution}' needs a non-empty values list`);
  }
  return param.values;
}

/** Python indexing: a negative index counts from the end (how u = 0 reaches the last value). */
function pick<T>(list: readonly T[], index: number): T {
  return list[index < 0 ? list.length + index : index];
}

/**
 * W&B's inverse CDF of one parameter's distribution at u in [0, 1]. Numbers come back typed as
 * W&B types them: int for int_uniform and for q_* with an int q, float (boxed when integral)
 * for the continuous families, the configured value itself for constant and categorical.
 */
export function ppf(param: LeafParam, u: number): ParamValue {
  if (!(u >= 0 && u <= 1)) throw new RangeError(`ppf needs u in [0, 1], got ${u}`);
  switch (param.distribution) {
    case 'constant':
      return param.value ?? null;
    case 'categorical': {
      const values = valuesOf(param);
      return pick(values, randintPpf(u, 0, values.length));
    }
    case 'categorical_w_probabilities': {
      const values = valuesOf(param);
      const probabilities = param.probabilities ?? [];
      // numpy's argmin(u >= cumsum(p)): the first index whose running sum exceeds u, and index 0
      // when none does (u = 1), which is W&B's quirk.
      let cumulative = 0;
      for (let i = 0; i < probabilities.length; i++) {
        cumulative += probabilities[i];
        if (!(u >= cumulative)) return values[i];
      }
      return values[0];
    }
    case 'int_uniform': {
      const { min, max } = bounds(param);
      return randintPpf(u, min, max + 1) + 0;
    }
  }
  // A q_ form draws from its continuous base and rounds; the others are floats as drawn.
  const traits = DISTRIBUTION_TRAITS[param.distribution] as DistributionTraits | undefined;
  if (!traits) throw new Error(`unknown distribution '${String(param.distribution)}'`);
  const x = continuousPpf(param, traits.continuous, u);
  return traits.quantized ? quantize(x, param.q ?? DEFAULT_Q) : makeFloat(x);
}

/** The inverse CDF of a continuous family at u, as a plain number. */
function continuousPpf(param: LeafParam, distribution: Distribution, u: number): number {
  const mu = num(param.mu, 0);
  const sigma = num(param.sigma, 1);
  switch (distribution) {
    case 'uniform': {
      const { min, max } = bounds(param);
      return uniformPpf(u, min, max);
    }
    case 'log_uniform': {
      const { min, max } = bounds(param);
      return Math.exp(uniformPpf(u, min, max));
    }
    case 'log_uniform_values': {
      const { min, max } = bounds(param);
      return Math.exp(uniformPpf(u, Math.log(min), Math.log(max)));
    }
    case 'inv_log_uniform': {
      // W&B flips the direction: exp(−U(min, max)) evaluated at 1 − u.
      const { min, max } = bounds(param);
      return Math.exp(-uniformPpf(1 - u, min, max));
    }
    case 'inv_log_uniform_values': {
      const { min, max } = bounds(param);
      return Math.exp(-uniformPpf(1 - u, -Math.log(max), -Math.log(min)));
    }
    case 'normal':
      return ndtri(u) * sigma + mu;
    case 'log_normal':
      // scipy's lognorm(s=sigma, scale=exp(mu)): exp(sigma·z) scaled, which is 0 at u = 0.
      return Math.exp(sigma * ndtri(u)) * Math.exp(mu);
    case 'beta':
      return incompleteBetaInv(num(param.a, 1), num(param.b, 1), u);
    default:
      throw new Error(`distribution '${distribution}' is not continuous`);
  }
}

/**
 * One random draw. u = 0 is drawn again rather than used: it is where W&B's quirks live (the last
 * category, min − 1, −∞), and redrawing a single point changes no distribution.
 */
export function sample(param: LeafParam, rng: Uniform01): ParamValue {
  let u = rng();
  while (u === 0) u = rng();
  return ppf(param, u);
}
