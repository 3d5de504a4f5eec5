/**
 * `npm run bench:dashboard`: what the web dashboard costs with a large sweep.
 *
 * A synthetic sweep of 10,000 trials (50 steps of metrics each, 200 still running) is replayed
 * into a real `SweepService` through an in-memory event log, and the real dashboard server is
 * started on it. No NATS is needed: the dashboard only reads the service.
 *
 * 1. Server: time and size of each endpoint (the page-load snapshot above all).
 * 2. Live updates, server side: the running trials log a point every 100 ms and a few trials end
 *    and start every second. Controller CPU is measured with no page open (the baseline, same
 *    run), then with one page open; the difference is what the live stream costs. Bytes sent are
 *    compared with what a full snapshot per update would have cost.
 * 3. Browser (when /usr/bin/chromium is there): page load to a rendered leaderboard, the cost of
 *    applying one live update (measured by the page itself), a sort of 10,000 rows.
 *
 * Flags: --trials N (default 10000), --running N (200), --steps N (50), --seconds N (8).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip, gunzipSync } from 'node:zlib';
import seedrandom from 'seedrandom';
import { silentLogger } from '../common/log.js';
import { stringifyTyped } from '../domain/values.js';
import { parseConfigText } from '../controller/config/parse.js';
import { encodeConfig } from '../controller/config/codec.js';
import type { DashboardHandle } from '../controller/dashboard/server.js';
import { startDashboard } from '../controller/dashboard/server.js';
import { MemoryEventLog } from '../controller/sweeps/event-log.js';
import type { ControllerEvent } from '../controller/sweeps/state.js';
import { SweepService } from '../controller/sweeps/sweep-service.js';

const args = new Map<string, number>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), Number(process.argv[i + 1]));
const TRIALS = args.get('trials') ?? 10_000;
const RUNNING = args.get('running') ?? 200;
const STEPS = args.get('steps') ?? 50;
const SECONDS = args.get('seconds') ?? 8;
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

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CONFIG = `
name: bench-dashboard
method: random
metric: {name: val_loss, goal: minimize}
program: train.py
parameters:
  lr: {distribution: log_uniform_values, min: 1.0e-5, max: 0.1}
  batch_size: {values: [32, 64, 128, 256]}
  dropout: {min: 0.0, max: 0.5}
  optimizer: {values: [adam, sgd, adamw]}
  layers: {min: 1, max: 8}
  epochs: {value: ${STEPS}}
`;

/** The loss a trial with these parameters reaches: lr and layers matter, dropout a little. */
function finalLoss(p: { lr: number; dropout: number; layers: number; optimizer: string }, rand: () => number): number {
  const lrTerm = (Math.log10(p.lr) + 3) ** 2 * 0.08;
  return 0.05 + lrTerm + 0.03 * Math.abs(p.layers - 5) + 0.05 * p.dropout + (p.optimizer === 'sgd' ? 0.04 : 0) + rand() * 0.02;
}

interface Synthetic {
  service: SweepService;
  sweepId: string;
  running: string[];
  nextSeq: Map<string, number>;
  final: Map<string, number>;
}

