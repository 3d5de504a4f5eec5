import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildCommandOptions,
  CommandError,
  PYTHON_HELPERS_DIR,
  buildCommand,
  removeCommandFiles,
  writeCommandFiles,
} from '../../agent/command.js';
import { Float, type Params, parseTypedJson, pyJsonDumps } from '../../domain/values.js';

let cwd: string;
let binDir: string;
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: binDir, HOME: '/home/me', ...extra });

beforeAll(() => {
  cwd = mkdtempSync(path.join(tmpdir(), 'sweeper-command-test-'));
  for (const f of ['train.py', 'train.js', 'train.mjs', 'train.cjs', 'run.sh', 'tool.bin']) writeFileSync(path.join(cwd, f), '');
  // A PATH we control, so the interpreter choice does not depend on this machine.
  binDir = path.join(cwd, 'bin');
});

afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function build(opts: Partial<BuildCommandOptions> & { params: Params }) {
  return buildCommand({ cwd, program: 'train.py', sweepId: 'sw1', trialId: 't1', env: env(), ...opts });
}

const PARAMS: Params = {
  lr: 1e-5,
  width: new Float(3),
  epochs: 10,
  flag: true,
  off: false,
  name: 'adam w',
  none: null,
  layers: [1, 2],
  opt: { kind: 'sgd', momentum: 0.9 },
};

