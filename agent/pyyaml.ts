/**
 * PyYAML's `yaml.dump` for sweep values, byte for byte: W&B's sweep parameter file
 * (`config-<run>.yaml`, see `wandbConfigYaml` in command.ts) is written with it, and scripts
 * that read that file themselves must see what `wandb agent` would have written.
 */
import { type ParamValue, Float, isFloatValue, pyFloatRepr } from '../domain/values.js';

/**
 * PyYAML's block-style emitter (yaml/emitter.py, yaml/representer.py SafeRepresenter) for the
 * values a sweep can hold, ported routine by routine: scalar analysis and style choice, plain,
 * single- and double-quoted writers with their line folding at 80 columns, indentless sequences
 * inside mappings, `{}`/`[]` for empty collections, and `? ` keys for keys that cannot be simple.
 */
export function pyYamlDump(value: ParamValue): string {
  const e = new YamlEmitter();
  e.node(value, { root: true });
  e.end();
  return e.out;
}

const BREAKS = '\n\x85\u2028\u2029';
const SPACE_OR_BREAK = '\0 \t\r\n\x85\u2028\u2029';

interface Analysis {
  empty: boolean;
  multiline: boolean;
  allowBlockPlain: boolean;
  allowSingleQuoted: boolean;
}

const IMPLICIT: [RegExp, string][] = [
  [/^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/, 'yYnNtTfFoO'],
  [
    /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
    '-+0123456789.',
  ],
  [/^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/, '-+0123456789'],
  [/^(?:<<)$/, '<'],
  [/^(?:~|null|Null|NULL|)$/, '~nN'],
  [
    /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/,
    '0123456789',
  ],
  [/^(?:=)$/, '='],
  [/^(?:!|&|\*)$/, '!&*'],
];

/** Whether PyYAML's resolver reads this plain text back as a string (Resolver.resolve). */
function resolvesToStr(text: string): boolean {
  if (text === '') return false;
  for (const [re, first] of IMPLICIT) if (first.includes(text[0]) && re.test(text)) return false;
  return true;
}

function isUnicodePrintable(cp: number): boolean {
  return cp === 0x85 || (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp < 0x10ffff);
}

