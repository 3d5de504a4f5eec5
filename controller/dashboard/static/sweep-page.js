// @ts-check
/**
 * One sweep, live: summary, parallel coordinates, curves, parameter importance, leaderboard.
 *
 * The page holds every trial's row and keeps it current from one server-sent-event stream: a
 * snapshot when it connects (and again after a reconnect), then deltas of the rows that changed,
 * at most a few a second. Curves and importance are fetched on their own, only when the trials
 * they show have changed, and at most every few seconds.
 */
import { CurvesChart } from './curves.js';
import { getJson, h, replace, stateBadge, throttle } from './dom.js';
import { formatTime, formatValue, STATE_GLYPH } from './format.js';
import { Leaderboard } from './leaderboard.js';
import { ParallelCoordinates } from './parcoords.js';
import { stats } from './stats.js';
import { progress, setCrumbs } from './sweeps-page.js';

/**
 * @typedef {import('./leaderboard.js').Row} Row
 * @typedef {import('./parcoords.js').Column} Column
 * @typedef {import('./curves.js').Curve} Curve
 * @typedef {{ id: string, name: string, method: string, state: string, metric: { name: string, goal: string } | null, seed: number,
 *   trialCount: number, trialLimit: number, stateCounts: Record<string, number>, bestValue: number | null, bestTrialId: string,
 *   createdAt: number, finishedAt: number, finishReason: string, activeAgents: number, settled: boolean }} Sweep
 * @typedef {{ now: number, sweep: Sweep, params: Column[], trials: Row[], trialStates: string[], rankableStates: string[] }} Snapshot
 * @typedef {{ now: number, sweep: Sweep, params?: Column[], trials: Row[] }} Delta
 */

/** Curves shown when no trial is selected: the best few of those matching the brushes. */
const TOP_CURVES = 8;

