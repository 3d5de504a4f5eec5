/**
 * `npm run bench:stopping`: what each early-stopping rule saves and what it costs.
 *
 * 1. Simulated sweeps. 200 configs per seed, each a deterministic learning curve of 81 steps:
 *    half exponential saturation, half power law, toward a per-config final value, at a
 *    per-config speed drawn independently of it, so early ranks are informative but slow good
 *    configs cross fast mediocre ones. Observations add Gaussian noise. 8 workers run the trials
 *    asynchronously in simulated time (each config has its own step time; nothing sleeps), and
 *    every rule sees the same configs, noise and order. Per rule: total steps as a fraction of
 *    no stopping, regret of the best trial that ran all 81 steps (its noise-free value at step
 *    81 minus the best config's), how many of the 10 best configs ran to the end, over 10 seeds.
 * 2. Decision cost: µs per reported point with 200 trials running, and for comparison the cost
 *    of recomputing every trial's decision on each point (what W&B's stop_runs does).
 *    Reference rows re-implement Optuna's median and successive-halving pruners on the same
 *    curves; "vs frontier" is a rule's top-10 share above the line through the two
 *    reference points; the ceiling (bench/stopping-ceiling.ts) shows what the curves allow.
 * 3. Latency through the real stack (nats-server, controller, an agent as a child process):
 *    from a probe program printing a bad value to its process being gone. The probe's print
 *    precedes the publish by the agent's batching (≤ 250 ms), so this bounds publish → gone.
 *
 * Flags: --seeds N (default 10), --samples N (latency samples, default 60; 0 skips the stack),
 * --tune (also print a grid of asha and median settings).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SweeperClient } from '../common/api-client.js';
import { createLogger, silentLogger } from '../common/log.js';
import { ensureNatsServer, startNatsServer } from '../common/nats-server.js';
import type { EarlyTerminateSpec } from '../domain/sweep-config.js';
import { startController } from '../controller/controller.js';
import { createStoppingRule } from '../controller/stopping/index.js';
import { stopRuns, type RunForStopping } from '../controller/optimizer/stop-runs.js';
import { curves, STEPS, TRIALS, type Curve } from './learning-curves.js';
import { optunaMedian, optunaSuccessiveHalving, type SimRule } from './reference-pruners.js';
import { bestWithin } from './stopping-ceiling.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const key = process.argv[i].replace(/^--/, '');
  const next = process.argv[i + 1];
  if (next !== undefined && !next.startsWith('--')) args.set(key, process.argv[++i]);
  else args.set(key, 'true');
}
const SEEDS = Number(args.get('seeds') ?? 10);
const SAMPLES = Number(args.get('samples') ?? 60);
const TUNE = args.has('tune');
const WORKERS = 8;
const TOP = 10;

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

// ---- one simulated sweep -------------------------------------------------------------------

interface SimResult {
  steps: number;
  ranToEnd: Set<number>;
  reports: number;
  reportNs: bigint;
}

function simulate(row: RuleRow, cs: Curve[]): SimResult {
  const rule = simRule(row);
  const running: Array<{ i: number; step: number; nextAt: number }> = [];
  const ranToEnd = new Set<number>();
  let nextConfig = 0;
  let steps = 0;
  let reports = 0;
  let reportNs = 0n;
  const start = (now: number) => {
    if (nextConfig < cs.length) {
      const i = nextConfig++;
      running.push({ i, step: 0, nextAt: now + cs[i].stepTime });
    }
  };
  for (let w = 0; w < WORKERS; w++) start(0);
  while (running.length > 0) {
    let k = 0;
    for (let j = 1; j < running.length; j++) if (running[j].nextAt < running[k].nextAt) k = j;
    const r = running[k];
    const now = r.nextAt;
    r.step++;
    steps++;
    let condemned: string[] = [];
    if (rule) {
      const t0 = process.hrtime.bigint();
      condemned = rule.report(String(r.i), cs[r.i].observed[r.step - 1]);
      reportNs += process.hrtime.bigint() - t0;
      reports++;
    }
    if (r.step === STEPS) {
      ranToEnd.add(r.i);
      rule?.ended(String(r.i), 'finished');
      running.splice(running.indexOf(r), 1);
      start(now);
    } else {
      r.nextAt = now + cs[r.i].stepTime;
    }
    for (const id of condemned) {
      const j = running.findIndex((x) => String(x.i) === id);
      if (j < 0) continue;
      running.splice(j, 1);
      rule!.ended(id, 'stopped');
      start(now);
    }
  }
  return { steps, ranToEnd, reports, reportNs };
}

interface RuleRow {
  name: string;
  spec: EarlyTerminateSpec | null;
  /** A reference library's rule instead of Sweeper's (spec is then null). */
  reference?: () => SimRule;
}

