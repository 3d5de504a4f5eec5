/**
 * Which trial an agent gets when it asks, beside the strategy's next point: the trials it already
 * holds (it lost our answer), crashed trials to run again, and the standby that waits while the
 * last trials run. Pure functions of the sweep record, except the standby, which is a choice
 * among live agents and so lives in memory.
 */
import type { SweepRecord, TrialRecord } from './state.js';
import { isSweepOver, isUnfinished } from '../../domain/trial-state.js';

/**
 * Once every trial is handed out, one idle agent per sweep (the standby) is told to wait while
 * trials still run, so a trial that crashes with its agent has someone to run it again; the
 * others are told the sweep is over and exit, freeing whatever they hold (a GPU allocation).
 * The standby runs none of the trials (it must outlive them); an agent running some keeps its
 * free slots asking too, at no cost. It asks every STANDBY_POLL_MS; silent for STANDBY_LOST_MS,
 * another idle agent takes over.
 */
export const STANDBY_POLL_MS = 2000;
export const STANDBY_LOST_MS = 10_000;
/** How soon an agent of a paused sweep asks again. */
export const PAUSED_POLL_MS = 2000;

/** The agent's running trials in this sweep. */
export function heldTrials(sweep: SweepRecord, agentId: string): TrialRecord[] {
  return sweep.trials.filter((t) => t.agentId === agentId && t.state === 'running');
}

/** Running trials, or preempted ones waiting to be continued: the sweep is not done with them. */
export function hasUnfinished(sweep: SweepRecord): boolean {
  return sweep.trials.some((t) => isUnfinished(t.state));
}

/** The oldest preempted trial: it is continued before any new trial starts. */
export function preemptedToResume(sweep: SweepRecord): TrialRecord | undefined {
  return sweep.trials.find((t) => t.state === 'preempted');
}

/**
 * The oldest crashed trial whose parameters have crashed at most `maxRetries` times and never
 * ran otherwise: crashed trials were lost to their agent, not to their parameters.
 */
export function crashedToRetry(sweep: SweepRecord, maxRetries: number): TrialRecord | undefined {
  if (maxRetries <= 0 || !sweep.trials.some((t) => t.state === 'crashed')) return undefined;
  const attempts = new Map<string, { crashed: number; other: number }>();
  for (const t of sweep.trials) {
    const a = attempts.get(t.paramsJson) ?? { crashed: 0, other: 0 };
    if (t.state === 'crashed') a.crashed++;
    else a.other++;
    attempts.set(t.paramsJson, a);
  }
  return sweep.trials.find((t) => {
    if (t.state !== 'crashed') return false;
    const a = attempts.get(t.paramsJson)!;
    return a.other === 0 && a.crashed <= maxRetries;
  });
}

/** Per sweep: the idle agent that waits while trials run, and when it last asked. */
export class Standby {
  private readonly bySweep = new Map<string, { agentId: string; askedAt: number }>();

  constructor(private readonly maxCrashRetries: number) {}

  /** Whether this idle agent is (or now becomes) the sweep's standby; see STANDBY_POLL_MS. */
  standsBy(sweep: SweepRecord, agentId: string, now: number): boolean {
    if (this.maxCrashRetries <= 0 || isSweepOver(sweep.state) || !hasUnfinished(sweep)) {
      this.bySweep.delete(sweep.id);
      return false;
    }
    if (sweep.trials.some((t) => t.state === 'running' && t.agentId === agentId)) return true;
    const current = this.bySweep.get(sweep.id);
    if (current && current.agentId !== agentId && now - current.askedAt < STANDBY_LOST_MS) return false;
    this.bySweep.set(sweep.id, { agentId, askedAt: now });
    return true;
  }
}
