/**
 * The web dashboard in a real browser during a real sweep: a real nats-server, the controller
 * with its dashboard on a free loopback port, two agents as CLI child processes, and Debian's
 * chromium driven by playwright-core. Screenshots go to test-artifacts/dashboard/.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import type { NatsServerHandle } from '../../common/nats-server.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { startDashboard } from '../../controller/dashboard/server.js';
import { REPO_ROOT, spawnCli } from '../fixtures/cli.js';
import { startTestNats } from '../fixtures/nats.js';
import { Objective } from '../../domain/objective.js';

const CHROMIUM = process.env.SWEEPER_CHROMIUM ?? '/usr/bin/chromium';
const BROWSER_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'dashboard');

let nats: NatsServerHandle;
let controller: ControllerHandle;
let context: BrowserContext;
let profile: string;
const agents: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run 'apt-get install -y chromium' (.ci/run does), or set SWEEPER_CHROMIUM`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  nats = await startTestNats();
  controller = await startController({
    host: '127.0.0.1',
    port: 0,
    natsUrl: nats.url,
    dashboard: { host: '127.0.0.1', port: 0 },
    log: createLogger('test-controller', () => {}),
  });
  profile = mkdtempSync(join(tmpdir(), 'sweeper-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: BROWSER_FLAGS,
    viewport: { width: 1400, height: 1000 },
  });
});

afterAll(async () => {
  for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await controller?.stop();
  await nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

/** A page that fails the test on any script error or failed request. */
async function openPage(problems: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return page;
}

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready]', { timeout: 30_000 });
  expect(await page.getAttribute('body', 'data-ready')).toBe('1');
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
// The callbacks below run in the page; this project's types have no DOM, hence globalThis.
const visibleIds = (page: Page) => page.$$eval('tbody tr.row', (trs) => trs.map((tr) => tr.getAttribute('data-trial') ?? ''));
const dash = (page: Page) => page.evaluate(() => (globalThis as unknown as { __dash: { snapshots: number; updates: number } }).__dash);

