/**
 * `npm run bench:strategies`: search quality and suggestion latency of random, bayes and tpe on
 * the problems in problems.ts, driven through the same `Strategy` interface the controller uses.
 *
 * 1. Sequential: one trial at a time, `--trials` trials (default 50), `--seeds` seeds (default
 *    20); median simple regret (best value so far minus the known optimum) after 10, 25 and 50.
 * 2. Parallel: 8 agents asking at once (each batch of 8 is suggested with the earlier ones still
 *    running), regret after `--trials` and how many suggestions repeated an earlier trial.
 * 3. Latency of bayes and tpe: with n random observations of hartmann6 already in (n = 50, 100,
 *    200, 500), a fresh strategy makes 10 sequential suggestions; p50/p99 over those and 3 seeds.
 *
 * Flags: --seeds N, --seed-offset K (seeds K..K+N−1), --trials N, --functions a,b, --methods random,bayes,tpe, --no-parallel,
 * --no-latency, --latency-sizes 50,100.
 */
import { performance } from 'node:perf_hooks';
import type { Params } from '../domain/values.js';
import { parseConfig } from '../controller/config/parse.js';
import type { SweepConfig } from '../domain/sweep-config.js';
import { createStrategy } from '../controller/strategies/index.js';
import { SearchSpace } from '../controller/strategies/space.js';
import type { TrialObservation } from '../controller/strategies/types.js';
import { PROBLEMS, type Problem } from './problems.js';

const argv = process.argv.slice(2);
function flag(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}
const SEEDS = Number(flag('seeds') ?? 20);
const SEED_OFFSET = Number(flag('seed-offset') ?? 0);
const TRIALS = Number(flag('trials') ?? 50);
const METHODS = (flag('methods') ?? 'random,bayes,tpe').split(',');
const FUNCTIONS = flag('functions')?.split(',');
const PARALLEL = !argv.includes('--no-parallel');
const LATENCY = !argv.includes('--no-latency');
const LATENCY_SIZES = (flag('latency-sizes') ?? '50,100,200,500').split(',').map(Number);
const AGENTS = 8;
const CHECKPOINTS = [10, 25, 50].filter((c) => c <= TRIALS);

/** Median regret at 50 trials of the reference libraries, from issue #4. */
const REFERENCE: Record<string, { bayesTarget: number; optunaTpe: number }> = {
  branin: { bayesTarget: 0.0017, optunaTpe: 0.109 },
  hartmann6: { bayesTarget: 0.048, optunaTpe: 0.33 },
  rosenbrock4: { bayesTarget: 175, optunaTpe: 175 },
  ackley5: { bayesTarget: 5.2, optunaTpe: 11.6 },
  levy6: { bayesTarget: 2.0, optunaTpe: 4.12 },
  styblinski_tang4: { bayesTarget: 17.3, optunaTpe: 23.5 },
};

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);

