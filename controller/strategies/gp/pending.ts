/**
 * What running trials are taken to come out at while they run (see GpPosterior), so that agents
 * asking at once are steered apart. Each rule maps the means the observed data predict at the
 * pending points to the outcomes assumed there.
 *
 * bayes uses the kriging believer (see where it builds its posterior for how it was chosen); the
 * constant liar at the mean observed value was its rule before.
 */
import type { PendingOutcomes } from './gp.js';

/** The "constant liar": every pending point comes out at `lie`. */
export function constantLiar(lie: number): PendingOutcomes {
  return (predicted) => new Float64Array(predicted.length).fill(lie);
}

/**
 * The "kriging believer": every pending point comes out at its predicted mean. The posterior
 * mean is then unchanged everywhere (an observation at the predicted mean moves nothing) while
 * the variance drops around the pending points.
 */
export const krigingBeliever: PendingOutcomes = (predicted) => new Float64Array(predicted);
