/**
 * W&B sweep scripts, unmodified, under real Sweeper agents: a real nats-server, the controller's
 * real gRPC server, agents as CLI child processes, trials as real Python processes that
 * `import wandb` and find Sweeper's compatibility module (the real package is not installed).
 * What each script logged is checked row for row against what the controller stored.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SweeperClient } from '../../common/api-client.js';
import type { ApiTrial, ApiTrialDetail } from '../../common/api-types.js';
import { parseTypedJson } from '../../domain/values.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { PYTHON_HELPERS_DIR } from '../../agent/command.js';
import { CLI_ENTRY, collect, spawnCli, TEST_CONTROLLER_TIMEOUT_S, TEST_SPOOL_DIR } from '../fixtures/cli.js';
import { startStack, waitSettled, type TestStack } from '../fixtures/stack.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/wandb/', import.meta.url));

let stack: TestStack;
let controller: ControllerHandle;
let client: SweeperClient;
/** WANDB_DIR of every agent here: the runs' folders go to a temp folder, not the fixtures. */
let wandbDir: string;
/** Only where a real wandb is installed on this machine: ask for Sweeper's module explicitly. */
let compatEnv: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  stack = await startStack();
  ({ controller, client } = stack);
  wandbDir = mkdtempSync(path.join(tmpdir(), 'sweeper-wandb-test-'));
  const probe = spawnSync('python3', ['-c', 'import importlib.util, sys; sys.exit(importlib.util.find_spec("wandb") is None)'], {
    env: { PATH: process.env.PATH ?? '' },
  });
  if (probe.status === 0) compatEnv = { SWEEPER_WANDB: 'compat' };
});

afterAll(async () => {
  await stack?.stop();
  if (wandbDir) rmSync(wandbDir, { recursive: true, force: true });
});

async function createSweep(file: string): Promise<string> {
  return (await client.createSweep(readFileSync(path.join(FIXTURES, file), 'utf8'), file)).id;
}

async function runAgent(sweepId: string, env: NodeJS.ProcessEnv = {}) {
  const r = await collect(
    spawnCli(['agent', sweepId, '--controller', controller.address, '--max-initial-failures', '0'], {
      cwd: FIXTURES,
      env: { WANDB_DIR: wandbDir, ...compatEnv, ...env },
    }),
  );
  expect(r.code, r.stderr).toBe(0);
  return waitSettled(client, sweepId);
}

const params = (t: ApiTrial) => parseTypedJson(t.paramsJson) as Record<string, unknown>;
const metric = (d: ApiTrialDetail, name: string) => d.metrics.find((m) => m.name === name);
// The agent's own samples (system/cpu.percent, ...) land whenever a sampling tick falls while a trial runs.
const names = (d: ApiTrialDetail) => d.metrics.map((m) => m.name).filter((n) => !n.startsWith('system/')).sort();

/** The JSON after `TAG ` on the trial's stdout, read with float typing kept. */
function printed(d: ApiTrialDetail, tag: string): unknown {
  const line = d.stdoutTail.find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`no ${tag} line in stdout:\n${d.stdoutTail.join('\n')}\nstderr:\n${d.stderrTail.join('\n')}`);
  return parseTypedJson(line.slice(tag.length + 1));
}