describe('the dashboard during a real sweep', () => {
  it('shows trials arriving live, sorts, brushes, plots curves, and opens a trial', { timeout: 150_000 }, async () => {
    const url = controller.dashboardUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const text = readFileSync(join(SWEEPS, 'dash-random.yaml'), 'utf8');
    const sweep = await controller.service.createSweep(text, 'dash-random.yaml');
    const problems: string[] = [];
    const page = await openPage(problems);

    // ---- the sweeps list ------------------------------------------------------------------
    await page.goto(url);
    await ready(page);
    expect(await page.locator(`tr[data-sweep="${sweep.id}"]`).count()).toBe(1);
    expect(await page.locator(`tr[data-sweep="${sweep.id}"] .badge`).textContent()).toContain('running');
    await shot(page, '1-sweeps.png');

    // ---- rows appear live, with no reload ---------------------------------------------------
    await page.goto(`${url}sweeps/${sweep.id}`);
    await ready(page);
    expect(await visibleIds(page)).toEqual([]);
    for (let i = 1; i <= 2; i++) {
      agents.push(spawnCli(['agent', sweep.id, '--controller', controller.address, '--grace', '2', '--agent-id', `dash-${i}`], { cwd: SWEEPS }));
    }
    const counts = new Set<number>();
    await until('six ended trials', async () => {
      counts.add((await visibleIds(page)).length);
      return sweep.trials.filter((t) => t.state !== 'running').length >= 6;
    });
    await shot(page, '2-sweep-live.png');
    expect([...counts].filter((n) => n > 0).length, `row counts seen: ${[...counts]}`).toBeGreaterThanOrEqual(2);
    // Everything so far came over the one stream: one snapshot, then deltas.
    expect((await dash(page)).snapshots).toBe(1);
    expect((await dash(page)).updates).toBeGreaterThan(0);

    // Stopping the sweep stops the trials that are running: they must show as stopped. Stop
    // when every running trial has logged a few points, so their curves have something to show.
    const points = (id: string) => controller.service.metrics.get(id)?.rows ?? 0;
    await until('running trials with points', () => {
      const running = sweep.trials.filter((t) => t.state === 'running');
      return running.length > 0 && running.every((t) => points(t.id) >= 2);
    });
    await controller.service.stopSweep(sweep.id);
    await until('the sweep to settle', () => controller.service.isSettled(sweep));
    await page.waitForFunction(() => (globalThis as any).document.getElementById('live')?.textContent === 'sweep over', null, { timeout: 45_000 });
    const ids = await visibleIds(page);
    expect(ids.sort()).toEqual(sweep.trials.map((t) => t.id).sort());
    const stopped = sweep.trials.filter((t) => t.state === 'stopped').map((t) => t.id);
    expect(stopped.length).toBeGreaterThan(0);
    expect(await page.locator(`tr[data-trial="${stopped[0]}"] .badge`).textContent()).toBe('■ stopped');
    expect((await dash(page)).snapshots).toBe(1);

    // ---- curves: the best trials by default; a stopped trial drawn as stopped when selected ----
    await page.waitForSelector('#curves .u-legend .u-series[data-trial]');
    await page.click(`tr[data-trial="${stopped[0]}"] td:nth-child(3)`);
    // The stopped trial may already be among the default curves: wait for the selection's redraw.
    await page.waitForFunction(
      (id) => {
        const series = (globalThis as any).document.querySelectorAll('#curves .u-legend .u-series[data-trial]');
        return series.length === 1 && series[0].getAttribute('data-trial') === id && series[0].getAttribute('data-state') === 'stopped';
      },
      stopped[0],
      { timeout: 45_000 },
    );
    expect(await page.locator('#curves .u-legend .u-series[data-trial]').count()).toBe(1);
    expect(await page.locator(`#curves .u-legend .u-series[data-trial="${stopped[0]}"]`).textContent()).toContain('(stopped)');
    await page.click('#leaderboard button:has-text("clear selection")');
    await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#curves .u-legend .u-series[data-trial]').length > 1);

    // ---- importance: every searched parameter, x (which drives the loss) first ---------------
    await page.waitForSelector('#importance .imp-row');
    const importance = await page.$$eval('#importance .imp-row', (rows) => rows.map((r) => r.getAttribute('data-param')));
    expect(importance[0]).toBe('x');
    expect(importance.sort()).toEqual(['layers', 'lr', 'opt', 'x']);
    await shot(page, '3-sweep-settled.png');

    // ---- sorting ----------------------------------------------------------------------------
    const xKey = await page.$eval('#leaderboard th[title="x"]', (th) => th.getAttribute('data-key')!);
    const xColumn = (await page.$$eval('#leaderboard th', (ths) => ths.map((th) => th.getAttribute('data-key')))).indexOf(xKey) + 1;
    const xValues = () => page.$$eval(`tbody tr.row td:nth-child(${xColumn})`, (tds) => tds.map((td) => Number(td.textContent)));
    await page.click(`#leaderboard th[data-key="${xKey}"] button`);
    expect(await page.getAttribute(`#leaderboard th[data-key="${xKey}"]`, 'aria-sort')).toBe('ascending');
    await page.waitForFunction((col) => (globalThis as any).document.querySelectorAll(`tbody tr.row td:nth-child(${col})`).length > 0, xColumn);
    const up = await xValues();
    expect(up).toEqual([...up].sort((a, b) => a - b));
    await page.click(`#leaderboard th[data-key="${xKey}"] button`);
    expect(await page.getAttribute(`#leaderboard th[data-key="${xKey}"]`, 'aria-sort')).toBe('descending');
    // The rows are redrawn on the next frame: wait until they are.
    await page.waitForFunction(
      (col) => {
        const v = [...(globalThis as any).document.querySelectorAll(`tbody tr.row td:nth-child(${col})`)].map((td: any) => Number(td.textContent));
        return v.length > 1 && v.every((x, i) => i === 0 || v[i - 1] >= x);
      },
      xColumn,
      { timeout: 45_000 },
    );
    const down = await xValues();
    expect(down).toEqual([...up].reverse());
    // The metric column sorts best first on its first click.
    await page.click('#leaderboard th[data-key="value"] button');
    expect(await page.getAttribute('#leaderboard th[data-key="value"]', 'aria-sort')).toBe('ascending');

    // ---- brushing the parallel coordinates filters the leaderboard ---------------------------
    const canvas = page.locator('#parcoords canvas');
    // Sorting scrolled the page down to the leaderboard; the mouse works in the viewport.
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const axes = JSON.parse((await canvas.getAttribute('data-axes'))!) as Array<{ name: string; x: number; top: number; bottom: number }>;
    expect(axes.map((a) => a.name)).toEqual(['x', 'lr', 'opt', 'layers', 'loss']);
    const xAxis = axes[0];
    // The upper half of the x axis: the larger values of x.
    await page.mouse.move(box.x + xAxis.x, box.y + xAxis.top + 1);
    await page.mouse.down();
    await page.mouse.move(box.x + xAxis.x, box.y + (xAxis.top + xAxis.bottom) / 2, { steps: 6 });
    await page.mouse.up();
    await page.waitForSelector('#parcoords canvas:not([data-brushes="[]"])');
    const brushes = JSON.parse((await canvas.getAttribute('data-brushes'))!) as Array<{ name: string; from: number; to: number }>;
    expect(brushes).toHaveLength(1);
    expect(brushes[0].name).toBe('x');
    // The filtered rows are drawn on the next frame: wait until as many rows show as match.
    await page.waitForFunction(
      () => {
        const doc = (globalThis as any).document;
        const m = /^(\d+) of \d+ trials match the filters$/.exec(doc.querySelector('#board-count')?.textContent ?? '');
        return m !== null && doc.querySelectorAll('tbody tr.row').length === Number(m[1]);
      },
      undefined,
      { timeout: 45_000 },
    );
    const kept = await visibleIds(page);
    const xOf = new Map(sweep.trials.map((t) => [t.id, Number(t.params.x)]));
    const valued = sweep.trials.filter((t) => controller.service.metrics.best(t.id, new Objective('loss')) !== null);
    const expected = valued.filter((t) => xOf.get(t.id)! >= brushes[0].from && xOf.get(t.id)! <= brushes[0].to).map((t) => t.id);
    expect(kept.sort()).toEqual(expected.sort());
    expect(kept.length).toBeLessThan(sweep.trials.length);
    expect(await page.textContent('#board-count')).toBe(`${kept.length} of ${sweep.trials.length} trials match the filters`);
    await shot(page, '4-sweep-brushed.png');

    // ---- a trial page -----------------------------------------------------------------------
    const best = controller.service.leaderboard(sweep)[0];
    await page.click(`tr[data-trial="${best.id}"] a`);
    await page.waitForURL(`**/sweeps/${sweep.id}/trials/${best.id}`);
    await ready(page);
    const trial = controller.service.getTrial(best.id);
    expect(await page.textContent('#command-line')).toContain(`--x=${trial.argv.find((a) => a.startsWith('--x='))!.slice(4)}`);
    expect(await page.textContent('#command-line')).toContain('dash_train.js');
    expect(await page.locator('#history tbody tr').count()).toBe(trial.history.length);
    expect(await page.textContent('#stdout')).toContain('loss=');
    expect(await page.locator('#params th').allTextContents()).toEqual(['x', 'lr', 'opt', 'layers', 'epochs']);
    await page.waitForSelector('#curve .uplot');
    await shot(page, '5-trial.png');

    await page.goto(`${url}sweeps/${sweep.id}/trials/${stopped[0]}`);
    await ready(page);
    expect(await page.textContent('#reason')).toContain('Stop reason:');
    await shot(page, '6-trial-stopped.png');

    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows a running trial's output live on its page", { timeout: 90_000 }, async () => {
    const gates = mkdtempSync(join(tmpdir(), 'sweeper-gates-'));
    const problems: string[] = [];
    const page = await openPage(problems);
    try {
      const sweep = await controller.service.createSweep(readFileSync(join(SWEEPS, 'output-gate.yaml'), 'utf8'), 'output-gate.yaml');
      const trialId = `${sweep.id}-1`;
      const agent = spawnCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS, env: { OUTPUT_GATE_DIR: gates } });
      agents.push(agent);
      const agentExited = new Promise((r) => agent.once('exit', r));
      await until('the trial running', () => sweep.trials[0]?.state === 'running');
      await page.goto(`${controller.dashboardUrl}sweeps/${sweep.id}/trials/${trialId}`);
      await ready(page);
      // The trial waits on its gate: whatever shows now was printed while it runs.
      await page.waitForFunction(() => (globalThis as any).document.getElementById('stderr')?.textContent.includes('waiting on stderr'), null, { timeout: 45_000 });
      expect(await page.textContent('#stdout')).toBe('before the gate');
      expect(await page.getAttribute('#output .outputs', 'data-live')).toBe('1');
      expect(controller.service.getTrial(trialId).state).toBe('running');
      await shot(page, '7-trial-live.png');
      writeFileSync(join(gates, `${trialId}.go`), '');
      await page.waitForSelector('#output .outputs[data-live="0"]', { timeout: 45_000 });
      expect(await page.textContent('#stdout')).toBe('before the gate\nafter the gate\nloss=0.5');
      await agentExited;
      expect(problems).toEqual([]);
    } finally {
      await page.close();
      rmSync(gates, { recursive: true, force: true });
    }
  });

  it('answers unknown sweeps and trials with a readable error', async () => {
    const problems: string[] = [];
    const page = await openPage(problems);
    await page.goto(`${controller.dashboardUrl}sweeps/nosuchsweep`);
    await page.waitForSelector('body[data-ready="error"]');
    expect(await page.textContent('.error')).toContain("unknown sweep 'nosuchsweep'");
    const res = await fetch(`${controller.dashboardUrl}api/sweeps/nosuchsweep`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "unknown sweep 'nosuchsweep'" });
    expect((await fetch(`${controller.dashboardUrl}static/../../package.json`)).status).toBe(404);
    await page.close();
  });
});

