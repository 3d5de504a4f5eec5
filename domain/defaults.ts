/**
 * Defaults a person can change with a flag or an option, named once. Each use site takes these
 * instead of restating a number, so `--help`, the README and the code cannot drift apart.
 */

/** How long a trial may take to exit after SIGTERM before SIGKILL (`sweeper agent --grace`). */
export const DEFAULT_GRACE_MS = 10_000;
/** A running trial whose agent sent no heartbeat for this long becomes `crashed`. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;
/** The longest heartbeat interval; shorter when the timeout is, so several beats fit in one. */
export const MAX_HEARTBEAT_INTERVAL_MS = 5_000;
/** How many times the parameters of a crashed trial are run again. */
export const DEFAULT_MAX_CRASH_RETRIES = 1;
/** How long CompleteTrial waits for a trial's last metric batch to be ingested. */
export const DEFAULT_METRIC_WAIT_MS = 10_000;
/** How often an agent samples the GPU of each running trial (`sweeper agent --gpu-sample-interval`). */
export const DEFAULT_GPU_SAMPLE_MS = 5_000;
/**
 * This many failed trials in a row within an agent's first minute stop it (`--max-initial-failures`,
 * 0: never), as W&B's agent does: the program or its environment is broken.
 */
export const DEFAULT_MAX_INITIAL_FAILURES = 5;

/** The heartbeat interval agents are told for a given timeout: at least four beats per timeout. */
export function heartbeatIntervalFor(timeoutMs: number): number {
  return Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.floor(timeoutMs / 4));
}

/**
 * After the checkpoint signal (SIGUSR1) of a preemption, how long a trial may take to save its
 * state before it gets SIGTERM (`sweeper agent --preempt-grace`). Slurm's default warning in
 * `sweeper launch slurm` (`--signal B:USR1@120`) leaves room for it and the SIGTERM grace.
 */
export const DEFAULT_PREEMPT_GRACE_MS = 30_000;
