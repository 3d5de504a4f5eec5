/**
 * The leaderboard and the end-of-run summary as plain text: `sweeper watch` and `sweeper local`
 * redraw these, so everything here is pure (the clock comes in through `now`).
 *
 * Every line is built as styled segments and cut to the width in one last pass, so no line is
 * ever wider than asked for, and `color: false` cannot leak an escape code: styles only become
 * escape codes in that pass. Widths count code points; East Asian wide characters in parameter
 * values would misalign the columns.
 */
import type { ApiSweep, ApiSweepDetail, ApiTrial } from '../common/api-types.js';
import { Objective } from '../domain/objective.js';
import { flattenParams, isPlainObject } from '../domain/params.js';
import { isTerminal, TRIAL_STATES, trialStateOrder } from '../domain/trial-state.js';
import { Float, type ParamValue, parseTypedJson, pyStr } from '../domain/values.js';

export interface LeaderboardOptions {
  /** Terminal columns; no line is longer. */
  width: number;
  color: boolean;
  /** Trials shown at most (default all); the rest are counted in a `… N more` line. */
  maxRows?: number;
  /** Milliseconds since the epoch, for the runtime of running trials (default `Date.now()`). */
  now?: number;
}

export interface SummaryOptions {
  width: number;
  color: boolean;
  /** How many of the best trials to list (default 5). */
  top?: number;
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** A number to 4 significant digits, much as Python's `'%.4g'` writes it: `0.001234`, `1.2e-05`, `128`. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  // The exponent must come from the rounded value: 9999.7 rounds to 1.000e+4 and switches form.
  const [mantissa, expText] = n.toExponential(3).split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 4) {
    const e = String(Math.abs(exp)).padStart(2, '0');
    return `${stripZeros(mantissa)}e${exp < 0 ? '-' : '+'}${e}`;
  }
  return stripZeros(n.toFixed(3 - exp));
}

function stripZeros(decimal: string): string {
  return decimal.includes('.') ? decimal.replace(/\.?0+$/, '') : decimal;
}

/**
 * A parameter value, compactly: ints exactly (a batch size of 50000 must not read `5e+04`),
 * floats to 4 significant digits but always looking like floats (`3.0`), Python's spelling for
 * booleans and None, strings unquoted.
 */
export function formatParam(v: ParamValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return printable(v);
  if (v instanceof Float || typeof v === 'number') {
    const n = typeof v === 'number' ? v : v.value;
    if (v instanceof Float || !Number.isInteger(n) || Object.is(n, -0)) {
      const text = formatValue(n);
      return /^-?\d+$/.test(text) ? `${text}.0` : text;
    }
    return String(n);
  }
  if (Array.isArray(v)) return `[${v.map(formatParam).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, e]) => `${printable(k)}: ${formatParam(e)}`)
    .join(', ')}}`;
}

