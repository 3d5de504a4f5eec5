/**
 * What the world sees of a trial and of a sweep: the one view that the gRPC API, the dashboard,
 * `sweeper watch` and `sweeper local --json` all map from, each with one mapping of its own.
 * The stored records (state.ts) stay the event log's business; these are built from a record
 * and the metrics, by pure functions, and the rank is decided here alone.
 */
import type { Objective } from '../../domain/objective.js';
import { objectiveOf } from '../../domain/objective.js';
import { isRankable, type SweepState, type TrialState } from '../../domain/trial-state.js';
import type { MetricStore } from './metric-store.js';
import type { SweepRecord, TrialRecord } from './state.js';

export interface TrialView {
  id: string;
  sweepId: string;
  number: number;
  state: TrialState;
  paramsJson: string;
  agentId: string;
  createdAt: number;
  startedAt: number;
  endedAt: number;
  /** Best value of the sweep's metric over the trial's history, per its goal; null when none was logged. */
  bestValue: number | null;
  lastValue: number | null;
  /** The step of the last metric row, -1 before the first. */
  lastStep: number;
  points: number;
  exitCode: number | null;
  signal: string;
  reason: string;
  /** Place on the leaderboard (1 = best), 0 for a trial that does not rank; set by rankTrials. */
  rank: number;
  /** From the agent's GPU samples: physical index ('' without one), utilisation %, memory MB. */
  gpu: string;
  gpuUtil: number | null;
  gpuMemoryMb: number | null;
  /** Points the agent reported capturing that have not arrived (0 while it runs or when it did not say). */
  missingPoints: number;
  /** Points the agent dropped before sending them (buffer full, too large). */
  droppedPoints: number;
}

export interface SweepView {
  id: string;
  name: string;
  method: string;
  state: SweepState;
  configJson: string;
  seed: number;
  /** The config's metric and goal; '' for both without a metric. */
  metricName: string;
  metricGoal: string;
  /** run_cap or the grid's size, whichever is smaller; 0 when unbounded. */
  trialLimit: number;
  trialCount: number;
  stateCounts: Record<string, number>;
  bestValue: number | null;
  bestTrialId: string;
  createdAt: number;
  finishedAt: number;
  finishReason: string;
  activeAgents: number;
}

/**
 * Points an ended trial's agent declared that have not arrived: declared, less what it dropped
 * itself, less what was applied. 0 while the trial runs or when the agent did not say.
 */
export function missingPoints(trial: TrialRecord, appliedPoints: number): number {
  return trial.declaredPoints === null ? 0 : Math.max(0, trial.declaredPoints - trial.droppedPoints - appliedPoints);
}

/** A trial as the world sees it, unranked (rank 0). `appliedPoints`: metric points applied for it so far. */
export function trialView(trial: TrialRecord, sweep: SweepRecord, metrics: MetricStore, appliedPoints: number): TrialView {
  const objective = objectiveOf(sweep.config.metric);
  const best = objective ? metrics.best(trial.id, objective) : null;
  const last = objective ? metrics.last(trial.id, objective.metric) : null;
  const tm = metrics.get(trial.id);
  const gpuIndex = metrics.last(trial.id, 'system/gpu.index');
  return {
    id: trial.id,
    sweepId: trial.sweepId,
    number: trial.number,
    state: trial.state,
    paramsJson: trial.paramsJson,
    agentId: trial.agentId,
    createdAt: trial.createdAt,
    startedAt: trial.startedAt,
    endedAt: trial.endedAt,
    bestValue: best,
    lastValue: last?.value ?? null,
    lastStep: tm ? tm.lastStep : -1,
    points: tm?.rows ?? 0,
    exitCode: trial.exitCode,
    signal: trial.signal,
    reason: trial.reason,
    rank: 0,
    gpu: gpuIndex === null ? '' : String(gpuIndex.value),
    gpuUtil: metrics.last(trial.id, 'system/gpu.util')?.value ?? null,
    gpuMemoryMb: metrics.last(trial.id, 'system/gpu.memory_mb')?.value ?? null,
    missingPoints: missingPoints(trial, appliedPoints),
    droppedPoints: trial.droppedPoints,
  };
}

/** What ranking looks at in a trial. */
export type Rankable = Pick<TrialView, 'state' | 'bestValue' | 'number'>;

/** Whether a trial takes a place on the leaderboard: a value, and a state that may rank (not failed or crashed). */
export function ranks(t: Pick<Rankable, 'state' | 'bestValue'>): t is Pick<Rankable, 'state'> & { bestValue: number } {
  return t.bestValue !== null && isRankable(t.state);
}

/**
 * Leaderboard order of two trials that both rank: the better value first, per the goal, then the
 * lower number. Negative when `a` comes first. The one rule every ranking uses (the leaderboard,
 * the sweep's best, the dashboard's single-trial rank).
 */
export function rankOrder(objective: Objective | null, a: { bestValue: number; number: number }, b: { bestValue: number; number: number }): number {
  return (objective ? objective.compare(a.bestValue, b.bestValue) : a.bestValue - b.bestValue) || a.number - b.number;
}

/**
 * The leaderboard: trials that rank, best first (rankOrder) with ranks 1, 2, …; then the rest by
 * number, with rank 0. Returns new views; the given ones are left as they are.
 */
export function rankTrials(views: readonly TrialView[], objective: Objective | null): TrialView[] {
  const sorted = [...views].sort((a, b) => {
    const ra = ranks(a);
    const rb = ranks(b);
    if (ra && rb) return rankOrder(objective, a, b);
    if (ra) return -1;
    if (rb) return 1;
    return a.number - b.number;
  });
  let rank = 0;
  return sorted.map((v) => ({ ...v, rank: ranks(v) ? ++rank : 0 }));
}

/**
 * A sweep as the world sees it. `board` is its leaderboard (rankTrials), whose first ranked
 * trial is the best; an empty board leaves the best unset, for callers that know it already.
 */
export function sweepView(sweep: SweepRecord, board: readonly TrialView[], trialLimit: number | undefined, activeAgents: number): SweepView {
  const counts: Record<string, number> = {};
  for (const t of sweep.trials) counts[t.state] = (counts[t.state] ?? 0) + 1;
  const best = board.find((v) => v.rank > 0);
  return {
    id: sweep.id,
    name: sweep.config.name ?? '',
    method: sweep.config.method,
    state: sweep.state,
    configJson: sweep.configJson,
    seed: sweep.seed,
    metricName: sweep.config.metric?.name ?? '',
    metricGoal: sweep.config.metric?.goal ?? '',
    trialLimit: trialLimit ?? 0,
    trialCount: sweep.trials.length,
    stateCounts: counts,
    bestValue: best?.bestValue ?? null,
    bestTrialId: best?.id ?? '',
    createdAt: sweep.createdAt,
    finishedAt: sweep.finishedAt,
    finishReason: sweep.finishReason,
    activeAgents,
  };
}
