/**
 * The search space as model-based strategies see it: one dimension per searchable leaf, each
 * point a Float64Array.
 *
 * - A numeric leaf lives in [0, 1] through its own prior: z = CDF(x), and x = W&B's inverse CDF at
 *   z. So uniform families are linear in z, the log families are logarithmic (a learning rate's
 *   1e-4 and 1e-3 are as far apart as 1e-3 and 1e-2), and normal or beta priors put their mass
 *   where they say. Integers and quantized families take a continuous z and round it to a value
 *   (`snap`), so a model always sees a point that can actually be run.
 * - A categorical leaf holds the index of its value, never an ordered number: the GP's kernel
 *   compares categories for equality and TPE counts them.
 * - Constants, and leaves with a single possible value, are not dimensions; they ride along.
 */
import { DISTRIBUTION_TRAITS } from '../../domain/distributions.js';
import { Float, isIntValue, toNumber, type ParamValue, type Params } from '../../domain/values.js';
import type { LeafParam, ParamSpecs } from '../../domain/sweep-config.js';
import { ppf } from './distributions.js';
import { leafEntries, leafValuesKey, nestParams, valueAtPath, valuesKey, wandbValueKey, type LeafEntry, type ParamPath } from '../../domain/params.js';
import { normalCdf } from './numerics/sampling.js';
import { incompleteBeta } from './numerics/special.js';

/** Normal-family priors have infinite tails: z stays this far inside (0, 1), about ±4.75σ. */
const TAIL_Z = 1e-6;

export interface NumericDim {
  kind: 'numeric';
  leaf: LeafEntry;
  /** Integers and quantized families: z is rounded to a value the program can receive. */
  discrete: boolean;
  /** int_uniform: how many integers; undefined otherwise. */
  count?: number;
  zMin: number;
  zMax: number;
}

export interface CategoricalDim {
  kind: 'categorical';
  leaf: LeafEntry;
  values: ParamValue[];
  /** The prior probability of each value (uniform unless the config gives probabilities). */
  weights: Float64Array;
}

export type Dim = NumericDim | CategoricalDim;

function num(v: number | Float | undefined, fallback: number): number {
  return v === undefined ? fallback : toNumber(v);
}

/**
 * z = CDF(x) under the leaf's distribution; the inverse of `ppf` on its continuous families. A
 * q_ form uses its continuous base: rounding moves x, not the scale it lives on.
 */
