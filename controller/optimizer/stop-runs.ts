/**
 * Early stopping as a library call, in the spirit of W&B's `stop_runs(config, runs)`: given a
 * sweep's `metric` and `early_terminate` and every run's logged values, the running trials to
 * stop now. The config is validated as the config parser validates those two keys, then the
 * stopping registry's rule decides, so the answer is the controller's.
 */
import { isParsedConfig } from '../../domain/sweep-config.js';
import type { TrialState } from '../../domain/trial-state.js';
import { parseStoppingKeys } from '../config/parse.js';
import { createStoppingRule, stoppingRuleEntry, type StopDecision, type StoppingConfig } from '../stopping/index.js';

export interface RunForStopping {
  id: string;
  state: TrialState;
  /**
   * The sweep metric's logged values in order: null for a row without it; NaN and infinities
   * are skipped like W&B's filtered history.
   */
  history: ReadonlyArray<number | null>;
}

/**
 * Which running trials to stop now, judged on everything they have logged: every trial's values
 * count (whatever its state), only running ones are judged. One decision per trial, in input
 * order. Throws `ConfigError` for a config the parser would refuse (a `min_iter` of 2.5, a
 * missing metric), naming the key.
 */
export function stopDecisions(config: StoppingConfig, runs: readonly RunForStopping[]): StopDecision[] {
  const rule = createStoppingRule(validated(config));
  if (!rule) return [];
  for (const run of runs) {
    if (run.state !== 'running') rule.ended(run.id, run.state);
    for (const v of run.history) if (v !== null && Number.isFinite(v)) rule.report(run.id, v);
  }
  const out: StopDecision[] = [];
  for (const run of runs) {
    if (run.state !== 'running') continue;
    const d = rule.judge(run.id);
    if (d) out.push(d);
  }
  return out;
}

/** The ids `stopDecisions` would stop, as W&B's `stop_runs` answers. */
export function stopRuns(config: StoppingConfig, runs: readonly RunForStopping[]): string[] {
  return stopDecisions(config, runs).map((d) => d.trialId);
}

/**
 * The config's two stopping keys, validated unless the parser produced the config. Two things
 * W&B's `stop_runs` accepts are read as it reads them, not refused as a sweep config would be
 * (tests/fixtures/conformance/hyperband.json, 10d, 10e and x04): keys the rule does not know are
 * dropped, and any goal but `maximize` minimizes. Everything else is the parser's verdict.
 */
function validated(config: StoppingConfig): StoppingConfig {
  if (isParsedConfig(config)) return config;
  const raw = config as { metric?: unknown; early_terminate?: unknown };
  return parseStoppingKeys({ metric: asWandbReadsMetric(raw.metric), early_terminate: withoutUnknownKeys(raw.early_terminate) });
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Only the name and the goal count; the goal is `maximize` or else `minimize`. */
function asWandbReadsMetric(metric: unknown): unknown {
  if (!isMapping(metric)) return metric;
  return { name: metric.name, goal: metric.goal === 'maximize' ? 'maximize' : 'minimize' };
}

function withoutUnknownKeys(earlyTerminate: unknown): unknown {
  if (!isMapping(earlyTerminate)) return earlyTerminate;
  const entry = stoppingRuleEntry(earlyTerminate.type);
  if (!entry) return earlyTerminate;
  const known = new Set(['type', ...Object.keys(entry.keys)]);
  return Object.fromEntries(Object.entries(earlyTerminate).filter(([k]) => known.has(k)));
}
