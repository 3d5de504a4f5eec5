/**
 * Grid search with W&B's semantics (wandb/sweeps `grid_search_next_runs`):
 * - the grid is the Cartesian product of the leaves that are not constants, in `leafEntries`
 *   order, the first leaf varying slowest; constants ride along but are not part of a point;
 * - `int_uniform` expands to min..max inclusive, `q_uniform` to numpy's `arange(min, max, q)`;
 * - values are told apart by W&B's key (`wandbValueKey`), so duplicates in a list are one
 *   point, placed where the value first appears but emitted as its last listed instance;
 * - a point any existing trial has run, in any state, is not suggested again. Sweeper may later
 *   retry crashed points; for now this follows W&B.
 */
import { UsageError } from '../../domain/errors.js';
import { DISTRIBUTION_TRAITS } from '../../domain/distributions.js';
import { Float, isIntValue, makeFloat, toNumber, type ParamValue, type Params } from '../../domain/values.js';
import { isParsedConfig, type ConfigIssue, type LeafParam, type SweepConfig } from '../../domain/sweep-config.js';
import type { Strategy, StrategyOptions, Suggestion, TrialObservation } from './types.js';
import {
  configPath,
  isPlainObject,
  leafEntries,
  nestParams,
  valueAtPath,
  wandbValueKey,
  type ParamPath,
} from '../../domain/params.js';

/** A config that cannot run as a grid; `issues` carry the path to each offending parameter. */
export class GridConfigError extends UsageError {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join('; '));
  }
}

/** Larger axes are almost certainly a mistaken q or range, and would exhaust memory. */
export const MAX_AXIS_VALUES = 1_000_000;

interface GridAxis {
  path: ParamPath;
  /** Distinct values in order of first appearance, each as its last listed instance. */
  values: ParamValue[];
  /** wandbValueKey → position in `values`. */
  positions: Map<string, number>;
  /** The union of the keys of dict values: keys a run adds at runtime are dropped before matching. */
  knownKeys: Set<string> | undefined;
}

/** How many values numpy's `arange(start, stop, step)` holds. */
function arangeLength(start: number, stop: number, step: number): number {
  const length = Math.ceil((stop - start) / step);
  return length > 0 ? length : 0;
}

/**
 * numpy's `arange(start, stop, step).tolist()`. All-int arguments give ints; otherwise floats,
 * computed as numpy does: the second value is start + step, and the i-th is start + i·delta with
 * delta = (start + step) − start, which is why `arange(1.0, 1.3, 0.1)` ends at 1.3000000000000003.
 */
export function arange(start: number | Float, stop: number | Float, step: number | Float): ParamValue[] {
  const s = toNumber(start);
  const d = toNumber(step);
  const length = arangeLength(s, toNumber(stop), d);
  if (isIntValue(start) && isIntValue(stop) && isIntValue(step)) {
    return Array.from({ length }, (_, i) => s + i * d);
  }
  const delta = s + d - s;
  return Array.from({ length }, (_, i) => makeFloat(i === 0 ? s : i === 1 ? s + d : s + i * delta));
}

/** How many raw values a leaf expands to (before duplicates merge), or an issue. */
function axisLength(param: LeafParam): number | string {
  const traits = DISTRIBUTION_TRAITS[param.distribution];
  if (!traits.gridable) {
    return traits.weighted
      ? 'probabilities cannot be used with method grid, which runs every value once; remove them'
      : `distribution '${param.distribution}' cannot be used with method grid; use values, int_uniform or q_uniform`;
  }
  if (traits.integer) return toNumber(param.max ?? 0) - toNumber(param.min ?? 0) + 1;
  if (traits.quantized) return arangeLength(toNumber(param.min ?? 0), toNumber(param.max ?? 0), toNumber(param.q ?? 1));
  return param.values?.length ?? 0;
}

/**
 * Why a config cannot run as a grid, one issue per parameter. The config parser reports these at
 * validation time (the grid's entry in the strategy registry); `createGridStrategy` throws them
 * as a `GridConfigError` for a config that did not go through the parser.
 */