describe('W&B sweep scripts, unmodified, under Sweeper agents', () => {
  it("the tutorial shape: wandb.config holds the proposed parameters over the defaults, every epoch's row reaches the controller", async () => {
    const id = await createSweep('tutorial.yaml');
    const d = await runAgent(id);
    expect(d.trials.map((t) => t.state)).toEqual(['finished', 'finished', 'finished', 'finished']);
    for (const t of d.trials) {
      const p = params(t);
      const detail = await client.getTrial(t.id);
      // Exactly the proposed values (their types too: lr a float, batch_size an int) over the defaults.
      const config = printed(detail, 'CONFIG') as Record<string, unknown>;
      expect(config).toEqual({ lr: p.lr, batch_size: p.batch_size, epochs: 4, optimizer: 'adam' });
      expect(Number.isInteger(config.batch_size)).toBe(true);
      expect(printed(detail, 'RUN')).toMatchObject({ id: t.id, name: t.id, sweep_id: id });
      // Row for row: steps 0..3, the loss the script computed from its config.
      const lr = p.lr as number;
      const bs = p.batch_size as number;
      expect(detail.metricSteps).toEqual([0, 1, 2, 3]);
      expect(detail.metricValues).toEqual([0, 1, 2, 3].map((e) => (lr * 100) / (e + 1) + bs / 1000));
      // The epoch counter is a metric too; the optimizer's name (a string) is not.
      expect(names(detail)).toEqual(['epoch', 'loss']);
      expect(metric(detail, 'epoch')).toMatchObject({ count: 4, min: 0, max: 3, last: 3 });
      // project and entity are ignored in a sweep, with W&B's warnings.
      expect(detail.stderrTail).toContain('wandb: WARNING Ignored wandb.init() arg project when running a sweep');
      expect(detail.stderrTail).toContain('wandb: WARNING Ignored wandb.init() arg entity when running a sweep');
    }
    const best = d.trials.find((t) => t.rank === 1)!;
    expect(params(best)).toMatchObject({ lr: 0.001, batch_size: 16 });
  });

  it('defaults plus locked keys: swept keys ignore later updates with W&B warning, nested defaults are merged', async () => {
    const id = await createSweep('locked.yaml');
    const d = await runAgent(id);
    const [t] = d.trials;
    expect(t.state).toBe('finished');
    const detail = await client.getTrial(t.id);
    expect(printed(detail, 'CONFIG')).toEqual({
      lr: 0.25,
      dropout: 0.2,
      opt: { name: 'adam', momentum: 0.9 },
      extra: [1, 2],
      wd: 0.01,
    });
    expect(detail.stdoutTail).toContain('KEYS ["lr", "dropout", "opt", "extra", "wd"] ITEMS 5 HAS_WANDB True');
    expect(detail.stdoutTail).toContain('ATTR adam 0.25 dflt');
    expect(detail.stdoutTail).toContain('REFUSED Attempted to change value of key "dropout" from 0.2 to 0.3');
    const warnings = detail.stderrTail.filter((l) => l.includes('was locked by'));
    expect(warnings).toEqual([
      "wandb: WARNING Config item 'lr' was locked by 'sweep' (ignored update).",
      "wandb: WARNING Config item 'opt' was locked by 'sweep' (ignored update).",
      "wandb: WARNING Config item 'lr' was locked by 'sweep' (ignored update).",
    ]);
    expect(detail.metricValues).toEqual([2.5]);
  });

  it('commit=False rows and explicit steps: the controller stores the rows W&B would, at their steps', async () => {
    const id = await createSweep('steps.yaml');
    const d = await runAgent(id);
    const [t] = d.trials;
    expect(t.state).toBe('finished');
    const detail = await client.getTrial(t.id);
    // Rows: 0 {a 1, b 2}, 5 {a 3, b 4}, 7 {a 5, b 7}, 8 {a 8, nested}, 9 {a 9} committed at exit.
    expect(detail.metricSteps).toEqual([0, 5, 7, 8, 9]);
    expect(detail.metricValues).toEqual([1, 3, 5, 8, 9]);
    expect(metric(detail, 'b')).toMatchObject({ count: 3, min: 2, max: 7, last: 7 });
    expect(metric(detail, 'nested.x')).toMatchObject({ count: 1, last: 1 });
    expect(metric(detail, 'nested.y.z')).toMatchObject({ count: 1, last: 2 });
    expect(names(detail)).toEqual(['a', 'b', 'nested.x', 'nested.y.z']);
    expect(t.lastStep).toBe(9);
    expect(detail.stdoutTail).toContain('STEP 9');
    expect(detail.stderrTail).toContain(
      'wandb: WARNING Tried to log to step 6 that is less than the current step 7. Steps must be monotonically increasing, so this data will be ignored. See https://wandb.me/define-metric to log data out of order.',
    );
  });

  it("summary writes reach the controller as the metric's value; define_metric summaries stay in the run's summary", async () => {
    const id = await createSweep('summary.yaml');
    const d = await runAgent(id);
    const [t] = d.trials;
    expect(t.state).toBe('finished');
    expect(t.bestValue).toBe(0.4);
    const detail = await client.getTrial(t.id);
    expect(metric(detail, 'val_loss')).toMatchObject({ count: 3, min: 0.4, last: 0.6 });
    expect(metric(detail, 'best_val_loss')).toMatchObject({ count: 1, last: 0.4 });
    // Written after the three rows: at the run's current step, 3.
    expect(detail.metricSteps).toEqual([3]);
    expect(metric(detail, 'test.acc')).toMatchObject({ count: 1, last: 0.875 });
    expect(metric(detail, 'test.loss')).toMatchObject({ count: 1, last: 0.25 });
    expect(names(detail)).toEqual(['acc', 'best_val_loss', 'test.acc', 'test.loss', 'val_loss']);
    const expected = {
      val_loss: { min: 0.4 },
      acc: { max: 0.6, mean: (0.1 + 0.6 + 0.4) / 3 },
      best_val_loss: 0.4,
      test: { acc: 0.875, loss: 0.25 },
      note: 'done',
    };
    expect(printed(detail, 'SUMMARY')).toEqual(expected);
    const runDir = printed(detail, 'SUMMARY_DIR') as string;
    expect(JSON.parse(readFileSync(path.join(runDir, 'wandb-summary.json'), 'utf8'))).toEqual(expected);
  });

  it("media and tables in the same log call: numbers reach the controller, media are kept in the run's folder", async () => {
    const id = await createSweep('media.yaml');
    const d = await runAgent(id);
    const [t] = d.trials;
    expect(t.state, (await client.getTrial(t.id)).stderrTail.join('\n')).toBe('finished');
    const detail = await client.getTrial(t.id);
    expect(names(detail)).toEqual(['loss']);
    expect(detail.metricSteps).toEqual([0, 1]);
    expect(detail.metricValues).toEqual([1, 0.5]);
    const dir = printed(detail, 'DIR') as string;
    const media = (sub: string) => readdirSync(path.join(dir, 'media', sub)).sort();
    // Numbered in the order they were kept: per row, the table, the image, the html, the chart, the list.
    expect(media('table')).toEqual(['chart_0_3.table.json', 'chart_1_9.table.json', 'examples_0_0.table.json', 'examples_1_6.table.json']);
    expect(JSON.parse(readFileSync(path.join(dir, 'media', 'table', 'examples_1_6.table.json'), 'utf8'))).toEqual({
      columns: ['epoch', 'pred'],
      data: [
        [0, 'cat'],
        [1, 'dog'],
      ],
    });
    expect(media('images')).toEqual(['images_0_4.png', 'images_0_5.png', 'images_1_10.png', 'images_1_11.png', 'sample_0_1.png', 'sample_1_7.png']);
    expect(readFileSync(path.join(dir, 'media', 'images', 'sample_1_7.png'))).toEqual(readFileSync(path.join(dir, 'source.png')));
    expect(media('html')).toEqual(['page_0_2.html', 'page_1_8.html']);
    expect(readFileSync(path.join(dir, 'media', 'html', 'page_1_8.html'), 'utf8')).toBe('<b>epoch 1</b>');
    // The history file has one line per row, with references to the files (and the histogram's counts).
    const rows = readFileSync(path.join(dir, '..', 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r._step)).toEqual([0, 1]);
    expect(rows[1].sample).toEqual({ _type: 'image-file', path: 'media/images/sample_1_7.png', caption: 'epoch 1' });
    expect(rows[1].examples).toEqual({ _type: 'table-file', path: 'media/table/examples_1_6.table.json', ncols: 2, nrows: 2 });
    expect(rows[1].hist).toEqual({ _type: 'histogram', values: [1, 3], bins: [1, 2, 3] });
    expect(rows[1].sound).toEqual({ _type: 'Audio', kept: false });
  });

  it('a context-managed run finishes at the end of the block', async () => {
    const id = await createSweep('context.yaml');
    const d = await runAgent(id);
    expect(d.trials.map((t) => t.state)).toEqual(['finished', 'finished']);
    for (const t of d.trials) {
      const w = params(t).width as number;
      const detail = await client.getTrial(t.id);
      expect(detail.metricValues).toEqual([1, 2, 3].map((i) => (w * i) / 100));
      expect(detail.stdoutTail).toContain(`AFTER True ${(w * 3) / 100}`);
    }
    expect(params(d.trials.find((t) => t.rank === 1)!)).toEqual({ width: 4 });
  });

  it('hyperband stops a run that reports only through wandb.log', async () => {
    const id = await createSweep('hyperband.yaml');
    const d = await runAgent(id);
    const [good, bad] = [...d.trials].sort((a, b) => a.number - b.number);
    expect(good.state).toBe('finished');
    expect(good.bestValue).toBe(0.5);
    expect(bad.state).toBe('stopped');
    expect(bad.reason).toBe('hyperband: value 2 > threshold 0.5 at bracket 1');
    expect(bad.signal).toBe('SIGTERM');
    expect(bad.points).toBeGreaterThanOrEqual(1);
    expect(bad.points).toBeLessThan(2000);
    const detail = await client.getTrial(bad.id);
    // What it logged before the stop, at W&B's steps 0, 1, 2, ...
    expect(detail.metricSteps).toEqual(detail.metricSteps.map((_, i) => i));
    expect(new Set(detail.metricValues)).toEqual(new Set([2]));
  });

  it('a script that crashes fails the trial and keeps what it logged, the open row included', async () => {
    const id = await createSweep('crash.yaml');
    const d = await runAgent(id);
    const [t] = d.trials;
    expect(t.state).toBe('failed');
    expect(t.exitCode).toBe(1);
    const detail = await client.getTrial(t.id);
    expect(detail.metricSteps).toEqual([0, 1, 2]);
    expect(detail.metricValues).toEqual([1, 0.5, 0.25]);
    expect(detail.stderrTail.at(-1)).toBe('RuntimeError: diverged');
  });
});

