/**
 * What the dashboard's JSON endpoints return, built from the sweep service's records. Pure
 * functions of the service's state and the clock, so the HTTP layer stays a router.
 *
 * Rows are compact on purpose: a 10,000-trial snapshot is sent whole on page load, so every
 * trial's parameters are one array aligned with the sweep's parameter columns rather than an
 * object repeating every name.
 */
import type { ParamValue } from '../../domain/values.js';
import { Float, pyStr } from '../../domain/values.js';
import { isLogScale } from '../../domain/distributions.js';
import { objectiveOf } from '../../domain/objective.js';
import { flattenParams } from '../../domain/params.js';
import type { ParamSpecs } from '../../domain/sweep-config.js';
import { isRankable, TRIAL_STATES, type TrialState } from '../../domain/trial-state.js';
import type { SweepRecord, TrialRecord } from '../sweeps/state.js';
import type { SweepService } from '../sweeps/sweep-service.js';
import { rankOrder, ranks, type SweepView, type TrialView } from '../sweeps/trial-view.js';

/** A sweep's summary: its view, with the metric as one object and whether it is over. */
export type DashSweep = Pick<
  SweepView,
  | 'id'
  | 'name'
  | 'method'
  | 'state'
  | 'seed'
  | 'trialCount'
  | 'trialLimit'
  | 'stateCounts'
  | 'bestValue'
  | 'bestTrialId'
  | 'createdAt'
  | 'finishedAt'
  | 'finishReason'
  | 'activeAgents'
> & {
  metric: { name: string; goal: 'minimize' | 'maximize' } | null;
  /** True once nothing about the sweep will change again. */
  settled: boolean;
};

export interface ParamColumn {
  /** Dotted for nested parameters: `optimizer.lr`. */
  name: string;
  /** Numeric columns carry numbers; categorical ones carry each value as Python writes it. */
  kind: 'numeric' | 'categorical';
  scale: 'linear' | 'log';
  /** A constant tells nothing per trial: the table shows it last, the charts leave it out. */
  constant: boolean;
  /** Categorical columns: the config's values in its order, then any others as they appear. */
  categories?: string[];
}

export type CellValue = number | string | null;

/** A leaderboard row: what it shows of the trial's view, under the view's names, and its parameters as cells. */
export type DashTrialRow = Pick<
  TrialView,
  'id' | 'number' | 'state' | 'bestValue' | 'lastValue' | 'lastStep' | 'points' | 'createdAt' | 'startedAt' | 'endedAt' | 'agentId' | 'gpu' | 'gpuUtil' | 'gpuMemoryMb' | 'reason'
> & {
  /** Aligned with the sweep's parameter columns; a shorter array means null for the rest. */
  params: CellValue[];
};

export interface SweepSnapshot {
  /** The controller's clock, so pages can show runtimes of running trials without skew. */
  now: number;
  sweep: DashSweep;
  params: ParamColumn[];
  /** Best first (rank order); the page re-sorts as it likes. */
  trials: DashTrialRow[];
  /**
   * The controller's vocabulary, which the page cannot import: trial states in display order
   * (TRIAL_STATES, as the CLI shows them), and those that may rank (isRankable).
   */
  trialStates: readonly TrialState[];
  rankableStates: readonly TrialState[];
}

export interface SweepDelta {
  now: number;
  sweep: DashSweep;
  /** Present only when the columns changed (a parameter or category the config did not name). */
  params?: ParamColumn[];
  /** Trials created or changed since the last delta, whole: applying one twice is harmless. */
  trials: DashTrialRow[];
}

const RANKABLE_STATES: readonly TrialState[] = TRIAL_STATES.filter(isRankable);

/**
 * The parameter columns of a sweep, kept up to date as trials arrive. Columns only ever grow
 * (new names and new categories go at the end), so a row encoded earlier stays valid.
 */
export class ColumnSet {
  readonly columns: ParamColumn[] = [];
  private readonly index = new Map<string, number>();
  private readonly categoryIndex = new Map<string, Set<string>>();