async function syntheticSweep(): Promise<Synthetic> {
  const rand = seedrandom('sweeper-dashboard-bench');
  const { config } = parseConfigText(CONFIG, 'bench.yaml');
  const eventLog = new MemoryEventLog();
  const sweepId = 'bench0001';
  const t0 = Date.now() - TRIALS * 1000;
  const append = (e: ControllerEvent, id: string) => eventLog.append(e, id);
  await append({ type: 'sweep_created', sweepId, at: t0, configJson: encodeConfig(config), configText: CONFIG, seed: 1 }, `${sweepId}:created`);
  const params = new Map<string, { lr: number; dropout: number; layers: number; optimizer: string }>();
  const running: string[] = [];
  for (let n = 1; n <= TRIALS; n++) {
    const id = `${sweepId}-${n}`;
    const p = {
      lr: Math.exp(Math.log(1e-5) + rand() * (Math.log(0.1) - Math.log(1e-5))),
      batch_size: [32, 64, 128, 256][Math.floor(rand() * 4)],
      dropout: rand() * 0.5,
      optimizer: ['adam', 'sgd', 'adamw'][Math.floor(rand() * 3)],
      layers: 1 + Math.floor(rand() * 8),
      epochs: STEPS,
    };
    params.set(id, p);
    const at = t0 + n * 1000;
    await append({ type: 'trial_created', sweepId, trialId: id, number: n, at, paramsJson: stringifyTyped(p), agentId: `gpu${n % 16}-agent` }, `${id}:created`);
    if (n > TRIALS - RUNNING) {
      running.push(id);
      continue;
    }
    const r = rand();
    const state = r < 0.05 ? 'stopped' : r < 0.07 ? 'failed' : 'finished';
    await append(
      {
        type: 'trial_ended',
        sweepId,
        trialId: id,
        at: at + 60_000,
        state,
        exitCode: state === 'failed' ? 1 : state === 'finished' ? 0 : null,
        signal: state === 'stopped' ? 'SIGTERM' : '',
        reason: state === 'stopped' ? 'stopped by hyperband at step 9' : state === 'failed' ? 'exit code 1: CUDA out of memory' : '',
        argv: ['/usr/bin/env', 'python3', 'train.py', `--lr=${p.lr}`],
        stdoutTail: ['epoch 1 done'],
        stderrTail: [],
      },
      `${id}:ended`,
    );
  }
  const service = new SweepService({ eventLog, log: silentLogger });
  await service.init();
  const nextSeq = new Map<string, number>();
  const final = new Map<string, number>();
  for (const [id, p] of params) {
    const f = finalLoss(p, rand);
    final.set(id, f);
    const isRunning = running.includes(id);
    const steps = isRunning ? Math.floor(STEPS / 2) : STEPS;
    const points = Array.from({ length: steps }, (_, s) => ({ step: s, t: t0, values: { val_loss: f + 2 / (s + 1) + rand() * 0.01 } }));
    service.onMetrics({ sweepId, trialId: id, seq: 1, points });
    nextSeq.set(id, 2);
  }
  return { service, sweepId, running, nextSeq, final };
}

interface Fetched {
  ms: number;
  raw: number;
  wire: number;
  body: string;
}

