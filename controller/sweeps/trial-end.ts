/**
 * How a trial ended, from what its agent reported: the one classification of exit codes,
 * signals, start errors, stops and lost trials into the trial's final state and reason.
 */
import type { TrialState } from '../../domain/trial-state.js';

export interface TrialCompletion {
  agentId: string;
  trialId: string;
  exitCode: number | null;
  signal: string;
  startError: string;
  stoppedReason: string;
  stdoutTail: string[];
  stderrTail: string[];
  lastMetricSeq: number;
  argv: string[];
  /** The agent lost the trial's process (it restarted): the trial crashed. */
  lostReason?: string;
  /** Metric points the agent captured from the trial, and how many of those it dropped; absent when it does not say. */
  metricPoints?: number;
  droppedPoints?: number;
  /** The agent's full report was refused; this one is what it could send: the trial failed, for this reason. */
  reportError?: string;
  /**
   * The agent's host was being taken back (Slurm's warning signal before a time limit or a
   * preemption) and the agent told the trial to checkpoint and stop, for this reason.
   */
  preemptedReason?: string;
}

/** A trial that died of CUDA running out of memory, recognised from its stderr (PyTorch, TF, JAX, raw CUDA). */
const GPU_OOM = /CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation|RESOURCE_EXHAUSTED: Out of memory/;

/** The end state of a trial from what its agent reported. */
export function classifyEnd(
  c: Pick<TrialCompletion, 'exitCode' | 'signal' | 'startError' | 'stoppedReason' | 'stderrTail' | 'lostReason' | 'reportError' | 'preemptedReason'>,
): {
  state: TrialState;
  reason: string;
} {
  if (c.lostReason) return { state: 'crashed', reason: c.lostReason };
  if (c.reportError) return { state: 'failed', reason: c.reportError };
  // W&B's contract: a preempted program that still exits 0 has finished; any other end is a
  // preemption, and the trial is continued (under the same id) by the next agent.
  if (c.preemptedReason && c.exitCode !== 0) return { state: 'preempted', reason: c.preemptedReason };
  if (c.stoppedReason) return { state: 'stopped', reason: c.stoppedReason };
  if (c.startError) return { state: 'failed', reason: `could not start: ${c.startError}` };
  if (c.exitCode === 0) return { state: 'finished', reason: '' };
  // Out of GPU memory is the commonest failure on GPU hosts and says what to change.
  const oom = c.stderrTail.find((l) => GPU_OOM.test(l));
  if (oom) return { state: 'failed', reason: `out of GPU memory: ${oom.trim().slice(0, 300)}` };
  const lastErr = [...c.stderrTail].reverse().find((l) => l.trim() !== '');
  const how = c.signal ? `killed by ${c.signal}` : `exit code ${c.exitCode}`;
  return { state: 'failed', reason: lastErr ? `${how}: ${lastErr.trim().slice(0, 300)}` : how };
}