  constructor(specs: ParamSpecs) {
    const searched: ParamColumn[] = [];
    const constants: ParamColumn[] = [];
    const walk = (s: ParamSpecs, prefix: string) => {
      for (const [key, spec] of Object.entries(s)) {
        const name = prefix ? `${prefix}.${key}` : key;
        if (spec.kind === 'nested') {
          walk(spec.parameters, name);
          continue;
        }
        const d = spec.distribution;
        if (d === 'constant') {
          const v = spec.value ?? null;
          constants.push(isNumber(v) ? numeric(name, 'linear', true) : categorical(name, [cellText(v)], true));
        } else if (d === 'categorical' || d === 'categorical_w_probabilities') {
          const values = spec.values ?? [];
          const texts = values.every(isNumber)
            ? [...values].sort((a, b) => toNumber(a) - toNumber(b)).map(cellText)
            : values.map(cellText);
          (values.length === 1 ? constants : searched).push(categorical(name, dedupe(texts), values.length === 1));
        } else {
          searched.push(numeric(name, isLogScale(d) ? 'log' : 'linear', false));
        }
      }
    };
    walk(specs, '');
    for (const c of [...searched, ...constants]) this.add(c);
  }

  /** Take in one trial's parameters; true when a column or a category was added. */
  observe(params: ParamValue): boolean {
    let changed = false;
    eachLeaf(params, '', (name, v) => {
      const i = this.index.get(name);
      if (i === undefined) {
        this.add(isNumber(v) ? numeric(name, 'linear', false) : categorical(name, [cellText(v)], false));
        changed = true;
        return;
      }
      const col = this.columns[i];
      if (col.kind === 'categorical') {
        const text = cellText(v);
        const known = this.categoryIndex.get(name)!;
        if (!known.has(text)) {
          known.add(text);
          col.categories!.push(text);
          changed = true;
        }
      }
    });
    return changed;
  }

  /** One trial's cells, in column order. */
  cells(params: ParamValue): CellValue[] {
    const out: CellValue[] = new Array(this.columns.length).fill(null);
    eachLeaf(params, '', (name, v) => {
      const i = this.index.get(name);
      if (i === undefined) return;
      out[i] = this.columns[i].kind === 'numeric' ? (isNumber(v) ? toNumber(v) : null) : cellText(v);
    });
    return out;
  }

  private add(col: ParamColumn): void {
    this.index.set(col.name, this.columns.length);
    this.columns.push(col);
    if (col.kind === 'categorical') this.categoryIndex.set(col.name, new Set(col.categories));
  }
}

function numeric(name: string, scale: 'linear' | 'log', constant: boolean): ParamColumn {
  return { name, kind: 'numeric', scale, constant };
}

function categorical(name: string, categories: string[], constant: boolean): ParamColumn {
  return { name, kind: 'categorical', scale: 'linear', constant, categories };
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

function isNumber(v: ParamValue | undefined): v is number | Float {
  return (typeof v === 'number' && Number.isFinite(v)) || (v instanceof Float && Number.isFinite(v.value));
}

function toNumber(v: ParamValue): number {
  return v instanceof Float ? v.value : (v as number);
}

/** A value as the program received it on its command line. */
export function cellText(v: ParamValue | undefined): string {
  return v === undefined ? '' : pyStr(v);
}

/**
 * `flattenParams` (domain/params.ts) without its arrays, for the per-trial hot paths of a
 * 10,000-trial snapshot: the same names in the same order, an empty nested object a value too.
 */
function eachLeaf(v: ParamValue, prefix: string, fn: (name: string, v: ParamValue) => void): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Float)) {
    let empty = true;
    for (const k in v) {
      empty = false;
      eachLeaf(v[k], prefix ? `${prefix}.${k}` : k, fn);
    }
    if (empty && prefix !== '') fn(prefix, v);
    return;
  }
  fn(prefix, v);
}

export function columnsFor(sweep: SweepRecord): ColumnSet {
  const set = new ColumnSet(sweep.config.parameters);
  for (const t of sweep.trials) set.observe(t.params);
  return set;
}

