/**
 * Reading metrics out of a trial's output.
 *
 * Three sources: lines on stdout made only of `name=number` tokens (`epoch=3 loss=0.25`), which
 * any program can print; Keras `fit` progress lines, `name: number` tokens among Keras's own
 * furniture (`6/6 ━━━━ 1s 87ms/step - loss: 0.9194 - val_loss: 0.9226`, see parseKerasLine); and
 * JSON records the `sweeper` helpers write to the metrics fd. Ordinary output must never be
 * mistaken for metrics, and must not be counted as malformed either: only a line that is entirely
 * `name=value` tokens, or entirely Keras furniture and `name: value` pairs, is a candidate at all.
 */
import { METRIC_LIMITS } from '../common/metrics-wire.js';
import { type ParamValue, Float, parseTypedJson } from '../domain/values.js';

export type MetricLine =
  | { kind: 'metrics'; step: number | null; values: Record<string, number>; invalid: Record<string, string> }
  | { kind: 'none' }
  | { kind: 'malformed' }
  /** The program says it is being preempted (`sweeper.mark_preempting()`, W&B's `run.mark_preempting()`). */
  | { kind: 'preempting' };

export const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const TOKEN = /^([A-Za-z_][A-Za-z0-9_./-]*)=(.*)$/s;
/** What Python's `float()` and `str(float)` produce, minus underscores, hex and surrounding space. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(?:nan|inf|infinity)$/i;
const STEP = /^\d+$/;
const MAX_INVALID_TEXT = 100;

const NONE: MetricLine = { kind: 'none' };
const MALFORMED: MetricLine = { kind: 'malformed' };
const PREEMPTING: MetricLine = { kind: 'preempting' };

export function parseMetricLine(line: string): MetricLine {
  const text = line.trim();
  if (text === '') return NONE;
  const tokens = text.split(/\s+/);
  const pairs: [string, string][] = [];
  for (const token of tokens) {
    const m = TOKEN.exec(token);
    if (!m) return text.includes(': ') ? parseKerasLine(line) : NONE;
    pairs.push([m[1], m[2]]);
  }
  return readPairs(pairs) ?? MALFORMED;
}

/** The row that `name=value` or `name: value` pairs make; undefined when a value cannot be read. */
function readPairs(pairs: ReadonlyArray<readonly [string, string]>): MetricLine | undefined {
  let step: number | null = null;
  const values: Record<string, number> = {};
  const invalid: Record<string, string> = {};
  let names = 0;
  for (const [name, raw] of pairs) {
    if (name === 'step') {
      if (!STEP.test(raw)) return undefined;
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) return undefined;
      step = n;
      continue;
    }
    if (name.length > METRIC_LIMITS.maxNameLength) return undefined;
    if (DECIMAL.test(raw)) {
      const n = Number(raw);
      // `1e999` is written like a number but is not a finite one.
      if (Number.isFinite(n)) setValue(values, invalid, name, n);
      else setInvalid(values, invalid, name, raw);
    } else if (NON_FINITE.test(raw)) {
      setInvalid(values, invalid, name, raw);
    } else {
      return undefined;
    }
    names++;
  }
  if (names > METRIC_LIMITS.maxValuesPerPoint) return undefined;
  return { kind: 'metrics', step, values, invalid };
}

/*
 * Keras `fit` progress lines. What Keras 2 (tf.keras) and Keras 3 print, one epoch each:
 *
 *   Keras 2, verbose=1   32/32 [==============================] - 1s 3ms/step - loss: 0.3000 - val_loss: 0.4000
 *   Keras 2, verbose=2   32/32 - 1s - loss: 0.3000 - val_loss: 0.4000 - 1s/epoch - 3ms/step
 *   Keras 3, verbose=1   32/32 ━━━━━━━━━━━━━━━━━━━━ 1s 3ms/step - loss: 0.3000 - val_loss: 0.4000
 *   Keras 3, verbose=2   32/32 - 1s - 3ms/step - loss: 0.3000 - val_loss: 0.4000
 *
 * each after an `Epoch 3/10` line. Keras 3 colours its counter and bar with ANSI escapes, and
 * both redraw the bar while the epoch runs, even into a pipe: the line so far, then backspaces
 * and `\r`, then the new one, so the splitter hands us every redraw as a line of its own.
 * Redraws carry running averages over part of an epoch (`16/32 ... - ETA: 1s - loss: 0.35`):
 * they are no row, or the row numbers that stand in for steps would count redraws, which come
 * at the pace of the clock. A row is the line that ends an epoch (or an `evaluate`).
 *
 * A line is a Keras line when every token is furniture (`-`, `Epoch N/M`, the `N/M` counter, a
 * bar, `ETA: 2s`, a duration such as `1s`, `3ms/step`, `1:02`) or a `name: value` pair, and it
 * holds at least one pair. A pair whose value is not a number makes the line malformed only when
 * the line has Keras's counter or timings: without them, `Loading data: done` is prose.
 */

