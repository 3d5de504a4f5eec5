/**
 * Reading a sweep config file into a plain tree. YAML 1.2 (JSON is a subset), so `1e-5` is a
 * number where PyYAML would read a string: a deliberate difference from W&B's loader. Numbers
 * written as floats but integral in value (`3.0`, `1e5`) come back boxed as `Float`, since W&B's
 * type inference depends on how a number was written.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument, visit, type YAMLError } from 'yaml';
import { makeFloat } from '../../common/values.js';
import { ConfigError } from './errors.js';
import type { ConfigIssue } from './types.js';

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
  const doc = parseDocument(text, { version: '1.2', schema: 'core', merge: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // After a syntax error the parser's later complaints are mostly echoes of it; duplicate
    // keys, though, are independent of each other and all worth fixing in one go.
    const syntax = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY');
    const shown = syntax.length > 0 ? syntax.slice(0, 1) : doc.errors;
    throw new ConfigError(
      shown.map((e) => yamlIssue(e, text, filename)),
      [],
      { cause: shown[0] },
    );
  }
  visit(doc, {
    Scalar(key, node) {
      // Keys become property names; only values keep their typing.
      if (key === 'key' || typeof node.value !== 'number') return;
      const explicitFloat = node.tag === 'tag:yaml.org,2002:float';
      if (explicitFloat || isFloatSource(node.source ?? '')) node.value = new FloatLiteral(node.value);
    },
  });
  return unmark(doc.toJS({ maxAliasCount: 100 }));
}

function unmark(v: unknown): unknown {
  if (v instanceof FloatLiteral) return makeFloat(v.value);
  if (Array.isArray(v)) return v.map(unmark);
  if (v !== null && typeof v === 'object') {
    // fromEntries defines own properties, so a key named `__proto__` stays a plain key.
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unmark(x)]));
  }
  return v;
}

function yamlIssue(e: YAMLError, text: string, filename?: string): ConfigIssue {
  let message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  if (e.code === 'DUPLICATE_KEY') {
    const key = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^:\n]*?)\s*:/.exec(text.slice(e.pos[0]))?.[1];
    message = key ? `duplicate key ${key.startsWith('"') || key.startsWith("'") ? key : `'${key}'`}` : 'duplicate key';
  }
  const pos = e.linePos?.[0];
  if (!pos) return { path: '', message: filename ? `${filename}: ${message}` : message };
  const where = filename ? `${filename}:${pos.line}:${pos.col}` : `line ${pos.line}, column ${pos.col}`;
  return { path: '', message: `${where}: ${message}` };
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