export function validateGridConfig(config: SweepConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  let points = 1;
  for (const { path, param } of leafEntries(config.parameters)) {
    if (param.distribution === 'constant') continue;
    const length = axisLength(param);
    const where = configPath(path);
    if (typeof length === 'string') {
      issues.push({ path: where, message: length });
    } else if (!(length >= 1)) {
      issues.push({ path: where, message: 'expands to no values, so the grid would be empty' });
    } else if (length > MAX_AXIS_VALUES) {
      issues.push({
        path: where,
        message: `expands to ${length} values; a grid axis may hold at most ${MAX_AXIS_VALUES}`,
      });
    } else {
      points *= length;
    }
  }
  if (issues.length === 0 && points > Number.MAX_SAFE_INTEGER) {
    issues.push({ path: 'parameters', message: `the grid has more than 2^53 points (${points})` });
  }
  return issues;
}

function rawAxisValues(param: LeafParam): ParamValue[] {
  const traits = DISTRIBUTION_TRAITS[param.distribution];
  if (traits.integer) {
    const min = toNumber(param.min ?? 0);
    return Array.from({ length: toNumber(param.max ?? 0) - min + 1 }, (_, i) => min + i);
  }
  if (traits.quantized) return arange(param.min ?? 0, param.max ?? 0, param.q ?? new Float(1));
  return param.values ?? [];
}

function buildAxis(path: ParamPath, raw: readonly ParamValue[]): GridAxis {
  const positions = new Map<string, number>();
  const values: ParamValue[] = [];
  let knownKeys: Set<string> | undefined;
  for (const value of raw) {
    const key = wandbValueKey(value);
    const at = positions.get(key);
    // W&B looks values up by key in a dict built from the list, so the last instance wins.
    if (at === undefined) {
      positions.set(key, values.length);
      values.push(value);
    } else {
      values[at] = value;
    }
    if (isPlainObject(value)) {
      knownKeys ??= new Set();
      for (const k of Object.keys(value)) knownKeys.add(k);
    }
  }
  return { path, values, positions, knownKeys };
}

/**
 * The grid strategy. Each call maps every trial to its point (a mixed-radix index over the axes)
 * and returns the first index not taken, so a call costs O(trials) whatever the grid's size.
 */
export function createGridStrategy(config: SweepConfig, _options?: StrategyOptions): Strategy {
  // A parsed grid config was validated by the parser, through the registry: once is enough.
  if (!(isParsedConfig(config) && config.method === 'grid')) {
    const issues = validateGridConfig(config);
    if (issues.length > 0) throw new GridConfigError(issues);
  }

  const leaves = leafEntries(config.parameters);
  const axes: GridAxis[] = [];
  const axisOfLeaf: (GridAxis | undefined)[] = [];
  for (const { path, param } of leaves) {
    const axis = param.distribution === 'constant' ? undefined : buildAxis(path, rawAxisValues(param));
    if (axis) axes.push(axis);
    axisOfLeaf.push(axis);
  }
  const size = axes.reduce((n, axis) => n * axis.values.length, 1);

  /** The point a run's parameters cover, or undefined when some axis is missing or off-grid. */
  const pointOf = (params: Params): number | undefined => {
    let index = 0;
    for (const axis of axes) {
      const found = valueAtPath(params, axis.path);
      if (!found) return undefined;
      let value = found.value;
      if (axis.knownKeys && isPlainObject(value)) {
        const known = axis.knownKeys;
        value = Object.fromEntries(Object.entries(value).filter(([k]) => known.has(k)));
      }
      const position = axis.positions.get(wandbValueKey(value));
      if (position === undefined) return undefined;
      index = index * axis.values.length + position;
    }
    return index;
  };

  const paramsAt = (index: number): Params => {
    const positions = new Map<GridAxis, number>();
    for (let i = axes.length - 1; i >= 0; i--) {
      const length = axes[i].values.length;
      positions.set(axes[i], index % length);
      index = Math.floor(index / length);
    }
    return nestParams(
      leaves.map(({ path, param }, i) => {
        const axis = axisOfLeaf[i];
        const value = axis ? axis.values[positions.get(axis) ?? 0] : (param.value ?? null);
        return { path, value };
      }),
    );
  };

  return {
    method: 'grid',
    size: () => size,
    suggest(trials: readonly TrialObservation[]): Suggestion {
      const taken = new Set<number>();
      for (const trial of trials) {
        const point = pointOf(trial.params);
        if (point !== undefined) taken.add(point);
      }
      let next = 0;
      while (taken.has(next)) next++;
      if (next >= size) return { kind: 'exhausted' };
      return { kind: 'params', params: paramsAt(next) };
    },
  };
}