describe("W&B's agent environment", () => {
  it('each trial gets WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_DIR, offline mode and its config-<run>.yaml', async () => {
    const id = await createSweep('agent_env.yaml');
    const d = await runAgent(id);
    const [t] = d.trials;
    expect(t.state).toBe('finished');
    const detail = await client.getTrial(t.id);
    expect(printed(detail, 'ENV')).toEqual({
      WANDB_SWEEP_ID: id,
      WANDB_RUN_ID: t.id,
      WANDB_DIR: wandbDir,
      WANDB_MODE: 'offline',
      SWEEPER_TRIAL_ID: t.id,
      SWEEPER_SWEEP_ID: id,
    });
    const file = printed(detail, 'PARAM_PATH') as string;
    expect(file.endsWith(path.join('wandb', `sweep-${id}`, `config-${t.id}.yaml`))).toBe(true);
    // Removed with the trial's other private files.
    expect(existsSync(file)).toBe(false);
    expect(printed(detail, 'PARAM_FILE')).toBe(
      [
        // PyYAML's block style, parameters in the order the trial's arguments have them.
        'wandb_version: 1',
        '',
        'layers:',
        '  value:',
        '  - 64',
        '  - 32',
        'lr:',
        '  value: 0.001',
        'note:',
        "  value: 'yes'",
        'opt:',
        '  value:',
        '    betas:',
        '    - 0.9',
        '    - 0.999',
        '    name: adam w',
        '',
      ].join('\n'),
    );
  });

  it('a mode the user chose is kept', async () => {
    const id = await createSweep('agent_env.yaml');
    const d = await runAgent(id, { WANDB_MODE: 'disabled' });
    const env = printed(await client.getTrial(d.trials[0].id), 'ENV') as Record<string, string>;
    expect(env.WANDB_MODE).toBe('disabled');
  });
});

