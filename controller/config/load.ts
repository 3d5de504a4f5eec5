/**
 * Reading a sweep config file into a plain tree. YAML 1.2 (JSON is a subset), so `1e-5` is a
 * number where PyYAML would read a string: a deliberate difference from W&B's loader. Numbers
 * written as floats but integral in value (`3.0`, `1e5`) come back boxed as `Float`, since W&B's
 * type inference depends on how a number was written.
 *
 * The text may come from anyone who can reach CreateSweep, so whatever it holds ends as a
 * ConfigError, quickly, never as another error (INTERNAL) or a controller busy for minutes: an
 * alias bomb, nesting deep enough to exhaust the stack (or, in flow style, the yaml parser's
 * memory), a megabyte of tokens, or a mapping with so many keys that yaml's own duplicate-key
 * check (quadratic) would hold the event loop for minutes.
 */
import { readFile } from 'node:fs/promises';
import { isScalar, Lexer, LineCounter, parseDocument, visit, type Document, type YAMLMap } from 'yaml';
import { makeFloat } from '../../domain/values.js';
import { ConfigError } from './errors.js';
import type { ConfigIssue } from '../../domain/sweep-config.js';

/** Deeper than any sweep config needs; it also bounds the recursion of every later walk. */
export const MAX_NESTING = 64;

/**
 * Values (each list, mapping and scalar counts one) plus string characters in the loaded tree.
 * A text of 1 MiB (the controller's limit) stays far below it; aliases, which the tree holds
 * as copies, could otherwise multiply one big anchor a hundredfold.
 */
export const MAX_LOADED_SIZE = 4 * 1024 * 1024;

/** At 3 to 10 us each in yaml's parser, at most about a second of parsing. See checkTokens. */
export const MAX_YAML_TOKENS = 100_000;

/** yaml's default: an anchor's uses times the aliases inside it; a billion laughs needs far more. */
const MAX_ALIAS_COUNT = 100;

/**
 * Stands in for a float literal between `visit` and `toJS`. It must not have a `toJSON` method:
 * `toJS` would call it (Float has one), losing the box. Aliases and merge keys are resolved by
 * `toJS` itself, so they carry the mark along.
 */
class FloatLiteral {
  constructor(readonly value: number) {}
}

// Hex and octal ints can contain `e`; everything else with a dot or an exponent is a float.
function isFloatSource(source: string): boolean {
  return !/^[-+]?0[xo]/i.test(source) && /[.eE]/.test(source);
}

export function loadConfigText(text: string, filename?: string): unknown {
  const where = locator(filename);
  checkTokens(text, where);
  const lines = new LineCounter();
  const doc = guard(where, () => parseDocument(text, { version: '1.2', schema: 'core', merge: true, uniqueKeys: false, lineCounter: lines }));
  if (doc.errors.length > 0) {
    // After a syntax error the parser's later complaints are mostly echoes of it.
    const e = doc.errors[0];
    throw new ConfigError([where(yamlMessage(e.message), e.linePos?.[0])], [], { cause: e });
  }
  const duplicates = guard(where, () => markAndFindDuplicates(doc));
  if (duplicates.length > 0) {
    // Duplicate keys are independent of each other and all worth fixing in one go.
    throw new ConfigError(duplicates.map((offset) => where(duplicateKeyMessage(text, offset), lines.linePos(offset))));
  }
  const tree = guard(where, () => doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown);
  return unmark(tree, { depth: 0, size: 0 }, where);
}

type Locator = (message: string, pos?: { line: number; col: number }) => ConfigIssue;

/** Issues prefixed with the file and position when known: `sweep.yaml:3:20: ...`. */
function locator(filename?: string): Locator {
  return (message, pos) => {
    if (!pos || pos.line === 0) return { path: '', message: filename ? `${filename}: ${message}` : message };
    const at = filename ? `${filename}:${pos.line}:${pos.col}` : `line ${pos.line}, column ${pos.col}`;
    return { path: '', message: `${at}: ${message}` };
  };
}

const TOO_DEEP = `nested more than ${MAX_NESTING} levels deep`;

/**
 * What the yaml parser is handed is bounded first, on the tokens of its lexer (linear, and
 * stopped at the first bound broken). The parser slows down quadratically on deeply nested flow
 * collections (`[[[[...`): half a million of them take seconds, and an unclosed megabyte of
 * them exhausts the process's memory. And it spends 3 to 10 us on each token: a megabyte of
 * `- 1` lines would hold the controller for seconds. A sweep config needs far fewer tokens.
 */
