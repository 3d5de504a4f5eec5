// @ts-check
/** The sweeps list: every sweep on the controller, refreshed while the tab is visible. */
import { getJson, h, replace, stateBadge } from './dom.js';
import { formatTime, formatValue, STATE_GLYPH } from './format.js';

const REFRESH_MS = 5000;

/**
 * @typedef {{ id: string, name: string, method: string, state: string, metric: { name: string, goal: string } | null,
 *   trialCount: number, trialLimit: number, stateCounts: Record<string, number>, bestValue: number | null,
 *   bestTrialId: string, createdAt: number, finishedAt: number, finishReason: string, activeAgents: number, settled: boolean }} Sweep
 */

/** @param {HTMLElement} main */
export async function sweepsPage(main) {
  document.title = 'Sweeps · Sweeper';
  setCrumbs([]);
  const body = h('tbody');
  const empty = h('p', { class: 'empty' }, 'No sweeps yet. Create one with ', h('code', { text: 'sweeper create sweep.yaml' }), '.');
  const table = h(
    'table',
    { class: 'sweeps' },
    h(
      'thead',
      null,
      h('tr', null, ['sweep', 'state', 'method', 'progress', 'best', 'started', 'agents'].map((c) => h('th', { text: c }))),
    ),
    body,
  );
  replace(main, h('section', { class: 'card' }, h('h1', { text: 'Sweeps' }), table, empty));

  const load = async () => {
    /** @type {{ sweeps: Sweep[] }} */
    const { sweeps } = await getJson('/api/sweeps');
    empty.hidden = sweeps.length > 0;
    table.hidden = sweeps.length === 0;
    replace(body, sweeps.map(row));
  };
  await load();
  // A handful of small requests a minute, and none while the tab is hidden.
  setInterval(() => {
    if (document.visibilityState === 'visible') load().catch(() => undefined);
  }, REFRESH_MS);
}

/** @param {Sweep} s */
function row(s) {
  const link = `/sweeps/${encodeURIComponent(s.id)}`;
  const best =
    s.bestValue === null
      ? h('span', { class: 'muted', text: '–' })
      : h(
          'span',
          null,
          h('span', { class: 'num', text: formatValue(s.bestValue) }),
          ' ',
          h('a', { class: 'muted', href: `${link}/trials/${encodeURIComponent(s.bestTrialId)}`, text: `#${s.bestTrialId.split('-').pop()}` }),
        );
  return h(
    'tr',
    { attrs: { 'data-sweep': s.id } },
    h('td', null, h('a', { href: link, class: 'mono', text: s.id }), s.name ? h('span', { class: 'muted', text: ` ${s.name}` }) : null),
    h('td', null, stateBadge(s.state, STATE_GLYPH)),
    h('td', { text: s.method }),
    h('td', null, progress(s)),
    h('td', null, s.metric ? h('span', { class: 'muted', text: `${s.metric.name} ` }) : null, best),
    h('td', { text: formatTime(s.createdAt) }),
    h('td', { class: 'num', text: s.settled ? '–' : String(s.activeAgents) }),
  );
}

/** The progress bar: ended trials solid, running ones shaded, like `sweeper watch`. */
export function progress(/** @type {{ trialCount: number, trialLimit: number, stateCounts: Record<string, number> }} */ s) {
  const count = (/** @type {string[]} */ states) => states.reduce((n, st) => n + (s.stateCounts[st] ?? 0), 0);
  // Without run_cap (or a grid) there is no end to measure against: just the count.
  if (!(s.trialLimit > 0)) return h('span', { class: 'progress num', text: `${s.trialCount} trial${s.trialCount === 1 ? '' : 's'}` });
  // A trial is running or has ended: there is no other state.
  const active = count(['running']);
  const ended = s.trialCount - active;
  const total = s.trialLimit;
  const pct = (/** @type {number} */ n) => `${Math.min(100, (n / total) * 100).toFixed(1)}%`;
  const done = h('span', { class: 'bar-done' });
  const running = h('span', { class: 'bar-active' });
  done.style.width = pct(ended);
  running.style.width = pct(active);
  const bar = h('span', { class: 'bar' }, done, running);
  const label = `${s.trialCount}/${s.trialLimit}`;
  return h('span', { class: 'progress' }, bar, h('span', { class: 'num', text: label }));
}

/** The breadcrumbs in the header. @param {Array<{ text: string, href?: string }>} items */
export function setCrumbs(items) {
  const nav = document.getElementById('crumbs');
  if (!nav) return;
  replace(
    nav,
    items.flatMap((it) => [h('span', { class: 'sep', text: '›' }), it.href ? h('a', { href: it.href, text: it.text }) : h('span', { text: it.text })]),
  );
}
