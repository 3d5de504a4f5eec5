/**
 * Optuna's MedianPruner and SuccessiveHalvingPruner, re-implemented from their documented
 * behaviour for `npm run bench:stopping` only, so the reference points are measured on
 * the same simulated curves as Sweeper's rules (W&B's hyperband needs no stand-in: Sweeper's
 * matches W&B's decisions exactly). Minimisation only; one value per step; not shipped.
 */

/** What the simulator drives: values in step order, and the trials that ended. */
export interface SimRule {
  /** Returns the ids of running trials to stop (here only ever the reporting trial). */
  report(trialId: string, value: number): string[];
  ended(trialId: string, state: 'finished' | 'stopped'): void;
}

/** numpy.percentile's default (linear) interpolation. */
function percentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = ((s.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}

/**
 * MedianPruner (PercentilePruner at 50, n_startup_trials 5, n_warmup_steps 0): once 5 trials
 * have completed, prune when the trial's best value so far is worse than the median of the
 * completed trials' values at this step. Pruned trials never count.
 */
export function optunaMedian(startupTrials = 5, warmupSteps = 0): SimRule {
  const values = new Map<string, number[]>();
  const best = new Map<string, number>();
  const completed: string[] = [];
  return {
    report(id, value) {
      const vs = values.get(id) ?? [];
      values.set(id, vs);
      vs.push(value);
      best.set(id, Math.min(best.get(id) ?? Infinity, value));
      const step = vs.length - 1; // Optuna's steps count from 0 here
      if (completed.length < startupTrials || step < warmupSteps) return [];
      const at = completed.map((c) => values.get(c)![step]).filter((v) => v !== undefined);
      return at.length > 0 && best.get(id)! > percentile(at, 50) ? [id] : [];
    },
    ended(id, state) {
      if (state === 'finished') completed.push(id);
    },
  };
}

/**
 * SuccessiveHalvingPruner (min_resource 'auto', reduction_factor 4, min_early_stopping_rate 0):
 * no pruning before a trial completes, which sets min_resource to max(last step // 100, 1); rungs
 * at min_resource·4^k. At each rung the trial's value joins that rung's values (every trial's,
 * in any state) and it is promoted only if it is among the best max(1, count // 4).
 */
export function optunaSuccessiveHalving(reductionFactor = 4): SimRule {
  const n = new Map<string, number>();
  const rungOf = new Map<string, number>();
  const rungValues: number[][] = [];
  let minResource: number | undefined;
  return {
    report(id, value) {
      const step = (n.get(id) ?? 0) + 1;
      n.set(id, step);
      if (minResource === undefined) return [];
      let rung = rungOf.get(id) ?? 0;
      while (step >= minResource * reductionFactor ** rung) {
        const competing = (rungValues[rung] ??= []);
        competing.push(value);
        competing.sort((a, b) => a - b);
        const idx = Math.max(0, Math.floor(competing.length / reductionFactor) - 1);
        if (!(value <= competing[idx])) return [id];
        rung++;
        rungOf.set(id, rung);
      }
      return [];
    },
    ended(id, state) {
      if (state === 'finished' && minResource === undefined) minResource = Math.max(Math.floor(n.get(id)! / 100), 1);
    },
  };
}
