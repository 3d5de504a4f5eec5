/**
 * Turns a sweep's `command` template and one trial's parameters into the argv, environment and
 * files of the trial's process, expanding the macros `wandb agent` understands.
 *
 * Behaviour follows wandb's agent (`wandb/wandb_agent.py` `Agent._command_run` and
 * `create_sweep_command_args` in `wandb/sdk/launch/sweeps/utils.py`): an element that is exactly
 * `${name}` is replaced by a list spliced into argv (an empty list removes it), values are written
 * as Python's `str()` writes them, nested parameters arrive as one dict value (`--opt={'lr': 0.1}`),
 * `${args_json}` is `json.dumps` of the parameters, and an unset `${envvar:NAME}` becomes `NAME`.
 * Where we differ on purpose: `${interpreter}` depends on the program's extension (wandb always
 * says `python`), `${program}` is made absolute, macros inside a larger element are substituted
 * (wandb leaves them as text) and an unknown macro is an error (wandb drops it silently).
 *
 * No shell is ever involved, so parameter values reach the program byte for byte.
 *
 * The environment is also what `wandb agent` gives a run (WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_DIR,
 * WANDB_SWEEP_PARAM_PATH and its `config-<run>.yaml`, written as PyYAML writes it), offline by
 * default, with the folder of Sweeper's Python modules first on PYTHONPATH.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SweeperError } from '../common/errors.js';
import { type ParamValue, type Params, Float, isFloatValue, pyFloatRepr, pyStr, stringifyTyped } from '../common/values.js';

/** wandb's default when a sweep has no `command`. */
export const DEFAULT_COMMAND: readonly string[] = ['${env}', '${interpreter}', '${program}', '${args}'];

/** A command template that cannot be expanded: an unknown macro, a missing program, and so on. */
export class CommandError extends SweeperError {}

export interface BuildCommandOptions {
  /** The sweep's `command`; DEFAULT_COMMAND when absent or empty (as wandb does). */
  command?: readonly string[];
  /** The sweep's `program`, relative to `cwd` or absolute. */
  program?: string;
  params: Params;
  /** Directory the trial runs in; `${program}` is resolved against it. */
  cwd: string;
  /** Environment to inherit and to read `${envvar:NAME}` from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  sweepId: string;
  trialId: string;
  /**
   * Where files the command needs (`${args_json_file}`) will be written. Defaults to a fresh,
   * unguessable directory under the OS temp dir; it is created by `writeCommandFiles`.
   */
  filesDir?: string;
}

export interface CommandFile {
  path: string;
  content: string;
}

export interface BuiltCommand {
  argv: string[];
  env: Record<string, string>;
  /** Files to write before starting the process (see `writeCommandFiles`). */
  files: CommandFile[];
  /** The directory holding `files`, set only when there are files; removed after the trial. */
  filesDir?: string;
  /**
   * W&B's sweep parameter file (`WANDB_SWEEP_PARAM_PATH`), kept apart from `files` because every
   * trial has one. It lives in `wandbDir`, a private folder of its own that is removed after the
   * trial like `filesDir`.
   */
  sweepParamFile?: CommandFile;
  wandbDir?: string;
}

/** Macros that expand to any number of argv items and so must stand alone in an element. */
const LIST_MACROS = new Set(['args', 'args_no_hyphens', 'args_no_equals', 'args_no_boolean_flags']);
const SCALAR_MACROS = new Set(['env', 'interpreter', 'program', 'args_json', 'args_json_file']);
const MACRO = /\$\{([^}]*)\}/g;
const ENVVAR = /^envvar:([A-Za-z0-9_]+)$/;

