// @ts-check
/**
 * Parallel coordinates: one vertical axis per searched parameter and one for the metric, one
 * line per trial that has a value, coloured by its rank (darkest is best). Dragging along an axis
 * brushes a range; a trial matches when it lies inside every brush. A click on an axis clears its
 * brush.
 *
 * Drawn on a canvas with our own code (uPlot has no parallel coordinates). It stays cheap at
 * 10,000 trials: positions are computed once per data change, and lines are stroked in a few
 * batched paths (one per colour), not one path per trial.
 */
import { formatCell, formatValue } from './format.js';
import { stats } from './stats.js';

/**
 * @typedef {{ name: string, kind: 'numeric' | 'categorical', scale: 'linear' | 'log', constant: boolean, categories?: string[] }} Column
 * @typedef {{ id: string, number: number, bestValue: number | null, params: Array<number | string | null> }} Row
 * @typedef {{ key: string, label: string, column: number, kind: 'numeric' | 'categorical', log: boolean, integer: boolean, min: number, max: number, categories: string[] }} Axis
 * @typedef {{ kind: 'range', from: number, to: number } | { kind: 'set', values: Set<string> }} Brush
 */

const MARGIN = { left: 56, right: 64, top: 40, bottom: 24 };
/** Worst to best: pale to dark, so the best trials stand out and are drawn last, on top. */
const RAMP = ['#eadfc2', '#f2a541', '#d9622b', '#a4243b', '#3c1a78'];
const BUCKETS = 20;
const COLORS = Array.from({ length: BUCKETS }, (_, i) => rampColor(i / (BUCKETS - 1)));
const FADED = 'rgba(150, 160, 175, 0.18)';
const SELECTED = '#0a84ff';
const HIT_PX = 14;

export class ParallelCoordinates {
  /**
   * @param {HTMLElement} container
   * @param {() => void} onBrush called whenever the brushes change
   */
  constructor(container, onBrush) {
    this.container = container;
    this.onBrush = onBrush;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'parcoords';
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', 'parallel coordinates of parameters against the metric; drag along an axis to filter');
    container.append(this.canvas);
    /** @type {Axis[]} */
    this.axes = [];
    /** @type {Row[]} */
    this.rows = [];
    /** Positions 0..1 per row and axis (NaN: missing), row-major. */
    this.pos = new Float32Array(0);
    /** Colour bucket per row, by rank. */
    this.bucket = new Uint8Array(0);
    /** @type {Map<string, Brush>} */
    this.brushes = new Map();
    /** @type {Set<string>} */
    this.selected = new Set();
    /** @type {{ axis: number, y0: number } | null} */
    this.drag = null;
    this.frame = 0;
    this.width = 0;
    this.height = 0;
    new ResizeObserver(() => this.draw()).observe(container);
    this.canvas.addEventListener('pointerdown', (e) => this.pointerDown(e));
    this.canvas.addEventListener('pointermove', (e) => this.pointerMove(e));
    this.canvas.addEventListener('pointerup', (e) => this.pointerUp(e));
    this.canvas.addEventListener('pointercancel', () => (this.drag = null));
  }

  /**
   * @param {Column[]} columns
   * @param {Row[]} rows every trial; those without a value are left out of the plot
   * @param {{ name: string, goal: string } | null} metric
   */
  setData(columns, rows, metric) {
    const plotted = rows.filter((r) => r.bestValue !== null && Number.isFinite(r.bestValue));
    /** @type {Axis[]} */
    const axes = [];
    columns.forEach((c, i) => {
      if (c.constant) return;
      const values = plotted.map((r) => r.params[i]).filter((v) => v !== null && v !== undefined);
      if (values.length === 0) return;
      axes.push(makeAxis(`p:${c.name}`, c.name, i, c, values));
    });
    if (metric) {
      const metricColumn = /** @type {Column} */ ({ name: metric.name, kind: 'numeric', scale: 'linear', constant: false });
      axes.push(makeAxis(`m:${metric.name}`, metric.name, -1, metricColumn, plotted.map((r) => /** @type {number} */ (r.bestValue))));
    }
    this.axes = axes;
    this.rows = plotted;
    const d = axes.length;
    this.pos = new Float32Array(plotted.length * d);
    plotted.forEach((r, j) => {
      axes.forEach((a, k) => {
        this.pos[j * d + k] = position(a, a.column < 0 ? r.bestValue : r.params[a.column]);
      });
    });
    // Colour by rank, not by value: a few diverged trials must not wash the rest into one colour.
    const max = metric?.goal === 'maximize';
    const order = plotted.map((_, j) => j).sort((a, b) => {
      const va = /** @type {number} */ (plotted[a].bestValue);
      const vb = /** @type {number} */ (plotted[b].bestValue);
      return max ? va - vb : vb - va;
    });
    this.bucket = new Uint8Array(plotted.length);
    order.forEach((j, rank) => (this.bucket[j] = plotted.length > 1 ? Math.round((rank / (plotted.length - 1)) * (BUCKETS - 1)) : BUCKETS - 1));
    this.draw();
  }