function simRule(row: RuleRow): SimRule | null {
  if (row.reference) return row.reference();
  if (!row.spec) return null;
  const rule = createStoppingRule({ metric: { name: 'loss', goal: 'minimize' }, early_terminate: row.spec })!;
  return { report: (id, value) => rule.report(id, value).map((d) => d.trialId), ended: (id, state) => rule.ended(id, state) };
}

/**
 * The frontier: the line through its two reference points, W&B's hyperband (0.13 of the
 * steps, 45% of the top-10 finishing) and Optuna's median rule (0.24, 70%). Positive: above it.
 */
function aboveFrontier(steps: number, top: number): number {
  return top - (0.45 + ((steps - 0.13) * (0.7 - 0.45)) / (0.24 - 0.13));
}

interface Summary {
  steps: number;
  regretMedian: number;
  regretMean: number;
  top: number;
  usPerReport: number;
}

function evaluate(row: RuleRow, all: Curve[][]): Summary {
  const fractions: number[] = [];
  const regrets: number[] = [];
  const tops: number[] = [];
  let reports = 0;
  let ns = 0n;
  for (const cs of all) {
    const r = simulate(row, cs);
    fractions.push(r.steps / (TRIALS * STEPS));
    const best = Math.min(...cs.map((c) => c.truth));
    const bestRun = Math.min(...[...r.ranToEnd].map((i) => cs[i].truth));
    regrets.push(bestRun - best);
    const top = cs.map((c, i) => [c.truth, i] as const).sort((a, b) => a[0] - b[0]).slice(0, TOP);
    tops.push(top.filter(([, i]) => r.ranToEnd.has(i)).length / TOP);
    reports += r.reports;
    ns += r.reportNs;
  }
  return {
    steps: mean(fractions),
    regretMedian: median(regrets),
    regretMean: mean(regrets),
    top: mean(tops),
    usPerReport: reports ? Number(ns) / 1000 / reports : NaN,
  };
}

/** µs per point with all 200 trials running and reporting in turn, and W&B-style recompute. */
function decisionCost(spec: EarlyTerminateSpec, cs: Curve[]): { incremental: number; recompute: number } {
  const config = { metric: { name: 'loss', goal: 'minimize' as const }, early_terminate: spec };
  let best = Infinity;
  // The fastest of a few rounds: the machine is shared, and the minimum is what the code costs.
  for (let round = 0; round < 5; round++) {
    const rule = createStoppingRule(config)!;
    const stopped = new Set<string>();
    let reports = 0;
    const t0 = process.hrtime.bigint();
    for (let t = 0; t < STEPS; t++) {
      for (let i = 0; i < TRIALS; i++) {
        if (stopped.has(String(i))) continue;
        for (const d of rule.report(String(i), cs[i].observed[t])) stopped.add(d.trialId);
        reports++;
      }
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1000 / reports);
  }
  // Recomputing everything once per point, on 200 trials 27 steps in.
  const runs: RunForStopping[] = cs.map((c, i) => ({ id: String(i), state: 'running', history: Array.from(c.observed.subarray(0, 27)) }));
  const calls = 30;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < calls; k++) stopRuns(config, runs);
  const recompute = Number(process.hrtime.bigint() - t0) / 1000 / calls;
  return { incremental: best, recompute };
}

// ---- latency through the real stack ---------------------------------------------------------