/** `0.3s` under ten seconds, then `42s`, `1m03s`, `2h05m`, `3d04h`. */
export function formatDuration(ms: number): string {
  if (!(ms > 0)) return '0s';
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** Text from a training program or a user can hold newlines or escape codes that would break the layout. */
function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return ' ';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Styled lines

type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan';
const SGR: Record<Style, string> = { bold: '1', dim: '2', red: '31', green: '32', yellow: '33', cyan: '36' };

interface Segment {
  text: string;
  style?: Style;
}
type Line = Segment[];

const STATE_STYLE: Record<string, Style> = {
  running: 'cyan',
  finished: 'green',
  failed: 'red',
  crashed: 'red',
  stopped: 'yellow',
  stopping: 'yellow',
  paused: 'yellow',
};

/**
 * A mark per state, so states read apart without colour too (NO_COLOR, a log file): trials that
 * failed or were stopped must stand out from those that finished.
 */
const STATE_MARK: Record<string, string> = {
  running: '●',
  finished: '✓',
  failed: '✗',
  crashed: '✗',
  stopped: '■',
};

function len(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function cutEnd(s: string, width: number): string {
  if (len(s) <= width) return s;
  if (width <= 0) return '';
  return [...s].slice(0, width - 1).join('') + '…';
}

/** Dotted names say the most at their end (`…ptimizer.beta1`). */
function cutStart(s: string, width: number): string {
  if (len(s) <= width) return s;
  if (width <= 0) return '';
  const chars = [...s];
  return '…' + chars.slice(chars.length - (width - 1)).join('');
}

/** Cut to the width (marking the cut with `…`), drop trailing blanks, and apply styles if asked. */
function finishLine(line: Line, width: number, color: boolean): string {
  let segs = line;
  if (lineWidth(line) > width) {
    segs = [];
    let room = Math.max(0, width - 1);
    for (const seg of line) {
      if (room <= 0) break;
      const chars = [...seg.text];
      segs.push({ ...seg, text: chars.slice(0, room).join('') });
      room -= Math.min(room, chars.length);
    }
    if (width > 0) segs.push({ text: '…' });
  }
  segs = trimEnd(segs);
  return segs.map((seg) => (color && seg.style && seg.text ? `\x1b[${SGR[seg.style]}m${seg.text}\x1b[0m` : seg.text)).join('');
}

function trimEnd(segs: Line): Line {
  const out = segs.slice();
  while (out.length > 0) {
    const last = out[out.length - 1];
    const trimmed = last.text.replace(/ +$/, '');
    if (trimmed === '') out.pop();
    else {
      out[out.length - 1] = { ...last, text: trimmed };
      break;
    }
  }
  return out;
}

function lineWidth(line: Line): number {
  return line.reduce((n, seg) => n + len(seg.text), 0);
}

function join(parts: Line[], sep = ' · '): Line {
  return parts.flatMap((p, i) => (i === 0 ? p : [{ text: sep }, ...p]));
}

// ---------------------------------------------------------------------------------------------
// Trials

/**
 * What "better" means for the sweep, as the controller sent it: null without a metric; a goal
 * left empty is minimize, as in W&B.
 */
export function objectiveOfSweep(sweep: Pick<ApiSweep, 'metricName' | 'metricGoal'>): Objective | null {
  if (!sweep.metricName) return null;
  return new Objective(sweep.metricName, sweep.metricGoal === 'maximize' ? 'maximize' : 'minimize');
}

/** A trial off the wire with its parameters flattened to the table's column names. */
interface TableRow {
  trial: ApiTrial;
  params: Map<string, ParamValue>;
}

/** The one mapping of a wire trial onto a table row. */
function rowOf(trial: ApiTrial): TableRow {
  let parsed: ParamValue = {};
  try {
    parsed = parseTypedJson(trial.paramsJson || '{}');
  } catch {
    // A snapshot with bad params still deserves a row; the cells stay empty.
  }
  return { trial, params: new Map(flattenParams(parsed).filter(([name]) => name !== '')) };
}

/**
 * Parameter names in a stable order, so columns do not jump while the leaderboard reorders: the
 * config's order, searched parameters before constant ones (a constant says little per row and
 * is the first to give way when the terminal is narrow), then names the config does not list.
 */
function paramOrder(configJson: string, views: TableRow[]): string[] {
  const searched: string[] = [];
  const constant: string[] = [];
  const walk = (specs: unknown, prefix: string) => {
    if (!isPlainObject(specs)) return;
    for (const [name, spec] of Object.entries(specs)) {
      const dotted = prefix ? `${prefix}.${name}` : name;
      if (!isPlainObject(spec)) continue;
      if (isPlainObject(spec.parameters)) walk(spec.parameters, dotted);
      else (isConstantSpec(spec) ? constant : searched).push(dotted);
    }
  };
  try {
    const config = parseTypedJson(configJson || '{}');
    if (isPlainObject(config)) walk(config.parameters, '');
  } catch {
    // Without a readable config the order of first appearance is all there is.
  }
  const present = new Set(views.flatMap((v) => [...v.params.keys()]));
  const ordered = [...searched, ...constant].filter((n) => present.has(n));
  const known = new Set(ordered);
  for (const name of present) if (!known.has(name)) ordered.push(name);
  return ordered;
}

function isConstantSpec(spec: { [key: string]: ParamValue }): boolean {
  if (spec.distribution === 'constant') return true;
  if (Array.isArray(spec.values)) return spec.values.length === 1;
  return 'value' in spec && spec.distribution === undefined;
}

function trialLabel(detail: ApiSweepDetail, trialId: string): string {
  const trial = detail.trials.find((t) => t.id === trialId);
  if (trial) return String(trial.number);
  // Ids are `<sweep id>-<number>`; the number is what the table shows.
  const m = /-(\d+)$/.exec(trialId);
  return m ? m[1] : trialId;
}

function stateCell(t: ApiTrial): string {
  const mark = STATE_MARK[t.state];
  return mark ? `${mark} ${t.state}` : t.state;
}

/** `0 87%` for a trial on GPU 0 at 87% utilisation; `-` off a GPU. */
function gpuCell(t: ApiTrial): string {
  if (!t.gpu) return '-';
  return t.gpuUtil !== undefined && t.gpuUtil !== null ? `${t.gpu} ${Math.round(t.gpuUtil)}%` : t.gpu;
}

function runtime(t: ApiTrial, now: number): string {
  if (!t.startedAt) return '-';
  return formatDuration((t.endedAt || now) - t.startedAt);
}

function optValue(n: number | undefined): string {
  return n === undefined ? '-' : formatValue(n);
}

// ---------------------------------------------------------------------------------------------
// Leaderboard

const GAP = '  ';
/** A parameter column wider than this is cut: one long string must not push out the others. */
const MAX_PARAM_WIDTH = 24;
/** Narrower than this, a cut parameter column says too little to be worth showing. */
const MIN_PARAM_WIDTH = 6;
/** When columns must go, headers longer than their values are cut to this, to make room. */
const COMPACT_HEADER = 10;
const BAR_WIDTH = 10;

interface Column {
  header: string;
  cells: string[];
  align: 'left' | 'right';
  width: number;
  cutHeader: (s: string, w: number) => string;
  styleOf?: (row: number) => Style | undefined;
}

function column(header: string, cells: string[], align: 'left' | 'right', extra: Partial<Column> = {}): Column {
  const width = Math.max(len(header), ...cells.map(len));
  return { header, cells, align, width, cutHeader: cutEnd, ...extra };
}

function pad(s: string, width: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, width - len(s)));
  return align === 'left' ? s + fill : fill + s;
}

