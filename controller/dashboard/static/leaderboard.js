// @ts-check
/**
 * The sortable leaderboard. Only the rows in view are in the DOM (plus a spacer above and below),
 * so 10,000 trials cost the same to redraw as 30: a live update re-sorts an array and rebuilds a
 * screenful of rows.
 */
import { h, replace } from './dom.js';
import { formatCell, formatDuration, formatValue, STATE_GLYPH } from './format.js';

/**
 * @typedef {import('./parcoords.js').Column} Column
 * @typedef {{ id: string, number: number, state: string, bestValue: number | null, lastValue: number | null, lastStep: number, points: number,
 *   createdAt: number, startedAt: number, endedAt: number, agentId: string, gpu: string, gpuUtil: number | null, gpuMemoryMb: number | null,
 *   reason: string, params: Array<number | string | null> }} Row
 * @typedef {{ key: string, label: string, width: number, align?: 'right', title?: string,
 *   cell: (r: Row) => Node | string, sort: (r: Row) => number | string | null }} ColumnDef
 */

const ROW_PX = 30;
const OVERSCAN = 8;

/** The GPU index, its utilisation and memory on hover. @param {Row} r */
function gpuCell(r) {
  if (!r.gpu) return '';
  const parts = [r.gpuUtil !== null ? `${Math.round(r.gpuUtil)}% busy` : '', r.gpuMemoryMb !== null ? `${Math.round(r.gpuMemoryMb)} MB` : ''].filter(Boolean);
  return h('span', { title: parts.length ? `GPU ${r.gpu}: ${parts.join(', ')}` : `GPU ${r.gpu}`, text: r.gpu });
}

export class Leaderboard {
  /**
   * @param {HTMLElement} container
   * @param {{ sweepId: string, onSelect: (id: string) => void, now: () => number }} options
   */
  constructor(container, options) {
    this.options = options;
    this.scroller = h('div', { class: 'scroller' });
    this.table = h('table', { class: 'board' });
    this.colgroup = h('colgroup');
    this.head = h('thead');
    this.body = h('tbody');
    this.table.append(this.colgroup, this.head, this.body);
    this.scroller.append(this.table);
    container.append(this.scroller);
    /** @type {ColumnDef[]} */
    this.columns = [];
    /** @type {Row[]} */
    this.rows = [];
    /** @type {Map<string, number>} */
    this.ranks = new Map();
    /** Trial states in display order, as the controller sends them (its TRIAL_STATES). @type {string[]} */
    this.stateOrder = [];
    /** @type {Set<string>} */
    this.selected = new Set();
    this.sortKey = 'rank';
    this.sortDir = 1;
    /** The first direction of a column when it is clicked: best first for the metric. @type {Record<string, number>} */
    this.sortDefaults = {};
    this.frame = 0;
    this.scroller.addEventListener('scroll', () => this.renderSoon(), { passive: true });
    this.body.addEventListener('click', (e) => {
      const target = /** @type {HTMLElement} */ (e.target);
      if (target.closest('a')) return;
      const tr = target.closest('tr');
      if (tr?.dataset.trial) this.options.onSelect(tr.dataset.trial);
    });
  }

  /**
   * @param {Column[]} params
   * @param {{ name: string, goal: string } | null} metric
   */
  setColumns(params, metric) {
    const rank = (/** @type {Row} */ r) => this.ranks.get(r.id) || null;
    const link = (/** @type {Row} */ r) =>
      h('a', { href: `/sweeps/${encodeURIComponent(this.options.sweepId)}/trials/${encodeURIComponent(r.id)}`, text: `#${r.number}`, title: r.id });
    /** @type {ColumnDef[]} */
    const cols = [
      { key: 'rank', label: '#', width: 48, align: 'right', cell: (r) => String(rank(r) ?? ''), sort: rank },
      { key: 'trial', label: 'trial', width: 64, align: 'right', cell: link, sort: (r) => r.number },
      {
        key: 'state',
        label: 'state',
        width: 104,
        cell: (r) => h('span', { class: `badge state-${r.state}`, title: r.reason || r.state, text: `${STATE_GLYPH[r.state] ?? ''} ${r.state}` }),
        sort: (r) => this.stateRank(r.state),
      },
      {
        key: 'value',
        label: metric ? metric.name : 'value',
        title: metric ? `best ${metric.name} so far (${metric.goal})` : 'no metric configured',
        width: 96,
        align: 'right',
        cell: (r) => (r.bestValue === null ? '–' : formatValue(r.bestValue)),
        sort: (r) => r.bestValue,
      },
      { key: 'step', label: 'step', width: 60, align: 'right', cell: (r) => (r.points > 0 ? String(r.lastStep) : '–'), sort: (r) => (r.points > 0 ? r.lastStep : null) },
      ...params.map((c, i) => /** @type {ColumnDef} */ ({
        key: `p${i}`,
        label: c.name,
        title: c.constant ? `${c.name} (constant)` : c.name,
        width: Math.min(160, Math.max(88, c.name.length * 8 + 20)),
        align: c.kind === 'numeric' ? 'right' : undefined,
        cell: (r) => formatCell(r.params[i]),
        sort: (r) => r.params[i] ?? null,
      })),
      { key: 'runtime', label: 'runtime', width: 76, align: 'right', cell: (r) => (r.startedAt ? formatDuration(this.runtime(r)) : '–'), sort: (r) => this.runtime(r) },
      { key: 'agent', label: 'agent', width: 140, cell: (r) => r.agentId, sort: (r) => r.agentId },
      { key: 'gpu', label: 'GPU', width: 56, title: 'the GPU the trial runs on', cell: gpuCell, sort: (r) => (r.gpu === '' ? null : Number(r.gpu)) },
    ];
    this.columns = cols;
    this.sortDefaults = { value: metric?.goal === 'maximize' ? -1 : 1 };
    replace(
      this.colgroup,
      cols.map((c) => {
        const col = h('col');
        col.style.width = `${c.width}px`;
        return col;
      }),
    );
    this.table.style.width = `${cols.reduce((w, c) => w + c.width, 0)}px`;
    this.renderHead();
    this.renderSoon();
  }

