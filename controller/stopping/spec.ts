/**
 * Reading a rule's keys and the metric's objective, shared by the rules. A rule may be built from
 * a spec that did not go through the config parser (`createStoppingRule` is a library call), so
 * it reads each key through its key table (types.ts `StoppingKey`): the default when absent, and
 * a `UsageError` naming the key for a value the config parser would refuse. The parser states
 * its expectations in the same words (`keyExpectation`).
 */
import { UsageError } from '../../domain/errors.js';
import { Objective } from '../../domain/objective.js';
import { isCount, isFiniteNumber, type EarlyTerminateSpec } from '../../domain/sweep-config.js';
import { isNumeric, toNumber } from '../../domain/values.js';
import type { StoppingConfig, StoppingKey, StoppingKeys } from './types.js';

/** What a value of the key is, as messages say it: `a positive integer`, `'trend' or 'last'`. */
export function keyExpectation(key: StoppingKey): string {
  switch (key.kind) {
    case 'count':
      return key.min === 1 ? 'a positive integer' : `an integer >= ${key.min}`;
    case 'number':
      return `a number greater than ${key.above}`;
    case 'boolean':
      return 'true or false';
    case 'choice': {
      const quoted = key.choices.map((c) => `'${c}'`);
      return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
    }
  }
}

/** Whether `v` is a value of the key (integral floats count as integers, as in W&B's schema). */
export function keyAccepts(key: StoppingKey, v: unknown): boolean {
  switch (key.kind) {
    case 'count':
      return isCount(v, key.min);
    case 'number':
      return isFiniteNumber(v) && toNumber(v) > key.above;
    case 'boolean':
      return typeof v === 'boolean';
    case 'choice':
      return key.choices.includes(v as string);
  }
}

type ValueOf<K extends StoppingKey> = K extends { kind: 'count' | 'number' }
  ? number
  : K extends { kind: 'boolean' }
    ? boolean
    : K extends { choices: readonly (infer C)[] }
      ? C
      : never;

/** A key's value: the default when it has one, else possibly undefined. */
export type KeyValue<K extends StoppingKey> = K extends { default: unknown } ? ValueOf<K> : ValueOf<K> | undefined;

export type KeyValues<T extends StoppingKeys> = { -readonly [N in keyof T]: KeyValue<T[N]> };

/** One key of the spec, as its table says; numbers come back plain (a boxed float unboxed). */
export function readKey<K extends StoppingKey>(spec: EarlyTerminateSpec, name: string, key: K): KeyValue<K> {
  const v = spec[name];
  if (v === undefined) return key.default as KeyValue<K>;
  if (!keyAccepts(key, v)) throw new UsageError(`early_terminate.${name}: expected ${keyExpectation(key)}, got ${shown(v)}`);
  return (isNumeric(v) ? toNumber(v) : v) as KeyValue<K>;
}

/** Every key of the table; keys the spec holds beyond it are ignored, as W&B's stop_runs ignores them. */
export function readKeys<T extends StoppingKeys>(spec: EarlyTerminateSpec, keys: T): KeyValues<T> {
  const out: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(keys)) out[name] = readKey(spec, name, key);
  return out as KeyValues<T>;
}

function shown(v: unknown): string {
  if (isNumeric(v)) return String(toNumber(v));
  return JSON.stringify(v) ?? String(v);
}

/**
 * What the rule compares trials on. An `Objective` minimizes for any goal but `maximize`, which
 * is how W&B's `stop_runs` reads a misspelt one (tests/fixtures/conformance/hyperband.json, x04).
 */
export function objectiveFor(config: StoppingConfig): Objective {
  if (typeof config.metric?.name !== 'string') throw new UsageError('early_terminate needs a metric (name and goal) to compare trials on');
  return new Objective(config.metric.name, config.metric.goal);
}

/** Short enough for a reason string, exact for the values people type. */
export function fmt(x: number): string {
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '0';
  return String(Number(x.toPrecision(6)));
}
