/**
 * The contract every stopping rule keeps, whatever its algorithm: the controller feeds it values
 * as they arrive (live and in a replay after a restart, where trials end before their values are
 * read again), the library's `stopRuns` asks it for a snapshot, and neither knows which rule it
 * holds. Written against the public entry points only (`createStoppingRule`, the `StoppingRule`
 * interface, `parseConfig`), so a refactor of the rules underneath is pinned by it.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../controller/config/parse.js';
import { createStoppingRule } from '../../controller/stopping/index.js';
import type { StopDecision, StoppingConfig, StoppingRule } from '../../controller/stopping/types.js';
import type { TrialState } from '../../controller/strategies/types.js';
import { UsageError } from '../../domain/errors.js';
import { Float } from '../../domain/values.js';

type Goal = 'minimize' | 'maximize';

/** Rules with a few specs each; every one stops some trials on the workloads below. */
const SPECS: Record<string, Record<string, unknown>[]> = {
  hyperband: [
    { type: 'hyperband', min_iter: 2, eta: 2 },
    { type: 'hyperband', max_iter: 27, s: 3, eta: 3, strict: false },
  ],
  asha: [
    { type: 'asha', min_iter: 2, eta: 2 },
    { type: 'asha', min_iter: 1, eta: 3, max_iter: 20, fit: 'last' },
  ],
  median: [
    { type: 'median', warmup_steps: 2, min_trials: 2 },
    { type: 'median', warmup_steps: 0, min_trials: 0 },
  ],
};

const CASES = Object.entries(SPECS).flatMap(([type, specs]) => specs.map((spec) => ({ type, spec, name: JSON.stringify(spec) })));

const configOf = (spec: Record<string, unknown>, goal: Goal = 'minimize'): StoppingConfig => ({
  metric: { name: 'loss', goal },
  early_terminate: spec as StoppingConfig['early_terminate'] & object,
});

function ruleOf(spec: Record<string, unknown>, goal: Goal = 'minimize'): StoppingRule {
  const rule = createStoppingRule(configOf(spec, goal));
  if (!rule) throw new Error('no rule for an early_terminate spec');
  return rule;
}

/** mulberry32: a small seeded generator, so every workload is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One thing the controller tells a rule. */
type Step = { kind: 'value'; trialId: string; value: number } | { kind: 'ended'; trialId: string; state: TrialState };

/**
 * Trials with noisy decaying curves of different lengths, started at different times and
 * interleaved. The workload reacts to the rule, as the controller does: a trial the rule stops
 * logs a value or two more (the agent is still stopping it), then ends `stopped`; some ended
 * trials have a last value arriving after their end (a late batch).
 */
