/**
 * A sweep's stopping rule as the controller drives it: fed each trial's metric series from the
 * metric store as batches arrive, it passes on only the values it has not seen, so it can be
 * created late (a restarted controller replaying the stream) or fed twice without counting a
 * value twice.
 */
import { isTerminal } from '../../domain/trial-state.js';
import type { TrialState } from '../../domain/trial-state.js';
import type { StopDecision, StoppingRule } from './types.js';

/** A trial's valid values of one metric in logged order; the metric store's series fits. */
export interface SeriesView {
  readonly values: ArrayLike<number>;
  readonly length: number;
}

export class StopMonitor {
  private readonly seen = new Map<string, number>();
  private readonly over = new Set<string>();

  constructor(
    private readonly rule: StoppingRule,
    /** The sweep metric, whose series to feed. */
    readonly metric: string,
  ) {}

  /** Catch up with the trial's series; returns the running trials to stop, each once. */
  update(trialId: string, state: TrialState, series: SeriesView | undefined): StopDecision[] {
    // A preempted trial is continued later: its series goes on, so it has not ended.
    if (isTerminal(state)) this.ended(trialId, state);
    const from = this.seen.get(trialId) ?? 0;
    const to = series?.length ?? 0;
    if (to <= from) return [];
    this.seen.set(trialId, to);
    const out: StopDecision[] = [];
    for (let i = from; i < to; i++) {
      const v = series!.values[i];
      // The store keeps finite values only; a non-finite one is skipped as W&B's history does.
      if (Number.isFinite(v)) for (const d of this.rule.report(trialId, v)) out.push(d);
    }
    return out;
  }

  /** The trial stopped running; its values still count toward the others' thresholds. */
  ended(trialId: string, state: TrialState): void {
    if (this.over.has(trialId)) return;
    this.over.add(trialId);
    this.rule.ended(trialId, state);
  }
}