/** The leaderboard: a few header lines about the sweep, a blank line, then one row per trial. */
export function renderLeaderboard(detail: ApiSweepDetail, opts: LeaderboardOptions): string {
  const { sweep } = detail;
  const width = Math.max(1, Math.floor(opts.width));
  const now = opts.now ?? Date.now();
  const lines: Line[] = headerBlock(detail, width);
  lines.push([]);

  const limit = opts.maxRows === undefined ? detail.trials.length : Math.max(0, Math.floor(opts.maxRows));
  const shown = detail.trials.slice(0, limit).map(rowOf);
  // A snapshot fetched with a limit holds fewer trials than the sweep has.
  const hidden = Math.max(detail.trials.length, sweep.trialCount) - shown.length;

  let dropped: string[] = [];
  if (detail.trials.length === 0) lines.push([{ text: 'no trials yet', style: 'dim' }]);
  else if (shown.length > 0) {
    const t = table(detail, shown, width, now);
    lines.push(...t.lines);
    dropped = t.dropped;
  }
  if (hidden > 0) lines.push([{ text: `… ${hidden} more`, style: 'dim' }]);
  if (dropped.length > 0) {
    const what = `+${dropped.length} param${dropped.length === 1 ? '' : 's'}`;
    lines.push([{ text: `${what}: ${dropped.join(', ')}`, style: 'dim' }]);
  }

  return lines.map((l) => finishLine(l, width, opts.color)).join('\n');
}

