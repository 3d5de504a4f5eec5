// @ts-check
/**
 * What the pages measure about themselves, read by `npm run bench:dashboard` and the browser
 * test through `window.__dash`: how long the first render and each live update took.
 */
export const stats = {
  /** performance.now() when the page finished its first render. */
  readyMs: 0,
  /** Time to parse and render the first snapshot. */
  snapshotMs: 0,
  /** Live updates applied, and the time spent applying and re-rendering them. */
  updates: 0,
  updateMs: 0,
  maxUpdateMs: 0,
  /** Rows received in live updates. */
  updateRows: 0,
  /** Parallel-coordinates redraws and their total time. */
  plotDraws: 0,
  plotMs: 0,
  /** Snapshots received (one per page load, one more per reconnect). */
  snapshots: 0,
};
/** @type {any} */ (window).__dash = stats;