describe('buildCommand', () => {
  it("keeps the agent's own credentials from the trial, and tells a continued run it resumes", () => {
    const secrets = { SWEEPER_TOKEN: 'api', SWEEPER_NATS_USER: 'u', SWEEPER_NATS_PASSWORD: 'p', SWEEPER_NATS_TOKEN: 'n', SWEEPER_RESUME: '1' };
    const first = build({ params: { lr: 1 }, env: { ...env(), ...secrets }, checkpointDir: '/ckpt/sw1/t1' });
    for (const k of ['SWEEPER_TOKEN', 'SWEEPER_NATS_USER', 'SWEEPER_NATS_PASSWORD', 'SWEEPER_NATS_TOKEN', 'SWEEPER_RESUME', 'WANDB_RESUME']) expect(first.env[k]).toBeUndefined();
    expect(first.env.SWEEPER_CHECKPOINT_DIR).toBe('/ckpt/sw1/t1');
    const again = build({ params: { lr: 1 }, checkpointDir: '/ckpt/sw1/t1', resume: true });
    expect([again.env.SWEEPER_RESUME, again.env.WANDB_RESUME, again.env.WANDB_RUN_ID, again.env.SWEEPER_CHECKPOINT_DIR]).toEqual(['1', 'allow', 't1', '/ckpt/sw1/t1']);
  });

  it('expands the default command as wandb does, with values as Python str() writes them', () => {
    const { argv } = build({ params: PARAMS });
    expect(argv).toEqual([
      '/usr/bin/env',
      'python',
      path.join(cwd, 'train.py'),
      '--lr=1e-05',
      '--width=3.0',
      '--epochs=10',
      '--flag=True',
      '--off=False',
      '--name=adam w',
      '--none=None',
      '--layers=[1, 2]',
      "--opt={'kind': 'sgd', 'momentum': 0.9}",
    ]);
  });

  it('expands ${args_no_hyphens}', () => {
    const { argv } = build({ command: ['${args_no_hyphens}'], params: { lr: 1e-5, flag: true, none: null } });
    expect(argv).toEqual(['lr=1e-05', 'flag=True', 'none=None']);
  });

  it('expands ${args_no_equals} into two items per parameter', () => {
    const { argv } = build({ command: ['x', '${args_no_equals}'], params: { lr: 0.5, flag: false, name: 'a b' } });
    expect(argv).toEqual(['x', '--lr', '0.5', '--flag', 'False', '--name', 'a b']);
  });

  it('expands ${args_no_boolean_flags}: true is a bare flag, false is left out', () => {
    const { argv } = build({ command: ['x', '${args_no_boolean_flags}'], params: { a: true, b: false, c: 1, d: null } });
    expect(argv).toEqual(['x', '--a', '--c=1', '--d=None']);
  });

  it('expands ${args_json} to one item written as json.dumps writes it', () => {
    const { argv } = build({ command: ['x', '${args_json}'], params: PARAMS });
    expect(argv).toEqual([
      'x',
      '{"lr": 1e-05, "width": 3.0, "epochs": 10, "flag": true, "off": false, "name": "adam w", "none": null, ' +
        '"layers": [1, 2], "opt": {"kind": "sgd", "momentum": 0.9}}',
    ]);
  });

  it('expands ${args_json_file} to a file path and returns the file to write', () => {
    const cmd = build({ command: ['x', '--config', '${args_json_file}'], params: { width: new Float(3) } });
    expect(cmd.argv).toHaveLength(3);
    const file = cmd.argv[2];
    expect(path.isAbsolute(file)).toBe(true);
    expect(cmd.files).toEqual([{ path: file, content: '{"width": 3.0}' }]);
    expect(cmd.filesDir && file.startsWith(cmd.filesDir + path.sep)).toBe(true);
    expect(existsSync(file)).toBe(false);
    writeCommandFiles(cmd);
    expect(readFileSync(file, 'utf8')).toBe('{"width": 3.0}');
    removeCommandFiles(cmd);
    expect(existsSync(cmd.filesDir!)).toBe(false);
  });

  it('gives each trial its own ${args_json_file} directory', () => {
    const a = build({ command: ['${args_json_file}'], params: {} });
    const b = build({ command: ['${args_json_file}'], params: {} });
    expect(a.argv[0]).not.toBe(b.argv[0]);
    const c = build({ command: ['${args_json_file}'], params: {}, filesDir: path.join(cwd, 'files') });
    expect(c.argv).toEqual([path.join(cwd, 'files', 'args.json')]);
  });

  it('has no files when ${args_json_file} is not used', () => {
    const cmd = build({ params: PARAMS });
    expect(cmd.files).toEqual([]);
    expect(cmd.filesDir).toBeUndefined();
  });

  it('expands ${envvar:NAME}, alone and inside a larger element', () => {
    const { argv } = build({ command: ['${envvar:HOME}', '--out=${envvar:HOME}/x/${envvar:RUN}'], params: {}, env: env({ RUN: 'r7' }) });
    expect(argv).toEqual(['/home/me', '--out=/home/me/x/r7']);
  });

  it('writes an unset ${envvar:NAME} as NAME, as wandb does', () => {
    expect(build({ command: ['a', '${envvar:NOT_SET_ANYWHERE}'], params: {} }).argv).toEqual(['a', 'NOT_SET_ANYWHERE']);
  });

  it('never expands text that a macro produced', () => {
    const { argv } = build({ command: ['${envvar:TRICK}', '${args}'], params: { v: '${program}' }, env: env({ TRICK: '${args}' }) });
    expect(argv).toEqual(['${args}', '--v=${program}']);
  });

  it('substitutes single-valued macros inside a larger element', () => {
    const { argv } = build({ command: ['--prog=${program}', '--cfg=${args_json}'], params: { a: 1 } });
    expect(argv).toEqual([`--prog=${path.join(cwd, 'train.py')}`, '--cfg={"a": 1}']);
  });

  it('refuses a list macro inside a larger element', () => {
    expect(() => build({ command: ['x${args}'], params: { a: 1 } })).toThrow(/args.*own/);
  });

  it('removes an element whose macro expands to nothing', () => {
    expect(build({ command: ['python3', 'train.py', '${args}', 'end'], params: {} }).argv).toEqual(['python3', 'train.py', 'end']);
  });

  it('passes the literal part of the command through untouched', () => {
    expect(build({ command: ['torchrun', '--nproc=2', '$HOME', '${program}'], params: {} }).argv).toEqual([
      'torchrun',
      '--nproc=2',
      '$HOME',
      path.join(cwd, 'train.py'),
    ]);
  });

  it('throws a CommandError naming an unknown macro', () => {
    const run = () => build({ command: ['${env}', '${args_with_typo}'], params: {} });
    expect(run).toThrow(CommandError);
    expect(run).toThrow('${args_with_typo}');
    expect(() => build({ command: ['--x=${nope}'], params: {} })).toThrow('${nope}');
  });

  it('throws a CommandError naming a missing program', () => {
    const run = () => build({ program: 'missing.py', params: {} });
    expect(run).toThrow(CommandError);
    expect(run).toThrow(/missing\.py/);
    expect(() => build({ program: undefined, params: {} })).toThrow(CommandError);
  });

  it('needs no program file when the command does not name ${program}', () => {
    expect(build({ program: 'missing.py', command: ['./run-it', '${args}'], params: { a: 1 } }).argv).toEqual(['./run-it', '--a=1']);
  });

  it('resolves ${program} against cwd and keeps absolute programs', () => {
    const abs = path.join(cwd, 'train.js');
    expect(build({ program: abs, command: ['${program}'], params: {} }).argv).toEqual([abs]);
    expect(build({ program: './run.sh', command: ['${program}'], params: {} }).argv).toEqual([path.join(cwd, 'run.sh')]);
  });

  describe('${interpreter}', () => {
    const interp = (program: string, e?: NodeJS.ProcessEnv) =>
      build({ program, command: ['${interpreter}', 'then'], params: {}, env: e ?? env() }).argv.slice(0, -1);

    it('uses python3 for .py when it is on PATH, else python', () => {
      const withPy3 = mkdtempSync(path.join(tmpdir(), 'sweeper-bin-'));
      try {
        writeFileSync(path.join(withPy3, 'python3'), '#!/bin/sh\n', { mode: 0o755 });
        expect(interp('train.py', { PATH: withPy3 })).toEqual(['python3']);
        expect(interp('train.py', { PATH: binDir })).toEqual(['python']);
      } finally {
        rmSync(withPy3, { recursive: true, force: true });
      }
    });

    it('ignores a python3 that is not executable', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sweeper-bin-'));
      try {
        writeFileSync(path.join(dir, 'python3'), '', { mode: 0o644 });
        expect(interp('train.py', { PATH: dir })).toEqual(['python']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('uses this node for JavaScript, bash for .sh, and nothing for other programs', () => {
      for (const p of ['train.js', 'train.mjs', 'train.cjs']) expect(interp(p)).toEqual([process.execPath]);
      expect(interp('run.sh')).toEqual(['bash']);
      expect(interp('tool.bin')).toEqual([]);
      expect(build({ program: 'tool.bin', params: { a: 1 } }).argv).toEqual(['/usr/bin/env', path.join(cwd, 'tool.bin'), '--a=1']);
    });
  });

  it('keeps dangerous values literal, one argv item each', () => {
    const nasty = { a: '$(touch /tmp/x)', b: '; rm -rf ~', c: 'line1\nline2', d: "it's \"quoted\"", e: '*', f: '' };
    expect(build({ command: ['${args}'], params: nasty }).argv).toEqual([
      '--a=$(touch /tmp/x)',
      '--b=; rm -rf ~',
      '--c=line1\nline2',
      `--d=it's "quoted"`,
      '--e=*',
      '--f=',
    ]);
    expect(build({ command: ['${args_no_equals}'], params: { b: '; rm -rf ~' } }).argv).toEqual(['--b', '; rm -rf ~']);
  });

  it('writes nested parameters as one Python dict, not dotted flags (as wandb does)', () => {
    const { argv } = build({ command: ['${args}'], params: { optimizer: { name: 'adam', betas: [0.9, new Float(1)], opts: { eps: 1e-8 } } } });
    expect(argv).toEqual(["--optimizer={'name': 'adam', 'betas': [0.9, 1.0], 'opts': {'eps': 1e-08}}"]);
  });

  describe('environment', () => {
    it('inherits, then adds the trial ids, typed params, unbuffered Python and the helper path', () => {
      const cmd = build({ params: { width: new Float(3), lr: 1e-5 }, env: env({ KEEP: 'me', PYTHONPATH: '/mine', PYTHONUNBUFFERED: '' }) });
      expect(cmd.env.KEEP).toBe('me');
      expect(cmd.env.SWEEPER_SWEEP_ID).toBe('sw1');
      expect(cmd.env.SWEEPER_TRIAL_ID).toBe('t1');
      expect(cmd.env.SWEEPER_PARAMS).toBe('{"width":3.0,"lr":1e-05}');
      expect(parseTypedJson(cmd.env.SWEEPER_PARAMS)).toEqual({ width: new Float(3), lr: 1e-5 });
      expect(cmd.env.PYTHONUNBUFFERED).toBe('1');
      expect(cmd.env.PYTHONPATH).toBe(`${PYTHON_HELPERS_DIR}${path.delimiter}/mine`);
    });

    it('points PYTHONPATH at the sweeper package', () => {
      expect(path.isAbsolute(PYTHON_HELPERS_DIR)).toBe(true);
      expect(existsSync(path.join(PYTHON_HELPERS_DIR, 'sweeper', '__init__.py'))).toBe(true);
      expect(build({ params: {} }).env.PYTHONPATH).toBe(PYTHON_HELPERS_DIR);
    });

    it('drops unset variables rather than passing "undefined"', () => {
      const cmd = build({ params: {}, env: { PATH: binDir, GONE: undefined } });
      expect('GONE' in cmd.env).toBe(false);
    });
  });
});

describe('pyJsonDumps', () => {
  it('matches Python json.dumps output', () => {
    expect(pyJsonDumps({ a: [], b: {}, c: -0.0, d: new Float(1e16), e: 123456789012, f: NaN, g: -Infinity })).toBe(
      '{"a": [], "b": {}, "c": -0.0, "d": 1e+16, "e": 123456789012, "f": NaN, "g": -Infinity}',
    );
    expect(pyJsonDumps('é\u007f\u0001"\\\n😀')).toBe('"\\u00e9\\u007f\\u0001\\"\\\\\\n\\ud83d\\ude00"');
  });
});
