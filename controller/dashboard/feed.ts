/**
 * The live part of the dashboard: one feed per watched sweep, shared by every page watching it.
 *
 * The sweep service only says "something about this sweep changed". A feed answers that with at
 * most one delta per interval (as WatchSweep does), holding only what changed: trials created
 * since the last delta, and trials that were still running then and have changed since. Ended
 * trials never change again, so the cost of a delta follows the running trials, not the sweep's
 * size: a 10,000-trial sweep with 50 trials running costs 50 rows per delta, not 10,000.
 *
 * Every page gets a full snapshot when it connects and the feed's deltas after that. Deltas are
 * whole rows applied as upserts, so a row that the snapshot already held arriving again is
 * harmless; nothing that changes after the snapshot can be missed, since the feed compares with
 * what it sent before the snapshot was taken, and every change moves a row's point count or
 * state forward.
 */
import type { Logger } from '../../common/log.js';
import { objectiveOf, type Objective } from '../../domain/objective.js';
import { isTerminal } from '../../domain/trial-state.js';
import type { SweepRecord, TrialRecord } from '../sweeps/state.js';
import type { SweepService } from '../sweeps/sweep-service.js';
import { rankOrder, ranks } from '../sweeps/trial-view.js';
import type { ColumnSet, DashTrialRow, SweepBest, SweepDelta } from './views.js';
import { columnsFor, dashSweep, trialRow } from './views.js';

export type FeedClient = (event: string, data: string) => void;

export interface FeedStats {
  /** Deltas built (each is sent to every page watching the sweep). */
  deltas: number;
  /** Rows in those deltas. */
  rows: number;
  /** Bytes of delta JSON built (once per delta, whatever the number of pages). */
  bytes: number;
  /** Milliseconds spent building deltas. */
  buildMs: number;
}

export class SweepFeed {
  private readonly clients = new Set<FeedClient>();
  private readonly columns: ColumnSet;
  /** Trials not ended at the last delta, with what was last sent for them. */
  private readonly active = new Map<TrialRecord, string>();
  private known: number;
  private readonly objective: Objective | null;
  /** The sweep's best so far, with its trial's number for ties. */
  private best: SweepBest & { number: number } = { value: null, trialId: '', number: 0 };
  private lastSummary = '';
  private lastSent = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly service: SweepService,
    private readonly sweep: SweepRecord,
    private readonly intervalMs: number,
    private readonly stats: FeedStats,
    private readonly log: Logger,
  ) {
    this.columns = columnsFor(sweep);
    this.objective = objectiveOf(sweep.config.metric);
    this.known = sweep.trials.length;
    for (const t of sweep.trials) {
      const row = this.row(t);
      this.noteBest(row);
      if (!isTerminal(t.state)) this.active.set(t, fingerprint(row));
    }
    this.lastSummary = JSON.stringify(dashSweep(service, sweep, this.best));
    this.unsubscribe = service.subscribe(sweep.id, () => this.schedule());
  }

  get size(): number {
    return this.clients.size;
  }

  add(client: FeedClient): void {
    this.clients.add(client);
  }

  /** Returns true when that was the last client; the feed is then closed. */
  remove(client: FeedClient): boolean {
    this.clients.delete(client);
    if (this.clients.size > 0) return false;
    this.close();
    return true;
  }

  close(): void {
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.clients.clear();
  }

  /** Runtimes and agent counts move without events: pages get a summary at least this often. */
  touch(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.lastSent + this.intervalMs - Date.now()));
  }

  private flush(): void {
    this.timer = undefined;
    this.lastSent = Date.now();
    const t0 = performance.now();
    let delta: SweepDelta | undefined;
    try {
      delta = this.delta();
    } catch (err) {
      this.log.warn('could not build a dashboard update', { sweep: this.sweep.id, error: String(err) });
      return;
    }
    if (!delta) return;
    const data = JSON.stringify(delta);
    this.stats.deltas++;
    this.stats.rows += delta.trials.length;
    this.stats.bytes += data.length;
    this.stats.buildMs += performance.now() - t0;
    for (const c of this.clients) c('delta', data);
  }

  private delta(): SweepDelta | undefined {
    const changed: DashTrialRow[] = [];
    let columnsChanged = false;
    const trials = this.sweep.trials;
    for (let i = this.known; i < trials.length; i++) columnsChanged = this.columns.observe(trials[i].params) || columnsChanged;
    for (const [t, sent] of this.active) {
      const row = this.row(t);
      const f = fingerprint(row);
      if (f !== sent) {
        changed.push(row);
        this.active.set(t, f);
        this.noteBest(row);
      }
      if (isTerminal(t.state)) this.active.delete(t);
    }
    for (let i = this.known; i < trials.length; i++) {
      const t = trials[i];
      const row = this.row(t);
      changed.push(row);
      this.noteBest(row);
      if (!isTerminal(t.state)) this.active.set(t, fingerprint(row));
    }
    this.known = trials.length;
    const sweep = dashSweep(this.service, this.sweep, this.best);
    const summary = JSON.stringify(sweep);
    if (changed.length === 0 && !columnsChanged && summary === this.lastSummary) return undefined;
    this.lastSummary = summary;
    return {
      now: Date.now(),
      sweep,
      ...(columnsChanged ? { params: this.columns.columns } : {}),
      trials: changed,
    };
  }

  private row(t: TrialRecord): DashTrialRow {
    return trialRow(this.service.trialView(t, this.sweep), t, this.columns);
  }

  /**
   * A trial's best only ever improves, so the sweep's best is a running best over changed rows;
   * only when the best trial fails or crashes (it then ranks nowhere) is it looked for again.
   */
  private noteBest(row: DashTrialRow): void {
    if (!ranks(row)) {
      if (row.id === this.best.trialId) {
        this.best = { value: null, trialId: '', number: 0 };
        for (const t of this.sweep.trials) if (t.id !== row.id) this.noteBest(this.row(t));
      }
      return;
    }
    const b = this.best;
    if (b.value === null || rankOrder(this.objective, row, { bestValue: b.value, number: b.number }) < 0) {
      this.best = { value: row.bestValue, trialId: row.id, number: row.number };
    }
  }
}

/** What makes a row worth sending again: state, values, progress. */
function fingerprint(r: DashTrialRow): string {
  return `${r.state}|${r.points}|${r.bestValue}|${r.lastValue}|${r.endedAt}|${r.reason}`;
}