function headerBlock(detail: ApiSweepDetail, width: number): Line[] {
  const { sweep } = detail;
  const first: Line[] = [[{ text: 'sweep ' }, { text: sweep.id, style: 'bold' }]];
  if (sweep.name) first[0].push({ text: ` "${printable(sweep.name)}"` });
  first.push([{ text: sweep.method }], [{ text: sweep.state, style: STATE_STYLE[sweep.state] }]);
  const over = sweep.state === 'finished' || sweep.state === 'stopped';
  if (!over) first.push([{ text: `${sweep.activeAgents} agent${sweep.activeAgents === 1 ? '' : 's'}` }]);

  let metric: Line[];
  if (!sweep.metricName) metric = [[{ text: 'no metric' }]];
  else {
    const best =
      sweep.bestValue === undefined
        ? 'best -'
        : `best ${formatValue(sweep.bestValue)}` + (sweep.bestTrialId ? ` (trial ${trialLabel(detail, sweep.bestTrialId)})` : '');
    metric = [[{ text: `metric ${printable(sweep.metricName)} (${objectiveOfSweep(sweep)!.goal})` }], [{ text: best, style: 'bold' }]];
  }

  const objective = objectiveOfSweep(sweep);
  const trend = objective ? trendLine(detail, objective, width) : undefined;

  const progress: Line[] = [[{ text: progressText(detail) }]];
  for (const [state, n] of stateCounts(sweep.stateCounts)) progress.push([{ text: `${state} ${n}`, style: STATE_STYLE[state] }]);

  const out = [join(first), join(metric)];
  if (trend) out.push(trend);
  // The counts matter more than one line: on a narrow terminal they get a line of their own.
  if (progress.length > 1 && lineWidth(join(progress)) > width) out.push(join(progress.slice(0, 1)), join(progress.slice(1)));
  else out.push(join(progress));
  if (over && sweep.finishReason) {
    out.push([{ text: `${sweep.state}: ${printable(sweep.finishReason)}` }]);
  }
  return out;
}

const SPARK = '▁▂▃▄▅▆▇█';
/** The sparkline never takes more than this, however wide the terminal. */
const SPARK_MAX = 40;

/** `best so far ██▆▆▃▁▁▁  0.5 → 0.01235`: how the sweep's best value moved, trial by trial. */
function trendLine(detail: ApiSweepDetail, objective: Objective, width: number): Line | undefined {
  const label = 'best so far ';
  const series = bestSoFar(detail.trials, objective);
  const defined = series.filter((v): v is number => v !== undefined);
  if (defined.length < 2) return undefined;
  const ends = `  ${formatValue(defined[0])} → ${formatValue(defined[defined.length - 1])}`;
  const cells = Math.min(SPARK_MAX, series.length, width - len(label) - len(ends));
  // Too narrow for a useful line: leave it out rather than cut it.
  if (cells < 4) return undefined;
  return [{ text: label }, { text: sparkline(series, cells), style: 'green' }, { text: ends }];
}

/**
 * The best value so far after each trial, in creation order (`undefined` until one has a value).
 * No new RPC is needed: every trial's best value is in the snapshot.
 */
export function bestSoFar(trials: readonly ApiTrial[], objective: Objective): Array<number | undefined> {
  let best: number | undefined;
  return [...trials]
    .sort((a, b) => a.number - b.number)
    .map((t) => {
      const v = t.bestValue;
      if (v !== undefined && Number.isFinite(v) && (best === undefined || objective.better(v, best))) best = v;
      return best;
    });
}

/**
 * A series in at most `cells` block characters, each cell showing the value at the end of its
 * share of the series (best-so-far only moves one way, so that is the cell's best). Values
 * spanning more than 50× are drawn on a log scale, or one diverged early trial flattens the rest.
 */
