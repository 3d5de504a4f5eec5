/**
 * `sweeper local` and `sweeper open`: a sweep's results outlive the `local` that ran it. Real
 * processes throughout: the CLI, its nats-server, agents and trial programs. `local` ends with
 * the command that serves its data folder again; a sweep where every trial failed exits 3 and
 * ranks none of them; `sweeper open DIR` serves the finished sweep to `ls`, `watch` and `logs`
 * (and the dashboard) with the token `local` used, refuses what is not a data folder and a
 * folder whose `local` still runs, and leaves no process behind on SIGTERM.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NATS_PID_FILE } from '../../common/nats-server.js';
import { isRunning } from '../../common/pid-file.js';
import { collect, runCli, spawnCli, type CliResult } from '../fixtures/cli.js';
import { TrackedProcesses } from '../fixtures/tracked.js';
import { until } from '../fixtures/wait.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'sweeper-local-'));

/** Every process the tests started, for afterAll: our children, and what the pid files named. */
const tracked = new TrackedProcesses();

afterAll(() => {
  tracked.killAll();
  rmSync(work, { recursive: true, force: true });
});

function spawnTracked(args: string[], opts: { cwd?: string } = {}): ChildProcess {
  return tracked.child(spawnCli(args, opts));
}

/** A program that logs a value and then fails, so a failed trial does have a value to rank. */
const DIVERGE_DIR = join(work, 'diverge');
mkdirSync(DIVERGE_DIR);
writeFileSync(
  join(DIVERGE_DIR, 'diverge.js'),
  [
    "const x = Number((process.argv.find((a) => a.startsWith('--x=')) ?? '--x=0').slice(4));",
    'console.log(`loss=${x / 10}`);',
    "console.error('RuntimeError: loss diverged');",
    'process.exit(1);',
    '',
  ].join('\n'),
);
writeFileSync(join(DIVERGE_DIR, 'sweep.yaml'), 'method: grid\nmetric:\n  name: loss\nprogram: diverge.js\nparameters:\n  x:\n    values: [1, 2, 3]\n');

/** A trial that runs until the test writes `go` into its folder. */
const HOLD_DIR = join(work, 'hold');
mkdirSync(HOLD_DIR);
writeFileSync(
  join(HOLD_DIR, 'hold.cjs'),
  [
    "const { existsSync, writeFileSync } = require('node:fs');",
    "writeFileSync(__dirname + '/started', String(process.pid));",
    "const t = setInterval(() => { if (existsSync(__dirname + '/go')) { clearInterval(t); console.log('loss=1'); } }, 20);",
    '',
  ].join('\n'),
);
writeFileSync(join(HOLD_DIR, 'sweep.yaml'), 'method: grid\nmetric:\n  name: loss\nprogram: hold.cjs\nparameters:\n  x:\n    value: 1\n');

const REOPEN = (dir: string) => `sweeper open ${dir}`;

interface Opened {
  child: ChildProcess;
  done: Promise<CliResult>;
  controller: string;
  token: string;
  stdout: string;
}

/** `sweeper open DIR` as a child process, once it says where it serves. */
async function open(dir: string): Promise<Opened> {
  const child = spawnTracked(['open', dir]);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = collect(child, 120_000);
  const m = await until(`'sweeper open ${dir}' to be ready`, () => {
    if (child.exitCode !== null) throw new Error(`sweeper open exited (${child.exitCode}):\n${stdout}\n${stderr}`);
    if (!stdout.includes('Ctrl-C stops serving it.')) return undefined;
    return /export SWEEPER_CONTROLLER=(\S+) SWEEPER_TOKEN=(\S+)/.exec(stdout) ?? undefined;
  });
  return { child, done, controller: m[1], token: m[2], stdout };
}

