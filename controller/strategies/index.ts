/**
 * Strategies by method. The controller asks `createStrategy` and then only talks to the
 * `Strategy` interface, never to a particular algorithm.
 */
import { UsageError } from '../../domain/errors.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { createBayesStrategy } from './bayes.js';
import { createGridStrategy } from './grid.js';
import { createRandomStrategy } from './random.js';
import { createTpeStrategy } from './tpe.js';
import type { Strategy, StrategyOptions } from './types.js';

export function createStrategy(config: SweepConfig, options: StrategyOptions): Strategy {
  switch (config.method) {
    case 'grid':
      return createGridStrategy(config, options);
    case 'random':
      return createRandomStrategy(config, options);
    case 'bayes':
      return createBayesStrategy(config, options);
    case 'tpe':
      return createTpeStrategy(config, options);
    default: {
      const unknown: never = config.method;
      throw new UsageError(`unknown method '${String(unknown)}'`);
    }
  }
}

export type * from './types.js';
export { ppf, sample, roundHalfEven, type Uniform01 } from './distributions.js';
export { createGridStrategy, validateGridConfig, GridConfigError, gridKey, arange } from './grid.js';
export { createRandomStrategy } from './random.js';
export { createBayesStrategy, initialDesignSize } from './bayes.js';
export { createTpeStrategy } from './tpe.js';
export {
  leafEntries,
  nestParams,
  valueAtPath,
  formatPath,
  configPath,
  type LeafEntry,
  type ParamPath,
} from '../../domain/params.js';
