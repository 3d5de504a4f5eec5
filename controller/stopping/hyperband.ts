/**
 * Hyperband early termination with W&B's semantics exactly (wandb/sweeps `hyperband_stop_runs`),
 * checked against W&B's own answers in shared/conformance/hyperband.json:
 *
 * - Brackets ("bands"): from max_iter and s, max_iter divided by eta up to s times, stopping
 *   below 1, each truncated, sorted; otherwise min_iter·eta^k truncated, for k < 100.
 * - An iteration is the position of a value in the trial's valid values of the metric; values
 *   are negated for maximize, so lower is better throughout.
 * - The threshold of bracket b: value number b of every trial (any state) that has one, sorted,
 *   the element at int((1/eta)·count) — W&B multiplies by 1/eta rather than dividing, and the
 *   two can round differently.
 * - A running trial is judged at the largest bracket it has reached and stopped when its value
 *   there (strict) or its best value so far (not strict) is strictly above that threshold.
 *
 * W&B recomputes everything on every check. Here each bracket keeps its values sorted and its
 * judged running trials ordered by their judged value, so a new value is one binary insertion,
 * and a tightened threshold finds every trial it condemns at the end of one list.
 */
import { UsageError } from '../../domain/errors.js';
import type { Objective } from '../../domain/objective.js';
import { isCount, isFiniteNumber, type EarlyTerminateSpec } from '../../domain/sweep-config.js';
import type { TrialState } from '../../domain/trial-state.js';
import { toNumber } from '../../domain/values.js';
import { KeyedSet, insertSorted } from './sorted.js';
import { fmt, objectiveFor, readKeys } from './spec.js';
import type { StopDecision, StoppingCheck, StoppingConfig, StoppingKeys, StoppingRule } from './types.js';

/** W&B's defaults. */
export const HYPERBAND_DEFAULTS = { eta: 3, strict: true } as const;

/** W&B's keys, with its defaults filled as W&B fills them, so a rule sees what will run. */
export const HYPERBAND_KEYS = {
  min_iter: { kind: 'count', min: 1 },
  max_iter: { kind: 'count', min: 1 },
  s: { kind: 'count', min: 1 },
  eta: { kind: 'number', above: 1, default: HYPERBAND_DEFAULTS.eta },
  strict: { kind: 'boolean', default: HYPERBAND_DEFAULTS.strict },
} as const satisfies StoppingKeys;

/**
 * Which iteration keys go together, and whether the bands W&B derives from them exist at all.
 */
export const checkHyperband: StoppingCheck = (raw, issues, warnings) => {
  const has = (k: string) => raw[k] !== undefined;
  if (!has('min_iter') && !has('max_iter')) {
    issues.push({ path: 'early_terminate', message: 'hyperband needs min_iter, or max_iter and s' });
    return;
  }
  if (has('max_iter') && !has('s')) {
    issues.push({ path: 'early_terminate.s', message: 'required with max_iter (the number of bands below max_iter)' });
  }
  if (has('max_iter') && has('s') && has('min_iter')) {
    warnings.push({ path: 'early_terminate.min_iter', message: 'ignored: max_iter and s define the bands' });
  }
  if (has('s') && !has('max_iter') && has('min_iter')) {
    warnings.push({ path: 'early_terminate.s', message: 'ignored without max_iter' });
  }
  const maxIter = raw.max_iter;
  const eta = raw.eta ?? HYPERBAND_DEFAULTS.eta;
  if (isCount(maxIter, 1) && has('s') && isFiniteNumber(eta) && toNumber(eta) > 1) {
    // W&B's first band is max_iter / eta; below 1 there are no bands and every run would continue.
    const first = toNumber(maxIter) / toNumber(eta);
    if (first < 1) {
      issues.push({
        path: 'early_terminate.max_iter',
        message: `gives no hyperband bands: max_iter / eta = ${Number(first.toPrecision(3))} is below 1; increase max_iter or decrease eta`,
      });
    }
  }
};

/** W&B's `range(100)` for min_iter brackets. */
const MIN_ITER_BRACKETS = 100;

/** W&B's bracket list for a hyperband spec, duplicates included (eta < 2 repeats small ones). */
export function hyperbandBands(spec: EarlyTerminateSpec): number[] {
  const { eta, max_iter: maxIter, min_iter: minIter, s } = readKeys(spec, HYPERBAND_KEYS);
  const bands: number[] = [];
  if (maxIter !== undefined) {
    if (s === undefined) throw new UsageError('early_terminate.s: required with max_iter');
    // Divided step by step, as W&B does: max_iter / eta**k can truncate differently.
    let band = maxIter;
    for (let i = 0; i < s; i++) {
      band /= eta;
      if (band < 1) break;
      bands.push(Math.trunc(band));
    }
    bands.sort((a, b) => a - b);
  } else if (minIter !== undefined) {
    let band = minIter;
    for (let i = 0; i < MIN_ITER_BRACKETS; i++) {
      bands.push(Math.trunc(band));
      band *= eta;
    }
  } else {
    throw new UsageError('early_terminate: hyperband needs min_iter, or max_iter and s');
  }
  if (bands.length === 0) {
    throw new UsageError('early_terminate: gives no hyperband brackets (max_iter / eta is below 1); increase max_iter or decrease eta');
  }
  return bands;
}

