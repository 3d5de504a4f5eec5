// @ts-check
/**
 * One trial: how it ended and why, its parameters, the exact command line it ran, its state
 * history, its metric curve and its output (live while it runs: trial-output.js). A running
 * trial is re-read every two seconds until it ends (one small request, and only while the tab is
 * visible).
 */
import { CurvesChart } from './curves.js';
import { getJson, h, replace, stateBadge } from './dom.js';
import { formatDuration, formatTime, formatValue, STATE_GLYPH } from './format.js';
import { setCrumbs } from './sweeps-page.js';
import { TrialOutputView } from './trial-output.js';

const REFRESH_MS = 2000;

/**
 * @typedef {import('./curves.js').Curve} Curve
 * @typedef {{ now: number, sweep: import('./sweep-page.js').Sweep,
 *   trial: import('./leaderboard.js').Row & { rank: number, exitCode: number | null, signal: string },
 *   params: Array<{ name: string, value: string }>, paramsJson: string, argv: string[], commandLine: string,
 *   history: Array<{ state: string, at: number, reason: string }>, stdoutTail: string[], stderrTail: string[],
 *   metrics: Array<{ name: string, last: number | null, min: number | null, max: number | null, count: number, invalid: number }>,
 *   malformedLines: number, curve: Curve | null }} TrialDetail
 */