/** @param {HTMLElement} main @param {string} sweepId */
export async function sweepPage(main, sweepId) {
  document.title = `${sweepId} · Sweeper`;
  setCrumbs([{ text: 'sweeps', href: '/' }, { text: sweepId }]);
  const live = /** @type {HTMLElement} */ (document.getElementById('live'));

  const summary = h('section', { class: 'card summary' });
  const pcBox = h('div', { class: 'pc-box' });
  const brushNote = h('span', { class: 'muted brush-note' });
  const clearBrushes = h('button', { class: 'small', attrs: { type: 'button' }, text: 'clear filters' });
  const curvesBox = h('div', { class: 'chart' });
  const curvesNote = h('span', { class: 'muted' });
  const logToggle = h('input', { attrs: { type: 'checkbox', id: 'log-y' } });
  const importanceBox = h('div', { class: 'importance' });
  const boardBox = h('div');
  const boardNote = h('span', { class: 'muted', attrs: { id: 'board-count' } });
  const clearSelection = h('button', { class: 'small', attrs: { type: 'button' }, text: 'clear selection' });
  replace(
    main,
    summary,
    h(
      'div',
      { class: 'grid' },
      h(
        'section',
        { class: 'card wide', attrs: { id: 'parcoords' } },
        h('header', null, h('h2', { text: 'Parameters against the metric' }), brushNote, clearBrushes),
        h('p', { class: 'hint', text: 'Drag along an axis to filter the trials; click an axis to clear its filter. Darker lines are better trials.' }),
        pcBox,
      ),
      h(
        'section',
        { class: 'card two-thirds', attrs: { id: 'curves' } },
        h('header', null, h('h2', { attrs: { id: 'curves-title' } }), curvesNote, h('label', { class: 'small' }, logToggle, ' log scale')),
        curvesBox,
      ),
      h('section', { class: 'card third', attrs: { id: 'importance' } }, h('header', null, h('h2', { text: 'Parameter importance' })), importanceBox),
      h(
        'section',
        { class: 'card wide', attrs: { id: 'leaderboard' } },
        h('header', null, h('h2', { text: 'Leaderboard' }), boardNote, clearSelection, exportLinks(sweepId)),
        h('p', { class: 'hint', text: 'Click a column to sort, a row to plot its curve, a trial number to open it.' }),
        boardBox,
      ),
    ),
  );

  /** @type {Sweep} */
  let sweep;
  /** @type {Column[]} */
  let columns = [];
  /** @type {Map<string, Row>} */
  const rows = new Map();
  /** @type {Map<string, number>} */
  let ranks = new Map();
  /** States whose trials may rank, as the controller says (failed and crashed trials never do). @type {Set<string>} */
  let rankable = new Set();
  /** Trials with a value, best first. @type {Row[]} */
  let ranked = [];
  /** @type {Set<string>} */
  const selected = new Set();
  let clockOffset = 0;
  const now = () => Date.now() + clockOffset;

  const board = new Leaderboard(boardBox, { sweepId, now, onSelect: toggleSelect });
  const pc = new ParallelCoordinates(pcBox, () => {
    showFiltered();
    refreshCurves();
  });
  const curves = new CurvesChart(curvesBox);
  clearBrushes.addEventListener('click', () => pc.clearBrushes());
  clearSelection.addEventListener('click', () => {
    selected.clear();
    selectionChanged();
  });
  logToggle.addEventListener('change', () => loadCurves());

  /** @param {string} id */
  function toggleSelect(id) {
    if (selected.has(id)) selected.delete(id);
    else selected.add(id);
    selectionChanged();
  }

  function selectionChanged() {
    board.setSelected(selected);
    pc.setSelected(selected);
    clearSelection.hidden = selected.size === 0;
    refreshCurves();
  }

  // ---- rendering --------------------------------------------------------------------------

  function renderSummary() {
    const m = sweep.metric;
    const counts = Object.entries(sweep.stateCounts)
      .filter(([, n]) => n > 0)
      .map(([st, n]) => h('span', { class: `count state-${st}`, text: `${STATE_GLYPH[st] ?? ''} ${st} ${n}` }));
    const best =
      sweep.bestValue === null
        ? h('span', { class: 'muted', text: 'no value yet' })
        : h(
            'span',
            null,
            h('strong', { class: 'num', text: formatValue(sweep.bestValue) }),
            ' ',
            h('a', { href: `/sweeps/${encodeURIComponent(sweepId)}/trials/${encodeURIComponent(sweep.bestTrialId)}`, text: `trial #${sweep.bestTrialId.split('-').pop()}` }),
          );
    replace(
      summary,
      h('h1', null, h('span', { class: 'mono', text: sweep.id }), sweep.name ? h('span', { class: 'muted', text: ` ${sweep.name}` }) : null, ' ', stateBadge(sweep.state, STATE_GLYPH)),
      h(
        'dl',
        { class: 'facts' },
        fact('method', sweep.method),
        fact('metric', m ? `${m.name} (${m.goal})` : 'none'),
        fact('best', best),
        fact('progress', progress(sweep)),
        fact('agents', sweep.settled ? '–' : String(sweep.activeAgents)),
        fact('started', formatTime(sweep.createdAt)),
        fact('seed', String(sweep.seed)),
      ),
      h('div', { class: 'counts' }, counts),
      sweep.finishReason ? h('p', { class: 'muted', text: `${sweep.state}: ${sweep.finishReason}` }) : null,
    );
    replace(live, sweep.settled ? h('span', { class: 'muted', text: 'sweep over' }) : h('span', { class: 'live-dot', text: 'live' }));
  }

  /** Ranks by value per the goal, ties by number, as the CLI and the API rank (trial-view.ts rankTrials). */
  function computeRanks() {
    const max = sweep.metric?.goal === 'maximize';
    const value = (/** @type {Row} */ r) => /** @type {number} */ (r.bestValue);
    ranked = [...rows.values()].filter((r) => r.bestValue !== null && rankable.has(r.state));
    ranked.sort((a, b) => (max ? value(b) - value(a) : value(a) - value(b)) || a.number - b.number);
    ranks = new Map(ranked.map((r, i) => [r.id, i + 1]));
  }

  function showFiltered() {
    const all = [...rows.values()];
    const shown = pc.hasBrushes() ? all.filter((r) => pc.matches(r)) : all;
    board.setRows(shown, ranks);
    const brushes = pc.describeBrushes();
    boardNote.textContent = pc.hasBrushes() ? `${shown.length} of ${all.length} trials match the filters` : `${all.length} trials`;
    brushNote.textContent = brushes
      .map((b) => ('values' in b ? `${b.name} ∈ {${b.values.join(', ')}}` : `${b.name} ∈ [${formatValue(b.from)}, ${formatValue(b.to)}]`))
      .join(' · ');
    clearBrushes.hidden = brushes.length === 0;
    clearSelection.hidden = selected.size === 0;
    return shown;
  }

  const replot = throttle(() => pc.setData(columns, [...rows.values()], sweep.metric), 500);

  // ---- curves and importance ------------------------------------------------------------------

  /** Which trials the curves show: the selection, or the best few matching the brushes. */
  function curveTrials() {
    if (selected.size > 0) return [...selected];
    const ids = [];
    for (const r of ranked) {
      if (ids.length === TOP_CURVES) break;
      if (!pc.hasBrushes() || pc.matches(r)) ids.push(r.id);
    }
    return ids;
  }

  let shownCurves = '';
  async function loadCurves() {
    if (!sweep.metric) {
      replace(curvesBox, h('p', { class: 'empty', text: 'The sweep has no metric.' }));
      return;
    }
    const ids = curveTrials();
    shownCurves = ids.join(',');
    /** @type {{ metric: string, series: Curve[] }} */
    const res = await getJson(`/api/sweeps/${encodeURIComponent(sweepId)}/curves?points=400&trials=${encodeURIComponent(ids.join(','))}`);
    curves.set(res.metric, ids.length ? res.series : [], { log: logToggle.checked });
    curvesNote.textContent = selected.size > 0 ? `${ids.length} selected` : `best ${Math.min(ids.length, TOP_CURVES)}${pc.hasBrushes() ? ' matching the filters' : ''}`;
  }
  const refreshCurves = throttle(() => void loadCurves().catch(() => undefined), 1500);

  let importanceKey = '';
  async function loadImportance() {
    /** @type {{ method: string, metric: string | null, trials: number, note?: string, params: Array<{ name: string, importance: number, explained: number, correlation: number | null }> }} */
    const res = await getJson(`/api/sweeps/${encodeURIComponent(sweepId)}/importance`);
    const bars = res.params.map((p) => {
      const fill = h('span', { class: 'imp-fill' });
      fill.style.width = `${(p.importance * 100).toFixed(1)}%`;
      const rho = p.correlation === null ? '' : `ρ ${p.correlation >= 0 ? '+' : '−'}${Math.abs(p.correlation).toFixed(2)}`;
      return h(
        'div',
        { class: 'imp-row', attrs: { 'data-param': p.name }, title: `explains ${(p.explained * 100).toFixed(1)}% of the metric's rank variance on its own` },
        h('span', { class: 'imp-name', text: p.name }),
        h('span', { class: 'imp-bar' }, fill),
        h('span', { class: 'imp-value num', text: `${Math.round(p.importance * 100)}%` }),
        h('span', { class: 'imp-rho muted num', text: rho }),
      );
    });
    replace(
      importanceBox,
      res.note ? h('p', { class: 'empty', text: `${res.note[0].toUpperCase()}${res.note.slice(1)}.` }) : null,
      res.params.some((p) => p.importance > 0) ? bars : null,
      h('p', { class: 'method' }, `From ${res.trials} ended trials. Method: ${res.method}.`),
    );
  }
  const refreshImportance = throttle(() => void loadImportance().catch(() => undefined), 3000);

  // ---- the stream ---------------------------------------------------------------------------

  /** @param {Row[]} changed */
  function afterChange(changed) {
    computeRanks();
    renderSummary();
    showFiltered();
    replot();
    // Curves follow their trials; importance follows the trials that ended.
    const shown = new Set(shownCurves.split(','));
    if (changed.some((r) => shown.has(r.id)) || curveTrials().join(',') !== shownCurves) refreshCurves();
    const active = sweep.stateCounts.running ?? 0;
    const key = `${sweep.trialCount - active}/${sweep.trialCount}`;
    if (key !== importanceKey) {
      importanceKey = key;
      refreshImportance();
    }
  }

  /** @param {Snapshot} s */
  function applySnapshot(s) {
    const t0 = performance.now();
    sweep = s.sweep;
    clockOffset = s.now - Date.now();
    columns = s.params;
    rankable = new Set(s.rankableStates);
    board.setStateOrder(s.trialStates);
    rows.clear();
    for (const r of s.trials) rows.set(r.id, r);
    document.getElementById('curves-title')?.replaceChildren(sweep.metric ? `${sweep.metric.name} by step` : 'Curves');
    board.setColumns(columns, sweep.metric);
    afterChange(s.trials);
    board.render();
    pc.setData(columns, [...rows.values()], sweep.metric);
    stats.snapshots++;
    stats.snapshotMs = performance.now() - t0;
  }

  /** @param {Delta} d */
  function applyDelta(d) {
    const t0 = performance.now();
    sweep = d.sweep;
    clockOffset = d.now - Date.now();
    if (d.params) {
      columns = d.params;
      board.setColumns(columns, sweep.metric);
    }
    for (const r of d.trials) rows.set(r.id, r);
    afterChange(d.trials);
    board.render();
    const ms = performance.now() - t0;
    stats.updates++;
    stats.updateRows += d.trials.length;
    stats.updateMs += ms;
    stats.maxUpdateMs = Math.max(stats.maxUpdateMs, ms);
  }

  await new Promise((resolve, reject) => {
    let first = true;
    let retryMs = 2000;
    const open = () => {
      const es = new EventSource(`/api/sweeps/${encodeURIComponent(sweepId)}/events`);
      es.addEventListener('snapshot', (e) => {
        applySnapshot(JSON.parse(/** @type {MessageEvent} */ (e).data));
        retryMs = 2000;
        if (first) {
          first = false;
          resolve(undefined);
        }
        if (sweep.settled) es.close();
      });
      es.addEventListener('delta', (e) => {
        applyDelta(JSON.parse(/** @type {MessageEvent} */ (e).data));
        // Nothing changes once a sweep is over: let the server forget this page.
        if (sweep.settled) es.close();
      });
      es.addEventListener('error', () => {
        if (es.readyState !== EventSource.CLOSED) {
          replace(live, h('span', { class: 'warn', text: 'reconnecting…' }));
          return;
        }
        // The browser gives up on a refused stream. EventSource hides why: ask plainly. An
        // unknown sweep is a 404 (an error to show); a sweep that exists was refused for now
        // (the server's cap on live streams, 503): try again later, backing off.
        getJson(`/api/sweeps/${encodeURIComponent(sweepId)}`).then(
          () => {
            replace(live, h('span', { class: 'warn', text: `live updates busy; retrying in ${Math.round(retryMs / 1000)} s` }));
            setTimeout(open, retryMs);
            retryMs = Math.min(30_000, retryMs * 2);
          },
          (err) => {
            if (first) reject(err);
            else replace(live, h('span', { class: 'warn', text: String(err.message ?? err) }));
          },
        );
      });
    };
    open();
  });
  // Runtimes of running trials tick without any event.
  setInterval(() => {
    if ((sweep.stateCounts.running ?? 0) > 0) board.renderSoon();
  }, 1000);
}