interface TrialEntry {
  /** Valid values so far. */
  n: number;
  /** Index in `brackets` of the largest bracket reached, -1 before the first. */
  bracket: number;
  /** Oriented value at that bracket, and the best (lowest) oriented value so far. */
  atBracket: number;
  best: number;
  /** Running and not yet condemned: listed in `judged[bracket]`. */
  candidate: boolean;
}

export class HyperbandRule implements StoppingRule {
  readonly type = 'hyperband';
  /** Distinct brackets, ascending. A repeated bracket has the same values, so one copy judges alike. */
  readonly brackets: readonly number[];
  private readonly r: number;
  private readonly strict: boolean;
  private readonly o: Objective;
  /** Per bracket: every trial's oriented value there, sorted. */
  private readonly values: number[][];
  /** Per bracket: the candidates judged there, by the value they are judged on. */
  private readonly judged: KeyedSet[];
  private readonly trials = new Map<string, TrialEntry>();

  constructor(config: StoppingConfig) {
    const spec = config.early_terminate;
    if (!spec || spec.type !== 'hyperband') throw new UsageError("early_terminate.type: expected 'hyperband'");
    this.o = objectiveFor(config);
    const { eta, strict } = readKeys(spec, HYPERBAND_KEYS);
    this.brackets = [...new Set(hyperbandBands(spec))];
    this.r = 1.0 / eta;
    this.strict = strict;
    this.values = this.brackets.map(() => []);
    this.judged = this.brackets.map(() => new KeyedSet());
  }

  /** The bracket's threshold, oriented (negated for maximize); Infinity before any trial reaches it. */
  thresholdAt(bracket: number): number {
    const i = this.brackets.indexOf(bracket);
    if (i < 0) throw new RangeError(`${bracket} is not a bracket (brackets: ${this.brackets.join(', ')})`);
    return this.threshold(i);
  }

  report(trialId: string, value: number): StopDecision[] {
    const t = this.entry(trialId, true);
    const v = this.o.sign * value;
    t.n++;
    const next = t.bracket + 1;
    if (next < this.brackets.length && t.n === this.brackets[next]) {
      insertSorted(this.values[next], v);
      if (t.candidate && t.bracket >= 0) this.judged[t.bracket].delete(this.key(t), trialId);
      t.bracket = next;
      t.atBracket = v;
      if (v < t.best) t.best = v;
      if (t.candidate) this.judged[next].add(this.key(t), trialId);
      // Only this bracket's threshold moved; it may condemn this trial and others judged here.
      return this.condemn(next);
    }
    if (v < t.best) {
      // A better best only lowers a non-strict key: it can condemn nobody, but must stay sorted.
      if (!this.strict && t.candidate && t.bracket >= 0) this.judged[t.bracket].delete(t.best, trialId);
      t.best = v;
      if (!this.strict && t.candidate && t.bracket >= 0) this.judged[t.bracket].add(t.best, trialId);
    }
    return [];
  }

  ended(trialId: string, _state: TrialState): void {
    const t = this.entry(trialId, false);
    if (t.candidate && t.bracket >= 0) this.judged[t.bracket].delete(this.key(t), trialId);
    t.candidate = false;
  }

  judge(trialId: string): StopDecision | null {
    const t = this.trials.get(trialId);
    if (!t || t.bracket < 0) return null;
    const threshold = this.threshold(t.bracket);
    const key = this.key(t);
    return key > threshold ? this.decision(trialId, t.bracket, key, threshold) : null;
  }

  private entry(trialId: string, running: boolean): TrialEntry {
    let t = this.trials.get(trialId);
    if (!t) {
      t = { n: 0, bracket: -1, atBracket: NaN, best: Infinity, candidate: running };
      this.trials.set(trialId, t);
    }
    return t;
  }

  private key(t: TrialEntry): number {
    return this.strict ? t.atBracket : t.best;
  }

  private threshold(i: number): number {
    const a = this.values[i];
    if (a.length === 0) return Infinity;
    // Guarded: with eta a hair above 1, r·count can round up to count (W&B would raise).
    return a[Math.min(a.length - 1, Math.floor(this.r * a.length))];
  }

  private condemn(i: number): StopDecision[] {
    const threshold = this.threshold(i);
    return this.judged[i].takeAbove(threshold).map(({ id, key }) => {
      this.trials.get(id)!.candidate = false;
      return this.decision(id, i, key, threshold);
    });
  }

  private decision(trialId: string, i: number, key: number, threshold: number): StopDecision {
    const value = this.o.sign * key;
    const bar = this.o.sign * threshold;
    const what = this.strict ? 'value' : 'best value';
    return {
      trialId,
      rule: 'hyperband',
      at: this.brackets[i],
      value,
      threshold: bar,
      reason: `hyperband: ${what} ${fmt(value)} ${this.o.worseSymbol} threshold ${fmt(bar)} at bracket ${this.brackets[i]}`,
    };
  }
}
