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
import { SweeperError } from '../domain/errors.js';
import { commandTemplate } from '../common/command-template.js';
import { type ParamValue, type Params, pyJsonDumps, pyStr, stringifyTyped } from '../domain/values.js';
import { pyYamlDump } from './pyyaml.js';


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
  /** The trial's own checkpoint folder, the same on every run of it (SWEEPER_CHECKPOINT_DIR). */
  checkpointDir?: string;
  /** This run continues a preempted one: SWEEPER_RESUME=1, and W&B's WANDB_RESUME=allow. */
  resume?: boolean;
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
  const template = commandTemplate(opts.command);
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

/**
 * The agent's own credentials (the controller's API token, NATS's): a trial program needs
 * neither, and with them it could act on sweeps as the agent may not (least privilege).
 */
const AGENT_SECRETS: ReadonlySet<string> = new Set(['SWEEPER_TOKEN', 'SWEEPER_NATS_USER', 'SWEEPER_NATS_PASSWORD', 'SWEEPER_NATS_TOKEN']);

function childEnv(baseEnv: NodeJS.ProcessEnv, opts: BuildCommandOptions, sweepParamPath: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(baseEnv)) if (v !== undefined && !AGENT_SECRETS.has(k)) env[k] = v;
  env.SWEEPER_SWEEP_ID = opts.sweepId;
  env.SWEEPER_TRIAL_ID = opts.trialId;
  env.SWEEPER_PARAMS = stringifyTyped(opts.params);
  if (opts.checkpointDir) env.SWEEPER_CHECKPOINT_DIR = opts.checkpointDir;
  // Only on a continuation: a program reads it to load its checkpoint instead of starting over.
  if (opts.resume) env.SWEEPER_RESUME = '1';
  else delete env.SWEEPER_RESUME;
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
  // A continued trial is the same W&B run (WANDB_RUN_ID is the trial id): wandb.init resumes it.
  if (opts.resume) env.WANDB_RESUME = 'allow';
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
