// @ts-check
/**
 * Metric-versus-step curves with uPlot (served by the controller from node_modules, loaded as a
 * classic script before the pages). Trials that were stopped are drawn dashed and failed or
 * crashed ones dotted, and their legend entries say so, so a curve cut short is never mistaken
 * for one that ended there on its own.
 */

/** @typedef {{ id: string, number: number, state: string, reason: string, points: number, steps: number[], values: number[] }} Curve */

/** @type {typeof import('uplot')} */
const uPlot = /** @type {any} */ (window).uPlot;

const PALETTE = ['#3c1a78', '#d9622b', '#0a84ff', '#2f9e44', '#a4243b', '#f2a541', '#5f3dc4', '#0b7285', '#868e96', '#e64980'];
const STEP_INCRS = [1, 2, 5].flatMap((m) => Array.from({ length: 10 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);
const DASH = /** @type {Record<string, number[]>} */ ({ stopped: [8, 5], failed: [2, 4], crashed: [2, 4] });

export class CurvesChart {
  /**
   * @param {HTMLElement} container
   * @param {number} height
   */
  constructor(container, height = 260) {
    this.container = container;
    this.height = height;
    /** @type {import('uplot') | null} */
    this.plot = null;
    this.key = '';
    this.log = false;
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: this.height })).observe(container);
  }

  width() {
    return Math.max(240, this.container.clientWidth);
  }

  /**
   * @param {string} metric
   * @param {Curve[]} curves
   * @param {{ log?: boolean, labels?: (c: Curve) => string }} [options]
   */
  set(metric, curves, options = {}) {
    const drawn = curves.filter((c) => c.steps.length > 0);
    const log = Boolean(options.log) && drawn.every((c) => c.values.every((v) => v > 0));
    const label = options.labels ?? ((c) => `#${c.number}${c.state === 'finished' || c.state === 'running' ? '' : ` (${c.state})`}`);
    if (drawn.length === 0) {
      this.destroy();
      this.container.replaceChildren(Object.assign(document.createElement('p'), { className: 'empty', textContent: `No ${metric} logged yet.` }));
      return;
    }
    // uPlot wants one shared x: join the trials' steps, leaving gaps where a trial has no point.
    const data = uPlot.join(
      drawn.map((c) => /** @type {import('uplot').AlignedData} */ ([c.steps, c.values])),
      drawn.map(() => [0]),
    );
    const key = `${metric}|${log}|${drawn.map((c) => `${c.id}:${c.state}`).join(',')}`;
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    this.destroy();
    this.container.replaceChildren();
    this.key = key;
    this.plot = new uPlot(
      {
        width: this.width(),
        height: this.height,
        scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
        // Steps are whole numbers: no 0.5 ticks on a short run.
        axes: [{ label: 'step', incrs: STEP_INCRS }, { label: metric, size: 60 }],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        series: [
          { label: 'step' },
          ...drawn.map((c, i) => ({
            label: label(c),
            stroke: PALETTE[i % PALETTE.length],
            width: 1.5,
            dash: DASH[c.state],
            spanGaps: true,
            points: { show: c.steps.length < 40 },
            class: `curve-${c.state}`,
          })),
        ],
      },
      data,
      this.container,
    );
    // Legend rows carry the trial and state, for styling and for tests.
    const rows = this.container.querySelectorAll('.u-legend .u-series');
    drawn.forEach((c, i) => {
      const row = /** @type {HTMLElement | undefined} */ (rows[i + 1]);
      if (row) {
        row.dataset.trial = c.id;
        row.dataset.state = c.state;
      }
    });
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
    this.key = '';
  }
}