export function sparkline(series: Array<number | undefined>, cells: number): string {
  const n = series.length;
  const w = Math.max(0, Math.min(cells, n));
  const picked = Array.from({ length: w }, (_, i) => series[Math.floor(((i + 1) * n) / w) - 1]);
  const defined = picked.filter((v): v is number => v !== undefined);
  if (defined.length === 0) return ' '.repeat(w);
  const log = Math.min(...defined) > 0 && Math.max(...defined) / Math.min(...defined) >= 50;
  const f = (v: number) => (log ? Math.log(v) : v);
  const lo = Math.min(...defined.map(f));
  const hi = Math.max(...defined.map(f));
  return picked
    .map((v) => {
      if (v === undefined) return ' ';
      const t = hi > lo ? (f(v) - lo) / (hi - lo) : 0;
      return SPARK[Math.round(t * (SPARK.length - 1))];
    })
    .join('');
}

/** The counts by state in display order (TRIAL_STATES, as the dashboard shows them). */
function stateCounts(counts: Record<string, number>): Array<[string, number]> {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => trialStateOrder(a) - trialStateOrder(b) || a.localeCompare(b));
}

const ENDED_STATES = TRIAL_STATES.filter(isTerminal);
const ACTIVE_STATES = TRIAL_STATES.filter((s) => !isTerminal(s));

/** `9/12 trials [█████▒▒░░░]`: ended trials solid, running ones shaded. */
function progressText(detail: ApiSweepDetail): string {
  const { sweep } = detail;
  const plural = (n: number) => (n === 1 ? 'trial' : 'trials');
  if (!(sweep.trialLimit > 0)) return `${sweep.trialCount} ${plural(sweep.trialCount)}`;
  const count = (states: readonly string[]) => states.reduce((n, s) => n + (sweep.stateCounts[s] ?? 0), 0);
  const ended = count(ENDED_STATES);
  const active = count(ACTIVE_STATES);
  const cells = (n: number) => Math.min(BAR_WIDTH, Math.round((n / sweep.trialLimit) * BAR_WIDTH));
  const solid = cells(ended);
  const shaded = Math.max(0, cells(ended + active) - solid);
  const bar = '█'.repeat(solid) + '▒'.repeat(shaded) + '░'.repeat(BAR_WIDTH - solid - shaded);
  return `${sweep.trialCount}/${sweep.trialLimit} ${plural(sweep.trialLimit)} [${bar}]`;
}

/** The table's lines and the names of the parameter columns that did not fit. */
function table(detail: ApiSweepDetail, rows: TableRow[], width: number, now: number): { lines: Line[]; dropped: string[] } {
  const trials = rows.map((r) => r.trial);
  const stateStyle = (row: number) => STATE_STYLE[trials[row].state];
  const fixed = (trialCells: string[]) => [
    column('#', trials.map((t) => (t.rank > 0 ? String(t.rank) : '')), 'right'),
    column('trial', trialCells, 'right'),
    column('state', trials.map(stateCell), 'left', { styleOf: stateStyle }),
    column('best', trials.map((t) => optValue(t.bestValue)), 'right'),
    column('last', trials.map((t) => optValue(t.lastValue)), 'right'),
    column('step', trials.map((t) => (t.points > 0 ? String(t.lastStep) : '-')), 'right'),
    column('runtime', trials.map((t) => runtime(t, now)), 'right'),
    // Only on GPU hosts: the trial's GPU and its latest utilisation.
    ...(trials.some((t) => t.gpu) ? [column('gpu', trials.map(gpuCell), 'left')] : []),
  ];

  const params = paramOrder(detail.sweep.configJson, rows).map((name) => {
    const values = rows.map((r) => r.params.get(name));
    const cells = values.map((v) => (v === undefined ? '' : formatParam(v)));
    // Numbers line up by their last digit; anything else reads better from the left.
    const numeric = values.every((v) => v === undefined || typeof v === 'number' || v instanceof Float);
    const col = column(name, cells, numeric ? 'right' : 'left', { cutHeader: cutStart });
    col.width = Math.min(col.width, MAX_PARAM_WIDTH);
    return col;
  });
  const compact = params.map((c) => ({ ...c, width: Math.min(c.width, Math.max(COMPACT_HEADER, ...c.cells.map(len))) }));

  const byNumber = fixed(trials.map((t) => String(t.number)));
  let fit = fitParams(byNumber, params, width);
  if (fit.dropped > 0) {
    const tighter = fitParams(byNumber, compact, width);
    if (tighter.dropped < fit.dropped) fit = tighter;
  }
  let columns = [...byNumber, ...fit.shown];
  if (fit.dropped === 0) {
    // Room to spare goes to full trial ids, which `sweeper logs` and friends take.
    const byId = fixed(trials.map((t) => t.id || String(t.number)));
    if (tableWidth([...byId, ...fit.shown]) <= width) columns = [...byId, ...fit.shown];
  }

  const header: Line = columns.flatMap((c, i) => [
    ...(i > 0 ? [{ text: GAP }] : []),
    { text: pad(c.cutHeader(c.header, c.width), c.width, c.align), style: 'bold' as const },
  ]);

  const body = rows.map((_, row) =>
    columns.flatMap((c, i): Line => {
      const text = cutEnd(c.cells[row], c.width);
      const fill = ' '.repeat(c.width - len(text));
      const cell: Segment = { text, style: c.styleOf?.(row) };
      const padded = c.align === 'left' ? [cell, { text: fill }] : [{ text: fill }, cell];
      return [...(i > 0 ? [{ text: GAP }] : []), ...padded];
    }),
  );
  return { lines: [header, ...body], dropped: params.slice(fit.shown.length).map((c) => c.header) };
}