  /** @param {string[]} order trial states in display order */
  setStateOrder(order) {
    this.stateOrder = order;
  }

  /** Where a state sorts; one the page was not told of goes last. @param {string} state */
  stateRank(state) {
    const i = this.stateOrder.indexOf(state);
    return i < 0 ? this.stateOrder.length : i;
  }

  /** @param {Row} r */
  runtime(r) {
    if (!r.startedAt) return 0;
    return (r.endedAt || this.options.now()) - r.startedAt;
  }

  /**
   * @param {Row[]} rows the rows to show (already filtered)
   * @param {Map<string, number>} ranks
   */
  setRows(rows, ranks) {
    this.rows = rows;
    this.ranks = ranks;
    this.sort();
    this.renderSoon();
  }

  /** @param {Set<string>} ids */
  setSelected(ids) {
    this.selected = ids;
    this.renderSoon();
  }

  /** @param {string} key */
  sortBy(key) {
    if (this.sortKey === key) this.sortDir = -this.sortDir;
    else {
      this.sortKey = key;
      this.sortDir = this.sortDefaults[key] ?? 1;
    }
    this.renderHead();
    this.sort();
    this.renderSoon();
  }

  sort() {
    const col = this.columns.find((c) => c.key === this.sortKey) ?? this.columns[0];
    if (!col) return;
    const dir = this.sortDir;
    const keyed = this.rows.map((r) => ({ r, k: col.sort(r) }));
    // Missing values go last whichever the direction; ties fall back to the trial number.
    keyed.sort((a, b) => {
      if (a.k === null || b.k === null) return a.k === null ? (b.k === null ? a.r.number - b.r.number : 1) : -1;
      const c = typeof a.k === 'number' && typeof b.k === 'number' ? a.k - b.k : String(a.k).localeCompare(String(b.k), undefined, { numeric: true });
      return dir * c || a.r.number - b.r.number;
    });
    this.rows = keyed.map((x) => x.r);
  }

  renderHead() {
    replace(
      this.head,
      h(
        'tr',
        null,
        this.columns.map((c) => {
          const active = c.key === this.sortKey;
          const th = h(
            'th',
            { class: c.align === 'right' ? 'right' : '', title: c.title ?? c.label, attrs: { 'data-key': c.key, 'aria-sort': active ? (this.sortDir > 0 ? 'ascending' : 'descending') : 'none' } },
            h('button', { attrs: { type: 'button' }, on: { click: () => this.sortBy(c.key) } }, c.label, active ? (this.sortDir > 0 ? ' ▲' : ' ▼') : ''),
          );
          return th;
        }),
      ),
    );
  }

  renderSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Rebuild the rows in view now (live updates call this directly, to be measured). */
  render() {
    const total = this.rows.length;
    const viewport = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW_PX) - OVERSCAN);
    const last = Math.min(total, Math.ceil((this.scroller.scrollTop + viewport) / ROW_PX) + OVERSCAN);
    const spacer = (/** @type {number} */ rows) => {
      const tr = h('tr', { class: 'spacer' });
      tr.style.height = `${rows * ROW_PX}px`;
      return tr;
    };
    const trs = [];
    if (first > 0) trs.push(spacer(first));
    for (let i = first; i < last; i++) {
      const r = this.rows[i];
      trs.push(
        h(
          'tr',
          { class: `row row-${r.state}${this.selected.has(r.id) ? ' selected' : ''}`, attrs: { 'data-trial': r.id } },
          this.columns.map((c) => h('td', { class: c.align === 'right' ? 'right' : '' }, c.cell(r))),
        ),
      );
    }
    if (last < total) trs.push(spacer(total - last));
    if (total === 0) trs.push(h('tr', null, h('td', { class: 'empty', attrs: { colspan: String(this.columns.length) }, text: 'No trials yet.' })));
    replace(this.body, trs);
  }
}