/**
 * Download links for the sweep as `sweeper export` writes it: one row per trial, or with the box
 * ticked one per logged point, as CSV or JSON lines.
 * @param {string} sweepId
 */
function exportLinks(sweepId) {
  const history = h('input', { attrs: { type: 'checkbox', id: 'export-history' } });
  /** @param {'csv' | 'jsonl'} format */
  const link = (format) => h('a', { text: format.toUpperCase(), title: `the trials as ${format === 'csv' ? 'CSV' : 'JSON lines'}`, attrs: { download: '', id: `export-${format}` } });
  const links = { csv: link('csv'), jsonl: link('jsonl') };
  const update = () => {
    for (const [format, a] of Object.entries(links)) a.href = `/api/sweeps/${encodeURIComponent(sweepId)}/export?format=${format}&history=${history.checked ? 1 : 0}`;
  };
  history.addEventListener('change', update);
  update();
  const box = h('span', { class: 'small', attrs: { id: 'export' } }, 'download ', links.csv, ' · ', links.jsonl, ' ', h('label', null, history, ' every logged point'));
  box.style.marginLeft = 'auto';
  box.style.fontSize = '12px';
  return box;
}

/** @param {string} label @param {Node | string} value */
function fact(label, value) {
  return h('div', null, h('dt', { text: label }), h('dd', null, value));
}