function tableWidth(columns: Column[]): number {
  return columns.reduce((n, c) => n + c.width, 0) + len(GAP) * Math.max(0, columns.length - 1);
}

/**
 * Parameter columns in order while they fit; the first one that does not may be cut narrower,
 * and everything after it is dropped.
 */
function fitParams(fixed: Column[], params: Column[], width: number): { shown: Column[]; dropped: number } {
  let used = tableWidth(fixed);
  const shown: Column[] = [];
  for (const col of params) {
    const room = width - used - len(GAP);
    if (col.width <= room) {
      shown.push(col);
      used += len(GAP) + col.width;
      continue;
    }
    if (room >= MIN_PARAM_WIDTH) shown.push({ ...col, width: room });
    break;
  }
  return { shown, dropped: params.length - shown.length };
}

// ---------------------------------------------------------------------------------------------
// Summary


/**
 * What `sweeper local` prints when the sweep is over: the best trials with their parameters in
 * full (to copy into a final run), then one line per way trials failed to finish. Failed and
 * crashed trials are never among the best, whatever they logged.
 */
export function renderSummary(detail: ApiSweepDetail, opts: SummaryOptions): string {
  const { sweep } = detail;
  const width = Math.max(1, Math.floor(opts.width));
  const top = opts.top ?? 5;
  const lines: Line[] = [];
  const uncut = new Set<Line>();

  const title: Line = [{ text: 'sweep ' }, { text: sweep.id, style: 'bold' }];
  if (sweep.name) title.push({ text: ` "${printable(sweep.name)}"` });
  title.push({ text: ' ' }, { text: sweep.state, style: STATE_STYLE[sweep.state] });
  if (sweep.finishReason) title.push({ text: ` (${printable(sweep.finishReason)})` });
  title.push({ text: ` · ${sweep.trialCount} ${sweep.trialCount === 1 ? 'trial' : 'trials'}` });
  lines.push(title);

  // A failed or crashed trial's value is not a result: it is listed below as failed, never as best.
  const valued = detail.trials.filter((t) => t.bestValue !== undefined);
  // The controller ranks only trials that may rank (rankTrials in controller/sweeps/trial-view.ts).
  const ranked = valued.filter((t) => t.rank > 0).sort((a, b) => a.rank - b.rank);
  if (!sweep.metricName) lines.push([{ text: 'no metric configured, so no trial ranks above another' }]);
  else if (ranked.length === 0) {
    const metric = printable(sweep.metricName);
    lines.push([{ text: valued.length ? `no trial logged ${metric} without failing` : `no trial logged ${metric}` }]);
  }
  else {
    const best = ranked.slice(0, top);
    const goal = objectiveOfSweep(sweep)!.goal;
    lines.push([{ text: `best ${best.length === 1 ? 'trial' : `${best.length} trials`} by ${printable(sweep.metricName)} (${goal}):` }]);
    const views = best.map(rowOf);
    const order = paramOrder(sweep.configJson, views);
    const labels = best.map((t) => `trial ${t.number}`);
    const values = best.map((t) => formatValue(t.bestValue as number));
    const labelWidth = Math.max(...labels.map(len));
    const valueWidth = Math.max(...values.map(len));
    const placeWidth = len(`${best.length}.`);
    views.forEach((v, i) => {
      const lead = `  ${pad(`${i + 1}.`, placeWidth, 'left')} ${pad(labels[i], labelWidth, 'left')}  `;
      const params = order.filter((n) => v.params.has(n)).map((n) => `${n}=${printable(pyStr(v.params.get(n) as ParamValue))}`);
      const wrapped = wrapParams([{ text: lead }, { text: pad(values[i], valueWidth, 'right'), style: 'bold' }], params, width);
      for (const l of wrapped) uncut.add(l);
      lines.push(...wrapped);
    });
  }

  const groups = failureGroups(detail.trials);
  if (groups.length > 0) {
    lines.push([{ text: 'not finished:' }]);
    for (const g of groups) {
      const which = g.numbers.length === 1 ? `trial ${g.numbers[0]}` : `trials ${listNumbers(g.numbers)}`;
      lines.push([
        { text: '  ' },
        { text: `${g.numbers.length} ${g.state}`, style: STATE_STYLE[g.state] },
        { text: ` (${which}): ${g.reason}` },
      ]);
    }
  }
  return lines.map((l) => finishLine(l, uncut.has(l) ? Infinity : width, opts.color)).join('\n');
}