async function latency(samples: number): Promise<{ term: number[]; gone: number[]; fromIngest: number[] }> {
  await ensureNatsServer({ install: true, log: createLogger('bench') });
  const dir = mkdtempSync(join(tmpdir(), 'sweeper-bench-stop-'));
  const nats = await startNatsServer({ storeDir: join(dir, 'nats'), host: '127.0.0.1', port: -1, log: silentLogger });
  const controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: silentLogger });
  const client = new SweeperClient(controller.address);
  const cli = fileURLToPath(new URL('../cli/run.js', import.meta.url));
  const fixtures = fileURLToPath(new URL('../../bench/fixtures/', import.meta.url));
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const term: number[] = [];
  const gone: number[] = [];
  const fromIngest: number[] = [];
  // When the controller gets each probe's bad value: publish → gone lies between this and the print.
  const ingestedAt = new Map<string, number>();
  const onMetrics = controller.service.onMetrics.bind(controller.service);
  controller.service.onMetrics = (batch) => {
    if (!ingestedAt.has(batch.trialId) && batch.points.some((p) => p.values.loss === 1)) ingestedAt.set(batch.trialId, now());
    onMetrics(batch);
  };
  try {
    // Trial 1 logs 0 and finishes; every later trial's first value (1) is above element
    // int(count/1000) = 0 of bracket 1's values, so each probe is stopped by its bad value.
    const config = {
      method: 'grid',
      metric: { name: 'loss' },
      program: 'stop-probe.js',
      early_terminate: { type: 'hyperband', min_iter: 1, eta: 1000 },
      parameters: { i: { values: Array.from({ length: samples + 1 }, (_, i) => i) } },
    };
    const sweep = await client.createSweep(JSON.stringify(config), 'bench-stop.json');
    const agent = spawn(process.execPath, [cli, 'agent', sweep.id, '--controller', controller.address, '--grace', '5'], {
      cwd: fixtures,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, SWEEPER_LOG_LEVEL: 'warn', STOP_PROBE_DIR: dir },
    });
    const exited = new Promise((r) => agent.once('exit', r));
    const waitFor = async <T>(what: string, fn: () => T | undefined, timeoutMs = 20_000): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = fn();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(1);
      }
    };
    const read = (file: string) => {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as { pid: number; badAt: number; termAt: number };
      } catch {
        return undefined; // not written yet, or caught mid-write
      }
    };
    for (let k = 2; k <= samples + 1; k++) {
      const file = join(dir, `${sweep.id}-${k}.json`);
      const probe = await waitFor(`probe ${k}`, () => (existsSync(file) ? read(file) : undefined));
      process.kill(probe.pid, 'SIGUSR1');
      const done = await waitFor(`probe ${k} to be stopped`, () => {
        const r = read(file);
        return r && r.termAt > 0 ? r : undefined;
      });
      await waitFor(`probe ${k} to exit`, () => {
        try {
          process.kill(probe.pid, 0);
          return undefined;
        } catch {
          return true;
        }
      });
      const goneAt = now();
      term.push(done.termAt - done.badAt);
      gone.push(goneAt - done.badAt);
      fromIngest.push(goneAt - (ingestedAt.get(`${sweep.id}-${k}`) ?? NaN));
      if ((k - 1) % 10 === 0) say(`latency: ${k - 1}/${samples} probes stopped`);
    }
    await exited;
  } finally {
    client.close();
    await controller.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { term, gone, fromIngest };
}

// ---- output --------------------------------------------------------------------------------

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), '-'.repeat(w.reduce((a, b) => a + b + 2, -2)), ...rows.map(line)].join('\n') + '\n';
}

const RULES: RuleRow[] = [
  { name: 'none', spec: null },
  { name: 'hyperband (min_iter 3, eta 3)', spec: { type: 'hyperband', min_iter: 3, eta: 3 } },
  { name: 'asha (defaults: 3, 3, fit trend)', spec: { type: 'asha' } },
  { name: "asha (fit last, the paper's)", spec: { type: 'asha', fit: 'last' } },
  { name: 'asha (eta 2)', spec: { type: 'asha', eta: 2 } },
  { name: 'asha (min_iter 4, eta 1.5)', spec: { type: 'asha', min_iter: 4, eta: 1.5 } },
  { name: 'median (defaults: 5, 5)', spec: { type: 'median' } },
  { name: 'median (warmup_steps 2, min_trials 1)', spec: { type: 'median', warmup_steps: 2, min_trials: 1 } },
  { name: 'ref: Optuna MedianPruner', spec: null, reference: () => optunaMedian() },
  { name: 'ref: Optuna SuccessiveHalvingPruner', spec: null, reference: () => optunaSuccessiveHalving() },
];

