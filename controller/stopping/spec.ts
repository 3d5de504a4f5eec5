/**
 * Reading a rule's keys and the metric's orientation, shared by the rules. Rules accept a spec
 * that did not go through the config parser (the library's `stopRuns`), so they fill defaults
 * and refuse what they cannot run, with the key in the message.
 */
import { UsageError } from '../../domain/errors.js';
import { isNumeric, toNumber } from '../../domain/values.js';
import type { EarlyTerminateSpec } from '../../domain/sweep-config.js';
import type { StoppingConfig } from './types.js';

export function numberKey(spec: EarlyTerminateSpec, key: string, fallback?: number): number | undefined {
  const v = spec[key];
  if (v === undefined) return fallback;
  if (!isNumeric(v) || !Number.isFinite(toNumber(v))) {
    throw new UsageError(`early_terminate.${key}: expected a number, got ${JSON.stringify(v)}`);
  }
  return toNumber(v);
}

export function requireAtLeast(key: string, value: number, min: number): number {
  if (!(value >= min)) throw new UsageError(`early_terminate.${key}: must be at least ${min}, got ${value}`);
  return value;
}

export function requireAbove(key: string, value: number, min: number): number {
  if (!(value > min)) throw new UsageError(`early_terminate.${key}: must be greater than ${min}, got ${value}`);
  return value;
}

export interface Orientation {
  metric: string;
  /** Multiplies a logged value into "lower is better". */
  sign: 1 | -1;
  /** The comparison a stopped value fails, as the user reads it. */
  worse: '>' | '<';
}

export function orientation(config: StoppingConfig): Orientation {
  if (typeof config.metric?.name !== 'string') throw new UsageError('early_terminate needs a metric (name and goal) to compare trials on');
  const maximize = config.metric.goal === 'maximize';
  return { metric: config.metric.name, sign: maximize ? -1 : 1, worse: maximize ? '<' : '>' };
}

/** Short enough for a reason string, exact for the values people type. */
export function fmt(x: number): string {
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '0';
  return String(Number(x.toPrecision(6)));
}
