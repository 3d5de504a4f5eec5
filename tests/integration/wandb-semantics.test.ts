/**
 * Sweeper's `wandb` module on its own, without servers: W&B's semantics as exact output, the
 * fallback rule (an installed wandb always wins), `sweeper python-path`, and the agent
 * environment W&B's agent gives a run (WANDB_* and the sweep parameter file).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON_HELPERS_DIR, buildCommand, removeCommandFiles, wandbConfigYaml, writeCommandFiles } from '../../agent/command.js';
import { Float, type Params } from '../../domain/values.js';
import { runCli } from '../fixtures/cli.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/wandb/', import.meta.url));
const INSTALLED = path.join(FIXTURES, 'installed');
const COMPAT_INIT = path.join(PYTHON_HELPERS_DIR, 'compat', 'wandb', '__init__.py');

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'sweeper-wandb-semantics-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** python3 with exactly this environment (plus PATH and HOME), so the machine's own settings do not leak in. */
function python(args: string[], env: NodeJS.ProcessEnv = {}, cwd = tmp) {
  const r = spawnSync('python3', args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmp, PYTHONNOUSERSITE: '1', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const whichWandb = (env: NodeJS.ProcessEnv) => python(['-c', 'import wandb; print(wandb.__file__)'], env);

const SEMANTICS = [
  '== before init',
  '  Error You must call wandb.init() before wandb.log()',
  '  Error You must call wandb.init() before wandb.config.lr',
  "  Error You must call wandb.init() before wandb.summary['x']",
  '  run None',
  "== config: defaults, then the sweep's values, locked",
  '  id sw-7 sweep sw name sw-7',
  "  config {'lr': 1e-05, 'epochs': 2, 'opt': {'name': 'adam', 'beta': 0.9}, 'flag': True, 'width': 3.0, 'layers': [1, 2]}",
  '  types float int',
  "wandb: WARNING Config item 'lr' was locked by 'sweep' (ignored update).",
  "wandb: WARNING Config item 'width' was locked by 'sweep' (ignored update).",
  "  after {'lr': 1e-05, 'epochs': 2, 'opt': {'name': 'adam', 'beta': 0.9}, 'flag': True, 'width': 3.0, 'layers': [1, 2], 'new': [1, 2], 'wd': 0.5}",
  '  ConfigError Attempted to change value of key "epochs" from 2 to 3 | If you really want to do this, pass allow_val_change=True to config.update()',
  "  epochs 3 keys ['lr', 'epochs', 'opt', 'flag', 'width', 'layers', 'new', 'wd'] in True",
  '  AttributeError for a missing key',
  '== step rules',
  'wandb: WARNING Tried to log to step 1 that is less than the current step 3. Steps must be monotonically increasing, so this data will be ignored. See https://wandb.me/define-metric to log data out of order.',
  '  step 12',
  '  record 0 {"a": 1}',
  '  record 1 {"a": 2, "b": 3}',
  '  record 2 {"c": 4, "d": 5}',
  '  record 4 {"f": 7}',
  '  record 10 {"g": 8}',
  '== values: nested names, numbers only',
  '  record 12 {"big": 100000000000000000000, "h": 9, "inf": "-Infinity", "n.x": 1, "n.y.z": 2.5, "nan": "NaN"}',
  '== define_metric summaries',
  "  m_min {'min': nan} m_all {'min': 1, 'max': 8, 'mean': 4.0, 'first': 3, 'last': 8}",
  "  m_best {'best': 8} m_copy oops False",
  '  Error Unhandled define_metric() arg: summary op: median',
  '  record 13 {"m_all": 3, "m_best": 3, "m_copy": 3, "m_min": 3, "m_none": 3}',
  '  record 14 {"m_all": 1, "m_best": 1, "m_copy": 1, "m_min": 1, "m_none": 1}',
  '  record 15 {"m_all": 8, "m_best": 8, "m_copy": 8, "m_min": 8, "m_none": 8}',
  '  record 17 {"epoch": 4}',
  '  record 18 {"epoch": 4, "train/loss": 0.5}',
  '  record 19 {"m_min": "NaN"}',
  '== summary writes are reported at the current step',
  "  test {'acc': 0.5, 'tag': 'x', 'loss': 2} final 1",
  '  record 20 {"best": 0.125}',
  '  record 20 {"test.acc": 0.5}',
  '  record 20 {"test.loss": 2}',
  '  record 20 {"final": 1}',
  '== argument checks',
  '  ValueError wandb.log must be passed a dictionary',
  '  ValueError Key values passed to `wandb.log` must be strings.',
  "  TypeError step must be an int, got 'x'",
  '== reinit and finish',
  '  same run True',
  '  run after finish None',
  'wandb: WARNING Run (sw-7) is finished. The call to `log` will be ignored.',
  "  summary file keys ['a', 'b', 'best', 'big', 'c', 'd', 'epoch', 'f', 'final', 'g', 'h', 'inf', 'list', 'm_all', 'm_best', 'm_copy', 'm_min', 'n', 'nan', 'none', 's', 't', 'test', 'train/loss']",
  '== a context-managed run that raises',
  '  exit code 1 run None',
  '  record 0 {"v": 1}',
  '== artifacts kept locally',
  '  versions model:v0 model:v1',
  "   model:latest -> v1 weights v1 {} ['latest']",
  "   model:best -> v0 weights v0 {'acc': 0.5} ['best']",
  "   someone/proj/model:v1 -> v1 weights v1 {} ['latest']",
  '  missing artifact: wandb.Error',
  '== import paths',
  '  Run True errors True',
  '  generate_id 8 True',
  '  no-ops None None [] True',
].join('\n');

describe("Sweeper's wandb module", () => {
  it("has W&B's semantics: pre-init errors, config locking, step rules, summaries, reinit, artifacts, import paths", () => {
    const r = python([path.join(FIXTURES, 'semantics.py')], { PYTHONPATH: PYTHON_HELPERS_DIR, SWEEPER_WANDB: 'compat' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(SEMANTICS + '\n');
  });
});

describe('the fallback rule', () => {
  it('is what `import wandb` finds when no wandb is installed, placed at the end of sys.path', () => {
    const r = python(['-c', 'import sys, wandb; print(wandb.__file__); print(sys.path[-1])'], { PYTHONPATH: PYTHON_HELPERS_DIR });
    if (whichWandb({}).code === 0) return; // a real wandb is installed on this machine: covered below
    expect(r.stdout).toBe(`${COMPAT_INIT}\n${path.join(PYTHON_HELPERS_DIR, 'compat')}\n`);
  });

  it('loses to a wandb installed on PYTHONPATH, even one listed after Sweeper\'s folder', () => {
    expect(whichWandb({ PYTHONPATH: `${PYTHON_HELPERS_DIR}${path.delimiter}${INSTALLED}` }).stdout).toBe(path.join(INSTALLED, 'wandb', '__init__.py') + '\n');
  });

  it('loses to a wandb installed in a site-packages folder (the user site), which comes after PYTHONPATH', () => {
    const userBase = path.join(tmp, 'userbase');
    const site = python(['-c', 'import site; print(site.getusersitepackages())'], { PYTHONUSERBASE: userBase }).stdout.trim();
    mkdirSync(site, { recursive: true });
    cpSync(path.join(INSTALLED, 'wandb'), path.join(site, 'wandb'), { recursive: true });
    const env = { PYTHONUSERBASE: userBase, PYTHONNOUSERSITE: '', PYTHONPATH: PYTHON_HELPERS_DIR };
    expect(whichWandb(env).stdout).toBe(path.join(site, 'wandb', '__init__.py') + '\n');
    // Asked for explicitly, Sweeper's module wins; SWEEPER_WANDB=off leaves only what is installed.
    expect(whichWandb({ ...env, SWEEPER_WANDB: 'compat' }).stdout).toBe(COMPAT_INIT + '\n');
    expect(whichWandb({ ...env, SWEEPER_WANDB: 'off' }).stdout).toBe(path.join(site, 'wandb', '__init__.py') + '\n');
    rmSync(userBase, { recursive: true, force: true });
  });

  it('SWEEPER_WANDB=off turns the fallback off', () => {
    const r = whichWandb({ PYTHONPATH: PYTHON_HELPERS_DIR, SWEEPER_WANDB: 'off' });
    if (whichWandb({}).code === 0) return;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ModuleNotFoundError: No module named 'wandb'");
  });

  it('chains to the sitecustomize it shadows, once, however often its folder is listed', () => {
    const other = path.join(tmp, 'other-site');
    mkdirSync(other, { recursive: true });
    writeFileSync(path.join(other, 'sitecustomize.py'), 'print("other sitecustomize ran")\n');
    const pp = [PYTHON_HELPERS_DIR, PYTHON_HELPERS_DIR, other].join(path.delimiter);
    const r = python(['-c', 'import sys, sitecustomize; print(sitecustomize.__file__); print(sum(p.endswith("compat") for p in sys.path))'], { PYTHONPATH: pp });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`other sitecustomize ran\n${path.join(other, 'sitecustomize.py')}\n1\n`);
  });
});

describe('sweeper python-path', () => {
  it("prints the folder of Sweeper's Python modules; with it on PYTHONPATH a notebook-style script runs by hand", async () => {
    const r = await runCli(['python-path']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(PYTHON_HELPERS_DIR + '\n');
    const dir = r.stdout.trim();
    expect(existsSync(path.join(dir, 'sweeper', '__init__.py'))).toBe(true);
    const script = [
      'import sweeper, wandb',
      'run = wandb.init(project="notebook", config={"lr": 0.1})',
      'for i in range(3): wandb.log({"loss": run.config.lr / (i + 1)})',
      'wandb.finish()',
      'print("ok", run.id == run.name, len(run.id), sorted(dict(run.summary)))',
    ].join('\n');
    const wandbDir = path.join(tmp, 'by-hand');
    const p = python(['-c', script], { PYTHONPATH: dir, SWEEPER_WANDB: 'compat', WANDB_DIR: wandbDir });
    expect(p.code, p.stderr).toBe(0);
    // No sweep, so nothing is locked or ignored; no agent, so nothing is printed as metrics.
    expect(p.stdout).toBe("ok True 8 ['loss']\n");
    expect(p.stderr).toMatch(/^wandb: Sweeper's wandb compatibility module \(SWEEPER_WANDB=compat\): run [a-z0-9]{8}, files in /);
  });
});

describe("W&B's agent environment (buildCommand)", () => {
  const cwd = path.join(tmpdir(), 'sweeper-wandb-env-cwd');
  const build = (params: Params, env: NodeJS.ProcessEnv = {}) =>
    buildCommand({ command: ['x'], params, cwd, sweepId: 'sw1', trialId: 'sw1-3', env: { PATH: '/bin', ...env } });

  it('sets WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_DIR (the trial folder), offline mode and the parameter file path', () => {
    const cmd = build({ lr: 0.5 });
    expect(cmd.env.WANDB_SWEEP_ID).toBe('sw1');
    expect(cmd.env.WANDB_RUN_ID).toBe('sw1-3');
    expect(cmd.env.WANDB_DIR).toBe(cwd);
    expect(cmd.env.WANDB_MODE).toBe('offline');
    expect(cmd.env.WANDB_SWEEP_PARAM_PATH).toBe(path.join(cmd.wandbDir!, 'wandb', 'sweep-sw1', 'config-sw1-3.yaml'));
    expect(cmd.files).toEqual([]);
    writeCommandFiles(cmd);
    expect(readFileSync(cmd.env.WANDB_SWEEP_PARAM_PATH, 'utf8')).toBe('wandb_version: 1\n\nlr:\n  value: 0.5\n');
    removeCommandFiles(cmd);
    expect(existsSync(cmd.wandbDir!)).toBe(false);
  });

  it("keeps the user's WANDB_DIR and mode, and turns nothing on when wandb is disabled", () => {
    expect(build({}, { WANDB_DIR: '/data/wandb' }).env.WANDB_DIR).toBe('/data/wandb');
    expect(build({}, { WANDB_MODE: 'dryrun' }).env).toMatchObject({ WANDB_MODE: 'dryrun', WANDB_SWEEP_ID: 'sw1' });
    // Online, a real wandb would try to join a W&B sweep of this id, which does not exist.
    const online = build({}, { WANDB_MODE: 'online' }).env;
    expect(online.WANDB_MODE).toBe('online');
    expect(online.WANDB_SWEEP_ID).toBeUndefined();
    expect(online.WANDB_RUN_ID).toBe('sw1-3');
    expect(build({}, { WANDB_DISABLED: 'true' }).env.WANDB_MODE).toBeUndefined();
    expect(build({}, { WANDB_RUN_ID: 'stale', WANDB_SWEEP_ID: 'other' }).env).toMatchObject({ WANDB_RUN_ID: 'sw1-3', WANDB_SWEEP_ID: 'sw1' });
  });

  it('under wandb.agent (SWEEPER_RELAY_SOCKET set), every trial runs the relay instead of the sweep\'s command', () => {
    const cmd = buildCommand({
      command: ['${env}', '${interpreter}', '${program}', '${args}'],
      params: { lr: 0.1 },
      cwd,
      sweepId: 'sw1',
      trialId: 'sw1-3',
      env: { PATH: '/bin', SWEEPER_RELAY_SOCKET: '/tmp/x/relay.sock', SWEEPER_RELAY_PYTHON: '/opt/py/bin/python3' },
    });
    expect(cmd.argv).toEqual(['/opt/py/bin/python3', path.join(PYTHON_HELPERS_DIR, 'sweeper', '_relay.py')]);
    expect(cmd.env.SWEEPER_RELAY_SOCKET).toBe('/tmp/x/relay.sock');
  });

  const TRICKY: Params = {
    lr: 1e-5,
    width: new Float(3),
    big: new Float(1e16),
    epochs: 10,
    flag: true,
    none: null,
    name: 'adam w',
    yes: 'yes',
    num: '1.5',
    empty: '',
    quote: "it's",
    colon: 'a: b',
    multi: 'line one\nline two',
    tab: 'a\tb',
    uni: 'é 😀',
    long: 'word '.repeat(30).trim(),
    layers: [1, [2, 3], { k: 'v' }],
    opt: { name: 'sgd', betas: [0.9, 0.999], nested: { deep: {} }, empty: [] },
    nan: NaN,
    inf: -Infinity,
  };

  it('writes the parameter file as wandb agent does: PyYAML block style, byte for byte', () => {
    expect(wandbConfigYaml({})).toBe('wandb_version: 1');
    expect(wandbConfigYaml({ lr: 1e-5, width: new Float(3), flag: true, none: null, yes: 'yes', colon: 'a: b', layers: [1, [2, 3]] })).toBe(
      [
        'wandb_version: 1',
        '',
        'lr:',
        '  value: 1.0e-05',
        'width:',
        '  value: 3.0',
        'flag:',
        '  value: true',
        'none:',
        '  value: null',
        // A key YAML 1.1 would read as a bool is quoted, as its value is.
        "'yes':",
        "  value: 'yes'",
        'colon:',
        "  value: 'a: b'",
        'layers:',
        '  value:',
        '  - 1',
        '  - - 2',
        '    - 3',
        '',
      ].join('\n'),
    );
  });

  it('matches PyYAML itself on tricky values (where PyYAML is installed)', () => {
    const probe = python(['-c', 'import yaml']);
    if (probe.code !== 0) return;
    const cmd = build(TRICKY);
    const script = [
      'import json, os, sys, yaml',
      'params = json.loads(os.environ["SWEEPER_PARAMS"])',
      's = b"wandb_version: 1"',
      's += b"\\n\\n" + yaml.dump({k: {"value": v} for k, v in params.items()}, Dumper=yaml.SafeDumper, default_flow_style=False, allow_unicode=True, encoding="utf-8", sort_keys=False)',
      'sys.stdout.buffer.write(s)',
    ].join('\n');
    const r = python(['-c', script], { SWEEPER_PARAMS: cmd.env.SWEEPER_PARAMS });
    expect(r.stderr).toBe('');
    expect(wandbConfigYaml(TRICKY)).toBe(r.stdout);
  });
});