async function main(): Promise<void> {
  say(`drawing ${SEEDS} seeds × ${TRIALS} curves × ${STEPS} steps`);
  const all = Array.from({ length: SEEDS }, (_, s) => curves(s + 1));
  const rows: string[][] = [];
  let hyperbandSteps = NaN;
  for (const row of RULES) {
    say(`simulating ${row.name}`);
    const s = evaluate(row, all);
    if (row.spec?.type === 'hyperband') hyperbandSteps = s.steps;
    const cost = row.spec ? decisionCost(row.spec, all[0]) : undefined;
    rows.push([
      row.name,
      s.steps.toFixed(3),
      `${s.regretMedian.toFixed(4)} / ${s.regretMean.toFixed(4)}`,
      `${(s.top * 100).toFixed(0)}%`,
      row.spec || row.reference ? `${(aboveFrontier(s.steps, s.top) * 100).toFixed(0)} pts` : '-',
      cost ? cost.incremental.toFixed(2) : '-',
      cost ? (cost.recompute / 1000).toFixed(2) : '-',
    ]);
  }
  process.stdout.write(
    `\nSimulated sweeps: ${TRIALS} trials × ≤${STEPS} steps, ${WORKERS} async workers, ${SEEDS} seeds (same configs and noise for every rule)\n\n`,
  );
  process.stdout.write(
    table(['rule', 'steps vs none', 'regret median / mean', 'top-10 finished', 'vs frontier', 'µs/point @200', 'recompute ms/point'], rows),
  );
  process.stdout.write('(recompute: the same decision recomputed over every trial on each point, as W&B does)\n');
  process.stdout.write(
    'Reference protocol (issue #5): W&B hyperband 0.13 of the steps, 45% of the top-10; Optuna median 0.24, 70%; Optuna successive halving 0.07-0.14, 20-45%.\n' +
      'vs frontier: top-10 finished minus the line through those two points (W&B hyperband, Optuna median) at the same steps; ref rows re-implement Optuna on these curves.\n',
  );

  say('ceiling: posterior means under the generator itself, synchronous cuts, schedule chosen in hindsight');
  const budgets = [hyperbandSteps, 0.13, 0.24];
  const bounds = bestWithin(all, budgets);
  process.stdout.write(
    '\nCeiling: a rule that knows the generator, cuts every trial at once and picks its schedule in hindsight (bench/stopping-ceiling.ts)\n\n',
  );
  process.stdout.write(
    table(
      ['steps at most', 'top-10 finished', 'steps used', 'schedule (step:trials kept)'],
      bounds.map((b, i) => [budgets[i].toFixed(3), `${(b.top * 100).toFixed(0)}%`, b.steps.toFixed(3), b.schedule]),
    ),
  );

  if (TUNE) {
    const grid: RuleRow[] = [];
    for (const fit of ['trend', 'last']) {
      for (const min_iter of [2, 3, 4, 5]) for (const eta of [1.5, 2, 3, 4]) grid.push({ name: `asha min_iter ${min_iter} eta ${eta} fit ${fit}`, spec: { type: 'asha', min_iter, eta, fit } });
    }
    for (const warmup_steps of [2, 3, 5, 8, 12]) {
      for (const min_trials of [1, 5, 10]) grid.push({ name: `median warmup ${warmup_steps} min_trials ${min_trials}`, spec: { type: 'median', warmup_steps, min_trials } });
    }
    const tuned = grid.map((row) => {
      const s = evaluate(row, all);
      const vs = `${(aboveFrontier(s.steps, s.top) * 100).toFixed(0)} pts`;
      return [row.name, s.steps.toFixed(3), `${s.regretMedian.toFixed(3)} / ${s.regretMean.toFixed(3)}`, `${(s.top * 100).toFixed(0)}%`, vs];
    });
    process.stdout.write('\nTuning grid\n\n' + table(['setting', 'steps vs none', 'regret median / mean', 'top-10 finished', 'vs frontier'], tuned));
  }

  if (SAMPLES > 0) {
    say(`latency: ${SAMPLES} probes through nats-server, the controller and an agent`);
    const { term, gone, fromIngest } = await latency(SAMPLES);
    const fmt = (xs: number[]) => [quantile(xs, 0.5), quantile(xs, 0.99), Math.max(...xs)].map((x) => `${x.toFixed(0)} ms`);
    process.stdout.write(`\nLatency on loopback, ${SAMPLES} trials stopped by hyperband (target p99 < 500 ms)\n\n`);
    process.stdout.write(
      table(['interval', 'p50', 'p99', 'max'], [
        ['printed → SIGTERM in the trial', ...fmt(term)],
        ['printed → process gone', ...fmt(gone)],
        ['ingested by the controller → process gone', ...fmt(fromIngest)],
      ]),
    );
    process.stdout.write(
      '(publish → gone lies between the last two rows: the agent batches points for up to 250 ms before publishing)\n',
    );
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