function cdf(param: LeafParam, x: number): number {
  const min = num(param.min, 0);
  const max = num(param.max, 1);
  const mu = num(param.mu, 0);
  const sigma = num(param.sigma, 1);
  const logOf = (v: number) => (v > 0 ? Math.log(v) : -Infinity);
  const continuous = DISTRIBUTION_TRAITS[param.distribution].continuous;
  switch (continuous) {
    case 'uniform':
      return (x - min) / (max - min);
    case 'int_uniform':
      return (x - min + 0.5) / (max - min + 1);
    case 'log_uniform':
      return (logOf(x) - min) / (max - min);
    case 'log_uniform_values':
      return (logOf(x) - Math.log(min)) / (Math.log(max) - Math.log(min));
    case 'inv_log_uniform':
      // ppf: x = exp(−((1 − z)(max − min) + min)).
      return 1 - (-logOf(x) - min) / (max - min);
    case 'inv_log_uniform_values':
      return (logOf(x) - Math.log(min)) / (Math.log(max) - Math.log(min));
    case 'normal':
      return normalCdf((x - mu) / sigma);
    case 'log_normal':
      return x > 0 ? normalCdf((Math.log(x) - mu) / sigma) : 0;
    case 'beta':
      return x <= 0 ? 0 : x >= 1 ? 1 : incompleteBeta(num(param.a, 1), num(param.b, 1), x);
    default:
      throw new Error(`distribution '${param.distribution}' is not numeric`);
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

export class SearchSpace {
  readonly leaves: LeafEntry[];
  readonly dims: Dim[];
  /** Per dimension, 1 when categorical: what the GP's kernel needs. */
  readonly categorical: Uint8Array;
  /** The value of every leaf that is not a dimension, by its index in `leaves`. */
  private readonly fixed = new Map<number, ParamValue>();
  private readonly dimOfLeaf: number[] = [];
  /** Where each dimension's value sits in a trial's parameters, for `keyOfParams`. */
  private readonly dimPaths: ParamPath[];

  constructor(parameters: ParamSpecs) {
    this.leaves = leafEntries(parameters);
    this.dims = [];
    this.leaves.forEach((leaf, i) => {
      const dim = makeDim(leaf);
      if ('kind' in dim) {
        this.dimOfLeaf[i] = this.dims.length;
        this.dims.push(dim);
      } else {
        this.dimOfLeaf[i] = -1;
        this.fixed.set(i, dim.value);
      }
    });
    this.categorical = Uint8Array.from(this.dims, (d) => (d.kind === 'categorical' ? 1 : 0));
    this.dimPaths = this.dims.map((d) => d.leaf.path);
  }

  get D(): number {
    return this.dims.length;
  }

  /**
   * A trial's parameters as a point, or undefined when they do not fit the space (a missing
   * leaf, a category the config does not list): such a trial cannot inform a model.
   */
  encode(params: Params): Float64Array | undefined {
    const point = new Float64Array(this.D);
    for (let d = 0; d < this.D; d++) {
      const dim = this.dims[d];
      const found = valueAtPath(params, dim.leaf.path);
      if (!found) return undefined;
      if (dim.kind === 'categorical') {
        const key = wandbValueKey(found.value);
        const index = dim.values.findIndex((v) => wandbValueKey(v) === key);
        if (index < 0) return undefined;
        point[d] = index;
      } else {
        const v = found.value;
        if (typeof v !== 'number' && !(v instanceof Float)) return undefined;
        const z = cdf(dim.leaf.param, toNumber(v));
        if (Number.isNaN(z)) return undefined;
        point[d] = clamp(z, dim.zMin, dim.zMax);
      }
    }
    return point;
  }

  /** The value of dimension d at coordinate z (a category index for categorical dimensions). */
  valueAt(d: number, z: number): ParamValue {
    const dim = this.dims[d];
    if (dim.kind === 'categorical') return dim.values[clamp(Math.round(z), 0, dim.values.length - 1)];
    const zc = clamp(z, dim.zMin, dim.zMax);
    if (dim.count !== undefined) {
      const min = toNumber(dim.leaf.param.min!);
      return min + clamp(Math.floor(zc * dim.count), 0, dim.count - 1);
    }
    return ppf(dim.leaf.param, zc);
  }

  /** The parameters a program receives for this point, nested, constants included. */
  decode(point: Float64Array): Params {
    return nestParams(
      this.leaves.map((leaf, i) => {
        const d = this.dimOfLeaf[i];
        return { path: leaf.path, value: d < 0 ? (this.fixed.get(i) ?? null) : this.valueAt(d, point[d]) };
      }),
    );
  }

  /**
   * Moves every discrete coordinate, in place, to the representative of the value it decodes to,
   * so that two points that run the same parameters are the same point.
   */
  snap(point: Float64Array): Float64Array {
    for (let d = 0; d < this.D; d++) {
      const dim = this.dims[d];
      if (dim.kind === 'categorical') {
        point[d] = clamp(Math.round(point[d]), 0, dim.values.length - 1);
        if (dim.weights[point[d]] === 0) point[d] = dim.weights.findIndex((w) => w > 0);
      } else if (dim.count !== undefined) {
        point[d] = (clamp(Math.floor(clamp(point[d], 0, 1) * dim.count), 0, dim.count - 1) + 0.5) / dim.count;
      } else if (dim.discrete) {
        const v = this.valueAt(d, point[d]);
        point[d] = clamp(cdf(dim.leaf.param, toNumber(v as number | Float)), dim.zMin, dim.zMax);
      } else {
        point[d] = clamp(point[d], dim.zMin, dim.zMax);
      }
    }
    return point;
  }

  /**
   * The point for a vector of uniforms in [0, 1): numeric coordinates as they are, categories
   * drawn by their prior weights, then snapped. Random and space-filling designs go through this.
   */
  fromUnit(u: ArrayLike<number>): Float64Array {
    const point = new Float64Array(this.D);
    for (let d = 0; d < this.D; d++) {
      const dim = this.dims[d];
      if (dim.kind === 'categorical') {
        let acc = 0;
        let index = dim.values.length - 1;
        for (let c = 0; c < dim.values.length; c++) {
          acc += dim.weights[c];
          if (u[d] < acc && dim.weights[c] > 0) {
            index = c;
            break;
          }
        }
        while (dim.weights[index] === 0 && index > 0) index--;
        point[d] = index;
      } else {
        point[d] = dim.zMin + u[d] * (dim.zMax - dim.zMin);
      }
    }
    return this.snap(point);
  }

  /**
   * `preferred` (a design point) unless a trial has run it, else a random point no trial has run
   * (after 100 tries, any random point: a small discrete space can be used up).
   */
  untakenPoint(preferred: Float64Array | undefined, taken: ReadonlySet<string>, rng: () => number): Float64Array {
    const random = () => this.fromUnit(Float64Array.from(this.dims, () => rng()));
    let point = preferred ?? random();
    for (let tries = 0; taken.has(this.keyOfPoint(point)) && tries < 100; tries++) point = random();
    return point;
  }

  /** Identifies the parameters a point runs, for telling duplicates apart (3 and 3.0 agree). */
  keyOfPoint(point: Float64Array): string {
    const values: ParamValue[] = [];
    for (let d = 0; d < this.D; d++) values.push(this.valueAt(d, point[d]));
    return valuesKey(values);
  }

  /** The same key from a trial's parameters, or undefined when they do not fit the space. */
  keyOfParams(params: Params): string | undefined {
    return leafValuesKey(params, this.dimPaths);
  }
}

/** A dimension, or the single value of a leaf that has only one. */
function makeDim(leaf: LeafEntry): Dim | { value: ParamValue } {
  const { param } = leaf;
  const traits = DISTRIBUTION_TRAITS[param.distribution];
  if (traits.family === 'constant') return { value: param.value ?? null };
  if (traits.family === 'categorical') {
    const values = param.values ?? [];
    const raw = param.probabilities ?? values.map(() => 1);
    const total = raw.reduce((a, b) => a + b, 0);
    const weights = Float64Array.from(raw, (p) => p / total);
    const allowed = values.filter((_, i) => weights[i] > 0);
    if (allowed.length <= 1) return { value: allowed[0] ?? values[0] ?? null };
    return { kind: 'categorical', leaf, values, weights };
  }
  if (traits.integer) {
    const min = toNumber(param.min!);
    const max = toNumber(param.max!);
    const count = max - min + 1;
    if (count <= 1 || !isIntValue(min)) return { value: min };
    return { kind: 'numeric', leaf, discrete: true, count, zMin: 0, zMax: 1 };
  }
  const tail = traits.family === 'normal' ? TAIL_Z : 0;
  return { kind: 'numeric', leaf, discrete: traits.quantized, zMin: tail, zMax: 1 - tail };
}