  /** @param {Set<string>} ids */
  setSelected(ids) {
    this.selected = ids;
    this.draw();
  }

  hasBrushes() {
    return this.brushes.size > 0;
  }

  clearBrushes() {
    this.brushes.clear();
    this.onBrush();
    this.draw();
  }

  /**
   * Whether a trial lies inside every brush; a trial lacking a brushed parameter (or the metric)
   * does not.
   * @param {Row} row
   */
  matches(row) {
    for (const [key, b] of this.brushes) {
      const axis = this.axes.find((a) => a.key === key);
      if (!axis) continue;
      const v = axis.column < 0 ? row.bestValue : row.params[axis.column];
      if (v === null || v === undefined) return false;
      if (b.kind === 'range') {
        if (typeof v !== 'number' || v < b.from || v > b.to) return false;
      } else if (!b.values.has(String(v))) return false;
    }
    return true;
  }

  /**
   * The brushes in data terms, for the page's caption and for tests.
   * @returns {Array<{ name: string, from: number, to: number } | { name: string, values: string[] }>}
   */
  describeBrushes() {
    return [...this.brushes].map(([key, b]) => {
      const name = key.slice(2);
      return b.kind === 'range' ? { name, from: b.from, to: b.to } : { name, values: [...b.values] };
    });
  }

  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const t0 = performance.now();
      this.render();
      stats.plotDraws++;
      stats.plotMs += performance.now() - t0;
    });
  }

  // ---- layout -----------------------------------------------------------------------------

  /** @param {number} k */
  axisX(k) {
    const n = this.axes.length;
    const inner = this.width - MARGIN.left - MARGIN.right;
    return n <= 1 ? MARGIN.left + inner / 2 : MARGIN.left + (k * inner) / (n - 1);
  }

  /** @param {number} t */
  y(t) {
    return MARGIN.top + (1 - t) * (this.height - MARGIN.top - MARGIN.bottom);
  }

  /** @param {number} y */
  t(y) {
    return Math.min(1, Math.max(0, 1 - (y - MARGIN.top) / (this.height - MARGIN.top - MARGIN.bottom)));
  }

  render() {
    const dpr = window.devicePixelRatio || 1;
    this.width = Math.max(200, this.container.clientWidth);
    this.height = Math.max(160, this.container.clientHeight || 320);
    const c = this.canvas;
    if (c.width !== Math.round(this.width * dpr) || c.height !== Math.round(this.height * dpr)) {
      c.width = Math.round(this.width * dpr);
      c.height = Math.round(this.height * dpr);
      c.style.width = `${this.width}px`;
      c.style.height = `${this.height}px`;
    }
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    c.dataset.axes = JSON.stringify(
      this.axes.map((a, k) => ({ name: a.label, metric: a.column < 0, x: this.axisX(k), top: this.y(1), bottom: this.y(0) })),
    );
    c.dataset.brushes = JSON.stringify(this.describeBrushes());
    if (this.axes.length === 0) {
      ctx.fillStyle = '#6b7280';
      ctx.font = '13px system-ui, sans-serif';
      ctx.fillText('No trial has a value yet.', MARGIN.left, MARGIN.top + 20);
      return;
    }
    this.renderLines(ctx);
    this.renderAxes(ctx);
  }

  /** @param {CanvasRenderingContext2D} ctx */
  renderLines(ctx) {
    const d = this.axes.length;
    const n = this.rows.length;
    const xs = this.axes.map((_, k) => this.axisX(k));
    const brushed = this.brushes.size > 0;
    const paths = Array.from({ length: BUCKETS }, () => new Path2D());
    const faded = new Path2D();
    const chosen = new Path2D();
    for (let j = 0; j < n; j++) {
      const row = this.rows[j];
      const path = this.selected.has(row.id) ? chosen : brushed && !this.matches(row) ? faded : paths[this.bucket[j]];
      let pen = false;
      for (let k = 0; k < d; k++) {
        const t = this.pos[j * d + k];
        if (Number.isNaN(t)) {
          pen = false;
          continue;
        }
        const y = this.y(t);
        if (pen) path.lineTo(xs[k], y);
        else path.moveTo(xs[k], y);
        pen = true;
      }
    }
    ctx.lineWidth = 1;
    ctx.strokeStyle = FADED;
    ctx.stroke(faded);
    ctx.globalAlpha = n <= 200 ? 0.85 : n <= 2000 ? 0.45 : 0.22;
    for (let b = 0; b < BUCKETS; b++) {
      ctx.strokeStyle = COLORS[b];
      ctx.stroke(paths[b]);
    }
    ctx.globalAlpha = 1;
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = SELECTED;
    ctx.stroke(chosen);
  }

  /** @param {CanvasRenderingContext2D} ctx */
  renderAxes(ctx) {
    const spacing = this.axes.length > 1 ? this.axisX(1) - this.axisX(0) : this.width;
    ctx.font = '11px system-ui, sans-serif';
    this.axes.forEach((a, k) => {
      const x = this.axisX(k);
      const top = this.y(1);
      const bottom = this.y(0);
      if (a.column < 0) {
        // The metric axis doubles as the colour legend.
        const g = ctx.createLinearGradient(0, bottom, 0, top);
        RAMP.forEach((col, i) => g.addColorStop(i / (RAMP.length - 1), col));
        ctx.fillStyle = g;
        ctx.fillRect(x - 3, top, 6, bottom - top);
        if (a.min > a.max) return;
      } else {
        ctx.strokeStyle = '#4b5563';
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(x + 0.5, top);
        ctx.lineTo(x + 0.5, bottom);
        ctx.stroke();
      }
      const brush = this.brushes.get(a.key);
      if (brush) {
        const [lo, hi] = brushSpan(a, brush);
        ctx.fillStyle = 'rgba(10, 132, 255, 0.18)';
        ctx.strokeStyle = 'rgba(10, 132, 255, 0.9)';
        ctx.fillRect(x - 9, this.y(hi), 18, this.y(lo) - this.y(hi));
        ctx.strokeRect(x - 9 + 0.5, this.y(hi) + 0.5, 17, this.y(lo) - this.y(hi));
      }
      // Name on top, cut to the room between axes.
      ctx.fillStyle = '#111827';
      ctx.font = '600 12px system-ui, sans-serif';
      ctx.textAlign = k === 0 ? 'left' : k === this.axes.length - 1 ? 'right' : 'center';
      const labelX = k === 0 ? x - 8 : k === this.axes.length - 1 ? x + 8 : x;
      ctx.fillText(fit(ctx, a.label, spacing - 8), labelX, MARGIN.top - 18);
      ctx.font = '11px system-ui, sans-serif';
      ctx.textAlign = 'right';
      // A white halo keeps tick labels readable over thousands of lines.
      ctx.lineWidth = 3;
      ctx.lineJoin = 'round';
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
      ctx.fillStyle = '#374151';
      for (const [t, text] of ticks(a)) {
        const label = fit(ctx, text, Math.min(spacing / 2, 90));
        ctx.strokeText(label, x - 7, this.y(t) + 4);
        ctx.fillText(label, x - 7, this.y(t) + 4);
      }
    });
    ctx.textAlign = 'left';
  }

  // ---- brushing -----------------------------------------------------------------------------

  /** @param {PointerEvent} e */
  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  /** @param {number} x @param {number} y */
  axisAt(x, y) {
    if (y < MARGIN.top - 10 || y > this.height - MARGIN.bottom + 10) return -1;
    let best = -1;
    let dist = HIT_PX;
    this.axes.forEach((_, k) => {
      const dx = Math.abs(this.axisX(k) - x);
      if (dx <= dist) {
        dist = dx;
        best = k;
      }
    });
    return best;
  }

  /** @param {PointerEvent} e */
  pointerDown(e) {
    const { x, y } = this.local(e);
    const k = this.axisAt(x, y);
    if (k < 0) return;
    this.drag = { axis: k, y0: y };
    this.canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  /** @param {PointerEvent} e */
  pointerMove(e) {
    const { x, y } = this.local(e);
    if (!this.drag) {
      this.canvas.style.cursor = this.axisAt(x, y) >= 0 ? 'ns-resize' : 'default';
      return;
    }
    if (Math.abs(y - this.drag.y0) < 4) return;
    const a = this.axes[this.drag.axis];
    this.brushes.set(a.key, brushFrom(a, this.t(Math.max(y, this.drag.y0)), this.t(Math.min(y, this.drag.y0))));
    this.onBrush();
    this.draw();
  }

  /** @param {PointerEvent} e */
  pointerUp(e) {
    if (!this.drag) return;
    const { y } = this.local(e);
    const a = this.axes[this.drag.axis];
    if (Math.abs(y - this.drag.y0) < 4) this.brushes.delete(a.key);
    else this.brushes.set(a.key, brushFrom(a, this.t(Math.max(y, this.drag.y0)), this.t(Math.min(y, this.drag.y0))));
    this.drag = null;
    this.onBrush();
    this.draw();
  }
}