function get(url: string, gzip = true): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { headers: gzip ? { 'Accept-Encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const wire = Buffer.concat(chunks);
        const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire;
        resolve({ ms: performance.now() - t0, raw: body.length, wire: wire.length, body: body.toString() });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function median(n: number, fn: () => Promise<Fetched>): Promise<Fetched> {
  const runs: Fetched[] = [];
  for (let i = 0; i < n; i++) runs.push(await fn());
  runs.sort((a, b) => a.ms - b.ms);
  return runs[Math.floor(n / 2)];
}

/** A page's worth of SSE, read by Node as a browser would (gzip): counts events and wire bytes. */
function sseClient(url: string): { events: () => number; bytes: () => number; close: () => void } {
  let events = 0;
  let bytes = 0;
  const req = request(url, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
    res.on('data', (c: Buffer) => (bytes += c.length));
    const text = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
    text.on('data', (c: Buffer) => (events += c.toString().split('\n\n').length - 1));
    text.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  req.end();
  return { events: () => events, bytes: () => bytes, close: () => req.destroy() };
}

/**
 * The sweep moving for `seconds`: every running trial logs a point each 100 ms; each second a
 * few trials end and as many start. Returns the controller's CPU time used.
 */
async function liveLoad(s: Synthetic, seconds: number, rand: () => number): Promise<{ cpuMs: number; points: number }> {
  const cpu0 = process.cpuUsage();
  let points = 0;
  let agent = 0;
  const end = Date.now() + seconds * 1000;
  let tick = 0;
  while (Date.now() < end) {
    for (const id of s.running) {
      const seq = s.nextSeq.get(id) ?? 1;
      s.nextSeq.set(id, seq + 1);
      const step = STEPS / 2 + seq;
      s.service.onMetrics({ sweepId: s.sweepId, trialId: id, seq, points: [{ step, t: Date.now(), values: { val_loss: (s.final.get(id) ?? 0.2) + 2 / (step + 1) } }] });
      points++;
    }
    if (++tick % 10 === 0) {
      for (let k = 0; k < 4; k++) {
        const id = s.running.shift()!;
        await s.service.completeTrial({
          agentId: 'x',
          trialId: id,
          exitCode: 0,
          signal: '',
          startError: '',
          stoppedReason: '',
          stdoutTail: [],
          stderrTail: [],
          lastMetricSeq: 0,
          argv: [],
        });
        const agentId = `bench-live-${agent++}`;
        s.service.registerAgent({ agentId, sweepId: s.sweepId, hostname: 'bench', pid: 1, slots: 1 });
        const r = await s.service.requestTrial(agentId, s.sweepId);
        if (r.kind === 'trial') {
          s.running.push(r.trial.id);
          s.final.set(r.trial.id, 0.1 + rand() * 0.5);
        }
      }
    }
    await sleep(100);
  }
  const used = process.cpuUsage(cpu0);
  return { cpuMs: (used.user + used.system) / 1000, points };
}

async function main(): Promise<void> {
  const rows: Array<[string, string, string]> = [];
  const add = (what: string, value: string, note = '') => {
    rows.push([what, value, note]);
    say(`${what}: ${value}${note ? ` (${note})` : ''}`);
  };
  const rand = seedrandom('sweeper-dashboard-live');
  say(`building a sweep of ${TRIALS} trials × ${STEPS} steps (${RUNNING} running)`);
  const t0 = performance.now();
  const s = await syntheticSweep();
  add('setup: replay + metrics', `${Math.round(performance.now() - t0)} ms`, `${TRIALS * STEPS} points`);

  const dashboard: DashboardHandle = await startDashboard({ service: s.service, host: '127.0.0.1', port: 0, log: silentLogger });
  const base = dashboard.url.replace(/\/$/, '');
  try {
    // ---- 1. endpoints ------------------------------------------------------------------------
    const snap = await median(5, () => get(`${base}/api/sweeps/${s.sweepId}`));
    add('GET snapshot (page load data)', `${snap.ms.toFixed(1)} ms`, `${kb(snap.raw)} JSON, ${kb(snap.wire)} gzipped, median of 5`);
    const list = await median(5, () => get(`${base}/api/sweeps`));
    add('GET sweeps list', `${list.ms.toFixed(1)} ms`, kb(list.wire));
    const impCold = await get(`${base}/api/sweeps/${s.sweepId}/importance`);
    const impWarm = await median(5, () => get(`${base}/api/sweeps/${s.sweepId}/importance`));
    const imp = JSON.parse(impCold.body) as { params: Array<{ name: string; importance: number }> };
    add('GET importance (computed / cached)', `${impCold.ms.toFixed(1)} / ${impWarm.ms.toFixed(1)} ms`, imp.params.map((p) => `${p.name} ${Math.round(p.importance * 100)}%`).join(', '));
    const curves = await median(5, () => get(`${base}/api/sweeps/${s.sweepId}/curves?points=400`));
    add('GET curves (top 10)', `${curves.ms.toFixed(1)} ms`, kb(curves.wire));
    const trial = await median(5, () => get(`${base}/api/sweeps/${s.sweepId}/trials/${s.sweepId}-1`));
    add('GET trial page data', `${trial.ms.toFixed(1)} ms`, kb(trial.wire));

    // ---- 2. live updates, server side -----------------------------------------------------------
    const idle = await liveLoad(s, SECONDS, rand);
    add('live load, no page open (baseline)', `${pct(idle.cpuMs, SECONDS)} CPU`, `${Math.round(idle.points / SECONDS)} points/s, ${RUNNING} running`);

    const before = dashboard.stats();
    const client = sseClient(`${base}/api/sweeps/${s.sweepId}/events`);
    await sleep(500);
    const bytes0 = client.bytes();
    const withPage = await liveLoad(s, SECONDS, rand);
    const after = dashboard.stats();
    const deltas = after.deltas - before.deltas;
    add('live load, one stream open', `${pct(withPage.cpuMs, SECONDS)} CPU`, `+${pct(withPage.cpuMs - idle.cpuMs, SECONDS)} for the stream`);
    add('live updates sent', `${(deltas / SECONDS).toFixed(1)}/s`, `${Math.round((after.rows - before.rows) / Math.max(1, deltas))} rows each, built in ${((after.buildMs - before.buildMs) / Math.max(1, deltas)).toFixed(2)} ms`);
    const sent = client.bytes() - bytes0;
    add('live stream bytes (gzip)', `${kb(sent / SECONDS)}/s`, `a gzipped snapshot per update would be ${kb((snap.wire * deltas) / SECONDS)}/s`);
    client.close();

    // ---- 3. browser ----------------------------------------------------------------------------
    if (!existsSync(CHROMIUM)) {
      add('browser', 'skipped', `${CHROMIUM} not found (apt-get install -y chromium)`);
    } else {
      await browserBench(base, s, rand, add);
    }
  } finally {
    await dashboard.stop();
  }

  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), ['measure', 'value', 'note'][i].length));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  process.stdout.write(`\nDashboard benchmark: ${TRIALS} trials, ${STEPS} steps each, ${RUNNING} running, ${SECONDS}s live phases\n\n`);
  process.stdout.write(line(['measure', 'value', 'note']) + '\n' + line(widths.map((w) => '-'.repeat(w))) + '\n');
  for (const r of rows) process.stdout.write(line(r) + '\n');
}