describe('sweeper local', () => {
  it('ends with the command that reopens its data folder, and keeps its API token there (0600)', async () => {
    const data = join(work, 'grid-data');
    const r = await runCli(['local', `${SWEEPS}grid.yaml`, '--agents', '2', '--data', data], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('best 5 trials by loss');
    expect(r.stdout.trimEnd().split('\n').at(-1)).toContain(REOPEN(data));
    const token = join(data, 'api-token');
    expect(statSync(token).mode & 0o777).toBe(0o600);
    // The token of the run's dashboard link is the one kept for `sweeper open`.
    const link = /dashboard: \S+\?token=(\S+)/.exec(r.stderr);
    expect(link?.[1]).toBe(readFileSync(token, 'utf8').trim());
    // Its nats-server is gone with it, and so are the pid file and the data folder's lock.
    expect(existsSync(join(data, 'nats', NATS_PID_FILE))).toBe(false);
    expect(existsSync(join(data, 'controller.lock'))).toBe(false);
  });

  it('exits 3 when every trial failed, and lists them as failed, none as best, though they logged values', async () => {
    const data = join(work, 'diverge-data');
    const r = await runCli(['local', join(DIVERGE_DIR, 'sweep.yaml'), '--agents', '1', '--data', data], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toContain('3 failed (trials 1, 2, 3): exit code 1: RuntimeError: loss diverged');
    expect(r.stdout).not.toMatch(/best \d* ?trials? by/);
    expect(r.stdout).toContain('no trial logged loss without failing');
    // The live table shows their values, but ranks none of them.
    expect(r.stdout).toMatch(/-1\s+✗ failed\s+0\.1/);
    expect(r.stdout).not.toMatch(/^\s*\d+\s+\S+-\d+\s+✗ failed/m);
    expect(r.stderr).toContain('no trial finished');
    expect(r.stdout).toContain(REOPEN(data));
  });

  it('--json: exits 3 with no best trial and every failed one unranked', async () => {
    const data = join(work, 'diverge-json');
    const r = await runCli(['local', join(DIVERGE_DIR, 'sweep.yaml'), '--agents', '1', '--json', '--data', data], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(3);
    const doc = JSON.parse(r.stdout);
    expect(doc.best).toBeNull();
    expect(doc.sweep).toMatchObject({ state: 'finished', finished_trials: 0, data_dir: data, reopen_command: REOPEN(data) });
    expect(doc.trials).toHaveLength(3);
    for (const t of doc.trials) expect(t).toMatchObject({ state: 'failed', rank: null });
    expect(doc.trials.map((t: { value: number }) => t.value).sort()).toEqual([0.1, 0.2, 0.3]);
    expect(r.stderr).toContain(`reopen the results with: ${REOPEN(data)}`);
  });

  it('exits 3 for fail-always.yaml, whose agent gives up on it', async () => {
    const data = join(work, 'fail-always');
    const r = await runCli(['local', `${SWEEPS}fail-always.yaml`, '--agents', '1', '--json', '--data', data], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(3);
    const doc = JSON.parse(r.stdout);
    expect(doc.best).toBeNull();
    expect(doc.trials.length).toBeGreaterThan(0);
    for (const t of doc.trials) expect(t).toMatchObject({ state: 'failed', rank: null, reason: 'exit code 3: ValueError: asked to fail' });
  });
});

describe('sweeper open', () => {
  it("serves a finished sweep to ls, watch, logs and the dashboard with local's token, and SIGTERM leaves nothing running", async () => {
    const data = join(work, 'diverge-data');
    expect(existsSync(join(data, 'api-token')), 'the local run above made this folder').toBe(true);
    const token = readFileSync(join(data, 'api-token'), 'utf8').trim();
    const o = await open(data);
    expect(o.token).toBe(token);
    const nats = tracked.natsRecord(data);
    expect(isRunning(nats)).toBe(true);
    const env = { SWEEPER_CONTROLLER: o.controller, SWEEPER_TOKEN: o.token };

    const ls = await runCli(['ls', '--json'], { env });
    expect(ls.code, ls.stderr).toBe(0);
    const sweeps = JSON.parse(ls.stdout) as { id: string; state: string }[];
    expect(sweeps).toHaveLength(1);
    const id = sweeps[0].id;
    expect(sweeps[0].state).toBe('finished');
    expect(o.stdout).toContain(`sweeper watch ${id}`);

    const watch = await runCli(['watch', id, '--once', '--json'], { env });
    expect(watch.code, watch.stderr).toBe(0);
    const detail = JSON.parse(watch.stdout) as { trials: { id: string; state: string }[] };
    expect(detail.trials.map((t) => t.state)).toEqual(['failed', 'failed', 'failed']);

    const logs = await runCli(['logs', `${id}-2`], { env });
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain(`trial ${id}-2: failed`);
    expect(logs.stdout).toContain('loss=0.2');
    expect(logs.stdout).toContain('RuntimeError: loss diverged');

    // Without the token, nothing.
    const anonymous = await runCli(['ls'], { env: { SWEEPER_CONTROLLER: o.controller, SWEEPER_TOKEN: '' } });
    expect(anonymous.code).not.toBe(0);

    const link = /dashboard: (\S+)\?token=(\S+)/.exec(o.stdout);
    expect(link?.[1]).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/sweeps/${id}$`));
    expect(link?.[2]).toBe(token);
    const page = await fetch(link![1], { headers: { authorization: `Bearer ${token}` } });
    expect(page.status).toBe(200);

    // A second one is refused: the first one's NATS is left alone.
    const second = await runCli(['open', data]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`data folder ${data} is in use by sweeper open (pid ${o.child.pid})`);
    expect(isRunning(nats)).toBe(true);

    o.child.kill('SIGTERM');
    const r = await o.done;
    expect(r.code, r.stderr).toBe(0);
    expect(isRunning(nats)).toBe(false);
    for (const rec of tracked.remembered().slice(-2)) expect(isRunning(rec)).toBe(false);
    expect(existsSync(join(data, 'nats', NATS_PID_FILE))).toBe(false);
    expect(existsSync(join(data, 'controller.lock'))).toBe(false);
  });

  it('refuses, with exit code 2, a folder that is not a Sweeper data folder', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty);
    const notData = await runCli(['open', empty]);
    expect(notData.code).toBe(2);
    expect(notData.stderr).toContain(`${empty} is not a Sweeper data folder`);
    expect(existsSync(join(empty, 'nats'))).toBe(false);

    const missing = await runCli(['open', join(work, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');

    const file = join(work, 'a-file');
    writeFileSync(file, 'x');
    const notFolder = await runCli(['open', file]);
    expect(notFolder.code).toBe(2);
    expect(notFolder.stderr).toContain('is not a folder');
  });

  it('says so, and leaves it running, when the folder is a sweeper local that has not finished', async () => {
    const data = join(work, 'hold-data');
    const local = spawnTracked(['local', join(HOLD_DIR, 'sweep.yaml'), '--agents', '1', '--json', '--data', data]);
    const done = collect(local, 120_000);
    await until('the held trial to start', () => (existsSync(join(HOLD_DIR, 'started')) ? true : undefined));
    const nats = tracked.natsRecord(data);

    const refused = await runCli(['open', data]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`data folder ${data} is in use by sweeper local (pid ${local.pid})`);
    expect(refused.stderr).toContain('the sweep is still running there');
    expect(isRunning(nats)).toBe(true);

    writeFileSync(join(HOLD_DIR, 'go'), '');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.best).toMatchObject({ state: 'finished', rank: 1, value: 1 });
    expect(isRunning(nats)).toBe(false);
  });
});