/** @param {HTMLElement} main @param {string} sweepId @param {string} trialId */
export async function trialPage(main, sweepId, trialId) {
  const base = `/sweeps/${encodeURIComponent(sweepId)}`;
  setCrumbs([{ text: 'sweeps', href: '/' }, { text: sweepId, href: base }, { text: trialId }]);
  const url = `/api${base}/trials/${encodeURIComponent(trialId)}`;
  /** @type {TrialDetail} */
  let d = await getJson(url);
  document.title = `trial #${d.trial.number} · ${sweepId} · Sweeper`;

  const head = h('section', { class: 'card summary' });
  const curveBox = h('div', { class: 'chart' });
  const paramsBox = h('div');
  const commandBox = h('div');
  const historyBox = h('div');
  const metricsBox = h('div');
  const outputBox = h('div', { class: 'outputs' });
  replace(
    main,
    head,
    h(
      'div',
      { class: 'grid' },
      h('section', { class: 'card third', attrs: { id: 'params' } }, h('h2', { text: 'Parameters' }), paramsBox),
      h('section', { class: 'card two-thirds', attrs: { id: 'curve' } }, h('h2', { text: d.sweep.metric ? `${d.sweep.metric.name} by step` : 'Metric' }), curveBox),
      h('section', { class: 'card wide', attrs: { id: 'command' } }, h('h2', { text: 'Command line' }), commandBox),
      h('section', { class: 'card half', attrs: { id: 'history' } }, h('h2', { text: 'State history' }), historyBox),
      h('section', { class: 'card half', attrs: { id: 'metrics' } }, h('h2', { text: 'Metrics' }), metricsBox),
      h('section', { class: 'card wide', attrs: { id: 'output' } }, h('h2', { text: 'Output' }), outputBox),
    ),
  );
  const chart = new CurvesChart(curveBox, 280);

  const render = () => {
    const t = d.trial;
    const runtime = t.startedAt ? formatDuration((t.endedAt || d.now) - t.startedAt) : '–';
    const ended = t.state !== 'running';
    replace(
      head,
      h('h1', null, `Trial #${t.number} `, stateBadge(t.state, STATE_GLYPH), h('span', { class: 'muted mono', text: ` ${t.id}` })),
      t.reason ? h('p', { class: `reason state-${t.state}`, attrs: { id: 'reason' } }, h('strong', { text: t.state === 'stopped' ? 'Stop reason: ' : 'Reason: ' }), t.reason) : null,
      h(
        'dl',
        { class: 'facts' },
        fact(d.sweep.metric ? `best ${d.sweep.metric.name}` : 'value', t.bestValue === null ? '–' : formatValue(t.bestValue)),
        fact('rank', t.rank > 0 ? `${t.rank} of ${d.sweep.trialCount}` : '–'),
        fact('last', t.lastValue === null ? '–' : formatValue(t.lastValue)),
        fact('step', t.points > 0 ? String(t.lastStep) : '–'),
        fact('runtime', runtime),
        fact('started', formatTime(t.startedAt, true)),
        fact('ended', ended ? formatTime(t.endedAt, true) : '–'),
        fact('agent', t.agentId),
        t.gpu ? fact('GPU', `${t.gpu}${t.gpuUtil !== null ? ` · ${Math.round(t.gpuUtil)}%` : ''}${t.gpuMemoryMb !== null ? ` · ${Math.round(t.gpuMemoryMb)} MB` : ''}`) : null,
        fact('exit', t.signal ? `signal ${t.signal}` : t.exitCode === null ? '–' : `code ${t.exitCode}`),
      ),
    );
    replace(
      paramsBox,
      h('table', { class: 'kv' }, h('tbody', null, d.params.map((p) => h('tr', null, h('th', { text: p.name }), h('td', { class: 'mono', text: p.value }))))),
    );
    replace(
      commandBox,
      d.argv.length
        ? [
            h('pre', { class: 'command', attrs: { id: 'command-line' }, text: d.commandLine }),
            h('details', null, h('summary', { text: 'as an argv array' }), h('pre', { class: 'command', text: JSON.stringify(d.argv, null, 2) })),
          ]
        : h('p', { class: 'empty', text: ended ? 'The agent reported no command line.' : 'Known once the trial ends (the agent reports it with the result).' }),
    );
    replace(
      historyBox,
      h(
        'table',
        { class: 'history' },
        h('thead', null, h('tr', null, h('th', { text: 'time' }), h('th', { text: 'state' }), h('th', { text: 'reason' }))),
        h(
          'tbody',
          null,
          d.history.map((e) => h('tr', null, h('td', { class: 'mono', text: formatTime(e.at, true) }), h('td', null, stateBadge(e.state, STATE_GLYPH)), h('td', { text: e.reason }))),
        ),
      ),
    );
    replace(
      metricsBox,
      d.metrics.length
        ? h(
            'table',
            { class: 'history' },
            h('thead', null, h('tr', null, ['name', 'last', 'min', 'max', 'points', 'invalid'].map((c) => h('th', { text: c, class: c === 'name' ? '' : 'right' })))),
            h(
              'tbody',
              null,
              d.metrics.map((m) =>
                h(
                  'tr',
                  null,
                  h('td', { text: m.name }),
                  [m.last, m.min, m.max].map((v) => h('td', { class: 'right num', text: formatValue(v) })),
                  h('td', { class: 'right num', text: String(m.count) }),
                  h('td', { class: 'right num', text: String(m.invalid) }),
                ),
              ),
            ),
          )
        : h('p', { class: 'empty', text: 'No metrics logged.' }),
      d.malformedLines > 0 ? h('p', { class: 'warn', text: `${d.malformedLines} malformed metric line${d.malformedLines === 1 ? '' : 's'}` }) : null,
    );
    if (d.curve) chart.set(d.sweep.metric?.name ?? '', [d.curve], { labels: () => `#${t.number}` });
    else replace(curveBox, h('p', { class: 'empty', text: 'The sweep has no metric.' }));
  };
  render();
  // The output follows the trial on its own: new lines every second, not the whole page.
  await new TrialOutputView(outputBox, `${url}/output`).start();

  const timer = setInterval(async () => {
    if (document.visibilityState !== 'visible') return;
    try {
      d = await getJson(url);
      render();
      if (d.trial.state !== 'running') clearInterval(timer);
    } catch {
      // The controller may be restarting: try again on the next tick.
    }
  }, REFRESH_MS);
  if (d.trial.state !== 'running') clearInterval(timer);
}

/** @param {string} label @param {Node | string} value */
function fact(label, value) {
  return h('div', null, h('dt', { text: label }), h('dd', null, value));
}
