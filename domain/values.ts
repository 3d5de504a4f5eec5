/**
 * Parameter values with Python's int/float distinction.
 *
 * W&B sweep semantics depend on whether a number was written as an int or a float
 * (`{min: 0, max: 1}` is int_uniform, `{min: 0.0, max: 1}` is uniform; a q_uniform with an int q
 * yields ints), and training scripts receive values as Python prints them (`3.0`, `1e-05`, `True`).
 * JavaScript has one number type, so a float whose value is integral (3.0, -0.0, 1e5) is boxed in
 * `Float`; every other number is an int when `Number.isInteger` says so and a float otherwise.
 * Non-finite numbers are floats. `parseTypedJson` and `stringifyTyped` keep the distinction on the
 * wire and on disk.
 */
import { SweeperError } from './errors.js';

/** A float whose value is integral (or -0), kept boxed so it still prints as `3.0`. */
export class Float {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
  toString(): string {
    return pyFloatRepr(this.value);
  }
  toJSON(): number {
    return this.value;
  }
}

export type ParamValue =
  | null
  | boolean
  | number
  | string
  | Float
  | ParamValue[]
  | { [key: string]: ParamValue };

/** Parameters as the training program receives them: nested objects for nested parameters. */
export type Params = { [name: string]: ParamValue };

/** A number that must print as a float: non-integral, non-finite, -0, or boxed. */
export function isFloatValue(v: unknown): boolean {
  if (v instanceof Float) return true;
  if (typeof v !== 'number') return false;
  return !Number.isInteger(v) || Object.is(v, -0);
}

export function isIntValue(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && !Object.is(v, -0);
}

/** True for plain numbers and boxed floats. */
export function isNumeric(v: unknown): v is number | Float {
  return typeof v === 'number' || v instanceof Float;
}

export function toNumber(v: number | Float): number {
  return typeof v === 'number' ? v : v.value;
}

/**
 * Make a number that is typed as a float: boxes it when its value would otherwise read as an int.
 * Use this wherever W&B's code would produce a Python float.
 */
export function makeFloat(x: number): number | Float {
  return Number.isInteger(x) || Object.is(x, -0) ? new Float(x) : x;
}

/** Python's `repr(float)`: shortest round-trip digits, exponent below 1e-4 and from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest round-trip digits, as repr does.
  const [mantissa, expText] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  // Python switches to scientific notation when the decimal exponent is < -4 or >= 16.
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac === '' ? '0' : frac}`;
}

/** Python's `str()` of a value, as W&B's agent writes it into `--name=value`. */
export function pyStr(v: ParamValue): string {
  if (typeof v === 'string') return v;
  return pyRepr(v);
}

/** Python's `repr()` of a value (strings quoted as Python quotes them). */
export function pyRepr(v: ParamValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v instanceof Float) return pyFloatRepr(v.value);
  if (typeof v === 'number') return isFloatValue(v) ? pyFloatRepr(v) : String(v);
  if (typeof v === 'string') return pyStringRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, val]) => `${pyStringRepr(k)}: ${pyRepr(val)}`)
    .join(', ')}}`;
}

function pyStringRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch < ' ' || ch === '\x7f') out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/**
 * JSON text that keeps floats as floats (`3.0`). Non-finite floats are written as the JSON
 * extensions Python's json module uses (`NaN`, `Infinity`), which `parseTypedJson` reads back.
 */
export function stringifyTyped(v: ParamValue, indent?: number): string {
  const pad = (depth: number) => (indent ? '\n' + ' '.repeat(indent * depth) : '');
  const sep = indent ? ': ' : ':';
  const walk = (x: ParamValue, depth: number): string => {
    if (x === null) return 'null';
    if (typeof x === 'boolean') return String(x);
    if (typeof x === 'string') return JSON.stringify(x);
    if (x instanceof Float || typeof x === 'number') {
      const n = toNumber(x);
      if (Number.isNaN(n)) return 'NaN';
      if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
      return isFloatValue(x) ? pyFloatRepr(n) : String(n);
    }
    if (Array.isArray(x)) {
      if (x.length === 0) return '[]';
      return `[${x.map((e) => pad(depth + 1) + walk(e, depth + 1)).join(',')}${pad(depth)}]`;
    }
    const entries = Object.entries(x);
    if (entries.length === 0) return '{}';
    return `{${entries
      .map(([k, e]) => `${pad(depth + 1)}${JSON.stringify(k)}${sep}${walk(e, depth + 1)}`)
      .join(',')}${pad(depth)}}`;
  };
  return walk(v, 0);
}

export class TypedJsonError extends SweeperError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'TypedJsonError';
  }
}

/**
 * Parse JSON, boxing integral float literals (`3.0`, `1e5`) as `Float` so the int/float
 * distinction survives. Also accepts `NaN`, `Infinity` and `-Infinity`, as Python's json does.
 */
export function parseTypedJson(text: string): ParamValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new TypedJsonError(`${what} at position ${i}`, i);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = (): ParamValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: ParamValue } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        obj[key] = value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: ParamValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['-Infinity', -Infinity],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    const n = Number(m[0]);
    const literalIsFloat = m[2] !== undefined || m[3] !== undefined;
    return literalIsFloat ? makeFloat(n) : n;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const result = value();
  ws();
  if (i !== text.length) fail('unexpected trailing text');
  return result;
}

/**
 * Python's `json.dumps` with its defaults: `", "` and `": "` separators, non-ASCII escaped,
 * floats as `repr` writes them and non-finite floats as NaN/Infinity. Programs that compare or
 * hash `${args_json}` see exactly what wandb would have given them.
 */
export function pyJsonDumps(v: ParamValue): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'string') return pyJsonString(v);
  if (v instanceof Float || typeof v === 'number') {
    const n = typeof v === 'number' ? v : v.value;
    if (Number.isNaN(n)) return 'NaN';
    if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
    return isFloatValue(v) ? pyFloatRepr(n) : String(n);
  }
  if (Array.isArray(v)) return `[${v.map(pyJsonDumps).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, e]) => `${pyJsonString(k)}: ${pyJsonDumps(e)}`)
    .join(', ')}}`;
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function pyJsonString(s: string): string {
  let out = '"';
  // Indexing by UTF-16 unit writes astral characters as surrogate pairs, as Python does.
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const code = s.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short) out += short;
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}