/** The one mapping of a trial's view onto a dashboard row. */
export function trialRow(view: TrialView, trial: TrialRecord, columns: ColumnSet): DashTrialRow {
  return {
    id: view.id,
    number: view.number,
    state: view.state,
    bestValue: view.bestValue,
    lastValue: view.lastValue,
    lastStep: view.lastStep,
    points: view.points,
    createdAt: view.createdAt,
    startedAt: view.startedAt,
    endedAt: view.endedAt,
    agentId: view.agentId,
    gpu: view.gpu,
    gpuUtil: view.gpuUtil,
    gpuMemoryMb: view.gpuMemoryMb,
    reason: view.reason,
    params: columns.cells(trial.params),
  };
}

/**
 * The sweep's summary. `best` comes from the caller, who already knows it (a leaderboard, or the
 * live feed's running minimum), so that a summary never costs a sort of every trial.
 */
export function dashSweep(service: SweepService, sweep: SweepRecord, best: SweepBest): DashSweep {
  const v = service.sweepView(sweep, []);
  const metric = sweep.config.metric;
  return {
    id: v.id,
    name: v.name,
    method: v.method,
    state: v.state,
    metric: metric ? { name: metric.name, goal: metric.goal } : null,
    seed: v.seed,
    trialCount: v.trialCount,
    trialLimit: v.trialLimit,
    stateCounts: v.stateCounts,
    bestValue: best.value,
    bestTrialId: best.trialId,
    createdAt: v.createdAt,
    finishedAt: v.finishedAt,
    finishReason: v.finishReason,
    activeAgents: v.activeAgents,
    settled: service.isSettled(sweep),
  };
}

/** A sweep's best trial and its value; no trial ('') and null while none ranks. */
export interface SweepBest {
  value: number | null;
  trialId: string;
}

/**
 * The trial the leaderboard puts first, found in one pass without building it (the sweeps page
 * lists every sweep; a trial page is polled while its trial runs).
 */
function bestTrial(service: SweepService, sweep: SweepRecord): { value: number; trial: TrialRecord } | null {
  const objective = objectiveOf(sweep.config.metric);
  if (!objective) return null;
  let best: { value: number; trial: TrialRecord } | null = null;
  for (const t of sweep.trials) {
    if (!isRankable(t.state)) continue;
    const value = service.metrics.best(t.id, objective);
    if (value === null) continue;
    if (best === null || rankOrder(objective, { bestValue: value, number: t.number }, { bestValue: best.value, number: best.trial.number }) < 0) {
      best = { value, trial: t };
    }
  }
  return best;
}

function sweepBest(service: SweepService, sweep: SweepRecord): SweepBest {
  const best = bestTrial(service, sweep);
  return best ? { value: best.value, trialId: best.trial.id } : { value: null, trialId: '' };
}

export function listSweeps(service: SweepService): DashSweep[] {
  return service.listSweeps().map((s) => dashSweep(service, s, sweepBest(service, s)));
}

export function sweepSnapshot(service: SweepService, sweep: SweepRecord, now: number): SweepSnapshot {
  const board = service.leaderboard(sweep);
  const columns = columnsFor(sweep);
  const byId = new Map(sweep.trials.map((t) => [t.id, t]));
  const first = board.find((v) => v.rank > 0);
  return {
    now,
    sweep: dashSweep(service, sweep, { value: first?.bestValue ?? null, trialId: first?.id ?? '' }),
    params: columns.columns,
    trials: board.map((v) => trialRow(v, byId.get(v.id)!, columns)),
    trialStates: TRIAL_STATES,
    rankableStates: RANKABLE_STATES,
  };
}

export interface TrialDetail {
  now: number;
  sweep: DashSweep;
  trial: DashTrialRow & Pick<TrialView, 'rank' | 'exitCode' | 'signal'>;
  /** Every parameter, flattened, as the program received it. */
  params: Array<{ name: string; value: string }>;
  paramsJson: string;
  argv: string[];
  /** The argv as one line a POSIX shell would read back into the same words. */
  commandLine: string;
  history: Array<{ state: string; at: number; reason: string }>;
  stdoutTail: string[];
  stderrTail: string[];
  metrics: Array<{ name: string; last: number | null; min: number | null; max: number | null; count: number; invalid: number }>;
  malformedLines: number;
  curve: Curve | null;
}

