/**
 * Parameter importance: how much of the spread in the metric each parameter explains on its own.
 *
 * The method is a model-free take on fANOVA's main effects (Hutter et al. 2014), the measure
 * Optuna shows by default:
 *
 * 1. The metric is replaced by its rank among the trials (ties share their mean rank). One
 *    diverged trial with a loss of 1e6 would otherwise own all the variance, and the answer no
 *    longer depends on whether the metric is logged on a log scale.
 * 2. Each parameter splits the trials into groups: one per category for a categorical parameter;
 *    for a numeric one, equal-count bins by the parameter's rank (so the scale does not matter: a
 *    log-uniform learning rate is binned as evenly as a linear one), or one group per value when
 *    it has few.
 *    Trials that lack the parameter form a group of their own.
 * 3. The parameter's main effect is the share of the ranks' variance that lies between its
 *    groups, corrected for the share that random groups of those sizes would explain (epsilon
 *    squared: (SS_between - (k - 1) MS_within) / SS_total, floored at 0). Without the correction
 *    a parameter with many small groups would look important on noise alone.
 * 4. `importance` is each main effect divided by their sum, so the bars add up to 1; `explained`
 *    keeps the raw share, whose shortfall from 1 is interactions and noise.
 *
 * Alongside, `correlation` is Spearman's rank correlation of a numeric parameter with the metric,
 * which gives the direction (positive: larger values, larger metric) that a variance share lacks.
 *
 * It measures main effects only: two parameters that matter only together (an interaction) both
 * score low. Like any estimate from a sweep, it describes the region the sweep sampled.
 */

export interface ImportanceColumn {
  name: string;
  kind: 'numeric' | 'categorical';
}

export interface ImportanceRow {
  /** Aligned with the columns; null where the trial lacks the parameter. */
  cells: ReadonlyArray<number | string | null>;
  /** The metric's value for the trial (finite). */
  value: number;
}

export interface ParamImportance {
  name: string;
  /** This parameter's share of the summed main effects, 0..1; all zero when none has any. */
  importance: number;
  /** Share of the metric's rank variance its main effect explains, 0..1. */
  explained: number;
  /** Spearman's rho with the metric, for numeric parameters with at least two values; else null. */
  correlation: number | null;
  /** Groups the parameter split the trials into. */
  groups: number;
}

export interface ImportanceResult {
  /** Trials the estimate used. */
  trials: number;
  /** Most important first; empty when there were too few trials. */
  params: ParamImportance[];
  /** Why `params` is empty, when it is. */
  note?: string;
}

export const IMPORTANCE_METHOD =
  'main effects of a functional ANOVA on the metric rank: for each parameter, the share of the rank variance between equal-count bins (categories for categorical parameters), corrected for chance (epsilon squared); Spearman correlation gives the direction';

/** Fewer trials than this say nothing reliable about any parameter. */
export const MIN_TRIALS = 8;
/** Numeric parameters are cut into at most this many bins. */
const MAX_BINS = 10;
/** Bins hold at least this many trials on average. */
const MIN_PER_BIN = 5;

export function parameterImportance(columns: readonly ImportanceColumn[], rows: readonly ImportanceRow[]): ImportanceResult {
  const usable = rows.filter((r) => Number.isFinite(r.value));
  const n = usable.length;
  if (n < MIN_TRIALS) return { trials: n, params: [], note: `needs at least ${MIN_TRIALS} trials with a value (has ${n})` };

  const y = averageRanks(usable.map((r) => r.value));
  const mean = (n + 1) / 2;
  let total = 0;
  for (const r of y) total += (r - mean) ** 2;

  const params = columns.map((col, c): ParamImportance => {
    const cells = usable.map((r) => r.cells[c] ?? null);
    const groups = col.kind === 'numeric' ? numericGroups(cells) : categoricalGroups(cells);
    const k = new Set(groups).size;
    const explained = total > 0 && k > 1 ? epsilonSquared(groups, y, mean, total, k) : 0;
    return { name: col.name, importance: 0, explained, correlation: col.kind === 'numeric' ? spearman(cells, y) : null, groups: k };
  });
  const sum = params.reduce((s, p) => s + p.explained, 0);
  for (const p of params) p.importance = sum > 0 ? p.explained / sum : 0;
  params.sort((a, b) => b.importance - a.importance || a.name.localeCompare(b.name));
  if (sum === 0) return { trials: n, params, note: 'no parameter explains the metric on its own yet' };
  return { trials: n, params };
}

function epsilonSquared(groups: number[], y: number[], mean: number, total: number, k: number): number {
  const sums = new Map<number, { n: number; sum: number }>();
  groups.forEach((g, i) => {
    const s = sums.get(g) ?? { n: 0, sum: 0 };
    s.n++;
    s.sum += y[i];
    sums.set(g, s);
  });
  let between = 0;
  for (const s of sums.values()) between += s.n * (s.sum / s.n - mean) ** 2;
  const n = y.length;
  if (n <= k) return 0;
  const msWithin = (total - between) / (n - k);
  return Math.max(0, Math.min(1, (between - (k - 1) * msWithin) / total));
}

/** Each distinct value its own group; a missing value is a value too. */
function categoricalGroups(cells: Array<number | string | null>): number[] {
  const ids = new Map<string, number>();
  return cells.map((v) => {
    const key = v === null ? '\u0000null' : typeof v === 'number' ? `n:${v}` : `s:${v}`;
    let id = ids.get(key);
    if (id === undefined) ids.set(key, (id = ids.size));
    return id;
  });
}

/**
 * Equal-count bins by rank, ties always together. A parameter with no more distinct values than
 * bins (an int in 1..4) gets one group per value instead. Non-numbers share group -1.
 */
function numericGroups(cells: Array<number | string | null>): number[] {
  const present: number[] = [];
  const values: number[] = [];
  cells.forEach((v, i) => {
    if (typeof v === 'number' && Number.isFinite(v)) {
      present.push(i);
      values.push(v);
    }
  });
  const out = new Array<number>(cells.length).fill(-1);
  if (values.length === 0) return out;
  // Two halves at least: with few trials, above or below the median is still worth knowing.
  const bins = Math.max(2, Math.min(MAX_BINS, Math.floor(values.length / MIN_PER_BIN)));
  const distinct = new Set(values).size;
  if (distinct <= bins) {
    const sorted = [...new Set(values)].sort((a, b) => a - b);
    const index = new Map(sorted.map((v, i) => [v, i]));
    present.forEach((cell, j) => (out[cell] = index.get(values[j])!));
    return out;
  }
  const ranks = averageRanks(values);
  const m = values.length;
  present.forEach((cell, j) => (out[cell] = Math.min(bins - 1, Math.floor(((ranks[j] - 0.5) * bins) / m))));
  return out;
}

/** Spearman's rho: Pearson's correlation of the ranks, over trials that have the parameter. */
function spearman(cells: Array<number | string | null>, yRanks: number[]): number | null {
  const xs: number[] = [];
  const ys: number[] = [];
  cells.forEach((v, i) => {
    if (typeof v === 'number' && Number.isFinite(v)) {
      xs.push(v);
      ys.push(yRanks[i]);
    }
  });
  if (xs.length < 3 || new Set(xs).size < 2) return null;
  return pearson(averageRanks(xs), averageRanks(ys));
}

function pearson(a: number[], b: number[]): number | null {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  if (saa === 0 || sbb === 0) return null;
  return sab / Math.sqrt(saa * sbb);
}

/** 1-based ranks; tied values share the mean of the ranks they span. */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}
