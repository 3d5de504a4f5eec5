/**
 * Stopping rules by `early_terminate.type`. The controller asks `createStoppingRule` and then
 * only talks to the `StoppingRule` interface; the config parser asks the registry for a type's
 * keys and checks, never a particular rule. `stopRuns`, the same decision as a library call,
 * lives with the library in controller/optimizer/stop-runs.ts.
 */
import { UsageError } from '../../domain/errors.js';
import { AshaRule, ASHA_KEYS, checkAsha } from './asha.js';
import { HyperbandRule, HYPERBAND_KEYS, checkHyperband } from './hyperband.js';
import { MedianRule, MEDIAN_KEYS, checkMedian } from './median.js';
import { StopMonitor } from './monitor.js';
import { STOPPING_TYPES, type StoppingCheck, type StoppingConfig, type StoppingKeys, type StoppingRule, type StoppingType } from './types.js';

/** What the controller and the config parser know of a stopping rule. */
export interface StoppingRuleEntry {
  /** Its keys besides `type`, with their defaults. */
  keys: StoppingKeys;
  check: StoppingCheck;
  create(config: StoppingConfig): StoppingRule;
}

export const STOPPING_RULES: Readonly<Record<StoppingType, StoppingRuleEntry>> = {
  hyperband: { keys: HYPERBAND_KEYS, check: checkHyperband, create: (config) => new HyperbandRule(config) },
  asha: { keys: ASHA_KEYS, check: checkAsha, create: (config) => new AshaRule(config) },
  median: { keys: MEDIAN_KEYS, check: checkMedian, create: (config) => new MedianRule(config) },
};

/** The registry's entry for an `early_terminate.type`, or undefined for a name that is not one. */
export function stoppingRuleEntry(type: unknown): StoppingRuleEntry | undefined {
  return typeof type === 'string' && Object.hasOwn(STOPPING_RULES, type) ? STOPPING_RULES[type as StoppingType] : undefined;
}

/** The rule the config asks for, or null when it has no `early_terminate`. */
export function createStoppingRule(config: StoppingConfig): StoppingRule | null {
  const spec = config.early_terminate;
  if (spec === undefined) return null;
  const entry = stoppingRuleEntry(spec.type);
  if (!entry) {
    throw new UsageError(`early_terminate.type: unknown type '${String(spec.type)}' (supported: ${STOPPING_TYPES.join(', ')})`);
  }
  return entry.create(config);
}

/** The controller's per-sweep monitor for the config's rule, or null when it has none. */
export function createStopMonitor(config: StoppingConfig): StopMonitor | null {
  const rule = createStoppingRule(config);
  return rule && config.metric ? new StopMonitor(rule, config.metric.name) : null;
}

export type * from './types.js';
export { STOPPING_TYPES } from './types.js';
export { HyperbandRule, hyperbandBands, HYPERBAND_DEFAULTS, HYPERBAND_KEYS } from './hyperband.js';
export { AshaRule, ashaRungs, ashaFit, ASHA_DEFAULTS, ASHA_FITS, ASHA_KEYS, type AshaFit } from './asha.js';
export { MedianRule, MEDIAN_DEFAULTS, MEDIAN_KEYS } from './median.js';
export { StopMonitor, type SeriesView } from './monitor.js';
export { keyAccepts, keyExpectation } from './spec.js';