describe('an installed wandb wins', () => {
  it("the installed package runs offline with the sweep's values, and its log calls still reach the controller", async () => {
    const id = await createSweep('real_wandb.yaml');
    // The stand-in for an installed wandb is on the user's PYTHONPATH, after Sweeper's folder.
    const d = await runAgent(id, { PYTHONPATH: path.join(FIXTURES, 'installed'), SWEEPER_WANDB: '' });
    const [t] = d.trials;
    expect(t.state).toBe('finished');
    const detail = await client.getTrial(t.id);
    expect(detail.stdoutTail).toContain(`WANDB_FILE ${path.join(FIXTURES, 'installed', 'wandb', '__init__.py')}`);
    // It read the sweep's value from WANDB_SWEEP_PARAM_PATH, as the real package does.
    expect(printed(detail, 'FAKE_WANDB')).toEqual({ mode: 'offline', run_id: t.id, config: { lr: 0.125, epochs: 3 } });
    expect(detail.stdoutTail).toContain('FAKE_ROWS 5');
    // Reported through the wrapped Run.log, with W&B's steps: 0, 1, 2, then {extra} at 3, {extra2} at 10.
    expect(detail.metricSteps).toEqual([0, 1, 2]);
    expect(detail.metricValues).toEqual([0.125, 0.0625, 0.125 / 3]);
    expect(metric(detail, 'extra')).toMatchObject({ count: 1, last: 1 });
    expect(metric(detail, 'extra2')).toMatchObject({ count: 1, last: 2 });
    expect(t.lastStep).toBe(10);
  });
});

