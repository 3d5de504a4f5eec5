/**
 * What an export of a sweep holds (`ExportSweep`, the dashboard's download): a header naming the
 * columns, then each trial in number order with its metric summaries and, when asked, every
 * metric's points from the MetricStore. Read-only, over SweepService's public reads, and lazy:
 * one trial's history at a time, so exporting a 10,000-trial sweep never copies all of it at once.
 * Formatting is common/export-format.ts's.
 *
 * The header is taken first, from the trials there are then: a trial created, or a metric first
 * logged, while the export is being written is left out of it rather than breaking its columns.
 */
import { orderParamNames, SYSTEM_PREFIX, type ExportHeader, type ExportMetric, type ExportSeries, type ExportTrial } from '../../common/export-format.js';
import { flattenParams } from '../../domain/params.js';
import type { ParamSpecs } from '../../domain/sweep-config.js';
import type { MetricStore } from './metric-store.js';
import type { SweepRecord } from './state.js';
import type { TrialView } from './trial-view.js';

/** What an export reads of the service (SweepService has it all). */
export interface ExportSource {
  getSweep(sweepId: string): SweepRecord;
  leaderboard(sweep: SweepRecord): TrialView[];
  readonly metrics: MetricStore;
}

export interface ExportOptions {
  /** Every metric's points, not only its summary. */
  history: boolean;
  /** The agent's samples (`system/*`) too. */
  system: boolean;
  /** The export's time (default now). */
  now?: number;
}

export type ExportPart = { kind: 'header'; header: ExportHeader } | { kind: 'trial'; trial: ExportTrial };

/** The header, then the trials. Throws NotFoundError (on the first step) for an unknown sweep. */
export function* exportSweep(source: ExportSource, sweepId: string, opts: ExportOptions): Generator<ExportPart, void, undefined> {
  const sweep = source.getSweep(sweepId);
  const trials = [...sweep.trials];
  const views = new Map(source.leaderboard(sweep).map((v) => [v.id, v]));
  const wanted = (name: string) => opts.system || !name.startsWith(SYSTEM_PREFIX);
  const metricNames = new Set<string>();
  const paramNames: string[] = [];
  for (const t of trials) {
    for (const s of source.metrics.summaries(t.id)) if (wanted(s.name)) metricNames.add(s.name);
    for (const [name] of flattenParams(t.params)) paramNames.push(name);
  }
  const metric = sweep.config.metric;
  yield {
    kind: 'header',
    header: {
      sweepId: sweep.id,
      metricName: metric?.name ?? '',
      metricGoal: metric?.goal ?? '',
      paramNames: orderParamNames(configParamNames(sweep.config.parameters), paramNames),
      metricNames: [...metricNames].sort(),
      exportedAt: opts.now ?? Date.now(),
    },
  };
  for (const t of trials) {
    const view = views.get(t.id);
    if (!view) continue;
    const metrics: ExportMetric[] = source.metrics
      .summaries(t.id)
      .filter((s) => metricNames.has(s.name))
      .map(({ name, last, min, max }) => ({ name, last, min, max }));
    const series: ExportSeries[] = opts.history ? metrics.map(({ name }) => ({ name, ...source.metrics.history(t.id, name) })) : [];
    yield {
      kind: 'trial',
      trial: {
        id: view.id,
        number: view.number,
        state: view.state,
        agentId: view.agentId,
        paramsJson: view.paramsJson,
        startedAt: view.startedAt,
        endedAt: view.endedAt,
        reason: view.reason,
        value: view.bestValue,
        rank: view.rank,
        metrics,
        series,
      },
    };
  }
}

/** The config's leaf parameters as dotted names, in the order the config lists them. */
function configParamNames(specs: ParamSpecs, prefix = ''): string[] {
  return Object.entries(specs).flatMap(([key, spec]) => {
    const name = prefix ? `${prefix}.${key}` : key;
    return spec.kind === 'nested' ? configParamNames(spec.parameters, name) : [name];
  });
}
