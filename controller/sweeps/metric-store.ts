/**
 * Every trial's metric history, held in memory and fed by the metric ingest. Each metric of a
 * trial is a pair of growable typed arrays (step, value), so a million points cost ~16 MB per
 * metric name rather than a million objects.
 */
import type { MetricBatch } from '../../common/metrics-wire.js';
import type { Objective } from '../../domain/objective.js';

class Series {
  steps = new Float64Array(16);
  values = new Float64Array(16);
  length = 0;
  invalid = 0;
  min = Infinity;
  max = -Infinity;

  push(step: number, value: number): void {
    if (this.length === this.steps.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.steps = grow(this.steps);
      this.values = grow(this.values);
    }
    this.steps[this.length] = step;
    this.values[this.length] = value;
    this.length++;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  last(): number | null {
    return this.length === 0 ? null : this.values[this.length - 1];
  }
}

export interface TrialMetrics {
  /** Rows received (a row is one logged point, whatever metrics it held). */
  rows: number;
  lastStep: number;
  series: Map<string, Series>;
  /** Highest batch seq applied, for CompleteTrial to wait on. */
  lastSeq: number;
  malformedLines: number;
}

export interface MetricSummaryView {
  name: string;
  last: number;
  min: number;
  max: number;
  count: number;
  invalid: number;
}

export class MetricStore {
  private readonly trials = new Map<string, TrialMetrics>();
  private readonly seqWaiters = new Map<string, Array<{ seq: number; resolve: () => void }>>();

  /** Apply one batch; the ingest has already dropped duplicate (trial, seq) pairs. */
  apply(batch: MetricBatch): void {
    let tm = this.trials.get(batch.trialId);
    if (!tm) {
      tm = { rows: 0, lastStep: -1, series: new Map(), lastSeq: 0, malformedLines: 0 };
      this.trials.set(batch.trialId, tm);
    }
    for (const point of batch.points) {
      if (point.system) {
        // System samples keep their own time-indexed series and leave the program's rows alone.
        for (const [name, value] of Object.entries(point.values)) {
          let s = tm.series.get(name);
          if (!s) tm.series.set(name, (s = new Series()));
          s.push(point.t, value);
        }
        continue;
      }
      // W&B's _step: the program's step when given, otherwise the row's index.
      const step = point.step ?? tm.rows;
      tm.rows++;
      tm.lastStep = step;
      for (const [name, value] of Object.entries(point.values)) {
        let s = tm.series.get(name);
        if (!s) tm.series.set(name, (s = new Series()));
        s.push(step, value);
      }
      if (point.invalid) {
        for (const name of Object.keys(point.invalid)) {
          let s = tm.series.get(name);
          if (!s) tm.series.set(name, (s = new Series()));
          s.invalid++;
        }
      }
    }
    tm.malformedLines += batch.malformedLines ?? 0;
    if (batch.seq > tm.lastSeq) tm.lastSeq = batch.seq;
    const waiters = this.seqWaiters.get(batch.trialId);
    if (waiters) {
      const still = waiters.filter((w) => {
        if (w.seq <= tm.lastSeq) {
          w.resolve();
          return false;
        }
        return true;
      });
      if (still.length) this.seqWaiters.set(batch.trialId, still);
      else this.seqWaiters.delete(batch.trialId);
    }
  }

  /** Resolves true once batch `seq` of the trial has been applied, false after `timeoutMs`. */
  waitForSeq(trialId: string, seq: number, timeoutMs: number): Promise<boolean> {
    if ((this.trials.get(trialId)?.lastSeq ?? 0) >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const entry = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        const list = this.seqWaiters.get(trialId)?.filter((w) => w !== entry) ?? [];
        if (list.length) this.seqWaiters.set(trialId, list);
        else this.seqWaiters.delete(trialId);
        resolve(false);
      }, timeoutMs);
      const list = this.seqWaiters.get(trialId) ?? [];
      list.push(entry);
      this.seqWaiters.set(trialId, list);
    });
  }

  get(trialId: string): TrialMetrics | undefined {
    return this.trials.get(trialId);
  }

  /** Best value of `metric` over the trial's history per the goal, or null. */
  /** The trial's best value of the objective's metric, or null when it logged none. */
  best(trialId: string, objective: Pick<Objective, 'metric' | 'sign'>): number | null {
    const s = this.trials.get(trialId)?.series.get(objective.metric);
    if (!s || s.length === 0) return null;
    // The series keeps its extremes, so this is `objective.bestOf` without a pass over the values.
    return objective.sign === -1 ? s.max : s.min;
  }

  last(trialId: string, metric: string): { value: number; step: number } | null {
    const s = this.trials.get(trialId)?.series.get(metric);
    if (!s || s.length === 0) return null;
    return { value: s.values[s.length - 1], step: s.steps[s.length - 1] };
  }

  /** The metric's history in logged order (copies), for early stopping and the trial page. */
  history(trialId: string, metric: string): { steps: number[]; values: number[] } {
    const s = this.trials.get(trialId)?.series.get(metric);
    if (!s) return { steps: [], values: [] };
    return { steps: Array.from(s.steps.subarray(0, s.length)), values: Array.from(s.values.subarray(0, s.length)) };
  }

  summaries(trialId: string): MetricSummaryView[] {
    const tm = this.trials.get(trialId);
    if (!tm) return [];
    return [...tm.series.entries()].map(([name, s]) => ({
      name,
      last: s.last() ?? NaN,
      min: s.length ? s.min : NaN,
      max: s.length ? s.max : NaN,
      count: s.length,
      invalid: s.invalid,
    }));
  }
}