async function browserBench(base: string, s: Synthetic, rand: () => number, add: (what: string, value: string, note?: string) => void): Promise<void> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'sweeper-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: BROWSER_FLAGS,
    viewport: { width: 1400, height: 1000 },
  });
  try {
    const page = await context.newPage();
    const loads: Array<{ ready: number; snapshot: number }> = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(`${base}/sweeps/${s.sweepId}`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      loads.push(await page.evaluate(() => ({ ready: (globalThis as any).__dash.readyMs, snapshot: (globalThis as any).__dash.snapshotMs })));
    }
    loads.sort((a, b) => a.ready - b.ready);
    const mid = loads[1];
    add('browser: page load to rendered leaderboard', `${Math.round(mid.ready)} ms`, `of which ${Math.round(mid.snapshot)} ms applying the snapshot; median of 3`);

    await page.evaluate(() => Object.assign((globalThis as any).__dash, { updates: 0, updateMs: 0, maxUpdateMs: 0, updateRows: 0, plotDraws: 0, plotMs: 0 }));
    await liveLoad(s, SECONDS, rand);
    const st = await page.evaluate(() => ({ ...(globalThis as any).__dash, heap: (globalThis as any).performance.memory?.usedJSHeapSize ?? 0 }));
    add('browser: one live update', `${(st.updateMs / Math.max(1, st.updates)).toFixed(1)} ms`, `max ${st.maxUpdateMs.toFixed(1)} ms, ${(st.updates / SECONDS).toFixed(1)} updates/s, ${Math.round(st.updateRows / Math.max(1, st.updates))} rows each`);
    add('browser: parallel-coordinates redraw', `${(st.plotMs / Math.max(1, st.plotDraws)).toFixed(1)} ms`, `${st.plotDraws} redraws in ${SECONDS}s`);
    const busy = ((st.updateMs + st.plotMs) / (SECONDS * 1000)) * 100;
    add('browser: main thread busy with updates', `${busy.toFixed(1)}%`, `JS heap ${kb(st.heap)}`);

    const sortMs = await page.evaluate(async () => {
      const g = globalThis as any;
      const button = g.document.querySelector('th[data-key="p0"] button');
      const t = performance.now();
      button.click();
      await new Promise((r) => g.requestAnimationFrame(() => r(undefined)));
      return performance.now() - t;
    });
    add('browser: sort all trials by a column', `${sortMs.toFixed(1)} ms`, 'click to next frame');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

function kb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

function pct(cpuMs: number, seconds: number): string {
  return `${((cpuMs / (seconds * 1000)) * 100).toFixed(1)}%`;
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