/**
 * @param {string} key @param {string} label @param {number} column @param {Column} c
 * @param {Array<number | string | null>} values at least one
 * @returns {Axis}
 */
function makeAxis(key, label, column, c, values) {
  if (c.kind === 'categorical') {
    const categories = c.categories?.length ? c.categories : [...new Set(values.map(String))];
    return { key, label, column, kind: 'categorical', log: false, integer: false, min: 0, max: categories.length - 1, categories };
  }
  const nums = /** @type {number[]} */ (values.filter((v) => typeof v === 'number' && Number.isFinite(v)));
  let min = Infinity;
  let max = -Infinity;
  for (const v of nums) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  // Metric values spanning decades (a diverged trial) read better on a log axis too.
  const log = min > 0 && (c.scale === 'log' || (column < 0 && max / min > 100));
  return { key, label, column, kind: 'numeric', log, integer: nums.every(Number.isInteger), min, max, categories: [] };
}

/** @param {Axis} a @param {number | string | null | undefined} v */
function position(a, v) {
  if (v === null || v === undefined) return NaN;
  if (a.kind === 'categorical') {
    const i = a.categories.indexOf(String(v));
    return i < 0 ? NaN : (i + 0.5) / a.categories.length;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) return NaN;
  if (a.max === a.min) return 0.5;
  if (a.log) return v > 0 ? (Math.log(v) - Math.log(a.min)) / (Math.log(a.max) - Math.log(a.min)) : NaN;
  return (v - a.min) / (a.max - a.min);
}

