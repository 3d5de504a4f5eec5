/**
 * What "better" means for a sweep: the metric and its goal. Every comparison of metric values
 * (strategies, stopping rules, the leaderboard, `metric.target`, the dashboard and the CLI) goes
 * through an `Objective`, so a sweep with several objectives later extends one type instead of
 * a dozen `goal === 'maximize'` tests.
 */

export const GOALS = ['minimize', 'maximize'] as const;
export type Goal = (typeof GOALS)[number];

export class Objective {
  /** Multiplies a value into "lower is better" (-1 for maximize). */
  readonly sign: 1 | -1;

  constructor(
    readonly metric: string,
    readonly goal: Goal = 'minimize',
  ) {
    this.sign = goal === 'maximize' ? -1 : 1;
  }

  /** Whether `a` is strictly better than `b`. */
  better(a: number, b: number): boolean {
    return this.sign * a < this.sign * b;
  }

  /** The best of the values, or null when there is none. NaN counts as no value. */
  bestOf(values: Iterable<number | null | undefined>): number | null {
    let best: number | null = null;
    for (const v of values) {
      if (v === null || v === undefined || Number.isNaN(v)) continue;
      if (best === null || this.better(v, best)) best = v;
    }
    return best;
  }

  /** Sort order, best first: negative when `a` is better than `b`. */
  compare(a: number, b: number): number {
    return this.sign * (a - b);
  }

  /** The value turned into one to minimise. */
  toMinimize(v: number): number {
    return this.sign * v;
  }

  /** Whether `value` reaches `target` (W&B's `metric.target`): at or past it in the goal's direction. */
  reaches(value: number, target: number): boolean {
    return this.sign * value <= this.sign * target;
  }

  /** The comparison a value that is worse than a bar fails, as people read it (`>` for minimize). */
  get worseSymbol(): '>' | '<' {
    return this.sign === 1 ? '>' : '<';
  }
}

/** The objective of a config's `metric`, or null without one. A missing goal means minimize, as in W&B. */
export function objectiveOf(metric: { name: string; goal?: Goal } | undefined | null): Objective | null {
  return metric ? new Objective(metric.name, metric.goal ?? 'minimize') : null;
}
