/**
 * The one ask loop. The controller (for each agent's RequestTrial), `createOptimizer` and
 * `nextRun` all decide the next trial here, so a limit or an exhausted space reads the same
 * everywhere: first the trial limit (run_cap or a grid's size, whichever is smaller, counting
 * every trial but the crashed, which are run again), then the strategy.
 */
import type { Params } from '../../domain/values.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { countsTowardLimit } from '../../domain/trial-state.js';
import type { Strategy, TrialObservation } from '../strategies/types.js';

export type AskOutcome =
  /** Run these parameters next. */
  | { kind: 'params'; params: Params }
  /** As many trials as the limit allows exist; `byRunCap` says whether run_cap (not the grid) set it. */
  | { kind: 'full'; byRunCap: boolean; reason: string }
  /** The strategy says the space is used up (every grid point has run). */
  | { kind: 'exhausted' };

/** run_cap or the grid's size, whichever is smaller; undefined when unbounded. */
export function trialLimit(config: Pick<SweepConfig, 'run_cap'>, strategy: Strategy): number | undefined {
  const size = strategy.size();
  const cap = config.run_cap;
  if (size === undefined) return cap;
  return cap === undefined ? size : Math.min(cap, size);
}

/** How many trials count toward the limit. */
export function countedTrials(trials: readonly { state: TrialObservation['state'] }[]): number {
  let n = 0;
  for (const t of trials) if (countsTowardLimit(t.state)) n++;
  return n;
}

/** Why a full sweep is full, as the sweep's finish reason says it. */
export function fullReason(config: Pick<SweepConfig, 'run_cap'>, strategy: Strategy): { byRunCap: boolean; reason: string } {
  const cap = config.run_cap;
  const size = strategy.size();
  const byRunCap = cap !== undefined && (size === undefined || cap <= size);
  return { byRunCap, reason: byRunCap ? `run_cap ${cap} reached` : 'grid exhausted' };
}

export function askNext(config: Pick<SweepConfig, 'run_cap'>, strategy: Strategy, trials: readonly TrialObservation[]): AskOutcome {
  const limit = trialLimit(config, strategy);
  if (limit !== undefined && countedTrials(trials) >= limit) return { kind: 'full', ...fullReason(config, strategy) };
  const s = strategy.suggest(trials);
  return s.kind === 'exhausted' ? { kind: 'exhausted' } : { kind: 'params', params: s.params };
}
