// @ts-check
/** Number and time formatting shared by the pages; values read as `sweeper watch` writes them. */

/** A number to 4 significant digits as Python's '%.4g' writes it: 0.001234, 1.2e-05, 128. */
export function formatValue(/** @type {number | null | undefined} */ n) {
  if (n === null || n === undefined) return '–';
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (n === 0) return '0';
  // The exponent must come from the rounded value: 9999.7 rounds to 1.000e+4 and switches form.
  const [mantissa, expText] = n.toExponential(3).split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 4) return `${stripZeros(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return stripZeros(n.toFixed(3 - exp));
}

function stripZeros(/** @type {string} */ s) {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** A parameter cell: integers exactly (a batch size of 50000 must not read 5e+04), floats to 4 digits. */
export function formatCell(/** @type {number | string | null | undefined} */ v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return Number.isInteger(v) && Math.abs(v) < 1e15 ? String(v) : formatValue(v);
}

/** 0.3s under ten seconds, then 42s, 1m03s, 2h05m, 3d04h. */
export function formatDuration(/** @type {number} */ ms) {
  if (!(ms > 0)) return '0s';
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** Local time, minutes: 2024-05-01 14:03; today's times without the date. */
export function formatTime(/** @type {number} */ ms, /** @type {boolean} */ seconds = false) {
  if (!ms) return '–';
  const d = new Date(ms);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  const time = `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ''}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
}

/** A glyph per state, so states read without colour too (as in `sweeper watch`). */
export const STATE_GLYPH = /** @type {Record<string, string>} */ ({
  running: '●',
  finished: '✓',
  failed: '✗',
  crashed: '✗',
  stopped: '■',
  paused: '‖',
});