/** @param {Axis} a @param {number} t */
function valueAt(a, t) {
  if (a.log) return Math.exp(Math.log(a.min) + t * (Math.log(a.max) - Math.log(a.min)));
  return a.min + t * (a.max - a.min);
}

/** A brush from an axis span (0..1), in data terms so it survives the axis growing. @param {Axis} a @param {number} lo @param {number} hi @returns {Brush} */
function brushFrom(a, lo, hi) {
  if (a.kind === 'categorical') {
    const values = new Set(a.categories.filter((_, i) => {
      const t = (i + 0.5) / a.categories.length;
      return t >= lo && t <= hi;
    }));
    return { kind: 'set', values };
  }
  if (a.max === a.min) return { kind: 'range', from: a.min, to: a.max };
  return { kind: 'range', from: valueAt(a, lo), to: valueAt(a, hi) };
}

/** Where a brush lies on its axis now (0..1). @param {Axis} a @param {Brush} b @returns {[number, number]} */
function brushSpan(a, b) {
  if (b.kind === 'range') {
    const lo = position(a, b.from);
    const hi = position(a, b.to);
    return [Math.max(0, Number.isNaN(lo) ? 0 : lo), Math.min(1, Number.isNaN(hi) ? 1 : hi)];
  }
  const ts = a.categories.map((c, i) => (b.values.has(c) ? (i + 0.5) / a.categories.length : NaN)).filter((t) => !Number.isNaN(t));
  if (ts.length === 0) return [0, 0];
  const half = 0.5 / a.categories.length;
  return [Math.max(0, Math.min(...ts) - half), Math.min(1, Math.max(...ts) + half)];
}

/** Tick positions and labels. @param {Axis} a @returns {Array<[number, string]>} */
function ticks(a) {
  if (a.kind === 'categorical') {
    const n = a.categories.length;
    const every = Math.max(1, Math.ceil(n / 12));
    return a.categories.flatMap((c, i) => (i % every === 0 ? [/** @type {[number, string]} */ ([(i + 0.5) / n, c])] : []));
  }
  if (a.max === a.min) return [[0.5, formatCell(a.min)]];
  // An integer parameter (layers 1..8) gets its own values as ticks, never 2.75.
  if (a.integer && !a.log && a.max - a.min <= 12) {
    return Array.from({ length: a.max - a.min + 1 }, (_, i) => /** @type {[number, string]} */ ([position(a, a.min + i), String(a.min + i)]));
  }
  return [0, 0.25, 0.5, 0.75, 1].map((t) => [t, a.integer ? String(Math.round(valueAt(a, t))) : formatValue(valueAt(a, t))]);
}

/** @param {CanvasRenderingContext2D} ctx @param {string} text @param {number} width */
function fit(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}

/** @param {number} t 0 (worst) .. 1 (best) */
function rampColor(t) {
  const x = t * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = hex(RAMP[i]);
  const b = hex(RAMP[i + 1]);
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(',')})`;
}

/** @param {string} s */
function hex(s) {
  return [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16));
}
