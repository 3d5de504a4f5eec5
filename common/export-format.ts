/**
 * A sweep's trials as CSV or JSON lines, for a notebook or a paper (`sweeper export`, the
 * dashboard's download). Pure: what to write comes in (ExportHeader, then ExportTrial after
 * ExportTrial, as the ExportSweep stream carries them), text goes out, one trial at a time, so a
 * 10,000-trial sweep is never held as one string.
 *
 * Two shapes. One row per trial: fixed columns, then its parameters as `params.<a.b>` in config
 * order, then `metrics.<name>.last`, `.min` and `.max` of every metric, names sorted. Or, with
 * history, one row per logged point: `trial_id`, `step`, then `metrics.<name>` of each metric,
 * the values a trial logged at one step forming one row (W&B's history rows). The prefixes keep a
 * parameter, a metric and a fixed column apart whatever they are called (a parameter `state`, a
 * metric `lr` beside a parameter `lr`).
 *
 * Values keep their types: a float parameter whose value is integral is `3.0` in both formats,
 * an int `3`, floats as Python's repr writes them (`1e-05`); booleans `true`/`false`; a list or
 * object value its typed JSON; a missing value is an empty field (CSV) or `null` (JSONL). JSONL
 * objects carry exactly the CSV's columns, so both read into the same table. CSV follows RFC 4180:
 * a header row, CRLF line ends, fields with a comma, quote or line break quoted, quotes doubled.
 */
import { flattenParams } from '../domain/params.js';
import { isFloatValue, makeFloat, parseTypedJson, pyFloatRepr, stringifyTyped, type ParamValue } from '../domain/values.js';

export type ExportFormat = 'csv' | 'jsonl';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'jsonl'];

/** Metrics the agent samples itself (CPU, memory, GPU), not logged by the program. */
export const SYSTEM_PREFIX = 'system/';

export interface ExportHeader {
  sweepId: string;
  /** '' without a metric. */
  metricName: string;
  metricGoal: string;
  /** Dotted parameter names, in config order (see orderParamNames). */
  paramNames: string[];
  /** Every metric an exported trial logged, sorted. */
  metricNames: string[];
  /** ms since the epoch: a running trial's runtime counts up to it. */
  exportedAt: number;
}

export interface ExportMetric {
  name: string;
  last: number;
  min: number;
  max: number;
}

export interface ExportSeries {
  name: string;
  /** A system sample's step is its time (ms since the epoch). */
  steps: number[];
  values: number[];
}

export interface ExportTrial {
  id: string;
  number: number;
  state: string;
  agentId: string;
  /** Typed JSON, as the program received the parameters. */
  paramsJson: string;
  /** ms since the epoch; 0 when not (yet) started or ended. */
  startedAt: number;
  endedAt: number;
  reason: string;
  /** Best value of the sweep's metric, per its goal; null when it logged none. */
  value: number | null;
  /** 0: does not rank. */
  rank: number;
  metrics: ExportMetric[];
  /** Empty unless the history was asked for. */
  series: ExportSeries[];
}

/** A field: a typed value, or nothing. */
export type Cell = ParamValue | undefined;

export const SUMMARY_COLUMNS = ['trial_id', 'number', 'state', 'rank', 'value', 'runtime_s', 'reason', 'agent_id', 'started_at', 'ended_at'] as const;
const METRIC_STATS = ['last', 'min', 'max'] as const;

/**
 * Parameter columns: every name the trials received, each placed where the config names it
 * (`optimizer.name` of a categorical `optimizer` whose values are objects, where `optimizer`
 * is), names the config does not know after, in the order they were first seen.
 */
export function orderParamNames(configNames: readonly string[], seenNames: Iterable<string>): string[] {
  const rank = new Map(configNames.map((n, i) => [n, i]));
  const placed = (name: string): number => {
    for (let prefix = name; ; ) {
      const i = rank.get(prefix);
      if (i !== undefined) return i;
      const dot = prefix.lastIndexOf('.');
      if (dot < 0) return configNames.length;
      prefix = prefix.slice(0, dot);
    }
  };
  const seen = [...new Set(seenNames)];
  return seen
    .map((name, order) => ({ name, order, at: placed(name) }))
    .sort((a, b) => a.at - b.at || a.order - b.order)
    .map((x) => x.name);
}

/** The columns of an export. */
export function exportColumns(header: ExportHeader, history: boolean): string[] {
  if (history) return ['trial_id', 'step', ...(hasSystem(header) ? ['time'] : []), ...header.metricNames.map((m) => `metrics.${m}`)];
  return [
    ...SUMMARY_COLUMNS,
    ...header.paramNames.map((p) => `params.${p}`),
    ...header.metricNames.flatMap((m) => METRIC_STATS.map((s) => `metrics.${m}.${s}`)),
  ];
}