/** Emitter.analyze_scalar, with allow_unicode, for the parts choose_scalar_style reads. */
function analyzeScalar(chars: string[]): Analysis {
  if (chars.length === 0) return { empty: true, multiline: false, allowBlockPlain: true, allowSingleQuoted: true };
  let blockIndicators = false;
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  const text = chars.join('');
  if (text.startsWith('---') || text.startsWith('...')) blockIndicators = true;
  let precededByWhitespace = true;
  let followedByWhitespace = chars.length === 1 || SPACE_OR_BREAK.includes(chars[1]);
  let previousSpace = false;
  let previousBreak = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) blockIndicators = true;
      if ('?:'.includes(ch) && followedByWhitespace) blockIndicators = true;
      if (ch === '-' && followedByWhitespace) blockIndicators = true;
    } else {
      if (ch === ':' && followedByWhitespace) blockIndicators = true;
      if (ch === '#' && precededByWhitespace) blockIndicators = true;
    }
    if (BREAKS.includes(ch)) lineBreaks = true;
    const cp = ch.codePointAt(0)!;
    if (!(ch === '\n' || (cp >= 0x20 && cp <= 0x7e))) {
      if (!(isUnicodePrintable(cp) && cp !== 0xfeff)) special = true;
    }
    if (ch === ' ') {
      if (i === 0) leadingSpace = true;
      if (i === chars.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (BREAKS.includes(ch)) {
      if (i === 0) leadingBreak = true;
      if (i === chars.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = SPACE_OR_BREAK.includes(ch);
    followedByWhitespace = i + 2 >= chars.length || SPACE_OR_BREAK.includes(chars[i + 2]);
  }
  let allowBlockPlain = true;
  let allowSingleQuoted = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) allowBlockPlain = false;
  if (breakSpace) allowBlockPlain = allowSingleQuoted = false;
  if (spaceBreak || special) allowBlockPlain = allowSingleQuoted = false;
  if (lineBreaks) allowBlockPlain = false;
  if (blockIndicators) allowBlockPlain = false;
  return { empty: false, multiline: lineBreaks, allowBlockPlain, allowSingleQuoted };
}

const ESCAPES: Record<string, string> = {
  '\0': '0', '\x07': 'a', '\x08': 'b', '\x09': 't', '\x0A': 'n', '\x0B': 'v', '\x0C': 'f', '\x0D': 'r',
  '\x1B': 'e', '"': '"', '\\': '\\', '\x85': 'N', '\xA0': '_', '\u2028': 'L', '\u2029': 'P',
};

const BEST_WIDTH = 80;
const BEST_INDENT = 2;

class YamlEmitter {
  out = '';
  private column = 0;
  private whitespace = true;
  private indention = true;
  private indent: number | null = null;
  private readonly indents: (number | null)[] = [];
  private mappingContext = false;
  private simpleKeyContext = false;

  /** expect_document_end: a final write_indent at indent 0. */
  end(): void {
    this.indent = null;
    this.writeIndent();
  }

  lineBreak(): void {
    this.whitespace = true;
    this.indention = true;
    this.column = 0;
    this.out += '\n';
  }

  private write(data: string): void {
    this.column += [...data].length;
    this.out += data;
  }

  private writeIndicator(indicator: string, needWhitespace: boolean, whitespace = false, indention = false): void {
    const data = this.whitespace || !needWhitespace ? indicator : ' ' + indicator;
    this.whitespace = whitespace;
    this.indention = this.indention && indention;
    this.write(data);
  }

  private writeIndent(): void {
    const indent = this.indent ?? 0;
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.lineBreak();
    if (this.column < indent) {
      this.whitespace = true;
      this.write(' '.repeat(indent - this.column));
    }
  }

  private increaseIndent(flow: boolean, indentless = false): void {
    this.indents.push(this.indent);
    if (this.indent === null) this.indent = flow ? BEST_INDENT : 0;
    else if (!indentless) this.indent += BEST_INDENT;
  }

  private popIndent(): void {
    this.indent = this.indents.pop() ?? null;
  }

  node(value: ParamValue, ctx: { root?: boolean; mapping?: boolean; sequence?: boolean; simpleKey?: boolean }): void {
    this.mappingContext = Boolean(ctx.mapping);
    this.simpleKeyContext = Boolean(ctx.simpleKey);
    if (Array.isArray(value)) {
      if (value.length === 0) return this.flowEmpty('[', ']');
      const indentless = this.mappingContext && !this.indention;
      this.increaseIndent(false, indentless);
      for (const item of value) {
        this.writeIndent();
        this.writeIndicator('-', true, false, true);
        this.node(item, { sequence: true });
      }
      this.popIndent();
      return;
    }
    if (value !== null && typeof value === 'object' && !(value instanceof Float)) {
      const entries = Object.entries(value);
      if (entries.length === 0) return this.flowEmpty('{', '}');
      this.increaseIndent(false);
      for (const [k, v] of entries) {
        this.writeIndent();
        const chars = [...k];
        const a = analyzeScalar(chars);
        // check_simple_key: the key's text plus its '!!str' tag under 128 characters, on one line.
        if (chars.length + 5 < 128 && !a.empty && !a.multiline) {
          this.node(k, { mapping: true, simpleKey: true });
          this.writeIndicator(':', false);
        } else {
          this.writeIndicator('?', true, false, true);
          this.node(k, { mapping: true });
          this.writeIndent();
          this.writeIndicator(':', true, false, true);
        }
        this.node(v, { mapping: true });
      }
      this.popIndent();
      return;
    }
    this.scalar(value);
  }

  private flowEmpty(open: string, close: string): void {
    this.writeIndicator(open, true, true);
    this.writeIndicator(close, false);
  }

  private scalar(value: null | boolean | number | string | Float): void {
    this.increaseIndent(true);
    const split = !this.simpleKeyContext;
    if (typeof value === 'string') {
      const chars = [...value];
      const a = analyzeScalar(chars);
      const plain =
        resolvesToStr(value) && !(this.simpleKeyContext && (a.empty || a.multiline)) && a.allowBlockPlain;
      if (plain) this.writePlain(chars, split);
      else if (a.allowSingleQuoted && !(this.simpleKeyContext && a.multiline)) this.writeSingleQuoted(chars, split);
      else this.writeDoubleQuoted(chars, split);
    } else {
      this.writePlain([...yamlScalarText(value)], split);
    }
    this.popIndent();
  }

  private writePlain(chars: string[], split: boolean): void {
    if (chars.length === 0) return;
    if (!this.whitespace) this.write(' ');
    this.whitespace = false;
    this.indention = false;
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end] : null;
      if (spaces) {
        if (ch !== ' ') {
          if (start + 1 === end && this.column > BEST_WIDTH && split) {
            this.writeIndent();
            this.whitespace = false;
            this.indention = false;
          } else {
            this.write(chars.slice(start, end).join(''));
          }
          start = end;
        }
      } else if (breaks) {
        if (ch === null || !BREAKS.includes(ch)) {
          if (chars[start] === '\n') this.lineBreak();
          for (const br of chars.slice(start, end)) this.lineBreakWith(br);
          this.writeIndent();
          this.whitespace = false;
          this.indention = false;
          start = end;
        }
      } else if (ch === null || ' \n\x85\u2028\u2029'.includes(ch)) {
        this.write(chars.slice(start, end).join(''));
        start = end;
      }
      if (ch !== null) {
        spaces = ch === ' ';
        breaks = BREAKS.includes(ch);
      }
    }
  }

  private lineBreakWith(br: string): void {
    this.whitespace = true;
    this.indention = true;
    this.column = 0;
    this.out += br;
  }

  private writeSingleQuoted(chars: string[], split: boolean): void {
    this.writeIndicator("'", true);
    let spaces = false;
    let breaks = false;
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end] : null;
      if (spaces) {
        if (ch === null || ch !== ' ') {
          if (start + 1 === end && this.column > BEST_WIDTH && split && start !== 0 && end !== chars.length) {
            this.writeIndent();
          } else {
            this.write(chars.slice(start, end).join(''));
          }
          start = end;
        }
      } else if (breaks) {
        if (ch === null || !BREAKS.includes(ch)) {
          if (chars[start] === '\n') this.lineBreak();
          for (const br of chars.slice(start, end)) this.lineBreakWith(br);
          this.writeIndent();
          start = end;
        }
      } else if (ch === null || ' \n\x85\u2028\u2029'.includes(ch) || ch === "'") {
        if (start < end) {
          this.write(chars.slice(start, end).join(''));
          start = end;
        }
      }
      if (ch === "'") {
        this.write("''");
        start = end + 1;
      }
      if (ch !== null) {
        spaces = ch === ' ';
        breaks = BREAKS.includes(ch);
      }
    }
    this.writeIndicator("'", false);
  }

  private writeDoubleQuoted(chars: string[], split: boolean): void {
    this.writeIndicator('"', true);
    let start = 0;
    for (let end = 0; end <= chars.length; end++) {
      const ch = end < chars.length ? chars[end] : null;
      const cp = ch === null ? 0 : ch.codePointAt(0)!;
      if (
        ch === null ||
        '"\\\x85\u2028\u2029\uFEFF'.includes(ch) ||
        !((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd))
      ) {
        if (start < end) {
          this.write(chars.slice(start, end).join(''));
          start = end;
        }
        if (ch !== null) {
          const hex = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, '0');
          const data = ESCAPES[ch] !== undefined ? '\\' + ESCAPES[ch] : cp <= 0xff ? `\\x${hex(cp, 2)}` : cp <= 0xffff ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
          this.write(data);
          start = end + 1;
        }
      }
      if (end > 0 && end < chars.length - 1 && (ch === ' ' || start >= end) && this.column + (end - start) > BEST_WIDTH && split) {
        const data = chars.slice(start, end).join('') + '\\';
        if (start < end) start = end;
        this.write(data);
        this.writeIndent();
        this.whitespace = false;
        this.indention = false;
        if (chars[start] === ' ') this.write('\\');
      }
    }
    this.writeIndicator('"', false);
  }
}

/** SafeRepresenter's text for a non-string scalar: `null`, `true`, ints, floats as `repr().lower()`. */
function yamlScalarText(v: null | boolean | number | Float): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  const n = typeof v === 'number' ? v : v.value;
  // An integral number JSON writes with an exponent (1e21) reaches Python as a float.
  if (!isFloatValue(v) && !String(n).includes('e')) return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
  if (Number.isNaN(n)) return '.nan';
  if (n === Infinity) return '.inf';
  if (n === -Infinity) return '-.inf';
  let text = pyFloatRepr(n).toLowerCase();
  if (!text.includes('.') && text.includes('e')) text = text.replace('e', '.0e');
  return text;
}
