/**
 * Strategies by method. The controller asks `createStrategy` and then only talks to the
 * `Strategy` interface, never to a particular algorithm; the config parser asks the registry
 * what a method needs of a config, never a particular algorithm either.
 */
import { UsageError } from '../../domain/errors.js';
import type { ConfigIssue, Method, SweepConfig } from '../../domain/sweep-config.js';
import { createBayesStrategy } from './bayes.js';
import { createGridStrategy, validateGridConfig } from './grid.js';
import { createRandomStrategy } from './random.js';
import { createTpeStrategy } from './tpe.js';
import type { Strategy, StrategyFactory, StrategyOptions } from './types.js';

/** What the controller and the config parser know of a method. */
export interface StrategyEntry {
  create: StrategyFactory;
  /** It searches for the best value of the metric, so a config must name one. */
  needsMetric: boolean;
  /**
   * Problems only this method has with an otherwise valid config (a grid cannot enumerate a
   * log_uniform), reported by the config parser with the rest.
   */
  validate?(config: SweepConfig): ConfigIssue[];
}

export const STRATEGIES: Readonly<Record<Method, StrategyEntry>> = {
  grid: { create: createGridStrategy, needsMetric: false, validate: validateGridConfig },
  random: { create: createRandomStrategy, needsMetric: false },
  bayes: { create: createBayesStrategy, needsMetric: true },
  tpe: { create: createTpeStrategy, needsMetric: true },
};

/** The registry's entry for a method, or undefined for a name that is not one. */
export function strategyEntry(method: unknown): StrategyEntry | undefined {
  return typeof method === 'string' && Object.hasOwn(STRATEGIES, method) ? STRATEGIES[method as Method] : undefined;
}

export function createStrategy(config: SweepConfig, options: StrategyOptions): Strategy {
  const entry = strategyEntry(config.method);
  if (!entry) throw new UsageError(`unknown method '${String(config.method)}'`);
  return entry.create(config, options);
}

export type * from './types.js';
export { ppf, sample, roundHalfEven, type Uniform01 } from './distributions.js';
export { createGridStrategy, validateGridConfig, GridConfigError, arange } from './grid.js';
export { createRandomStrategy } from './random.js';
export { createBayesStrategy, initialDesignSize } from './bayes.js';
export { createTpeStrategy } from './tpe.js';