/** A trial's row in a per-trial export, aligned with exportColumns(header, false). */
export function summaryRow(header: ExportHeader, t: ExportTrial): Cell[] {
  const params = new Map(flattenParams(parseTypedJson(t.paramsJson)));
  const metrics = new Map(t.metrics.map((m) => [m.name, m]));
  const end = t.endedAt || header.exportedAt;
  return [
    t.id,
    t.number,
    t.state,
    t.rank > 0 ? t.rank : null,
    t.value,
    t.startedAt > 0 ? makeFloat((end - t.startedAt) / 1000) : null,
    t.reason || null,
    t.agentId || null,
    isoTime(t.startedAt),
    isoTime(t.endedAt),
    ...header.paramNames.map((p) => params.get(p)),
    ...header.metricNames.flatMap((name) => {
      const m = metrics.get(name);
      // A metric with only invalid values (NaN) has a summary but no numbers.
      return METRIC_STATS.map((s) => (m && Number.isFinite(m[s]) ? m[s] : null));
    }),
  ];
}

/**
 * A trial's rows in a history export, aligned with exportColumns(header, true): the program's
 * rows by step (the n-th value a metric logged at a step goes in that step's n-th row), then,
 * when the header has system metrics, the agent's samples by time, with `step` empty.
 */
export function historyRows(header: ExportHeader, t: ExportTrial): Cell[][] {
  const system = hasSystem(header);
  const column = new Map(header.metricNames.map((m, i) => [m, i]));
  const rowsOf = (series: ExportSeries[]) => {
    const rows = new Map<string, { at: number; nth: number; values: Cell[] }>();
    for (const s of series) {
      const i = column.get(s.name);
      if (i === undefined) continue;
      const nth = new Map<number, number>();
      for (let k = 0; k < s.steps.length; k++) {
        const at = s.steps[k];
        const n = nth.get(at) ?? 0;
        nth.set(at, n + 1);
        const key = `${at}#${n}`;
        let row = rows.get(key);
        if (!row) rows.set(key, (row = { at, nth: n, values: new Array<Cell>(header.metricNames.length).fill(null) }));
        row.values[i] = s.values[k];
      }
    }
    return [...rows.values()].sort((a, b) => a.at - b.at || a.nth - b.nth);
  };
  const own = rowsOf(t.series.filter((s) => !s.name.startsWith(SYSTEM_PREFIX)));
  const out: Cell[][] = own.map((r) => [t.id, r.at, ...(system ? [null] : []), ...r.values]);
  if (system) {
    for (const r of rowsOf(t.series.filter((s) => s.name.startsWith(SYSTEM_PREFIX)))) out.push([t.id, null, isoTime(r.at), ...r.values]);
  }
  return out;
}

/** One CSV record, RFC 4180, CRLF-terminated. */
export function csvRecord(cells: readonly Cell[]): string {
  return cells.map((c) => csvField(cellText(c))).join(',') + '\r\n';
}

/** One JSON line: the columns as keys, each cell as typed JSON (null when empty). */
export function jsonlRecord(columns: readonly string[], cells: readonly Cell[]): string {
  return `{${columns.map((c, i) => `${JSON.stringify(c)}:${stringifyTyped(cells[i] ?? null)}`).join(',')}}\n`;
}

/** An export being written: its head once, then each trial's rows as it arrives. */
export class ExportEncoder {
  readonly columns: string[];

  constructor(
    readonly format: ExportFormat,
    readonly header: ExportHeader,
    readonly history: boolean,
  ) {
    this.columns = exportColumns(header, history);
  }

  /** The CSV header row; nothing for JSONL. */
  head(): string {
    return this.format === 'csv' ? csvRecord(this.columns) : '';
  }

  /** The trial's rows. */
  trial(t: ExportTrial): string {
    const rows = this.history ? historyRows(this.header, t) : [summaryRow(this.header, t)];
    return rows.map((r) => (this.format === 'csv' ? csvRecord(r) : jsonlRecord(this.columns, r))).join('');
  }
}

/** The MIME type and file name ending of a format. */
export function exportContentType(format: ExportFormat): string {
  return format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8';
}

/** `<sweep>.csv`, `<sweep>-history.jsonl`: what a download is saved as. */
export function exportFileName(sweepId: string, format: ExportFormat, history: boolean): string {
  return `${sweepId}${history ? '-history' : ''}.${format}`;
}

function hasSystem(header: ExportHeader): boolean {
  return header.metricNames.some((m) => m.startsWith(SYSTEM_PREFIX));
}

function isoTime(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

/** A cell as CSV text: as its JSON would write it, strings bare, nothing for a missing value. */
function cellText(c: Cell): string {
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  if (typeof c === 'number' && isFloatValue(c)) return pyFloatRepr(c);
  return stringifyTyped(c);
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