export function buildCommand(opts: BuildCommandOptions): BuiltCommand {
  const baseEnv = opts.env ?? process.env;
  const template = opts.command && opts.command.length > 0 ? opts.command : DEFAULT_COMMAND;
  const files: CommandFile[] = [];
  let filesDir: string | undefined;

  // Computed on first use so that a template without `${program}` needs no program file.
  const memo = new Map<string, string[]>();
  const expand = (name: string): string[] => {
    const cached = memo.get(name);
    if (cached) return cached;
    const value = expandMacro(name);
    memo.set(name, value);
    return value;
  };

  const expandMacro = (name: string): string[] => {
    const envvar = ENVVAR.exec(name);
    if (envvar) return [baseEnv[envvar[1]] ?? envvar[1]];
    switch (name) {
      case 'env':
        return process.platform === 'win32' ? [] : ['/usr/bin/env'];
      case 'interpreter':
        return interpreterFor(opts.program, baseEnv);
      case 'program':
        return [resolveProgram(opts.program, opts.cwd)];
      case 'args':
        return Object.entries(opts.params).map(([k, v]) => `--${k}=${pyStr(v)}`);
      case 'args_no_hyphens':
        return Object.entries(opts.params).map(([k, v]) => `${k}=${pyStr(v)}`);
      case 'args_no_equals':
        return Object.entries(opts.params).flatMap(([k, v]) => [`--${k}`, pyStr(v)]);
      case 'args_no_boolean_flags':
        return Object.entries(opts.params).flatMap(([k, v]) => {
          if (v === true) return [`--${k}`];
          if (v === false) return [];
          return [`--${k}=${pyStr(v)}`];
        });
      case 'args_json':
        return [pyJsonDumps(opts.params)];
      case 'args_json_file': {
        filesDir = opts.filesDir ?? defaultFilesDir(opts.sweepId, opts.trialId);
        const file = path.join(filesDir, 'args.json');
        files.push({ path: file, content: pyJsonDumps(opts.params) });
        return [file];
      }
      default:
        throw new CommandError(`unknown macro '\${${name}}' in command`);
    }
  };

  const argv: string[] = [];
  // `wandb.agent(sweep_id, function=...)` runs this agent with SWEEPER_RELAY_SOCKET set: each
  // trial's process is then the relay that hands the trial to that Python process (see
  // agent/helpers/python/sweeper/_wandb_agent.py), whatever the sweep's command.
  const relay = baseEnv.SWEEPER_RELAY_SOCKET
    ? [baseEnv.SWEEPER_RELAY_PYTHON || interpreterFor('relay.py', baseEnv)[0], path.join(PYTHON_HELPERS_DIR, 'sweeper', '_relay.py')]
    : undefined;
  if (relay) {
    argv.push(...relay);
  } else {
    for (const element of template) {
      const whole = /^\$\{([^}]*)\}$/.exec(element);
      if (whole) {
        argv.push(...expand(whole[1]));
        continue;
      }
      // One pass, so text that a macro produced (an env var holding `${x}`) is never expanded again.
      argv.push(
        element.replace(MACRO, (_m, name: string) => {
          if (LIST_MACROS.has(name)) {
            throw new CommandError(`macro '\${${name}}' expands to several arguments and must be a command element of its own`);
          }
          if (!SCALAR_MACROS.has(name) && !ENVVAR.test(name)) {
            throw new CommandError(`unknown macro '\${${name}}' in command`);
          }
          return expand(name).join(' ');
        }),
      );
    }
  }
  if (argv.length === 0) throw new CommandError('command expands to nothing');

  const wandbDir = filesDir ?? opts.filesDir ?? defaultFilesDir(opts.sweepId, opts.trialId);
  const sweepParamFile: CommandFile = {
    path: path.join(wandbDir, ...wandbSweepParamPath(opts.sweepId, opts.trialId)),
    content: wandbConfigYaml(opts.params),
  };
  return {
    argv,
    env: childEnv(baseEnv, opts, sweepParamFile.path),
    files,
    ...(filesDir !== undefined ? { filesDir } : {}),
    sweepParamFile,
    wandbDir,
  };
}

/**
 * Where `wandb agent` puts a trial's parameter file, relative to WANDB_DIR:
 * `wandb/sweep-<sweep>/config-<run>.yaml` (`Agent._command_run` in wandb/wandb_agent.py).
 */
export function wandbSweepParamPath(sweepId: string, trialId: string): string[] {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  return ['wandb', `sweep-${safe(sweepId)}`, `config-${safe(trialId)}.yaml`];
}

/** Write the files a built command refers to; the directories are made private to this user. */
export function writeCommandFiles(cmd: BuiltCommand): void {
  for (const dir of [cmd.filesDir, cmd.wandbDir]) if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const f of cmd.sweepParamFile ? [...cmd.files, cmd.sweepParamFile] : cmd.files) {
    mkdirSync(path.dirname(f.path), { recursive: true, mode: 0o700 });
    writeFileSync(f.path, f.content, { mode: 0o600 });
  }
}

/** Remove what `writeCommandFiles` wrote; never throws. */
export function removeCommandFiles(cmd: BuiltCommand): void {
  try {
    if (cmd.filesDir) rmSync(cmd.filesDir, { recursive: true, force: true });
    else for (const f of cmd.files) rmSync(f.path, { force: true });
    if (cmd.wandbDir) rmSync(cmd.wandbDir, { recursive: true, force: true });
  } catch {
    // A leftover file in the temp dir is not worth failing a trial over.
  }
}