describe('the dashboard with a token', () => {
  it('lets in a bearer header, or ?token= once and then its cookie', async () => {
    const dashboard = await startDashboard({ service: controller.service, host: '127.0.0.1', port: 0, token: 'tok-123', log: createLogger('test', () => {}) });
    try {
      expect((await fetch(dashboard.url)).status).toBe(401);
      expect((await fetch(`${dashboard.url}api/sweeps`)).status).toBe(401);
      expect((await fetch(`${dashboard.url}api/sweeps`, { headers: { Authorization: 'Bearer tok-123' } })).status).toBe(200);
      const login = await fetch(`${dashboard.url}?token=tok-123`, { redirect: 'manual' });
      expect(login.status).toBe(303);
      expect(login.headers.get('location')).toBe('/');
      const cookie = login.headers.get('set-cookie')!.split(';')[0];
      expect((await fetch(dashboard.url, { headers: { cookie } })).status).toBe(200);

      // In the browser: the token leaves the address bar, and the page and its stream load.
      const problems: string[] = [];
      const page = await openPage(problems);
      const sweep = controller.service.listSweeps()[0];
      await page.goto(`${dashboard.url}sweeps/${sweep.id}?token=tok-123`);
      await ready(page);
      expect(page.url()).toBe(`${dashboard.url}sweeps/${sweep.id}`);
      expect((await visibleIds(page)).length).toBe(sweep.trials.length);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await dashboard.stop();
    }
  });
});
