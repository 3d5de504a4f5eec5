/**
 * The metric messages agents publish to NATS JetStream and the controller consumes.
 *
 * One message carries a batch of points of one trial. Every batch has a per-trial sequence number
 * starting at 1; the JetStream message id is `${trialId}:${seq}`, so a resend after a lost ack is
 * dropped by JetStream's duplicate window, and the controller also ignores a (trial, seq) it has
 * already applied.
 */
import { z } from 'zod';

export const METRICS_STREAM = 'SWEEPER_METRICS';
export const METRICS_SUBJECT_PREFIX = 'sweeper.metrics';

/**
 * `sweeper.metrics.<sweepId>.<agentId>.<trialId>`: ids never contain dots. The agent is in the
 * subject so that NATS itself can hold each agent to its own subjects (controller/nats-auth.ts),
 * and the controller checks that the trial is one that agent holds.
 */
export function metricsSubject(sweepId: string, agentId: string, trialId: string): string {
  return `${METRICS_SUBJECT_PREFIX}.${sweepId}.${agentId}.${trialId}`;
}

/** Every subject one agent may publish metrics on in one sweep. */
export function agentMetricsWildcard(sweepId: string, agentId: string): string {
  return `${METRICS_SUBJECT_PREFIX}.${sweepId}.${agentId}.*`;
}

/** The parts of a metric subject, or null when it is not one. */
export function parseMetricsSubject(subject: string): { sweepId: string; agentId: string; trialId: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== METRICS_SUBJECT_PREFIX) return null;
  return { sweepId: parts[2], agentId: parts[3], trialId: parts[4] };
}

export function metricsMsgId(trialId: string, seq: number): string {
  return `${trialId}:${seq}`;
}

/** Limits on what one message may hold; larger or malformed messages are rejected and counted. */
export const METRIC_LIMITS = {
  maxPointsPerMessage: 5000,
  maxNameLength: 200,
  maxValuesPerPoint: 500,
  maxMessageBytes: 1024 * 1024,
} as const;

const metricName = z.string().min(1).max(METRIC_LIMITS.maxNameLength);

export const metricPointSchema = z.object({
  /** The step the program gave, or null when it gave none (the controller then uses the row index). */
  step: z.number().int().nonnegative().nullable(),
  /** Wall-clock time the agent captured the point, in ms since the epoch. */
  t: z.number(),
  /** Finite values only; non-finite and non-numeric ones go to `invalid`. */
  values: z.record(metricName, z.number().finite()),
  /** Names logged in this row with a value that was NaN, Inf or not a number, with its text. */
  invalid: z.record(metricName, z.string().max(100)).optional(),
  /**
   * A system sample the agent took (GPU utilisation, memory...), not a row the program logged:
   * it does not advance the trial's step, and its series are indexed by time.
   */
  system: z.boolean().optional(),
});

export const metricBatchSchema = z.object({
  sweepId: z.string().min(1).max(100),
  trialId: z.string().min(1).max(100),
  seq: z.number().int().positive(),
  points: z.array(metricPointSchema).max(METRIC_LIMITS.maxPointsPerMessage),
  /** Lines of output the agent could not read as metrics since the last batch (counted, not kept). */
  malformedLines: z.number().int().nonnegative().optional(),
});

export type MetricPoint = z.infer<typeof metricPointSchema>;
export type MetricBatch = z.infer<typeof metricBatchSchema>;
