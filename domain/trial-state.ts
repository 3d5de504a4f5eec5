/**
 * The states of trials and sweeps, and what each state means. One place decides which states are
 * terminal, which may rank among the best and in what order people see them, so the controller,
 * the dashboard and the CLI cannot disagree.
 */

/**
 * Every state a trial can be in, in the order people read them (CLI tables and the dashboard).
 * `preempted`: its host took the machine back (a Slurm time limit or preemption) before it ended;
 * it waits to be continued, under the same id, by the next agent that asks.
 */
export const TRIAL_STATES = ['running', 'preempted', 'finished', 'stopped', 'failed', 'crashed'] as const;
export type TrialState = (typeof TRIAL_STATES)[number];

export const SWEEP_STATES = ['running', 'paused', 'finished', 'stopped', 'cancelled'] as const;
export type SweepState = (typeof SWEEP_STATES)[number];

export const TERMINAL_TRIAL_STATES: ReadonlySet<TrialState> = new Set(['finished', 'failed', 'crashed', 'stopped']);

/** A trial in this state has ended and will never change again. */
export function isTerminal(state: TrialState): boolean {
  return TERMINAL_TRIAL_STATES.has(state);
}

/**
 * Whether a trial in this state may be ranked among the best: not when it failed or crashed,
 * whatever it logged before (the leaderboard, the sweep's best value, `sweeper local`).
 */
export function isRankable(state: string): boolean {
  return state !== 'failed' && state !== 'crashed';
}

/**
 * Crashed trials were lost with their agent, not because of their parameters: they are run again
 * and do not count toward run_cap or a grid's size.
 */
export function countsTowardLimit(state: TrialState): boolean {
  return state !== 'crashed';
}

/** A sweep in one of these states hands out no trial again. */
export function isSweepOver(state: SweepState): boolean {
  return state === 'finished' || state === 'stopped' || state === 'cancelled';
}

/** A trial that still has work to do: running, or preempted and waiting to be continued. */
export function isUnfinished(state: TrialState): boolean {
  return state === 'running' || state === 'preempted';
}

/** Sorts states in `TRIAL_STATES` order; a state this version does not know goes last. */
export function trialStateOrder(state: string): number {
  const i = (TRIAL_STATES as readonly string[]).indexOf(state);
  return i < 0 ? TRIAL_STATES.length : i;
}
