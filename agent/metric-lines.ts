/**
 * Reading metrics out of a trial's output.
 *
 * Two sources: lines on stdout made only of `name=number` tokens (`epoch=3 loss=0.25`), which
 * any program can print, and JSON records the `sweeper` helpers write to the metrics fd. Ordinary
 * output must never be mistaken for metrics, and must not be counted as malformed either: only a
 * line that is entirely `name=value` tokens is a candidate at all.
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
    if (!m) return NONE;
    pairs.push([m[1], m[2]]);
  }

  let step: number | null = null;
  const values: Record<string, number> = {};
  const invalid: Record<string, string> = {};
  let names = 0;
  for (const [name, raw] of pairs) {
    if (name === 'step') {
      if (!STEP.test(raw)) return MALFORMED;
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) return MALFORMED;
      step = n;
      continue;
    }
    if (name.length > METRIC_LIMITS.maxNameLength) return MALFORMED;
    if (DECIMAL.test(raw)) {
      const n = Number(raw);
      // `1e999` is written like a number but is not a finite one.
      if (Number.isFinite(n)) setValue(values, invalid, name, n);
      else setInvalid(values, invalid, name, raw);
    } else if (NON_FINITE.test(raw)) {
      setInvalid(values, invalid, name, raw);
    } else {
      return MALFORMED;
    }
    names++;
  }
  if (names > METRIC_LIMITS.maxValuesPerPoint) return MALFORMED;
  return { kind: 'metrics', step, values, invalid };
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