function childEnv(baseEnv: NodeJS.ProcessEnv, opts: BuildCommandOptions, sweepParamPath: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(baseEnv)) if (v !== undefined) env[k] = v;
  env.SWEEPER_SWEEP_ID = opts.sweepId;
  env.SWEEPER_TRIAL_ID = opts.trialId;
  env.SWEEPER_PARAMS = stringifyTyped(opts.params);
  // A block-buffered stdout would deliver metric lines late, in bursts, or never (on SIGKILL).
  env.PYTHONUNBUFFERED = '1';
  // The `sweeper` package, and the sitecustomize that makes Sweeper's `wandb` module a fallback.
  const prior = env.PYTHONPATH;
  env.PYTHONPATH = prior ? `${PYTHON_HELPERS_DIR}${path.delimiter}${prior}` : PYTHON_HELPERS_DIR;
  // What `wandb agent` gives a run (wandb_agent.py `_command_run`): the sweep, the run id, and the
  // file its parameters are read from (wandb.init loads and locks them). WANDB_DIR is where
  // wandb would write anyway (the folder the trial runs in) unless the user chose another.
  env.WANDB_RUN_ID = opts.trialId;
  env.WANDB_DIR = baseEnv.WANDB_DIR || path.resolve(opts.cwd);
  env.WANDB_SWEEP_PARAM_PATH = sweepParamPath;
  // There is no W&B sweep behind this run, so the real package must not need a login: offline,
  // unless the user chose a mode. A run the user sends online must not be told to join a W&B
  // sweep of this id, which W&B's server does not have: it gets no WANDB_SWEEP_ID.
  const mode = baseEnv.WANDB_MODE;
  if (!mode && !/^(true|1|yes)$/i.test(baseEnv.WANDB_DISABLED ?? '')) env.WANDB_MODE = 'offline';
  if (!mode || /^(offline|dryrun|disabled)$/i.test(mode)) env.WANDB_SWEEP_ID = opts.sweepId;
  return env;
}

/**
 * The directory holding the `sweeper` Python package. From source it sits beside this module;
 * compiled code runs from `dist/agent/`, where tsc does not copy `.py` files, so look in the
 * source tree too.
 */
export const PYTHON_HELPERS_DIR: string = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'helpers', 'python'), path.join(here, '..', '..', 'agent', 'helpers', 'python')];
  return candidates.find((dir) => existsSync(path.join(dir, 'sweeper', '__init__.py'))) ?? candidates[0];
})();

function resolveProgram(program: string | undefined, cwd: string): string {
  if (!program) throw new CommandError("command uses '${program}' but the sweep has no 'program'");
  const abs = path.resolve(cwd, program);
  let isFile = false;
  try {
    isFile = statSync(abs).isFile();
  } catch {
    // Reported below with the path we looked at.
  }
  if (!isFile) throw new CommandError(`program '${program}' not found (looked at ${abs})`);
  return abs;
}

/** `[]` means "run the program itself", which then needs its executable bit or a shebang. */
function interpreterFor(program: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const ext = program ? path.extname(program).toLowerCase() : '.py';
  switch (ext) {
    case '.py':
      return [onPath('python3', env) ? 'python3' : 'python'];
    case '.js':
    case '.mjs':
    case '.cjs':
      return [process.execPath];
    case '.sh':
      return ['bash'];
    default:
      return [];
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, name), fsConstants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

function defaultFilesDir(sweepId: string, trialId: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  // Random so another user of a shared /tmp cannot plant a file or link at a path we will write.
  return path.join(tmpdir(), `sweeper-${safe(sweepId)}-${safe(trialId)}-${randomBytes(6).toString('hex')}`);
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

/**
 * The sweep parameter file `wandb agent` writes (`save_config_file_from_dict` in
 * wandb/sdk/lib/config_util.py): `wandb_version: 1`, a blank line, then PyYAML's
 * `yaml.dump({name: {"value": v}}, Dumper=SafeDumper, default_flow_style=False,
 * allow_unicode=True, sort_keys=False)`, byte for byte.
 */
export function wandbConfigYaml(params: Params): string {
  const entries = Object.entries(params);
  if (entries.length === 0) return 'wandb_version: 1';
  const args: { [k: string]: ParamValue } = {};
  for (const [k, v] of entries) define(args, k, { value: v });
  return 'wandb_version: 1\n\n' + pyYamlDump(args);
}

function define(target: { [k: string]: ParamValue }, key: string, value: ParamValue): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

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