export interface Curve {
  id: string;
  number: number;
  state: string;
  reason: string;
  /** Total points logged; `steps` holds at most the requested number of them. */
  points: number;
  steps: number[];
  values: number[];
}

export function trialDetail(service: SweepService, trial: TrialRecord, now: number): TrialDetail {
  const sweep = service.getSweep(trial.sweepId);
  const view = service.trialView(trial, sweep);
  const metric = sweep.config.metric;
  const finite = (n: number) => (Number.isFinite(n) ? n : null);
  const columns = new ColumnSet(sweep.config.parameters);
  columns.observe(trial.params);
  // In the order the leaderboard shows them (the config's), not the order the program got them.
  const values = new Map(flattenParams(trial.params).filter(([name]) => name !== ''));
  return {
    now,
    sweep: dashSweep(service, sweep, sweepBest(service, sweep)),
    trial: { ...trialRow(view, trial, columns), rank: rankOf(service, sweep, view), exitCode: view.exitCode, signal: view.signal },
    params: columns.columns.filter((c) => values.has(c.name)).map((c) => ({ name: c.name, value: cellText(values.get(c.name)) })),
    paramsJson: trial.paramsJson,
    argv: trial.argv,
    commandLine: shellLine(trial.argv),
    history: trial.history,
    stdoutTail: trial.stdoutTail,
    stderrTail: trial.stderrTail,
    metrics: service.metrics.summaries(trial.id).map((m) => ({ ...m, last: finite(m.last), min: finite(m.min), max: finite(m.max) })),
    malformedLines: service.metrics.get(trial.id)?.malformedLines ?? 0,
    curve: metric ? curve(service, trial, metric.name, 2000) : null,
  };
}

/**
 * The trial's place on the leaderboard (rankTrials' rank) counted without sorting the sweep, as
 * a trial page is polled while its trial runs; 0 when it does not rank.
 */
function rankOf(service: SweepService, sweep: SweepRecord, view: TrialView): number {
  const objective = objectiveOf(sweep.config.metric);
  if (!objective || !ranks(view)) return 0;
  let rank = 1;
  for (const t of sweep.trials) {
    if (t.id === view.id || !isRankable(t.state)) continue;
    const value = service.metrics.best(t.id, objective);
    if (value !== null && rankOrder(objective, { bestValue: value, number: t.number }, view) < 0) rank++;
  }
  return rank;
}

/** A metric's history, thinned to about `maxPoints`. */
export function curve(service: SweepService, trial: TrialRecord, metric: string, maxPoints: number): Curve {
  const h = service.metrics.history(trial.id, metric);
  const thin = downsample(h.steps, h.values, maxPoints);
  return { id: trial.id, number: trial.number, state: trial.state, reason: trial.reason, points: h.steps.length, ...thin };
}

/**
 * At most about `maxPoints` points: the history cut into buckets, each keeping its lowest and
 * highest value in step order, so a spike or a dip survives thinning. The last point always stays.
 */
export function downsample(steps: number[], values: number[], maxPoints: number): { steps: number[]; values: number[] } {
  const n = steps.length;
  if (n <= maxPoints || maxPoints < 4) return { steps, values };
  const buckets = Math.floor((maxPoints - 1) / 2);
  const outS: number[] = [];
  const outV: number[] = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * (n - 1)) / buckets);
    const to = Math.floor(((b + 1) * (n - 1)) / buckets);
    let lo = from;
    let hi = from;
    for (let i = from; i < to; i++) {
      if (values[i] < values[lo]) lo = i;
      if (values[i] > values[hi]) hi = i;
    }
    for (const i of lo === hi ? [lo] : lo < hi ? [lo, hi] : [hi, lo]) {
      outS.push(steps[i]);
      outV.push(values[i]);
    }
  }
  outS.push(steps[n - 1]);
  outV.push(values[n - 1]);
  return { steps: outS, values: outV };
}

/** POSIX shell quoting, for showing an argv as a line one can paste. */
export function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