function configFor(problem: Problem, method: string): SweepConfig {
  return parseConfig({ method, metric: { name: 'loss', goal: 'minimize' }, parameters: problem.parameters }).config;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 1 ? x.toPrecision(4) : a >= 1e-4 ? x.toPrecision(3) : x.toExponential(2);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** One sequential run: the best regret after each trial. */
function runSequential(problem: Problem, method: string, seed: number): number[] {
  const strategy = createStrategy(configFor(problem, method), { seed });
  const trials: TrialObservation[] = [];
  const regrets: number[] = [];
  let best = Infinity;
  for (let t = 0; t < TRIALS; t++) {
    const s = strategy.suggest(trials);
    if (s.kind !== 'params') throw new Error('strategy ran out');
    const value = problem.evaluate(s.params);
    best = Math.min(best, value);
    trials.push({ id: String(t + 1), params: s.params, state: 'finished', value });
    regrets.push(best - problem.optimum);
  }
  return regrets;
}

/** Batches of 8 asked together; the regret at the end and the number of repeated points. */
function runParallel(problem: Problem, method: string, seed: number): { regret: number; duplicates: number } {
  const config = configFor(problem, method);
  const strategy = createStrategy(config, { seed });
  const space = new SearchSpace(config.parameters);
  const trials: TrialObservation[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let best = Infinity;
  while (trials.length < TRIALS) {
    const batch: Params[] = [];
    for (let k = 0; k < AGENTS && trials.length < TRIALS; k++) {
      const s = strategy.suggest(trials);
      if (s.kind !== 'params') throw new Error('strategy ran out');
      const key = space.keyOfParams(s.params)!;
      if (seen.has(key)) duplicates++;
      seen.add(key);
      trials.push({ id: String(trials.length + 1), params: s.params, state: 'running', value: null });
      batch.push(s.params);
    }
    for (let k = trials.length - batch.length; k < trials.length; k++) {
      const value = problem.evaluate(trials[k].params);
      best = Math.min(best, value);
      trials[k] = { ...trials[k], state: 'finished', value };
    }
  }
  return { regret: best - problem.optimum, duplicates };
}

/** Suggestion times (ms) of a fresh strategy making 10 sequential suggestions after n random trials. */
function latencies(method: string, n: number, seed: number): number[] {
  const problem = PROBLEMS.find((p) => p.name === 'hartmann6')!;
  const random = createStrategy(configFor(problem, 'random'), { seed: seed + 1000 });
  const trials: TrialObservation[] = [];
  for (let t = 0; t < n; t++) {
    const s = random.suggest(trials);
    if (s.kind !== 'params') throw new Error('random ran out');
    trials.push({ id: String(t + 1), params: s.params, state: 'finished', value: problem.evaluate(s.params) });
  }
  const strategy = createStrategy(configFor(problem, method), { seed });
  const out: number[] = [];
  for (let k = 0; k < 10; k++) {
    const started = performance.now();
    const s = strategy.suggest(trials);
    out.push(performance.now() - started);
    if (s.kind !== 'params') throw new Error('strategy ran out');
    trials.push({ id: String(trials.length + 1), params: s.params, state: 'finished', value: problem.evaluate(s.params) });
  }
  return out;
}

function main(): void {
  const problems = PROBLEMS.filter((p) => !FUNCTIONS || FUNCTIONS.includes(p.name));
  const started = performance.now();
  const rows: string[][] = [];
  const parallelRows: string[][] = [];
  for (const problem of problems) {
    for (const method of METHODS) {
      const t0 = performance.now();
      const runs = Array.from({ length: SEEDS }, (_, seed) => runSequential(problem, method, SEED_OFFSET + seed));
      const ref = REFERENCE[problem.name];
      const at50 = TRIALS >= 50 ? median(runs.map((r) => r[49])) : NaN;
      const target = !ref ? '' : method === 'bayes' ? ref.bayesTarget : method === 'tpe' ? ref.optunaTpe : undefined;
      rows.push([
        problem.name,
        method,
        ...CHECKPOINTS.map((c) => fmt(median(runs.map((r) => r[c - 1])))),
        target === undefined || target === '' ? '' : fmt(target),
        target === undefined || target === '' || !(at50 >= 0) ? '' : at50 <= target ? 'yes' : 'no',
      ]);
      say(`${problem.name} ${method}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      if (PARALLEL && method !== 'random') {
        const par = Array.from({ length: SEEDS }, (_, seed) => runParallel(problem, method, SEED_OFFSET + seed));
        parallelRows.push([
          problem.name,
          method,
          fmt(median(par.map((p) => p.regret))),
          fmt(median(runs.map((r) => r[TRIALS - 1]))),
          String(par.reduce((a, p) => a + p.duplicates, 0)),
        ]);
      }
    }
  }
  const out: string[] = [];
  out.push(`Median simple regret over ${SEEDS} seeds, one trial at a time (target: issue #4's bayes target, or Optuna TPE's regret for tpe)`);
  out.push(table(['function', 'method', ...CHECKPOINTS.map((c) => `@${c}`), 'target@50', 'met'], rows));
  if (parallelRows.length > 0) {
    out.push('');
    out.push(`Parallel: ${AGENTS} agents asking at once, ${TRIALS} trials, ${SEEDS} seeds`);
    out.push(table(['function', 'method', `regret@${TRIALS}`, 'sequential', 'duplicates'], parallelRows));
  }
  if (LATENCY) {
    const latRows: string[][] = [];
    for (const method of METHODS.filter((m) => m !== 'random')) {
      for (const n of LATENCY_SIZES) {
        const times = [0, 1, 2].flatMap((seed) => latencies(method, n, seed));
        latRows.push([method, String(n), fmt(median(times)), fmt(quantile(times, 0.99))]);
        say(`latency ${method} n=${n}: p50 ${fmt(median(times))} ms`);
      }
    }
    out.push('');
    out.push('Suggestion latency on hartmann6 (ms), 10 sequential suggestions after n observations, 3 seeds');
    out.push(table(['method', 'observations', 'p50', 'p99'], latRows));
  }
  out.push('');
  out.push(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(out.join('\n') + '\n');
}

main();