describe('notebook style: wandb.sweep and wandb.agent(function=...) on the Sweeper controller', () => {
  /** The notebook script as a plain Python process, with the controller in the environment as `sweeper` commands take it. */
  function notebook(mode: string) {
    const child = spawn('python3', [path.join(FIXTURES, 'notebook.py'), mode], {
      cwd: wandbDir,
      env: {
        ...process.env,
        ...compatEnv,
        PYTHONPATH: PYTHON_HELPERS_DIR,
        WANDB_DIR: wandbDir,
        SWEEPER_CONTROLLER: controller.address,
        SWEEPER_CLI: `${process.execPath} ${CLI_ENTRY}`,
        SWEEPER_SPOOL_DIR: TEST_SPOOL_DIR,
        SWEEPER_CONTROLLER_TIMEOUT: String(TEST_CONTROLLER_TIMEOUT_S),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return collect(child, 120_000);
  }

  it('creates the sweep and runs train() in this process for count trials, each with its own config and rows', async () => {
    const r = await notebook('grid');
    expect(r.code, r.stderr).toBe(0);
    const sweepId = /^SWEEP (\S+)$/m.exec(r.stdout)![1];
    expect(r.stdout).toMatch(/^DONE None$/m);
    const d = await client.getSweep(sweepId);
    expect(d.sweep.method).toBe('grid');
    const done = d.trials.filter((t) => t.state === 'finished').sort((a, b) => a.number - b.number);
    expect(done).toHaveLength(2);
    for (const t of done) {
      const lr = params(t).lr as number;
      expect(r.stdout).toContain(`TRAINED ${t.id} {'epochs': 3, 'lr': ${lr}}`);
      const detail = await client.getTrial(t.id);
      expect(detail.metricSteps).toEqual([0, 1, 2]);
      expect(detail.metricValues).toEqual([lr, lr / 2, lr / 3]);
      expect(metric(detail, 'epoch')).toMatchObject({ count: 3, last: 2 });
    }
    expect(done.map((t) => params(t).lr)).toEqual([0.1, 0.01]);
  });

  it('early stopping interrupts train() as W&B does; the next trial runs in the same process', async () => {
    const r = await notebook('hyperband');
    expect(r.code, r.stderr).toBe(0);
    const sweepId = /^SWEEP (\S+)$/m.exec(r.stdout)![1];
    const d = await waitSettled(client, sweepId);
    const [good, bad] = [...d.trials].sort((a, b) => a.number - b.number);
    expect(good.state).toBe('finished');
    expect(bad.state).toBe('stopped');
    expect(bad.reason).toBe('hyperband: value 2 > threshold 0.5 at bracket 1');
    expect(bad.points).toBeLessThan(2000);
    expect(r.stderr).toContain(`wandb: Run ${bad.id} was stopped`);
    expect(r.stdout).toContain(`TRAINED ${good.id}`);
    expect(r.stdout).not.toContain(`TRAINED ${bad.id}`);
    expect(r.stdout).toMatch(/^DONE None$/m);
  });
});
