/**
 * One sweep as the controller runs it: its record (rebuilt from the event log) and everything
 * derived from it and from its metrics: the strategy (built once), the objective, the stopping
 * monitor, whether the space is used up or `metric.target` was reached, and how many metric
 * points each trial has had applied. A restarted controller builds the same aggregate from the
 * replayed record and then feeds it the replayed metric stream, so every derived fact comes back
 * from the two logs alone and nothing here is written anywhere.
 */
import { commandTemplate } from '../../common/command-template.js';
import type { MetricBatch } from '../../common/metrics-wire.js';
import type { Logger } from '../../common/log.js';
import { objectiveOf, type Objective } from '../../domain/objective.js';
import { isTerminal } from '../../domain/trial-state.js';
import { askNext, fullReason, trialLimit, type AskOutcome } from '../optimizer/ask.js';
import { createStopMonitor, type StopDecision, type StopMonitor } from '../stopping/index.js';
import { createStrategy } from '../strategies/index.js';
import type { Strategy, TrialObservation } from '../strategies/types.js';
import type { MetricRefusal } from './ingest.js';
import type { MetricStore } from './metric-store.js';
import type { SweepRecord, TrialRecord } from './state.js';
import { missingPoints } from './trial-view.js';

/** Methods whose suggestions depend on the trials' values, not only on which points were taken. */
const MODEL_BASED = new Set(['bayes', 'tpe']);

export class SweepAggregate {
  readonly objective: Objective | null;
  readonly stopMonitor: StopMonitor | null;
  /** The strategy said the space is used up (found again after a restart by asking). */
  exhausted = false;
  /** A trial reached `metric.target` (found again from the replayed metrics). */
  targetReached = false;
  private readonly appliedPoints = new Map<string, number>();

  constructor(
    readonly record: SweepRecord,
    readonly strategy: Strategy,
    log: Logger,
  ) {
    this.objective = objectiveOf(record.config.metric);
    this.stopMonitor = buildStopMonitor(record, log);
  }

  /** The aggregate of a replayed or newly created sweep; `strategy` when the caller already built it. */
  static of(record: SweepRecord, log: Logger, strategy?: Strategy): SweepAggregate {
    return new SweepAggregate(record, strategy ?? createStrategy(record.config, { seed: record.seed }), log);
  }

  /** The command template (W&B's default when the config has none); the agent expands it per trial. */
  get command(): readonly string[] {
    return commandTemplate(this.record.config.command);
  }

  get program(): string {
    return this.record.config.program ?? '';
  }

  /** Whether the next suggestion reads the trials' metric values (so it must wait for a replay to catch up). */
  get readsValues(): boolean {
    return MODEL_BASED.has(this.record.config.method) || this.record.config.metric?.target !== undefined;
  }

  /** run_cap or the grid's size, whichever is smaller; undefined when unbounded. */
  get limit(): number | undefined {
    return trialLimit(this.record.config, this.strategy);
  }

  /** The finish reason once the limit is reached. */
  get fullReason(): string {
    return fullReason(this.record.config, this.strategy).reason;
  }

  /** What the strategy may know of the trials: each one's best value of the sweep metric. */
  observations(metrics: MetricStore): TrialObservation[] {
    const objective = this.objective;
    return this.record.trials.map((t) => ({
      id: t.id,
      params: t.params,
      state: t.state,
      value: objective ? metrics.best(t.id, objective) : null,
    }));
  }

  ask(metrics: MetricStore): AskOutcome {
    const next = askNext(this.record.config, this.strategy, this.observations(metrics));
    if (next.kind === 'exhausted') this.exhausted = true;
    return next;
  }

  /**
   * Whether an ended trial may still take this batch: up to the points its agent declared at the
   * end (the rest of a shortfall, published later from a spool), or, declared crashed, points
   * captured before that moment; a zombie's later points are refused. Both tests read only the
   * batch and the final state, so replay decides the same.
   */
  refuseAfterEnd(trial: TrialRecord, batch: MetricBatch): MetricRefusal | null {
    if (!isTerminal(trial.state)) return null;
    const applied = this.applied(trial.id);
    const late =
      trial.declaredPoints !== null ? applied + batch.points.length > trial.declaredPoints - trial.droppedPoints : batch.points.some((p) => p.t > trial.endedAt);
    return late ? 'after_end' : null;
  }

  recordApplied(trialId: string, points: number): void {
    this.appliedPoints.set(trialId, this.applied(trialId) + points);
  }

  applied(trialId: string): number {
    return this.appliedPoints.get(trialId) ?? 0;
  }

  /** Points the agent said it captured that have not arrived (0 while it runs or when it did not say). */
  missingPoints(trial: TrialRecord): number {
    return missingPoints(trial, this.applied(trial.id));
  }

  /** Feeds the stopping rule the trial's new values; the running trials to stop now. */
  stopDecisions(trial: TrialRecord, metrics: MetricStore): StopDecision[] {
    const monitor = this.stopMonitor;
    if (!monitor) return [];
    return monitor.update(trial.id, trial.state, metrics.get(trial.id)?.series.get(monitor.metric));
  }

  /** Whether this trial's best value reaches `metric.target` (W&B's rule); marks the sweep once. */
  checkTarget(trial: TrialRecord, metrics: MetricStore): { value: number; target: number } | null {
    const target = this.record.config.metric?.target;
    if (target === undefined || this.targetReached || !this.objective) return null;
    const best = metrics.best(trial.id, this.objective);
    if (best === null || !this.objective.reaches(best, target)) return null;
    this.targetReached = true;
    return { value: best, target };
  }
}

function buildStopMonitor(record: SweepRecord, log: Logger): StopMonitor | null {
  try {
    return createStopMonitor(record.config);
  } catch (err) {
    // The parser validated the config; a rule that still refuses it must not stop ingest.
    log.warn('early stopping disabled for this sweep', { sweep: record.id, error: String(err) });
    return null;
  }
}