/**
 * Parameters follow the value and wrap at whole `name=value` pairs, aligned under the first pair.
 * A pair is never cut (the point of the summary is values one can copy), so these lines may run
 * past the width.
 */
function wrapParams(lead: Line, pairs: string[], width: number): Line[] {
  const indent = lineWidth(lead);
  const lines: Line[] = [];
  let current: Line = [...lead];
  let used = indent;
  for (const pair of pairs) {
    if (used > indent && used + len(GAP) + len(pair) > width) {
      lines.push(current);
      current = [{ text: ' '.repeat(indent) }];
      used = indent;
    }
    current.push({ text: GAP + pair });
    used += len(GAP) + len(pair);
  }
  lines.push(current);
  return lines;
}

interface FailureGroup {
  state: string;
  reason: string;
  numbers: number[];
}

function failureGroups(trials: ApiTrial[]): FailureGroup[] {
  const groups = new Map<string, FailureGroup>();
  for (const t of trials) {
    if (t.state === 'finished') continue;
    const reason = printable(oneLine(t.reason || fallbackReason(t)));
    const key = `${t.state}\n${reason}`;
    const g = groups.get(key) ?? { state: t.state, reason, numbers: [] };
    g.numbers.push(t.number);
    groups.set(key, g);
  }
  return [...groups.values()]
    .map((g) => ({ ...g, numbers: g.numbers.sort((a, b) => a - b) }))
    .sort((a, b) => b.numbers.length - a.numbers.length || trialStateOrder(a.state) - trialStateOrder(b.state) || a.reason.localeCompare(b.reason));
}

function fallbackReason(t: ApiTrial): string {
  if (t.signal) return `killed by ${t.signal}`;
  if (t.exitCode !== undefined && t.exitCode !== 0) return `exit code ${t.exitCode}`;
  if (t.state === 'running') return 'still running when the run ended';
  return 'no reason given';
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function listNumbers(numbers: number[]): string {
  const most = 6;
  const head = numbers.slice(0, most).join(', ');
  return numbers.length > most ? `${head}, …` : head;
}
