/**
 * The strategy interface. A strategy is pure: the config, the trials so far and a seed go in,
 * parameters come out. It never touches the network or the clock, so the controller, the library
 * API (`nextRun`) and `sweeper suggest` all drive the same code.
 */
import type { Params } from '../../domain/values.js';
import type { SweepConfig } from '../../domain/sweep-config.js';

import type { TrialState } from '../../domain/trial-state.js';
export type { TrialState };

/** What a strategy may know of one trial. */
export interface TrialObservation {
  id: string;
  /** Parameters as the program received them (nested). */
  params: Params;
  state: TrialState;
  /**
   * Best value of the sweep metric so far (per the goal), or null when none was logged.
   * Raw orientation: not negated for maximize.
   */
  value: number | null;
}

export type Suggestion =
  /** Run these parameters next. */
  | { kind: 'params'; params: Params }
  /** The search space is used up (a grid whose every point has run): the sweep is finished. */
  | { kind: 'exhausted' };

export interface Strategy {
  readonly method: string;
  /**
   * Propose the next trial given every trial created so far, in creation order (running ones
   * included). Deterministic: the same config, seed and observations give the same suggestion.
   */
  suggest(trials: readonly TrialObservation[]): Suggestion;
  /** How many trials the search space holds, when finite (a grid); undefined otherwise. */
  size(): number | undefined;
}

export interface StrategyOptions {
  seed: number;
}

export type StrategyFactory = (config: SweepConfig, options: StrategyOptions) => Strategy;