/** ANSI control sequences (colours, cursor moves: Keras 3's bar and `pinned` mode). */
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]/g;
const PAIR_NAME = /^([A-Za-z_][A-Za-z0-9_./-]*):$/;
/** `N/M` or `N/Unknown` (Keras before it knows an epoch's length). */
const COUNTER = /^(\d+)\/(\d+|Unknown)$/;
/** Keras 2's `[=====>....]`, Keras 3's `━━━━` (written as `=` where the terminal's encoding lacks it). */
const BAR = /^(?:\[[=>.]*\]|[━=]+)$/;
/** `1s`, `3ms/step`, `792us/step`, `1s/epoch`; Keras 3's ETA past a minute, `1:02` or `1:02:03`. */
const DURATION = /^(?:\d+(?:s|ms|us|µs)(?:\/[a-z]+)?|\d+:\d{2}(?::\d{2})?)$/;

function parseKerasLine(line: string): MetricLine {
  // Backspaces at the end: Keras is about to draw over this line. Its next one is the row.
  if (/\x08\s*$/.test(line)) return NONE;
  const tokens = line.replace(ANSI, '').replace(/\x08/g, '').trim().split(/\s+/);
  const pairs: [string, string][] = [];
  let furniture = false;
  let partial = false;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token === '-' || BAR.test(token)) continue;
    if (token === 'Epoch' && COUNTER.test(tokens[i + 1] ?? '')) {
      i++;
      continue;
    }
    if (token === 'ETA:' && DURATION.test(tokens[i + 1] ?? '')) {
      i++;
      partial = furniture = true;
      continue;
    }
    const counter = COUNTER.exec(token);
    if (counter) {
      furniture = true;
      if (counter[2] === 'Unknown' || Number(counter[1]) < Number(counter[2])) partial = true;
      continue;
    }
    if (DURATION.test(token)) {
      furniture = true;
      continue;
    }
    const pair = PAIR_NAME.exec(token);
    if (!pair || i + 1 === tokens.length) return NONE;
    pairs.push([pair[1], tokens[++i]]);
  }
  if (partial || pairs.length === 0) return NONE;
  return readPairs(pairs) ?? (furniture ? MALFORMED : NONE);
}

/**
 * One record from the metrics fd: `{"step": 3 | null, "values": {"loss": 0.25, "acc": "NaN"}}`.
 * Finite numbers are values; anything else the helper let through (NaN written as a string,
 * a string, a boolean) is recorded under `invalid` with its text. Names are free-form here, as in
 * wandb.log, within the wire's length limit. An empty line is `none`; `{"preempting": true}` is the
 * program saying it is being preempted.
 */
export function parseHelperRecord(line: string): MetricLine {
  const text = line.trim();
  if (text === '') return NONE;
  let record: ParamValue;
  try {
    record = parseTypedJson(text);
  } catch {
    return MALFORMED;
  }
  if (isObject(record) && record.preempting === true && record.values === undefined) return PREEMPTING;
  if (!isObject(record) || !isObject(record.values)) return MALFORMED;

  let step: number | null = null;
  const rawStep = record.step ?? null;
  if (rawStep !== null) {
    if (typeof rawStep !== 'number' || !Number.isSafeInteger(rawStep) || rawStep < 0) return MALFORMED;
    step = rawStep;
  }

  const values: Record<string, number> = {};
  const invalid: Record<string, string> = {};
  const entries = Object.entries(record.values);
  if (entries.length > METRIC_LIMITS.maxValuesPerPoint) return MALFORMED;
  for (const [name, v] of entries) {
    if (name.length === 0 || name.length > METRIC_LIMITS.maxNameLength) return MALFORMED;
    const n = v instanceof Float ? v.value : v;
    if (typeof n === 'number' && Number.isFinite(n)) setValue(values, invalid, name, n);
    else setInvalid(values, invalid, name, typeof n === 'number' ? numberText(n) : typeof n === 'string' ? n : JSON.stringify(n));
  }
  return { kind: 'metrics', step, values, invalid };
}

function isObject(v: ParamValue | undefined): v is { [key: string]: ParamValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Float);
}

function numberText(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  return n > 0 ? 'Infinity' : '-Infinity';
}

// A name logged twice in one row keeps its last value, whichever map that puts it in.
function setValue(values: Record<string, number>, invalid: Record<string, string>, name: string, n: number): void {
  delete invalid[name];
  define(values, name, n);
}

function setInvalid(values: Record<string, number>, invalid: Record<string, string>, name: string, text: string): void {
  delete values[name];
  define(invalid, name, text.slice(0, MAX_INVALID_TEXT));
}

/** Plain assignment of `__proto__` would replace the prototype instead of adding a metric. */
function define<T>(target: Record<string, T>, name: string, value: T): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}