function simulate(rule: StoppingRule, seed: number, opts: { trials?: number; negate?: boolean; onReport?: (step: Step, decisions: StopDecision[], running: ReadonlySet<string>) => void } = {}) {
  const next = rng(seed);
  const n = opts.trials ?? 14;
  const sign = opts.negate ? -1 : 1;
  interface Sim {
    id: string;
    start: number;
    length: number;
    base: number;
    rate: number;
    logged: number;
    stopIn: number | null;
    over: boolean;
    late: boolean;
  }
  const sims: Sim[] = Array.from({ length: n }, (_, i) => ({
    id: `t${i + 1}`,
    start: Math.floor(next() * 40),
    length: 1 + Math.floor(next() * 30),
    base: 0.2 + next() * 2,
    rate: 0.02 + next() * 0.2,
    logged: 0,
    stopIn: null,
    over: false,
    late: next() < 0.25,
  }));
  const steps: Step[] = [];
  const decisions: StopDecision[][] = [];
  const running = new Set<string>();
  const lateValues: { trialId: string; value: number }[] = [];
  const curve = (s: Sim) => s.base * Math.exp(-s.rate * s.logged) + 0.05 * (next() - 0.5);

  const apply = (step: Step) => {
    steps.push(step);
    if (step.kind === 'ended') {
      running.delete(step.trialId);
      rule.ended(step.trialId, step.state);
      return;
    }
    if (!running.has(step.trialId) && !sims.find((s) => s.id === step.trialId)!.over) running.add(step.trialId);
    const out = rule.report(step.trialId, step.value);
    decisions.push(out);
    opts.onReport?.(step, out, running);
    for (const d of out) {
      const s = sims.find((x) => x.id === d.trialId)!;
      if (s.stopIn === null) s.stopIn = Math.floor(next() * 3);
    }
  };

  for (let tick = 0; sims.some((s) => !s.over) || lateValues.length > 0; tick++) {
    const live = sims.filter((s) => !s.over && s.start <= tick);
    if (live.length === 0 && lateValues.length === 0) continue;
    // A late batch from an ended trial now and then.
    if (lateValues.length > 0 && (live.length === 0 || next() < 0.2)) {
      const late = lateValues.shift()!;
      apply({ kind: 'value', ...late });
      continue;
    }
    const s = live[Math.floor(next() * live.length)];
    const end = (state: TrialState) => {
      s.over = true;
      if (s.late) lateValues.push({ trialId: s.id, value: sign * curve(s) });
      apply({ kind: 'ended', trialId: s.id, state });
    };
    if (s.stopIn !== null && s.stopIn-- <= 0) {
      end('stopped');
      continue;
    }
    apply({ kind: 'value', trialId: s.id, value: sign * curve(s) });
    s.logged++;
    if (s.stopIn === null && s.logged >= s.length) end(next() < 0.85 ? 'finished' : 'failed');
  }
  return { steps, decisions, stopped: decisions.flat() };
}

const SEEDS = [1, 2, 3, 4];

