/**
 * Nested parameters. A config's `parameters` may nest (`opt: {parameters: {lr: …}}`); strategies
 * work on the leaves, each known by its path (`['opt', 'lr']`), and the program receives a nested
 * object again. Both directions follow W&B so that orders and key layouts match its own.
 */
import { Float, isFloatValue, isNumeric, stringifyTyped, toNumber, type ParamValue, type Params } from './values.js';
import type { LeafParam, ParamSpecs } from './sweep-config.js';

export type ParamPath = readonly string[];

export interface LeafEntry {
  path: ParamPath;
  param: LeafParam;
}

/** Python's string order: by code point (JavaScript's default compares UTF-16 code units). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done || cb.done) return ca.done ? (cb.done ? 0 : -1) : 1;
    const diff = (ca.value.codePointAt(0) ?? 0) - (cb.value.codePointAt(0) ?? 0);
    if (diff !== 0) return diff;
  }
}

/**
 * Every leaf in W&B's order: names sorted by code point at each level, depth first, so a nested
 * `a` and all its leaves come before a sibling `a-b`. Grid axes and random draws use this order.
 */
export function leafEntries(specs: ParamSpecs, prefix: ParamPath = []): LeafEntry[] {
  const out: LeafEntry[] = [];
  for (const name of Object.keys(specs).sort(compareCodePoints)) {
    const spec = specs[name];
    const path = [...prefix, name];
    if (spec.kind === 'nested') out.push(...leafEntries(spec.parameters, path));
    else out.push({ path, param: spec });
  }
  return out;
}

/** Where a leaf sits in the config: `parameters.opt.parameters.lr`. */
export function configPath(path: ParamPath): string {
  return path.map((name) => `parameters.${name}`).join('.');
}

export function isPlainObject(v: unknown): v is { [key: string]: ParamValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Float);
}

/**
 * The value at `path` in a run's parameters, or undefined when some level is missing or is not
 * an object (W&B's `dict_has_nested_key`).
 */
export function valueAtPath(params: Params, path: ParamPath): { value: ParamValue } | undefined {
  let current: ParamValue = params;
  for (const name of path) {
    if (!isPlainObject(current) || !Object.hasOwn(current, name)) return undefined;
    current = current[name];
  }
  return { value: current };
}

/** A deep copy, so callers may change what a strategy returns without touching the config. */
export function cloneValue(v: ParamValue): ParamValue {
  if (Array.isArray(v)) return v.map(cloneValue);
  if (isPlainObject(v)) {
    const out: { [key: string]: ParamValue } = {};
    for (const [k, e] of Object.entries(v)) out[k] = cloneValue(e);
    return out;
  }
  return v;
}

/** The separator W&B joins nested names with; it decides the key order of nested objects. */
const NESTING_DELIMITER = '.wbnest[599c28ca25da].';

/**
 * The nested object a program receives, from leaf values in `leafEntries` order, with W&B's key
 * order (its `to_config` re-nests flat names): top-level leaves first, in their order; then each
 * nested object, created where its first flat name `a<delim>x` falls in code-point order. Values
 * are copied.
 */
export function nestParams(leaves: readonly { path: ParamPath; value: ParamValue }[]): Params {
  const out: Params = {};
  const nested: { flat: string; path: ParamPath; value: ParamValue }[] = [];
  for (const { path, value } of leaves) {
    if (path.length === 1) out[path[0]] = cloneValue(value);
    else nested.push({ flat: path.join(NESTING_DELIMITER), path, value });
  }
  nested.sort((x, y) => compareCodePoints(x.flat, y.flat));
  for (const { path, value } of nested) {
    let target = out;
    for (const name of path.slice(0, -1)) {
      const next = target[name];
      if (isPlainObject(next)) {
        target = next;
      } else {
        const created: Params = {};
        target[name] = created;
        target = created;
      }
    }
    target[path[path.length - 1]] = cloneValue(value);
  }
  return out;
}

/**
 * A trial's parameter values as dotted names (`optimizer.beta1`), in the order the program sees
 * them: the columns of the CLI's table, the dashboard and exports. An empty nested object is
 * still a value the program receives, so it is a column of its own.
 */
export function flattenParams(params: ParamValue, prefix = ''): Array<[string, ParamValue]> {
  if (isPlainObject(params)) {
    const entries = Object.entries(params);
    if (entries.length === 0 && prefix !== '') return [[prefix, params]];
    return entries.flatMap(([k, v]) => flattenParams(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, params]];
}

/*
 * Telling parameter values apart. Two keys, because two questions are asked:
 *
 * - `wandbValueKey`: is this the same grid point or category as W&B would say? Used wherever
 *   Sweeper must agree with W&B on which values are one: the grid's points, the categories and
 *   the "already run" set of the model-based strategies (`leafValuesKey`).
 * - `looseValueKey`: did a caller mean these parameters? Used by `createOptimizer`'s
 *   `tell(params, ...)`, which matches results a harness reports, often through JSON or another
 *   language that writes 3.0 as 3 at any depth.
 *
 * Both ignore the key order of objects and keep `true` apart from `1` and `"1"` apart from `1`.
 */

/**
 * The key W&B tells values apart by (its hash of the YAML dump): an integral float equals its
 * int (`3.0` covers `3`: W&B's backend turns run values such as 3e6 into ints), but only at the
 * top of a value, so `[1.0]` does not cover `[1]`.
 */
export function wandbValueKey(value: ParamValue): string {
  if (isFloatValue(value)) {
    const n = toNumber(value as number | Float);
    if (Number.isInteger(n)) return String(n + 0);
  }
  return canonicalJson(value);
}

function canonicalJson(value: ParamValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return stringifyTyped(value);
}

/** A key where every number compares by value, at any depth: 3.0 matches 3, `[1.0]` matches `[1]`. */
export function looseValueKey(value: ParamValue): string {
  if (isNumeric(value)) return String(toNumber(value));
  if (Array.isArray(value)) return `[${value.map(looseValueKey).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${looseValueKey(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * One key for the values at several leaves (`wandbValueKey` of each), or undefined when a leaf is
 * missing from the parameters: which point of a search space a trial ran.
 */
export function leafValuesKey(params: Params, paths: readonly ParamPath[]): string | undefined {
  const parts: string[] = [];
  for (const path of paths) {
    const found = valueAtPath(params, path);
    if (!found) return undefined;
    parts.push(wandbValueKey(found.value));
  }
  return joinValueKeys(parts);
}

/** The same key from the leaves' values themselves, in the same order. */
export function valuesKey(values: readonly ParamValue[]): string {
  return joinValueKeys(values.map(wandbValueKey));
}

function joinValueKeys(parts: readonly string[]): string {
  return parts.join('\u0000');
}