function checkTokens(text: string, where: Locator): void {
  let depth = 0;
  let offset = 0;
  let count = 0;
  for (const token of new Lexer().lex(text)) {
    if (++count > MAX_YAML_TOKENS) {
      throw new ConfigError([where(`too large: more than ${MAX_YAML_TOKENS} YAML tokens (keys, values, indicators); a sweep config needs far fewer`)]);
    }
    if (token === '[' || token === '{') {
      if (++depth > MAX_NESTING) throw new ConfigError([where(TOO_DEEP, positionOf(text, offset))]);
    } else if (token === ']' || token === '}') {
      depth = Math.max(0, depth - 1);
    }
    // The lexer's control tokens (document, scalar and flow-end marks) are not in the text.
    if (!CONTROL_TOKENS.has(token)) offset += token.length;
  }
}

/** 1-based, as yaml reports positions. */
function positionOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, col: offset - lineStart + 1 };
}

const CONTROL_TOKENS = new Set(['\x02', '\x18', '\x1f']);

/**
 * Whatever the yaml package throws on hostile input (a stack overflow, an alias bomb) is the
 * input's fault: a ConfigError, so that the API answers INVALID_ARGUMENT, not INTERNAL.
 */
function guard<T>(where: Locator, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError([where(yamlMessage(message))], [], { cause: err });
  }
}

function yamlMessage(message: string): string {
  const first = message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  if (/Maximum call stack size exceeded/.test(first)) return TOO_DEEP;
  if (/Excessive alias count/.test(first)) return `aliases expand too far (a YAML alias bomb?): at most ${MAX_ALIAS_COUNT} copies of an anchor's content`;
  return first;
}

/**
 * Boxes float literals (see FloatLiteral) and returns the offsets of keys that repeat one
 * earlier in their mapping. yaml's own check (`uniqueKeys`) compares each key with every one
 * before it, which for 100,000 keys takes minutes; a set per mapping gives the same answer.
 */
function markAndFindDuplicates(doc: Document): number[] {
  const duplicates: number[] = [];
  visit(doc, {
    Map(_key, map) {
      duplicates.push(...duplicateKeys(map));
    },
    Scalar(key, node) {
      // Keys become property names; only values keep their typing.
      if (key === 'key' || typeof node.value !== 'number') return;
      const explicitFloat = node.tag === 'tag:yaml.org,2002:float';
      if (explicitFloat || isFloatSource(node.source ?? '')) node.value = new FloatLiteral(node.value);
    },
  });
  return duplicates;
}

/** As yaml compares keys: scalars by value (`1` and `1.0` are the same key), others never. */
function duplicateKeys(map: YAMLMap): number[] {
  const seen = new Set<unknown>();
  const out: number[] = [];
  for (const pair of map.items) {
    const key = pair.key;
    if (!isScalar(key)) continue;
    if (seen.has(key.value)) out.push(key.range?.[0] ?? 0);
    else seen.add(key.value);
  }
  return out;
}

function duplicateKeyMessage(text: string, offset: number): string {
  const key = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^:\n]*?)\s*:/.exec(text.slice(offset, offset + 1024))?.[1];
  if (!key) return 'duplicate key';
  const shown = key.length > 60 ? `${key.slice(0, 57)}...` : key;
  return `duplicate key ${key.startsWith('"') || key.startsWith("'") ? shown : `'${shown}'`}`;
}

/**
 * The tree with float marks turned into Floats, as plain objects and arrays. Copying also
 * expands aliases, which `toJS` shares, so the depth and the size are bounded here.
 */
function unmark(v: unknown, walk: { depth: number; size: number }, where: Locator): unknown {
  walk.size += typeof v === 'string' ? v.length + 1 : 1;
  if (walk.size > MAX_LOADED_SIZE) {
    throw new ConfigError([where(`too large once its aliases are expanded: more than ${MAX_LOADED_SIZE} values and characters`)]);
  }
  if (v instanceof FloatLiteral) return makeFloat(v.value);
  if (!Array.isArray(v) && !isPlainObject(v)) return v;
  if (walk.depth >= MAX_NESTING) throw new ConfigError([where(TOO_DEEP)]);
  walk.depth++;
  try {
    if (Array.isArray(v)) return v.map((x) => unmark(x, walk, where));
    // fromEntries defines own properties, so a key named `__proto__` stays a plain key.
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unmark(x, walk, where)]));
  } finally {
    walk.depth--;
  }
}

/**
 * A mapping as toJS builds it. Anything else (the bytes of a `!!binary`, a `!!set`) is left
 * as it is, for the validator to refuse as a value no program could receive.
 */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export async function loadConfigFile(path: string): Promise<unknown> {
  return loadConfigText(await readConfigText(path), path);
}

/** The file's text; a file that cannot be read is a ConfigError saying why. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(err);
    throw new ConfigError([{ path: '', message: `cannot read config file '${path}': ${why}` }], [], { cause: err });
  }
}