describe.each(CASES)('stopping rule $type $name', ({ spec }) => {
  it('stops some trials on these workloads (so the contracts below are not vacuous)', () => {
    const stopped = SEEDS.flatMap((seed) => simulate(ruleOf(spec), seed).stopped);
    expect(stopped.length).toBeGreaterThan(0);
  });

  it('is deterministic: the same values in the same order give the same decisions', () => {
    for (const seed of SEEDS) {
      expect(simulate(ruleOf(spec), seed).decisions).toEqual(simulate(ruleOf(spec), seed).decisions);
    }
  });

  it('never decides about a trial that is not running, and returns a trial at most once', () => {
    for (const seed of SEEDS) {
      const { stopped } = simulate(ruleOf(spec), seed, {
        onReport: (step, out, running) => {
          for (const d of out) expect(running.has(d.trialId), `${d.trialId} decided after it ended (${JSON.stringify(step)})`).toBe(true);
        },
      });
      const ids = stopped.map((d) => d.trialId);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('answers a trial that was never reported, or ended without a value, with no decision', () => {
    const rule = ruleOf(spec);
    expect(rule.judge('never-seen')).toBeNull();
    rule.ended('silent', 'finished');
    expect(rule.judge('silent')).toBeNull();
  });

  it('agrees with its snapshot: a trial `report` stops is stopped by `judge` right after, with the same decision', () => {
    for (const seed of SEEDS) {
      const rule = ruleOf(spec);
      simulate(rule, seed, {
        onReport: (_step, out) => {
          for (const d of out) expect(rule.judge(d.trialId)).toEqual(d);
        },
      });
    }
  });

  it('decides the same for maximize with values v as for minimize with −v, reporting the values as logged', () => {
    for (const seed of SEEDS) {
      const min = simulate(ruleOf(spec, 'minimize'), seed);
      const max = simulate(ruleOf(spec, 'maximize'), seed, { negate: true });
      const norm = (x: number) => x + 0; // −0 and 0 are the same bar
      expect(max.stopped.map((d) => [d.trialId, d.at, norm(-d.value), norm(-d.threshold)])).toEqual(
        min.stopped.map((d) => [d.trialId, d.at, norm(d.value), norm(d.threshold)]),
      );
      for (const d of max.stopped) expect(d.rule).toBe(spec.type);
    }
  });

  it("keeps counting the values of ended trials, whether they arrive before or after the end (a replay reads the ends first)", () => {
    // Five trials that ran to their end with good values, and a newcomer that is clearly worse.
    const done = Array.from({ length: 5 }, (_, i) => ({ id: `done${i}`, values: Array.from({ length: 30 }, (_, k) => (1 + 0.1 * i) * Math.exp(-0.1 * k)) }));
    const newcomer = Array.from({ length: 30 }, (_, k) => 10 + Math.exp(-0.1 * k));
    const newcomerDecisions = (rule: StoppingRule) => newcomer.flatMap((v) => rule.report('late', v));

    const live = ruleOf(spec);
    for (const t of done) {
      // They may stop each other while they run; what counts below is that their values stay.
      for (const v of t.values) live.report(t.id, v);
      live.ended(t.id, 'finished');
    }
    const replayed = ruleOf(spec);
    for (const t of done) replayed.ended(t.id, 'finished');
    for (const t of done) for (const v of t.values) expect(replayed.report(t.id, v)).toEqual([]);

    const a = newcomerDecisions(live);
    const b = newcomerDecisions(replayed);
    expect(b).toEqual(a);
    expect(a.map((d) => d.trialId)).toEqual(['late']);
    // Alone, with nothing to compare against, the same values are never stopped.
    expect(newcomerDecisions(ruleOf(spec))).toEqual([]);
  });
});

describe('a rule refuses a spec it cannot run, naming the key', () => {
  const metric = { name: 'loss', goal: 'minimize' as const };
  const refused: { spec: Record<string, unknown>; key: string; name?: string }[] = [
    { spec: { type: 'hyperband', min_iter: 2, eta: 1 }, key: 'eta' },
    { spec: { type: 'hyperband', min_iter: 'x' }, key: 'min_iter' },
    { spec: { type: 'hyperband', min_iter: 0 }, key: 'min_iter' },
    // W&B raises for a non-integral min_iter; the rule must not quietly run bands 2, 7, 22, ...
    { spec: { type: 'hyperband', min_iter: 2.5 }, key: 'min_iter' },
    { spec: { type: 'hyperband', max_iter: 27 }, key: 's' },
    { spec: { type: 'hyperband', min_iter: 3, strict: 'yes' }, key: 'strict' },
    { spec: { type: 'asha', min_iter: 0 }, key: 'min_iter' },
    { spec: { type: 'asha', min_iter: 2.5 }, key: 'min_iter' },
    { spec: { type: 'asha', eta: 0.5 }, key: 'eta' },
    { spec: { type: 'asha', fit: 'cubic' }, key: 'fit' },
    { spec: { type: 'median', warmup_steps: -2 }, key: 'warmup_steps' },
    { spec: { type: 'median', warmup_steps: 1.5 }, key: 'warmup_steps' },
    { spec: { type: 'median', min_trials: 'x' }, key: 'min_trials' },
    { spec: { type: 'bogus' }, key: 'type' },
  ];
  for (const r of refused) r.name = `${JSON.stringify(r.spec)} (early_terminate.${r.key})`;

  it.each(refused)('$name: createStoppingRule throws a UsageError naming the key', ({ spec, key }) => {
    let error: unknown;
    try {
      createStoppingRule(configOf(spec));
    } catch (err) {
      error = err;
    }
    expect(error, 'accepted').toBeInstanceOf(UsageError);
    expect(String((error as Error).message)).toContain(`early_terminate.${key}`);
  });

  it.each(refused)('$name: parseConfig throws a ConfigError with an issue at the key', ({ spec, key }) => {
    let error: unknown;
    try {
      parseConfig({ method: 'random', metric, parameters: { x: { min: new Float(0), max: new Float(1) } }, early_terminate: spec });
    } catch (err) {
      error = err;
    }
    expect(error, 'accepted').toBeInstanceOf(UsageError);
    expect(((error as { issues?: { path: string }[] }).issues ?? []).map((i) => i.path)).toContain(`early_terminate.${key}`);
  });

  it.each(CASES)('$type without a metric to compare on is refused', ({ spec }) => {
    expect(() => createStoppingRule({ early_terminate: spec as StoppingConfig['early_terminate'] & object })).toThrow(UsageError);
  });
});
