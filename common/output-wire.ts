/**
 * The live output messages agents publish to NATS JetStream while a trial runs, and the
 * controller consumes into a bounded ring per trial (controller/sweeps/output-log.ts).
 *
 * One message carries a batch of one trial's stdout and stderr lines, in the order the agent read
 * them. A batch has a seq per run of the trial (a preempted trial continued elsewhere is a second
 * run, with a run id of its own); the JetStream message id is `${trialId}:${run}:${seq}`, so a
 * resend after a lost ack is dropped by JetStream's duplicate window. The last batch of a run is
 * marked `final`: the controller then knows it has every line that run sent.
 */
import { z } from 'zod';
import { MAX_ID_CHARS } from '../domain/ids.js';

export const OUTPUT_STREAM = 'SWEEPER_OUTPUT';
export const OUTPUT_SUBJECT_PREFIX = 'sweeper.output';

/**
 * `sweeper.output.<sweepId>.<agentId>.<trialId>`, as metrics-wire.ts: the agent is in the subject
 * so that NATS holds each agent to its own subjects, and the controller to its own trials.
 */
export function outputSubject(sweepId: string, agentId: string, trialId: string): string {
  return `${OUTPUT_SUBJECT_PREFIX}.${sweepId}.${agentId}.${trialId}`;
}

/** Every subject one agent may publish output on in one sweep. */
export function agentOutputWildcard(sweepId: string, agentId: string): string {
  return `${OUTPUT_SUBJECT_PREFIX}.${sweepId}.${agentId}.*`;
}

/** The parts of an output subject, or null when it is not one. */
export function parseOutputSubject(subject: string): { sweepId: string; agentId: string; trialId: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== OUTPUT_SUBJECT_PREFIX) return null;
  return { sweepId: parts[2], agentId: parts[3], trialId: parts[4] };
}

export function outputMsgId(trialId: string, run: string, seq: number): string {
  return `${trialId}:${run}:${seq}`;
}

/**
 * What one message may hold. The agent cuts batches well inside these (agent/output-limits.ts);
 * the controller refuses and counts anything outside them.
 */
export const OUTPUT_LIMITS = {
  /** UTF-8 bytes of one line; the agent cuts longer ones, ending them in '…'. */
  maxLineBytes: 4096,
  /** Lines in one batch: under 1024, so a line's position in the stream fits one number (see output-log.ts). */
  maxLinesPerBatch: 1000,
  maxMessageBytes: 256 * 1024,
} as const;

export const OUTPUT_STREAMS = ['stdout', 'stderr'] as const;
export type OutputStreamName = (typeof OUTPUT_STREAMS)[number];

export const outputLineSchema = z.object({
  /** The program's stream: 'o' stdout, 'e' stderr (short: a chatty trial sends many). */
  s: z.enum(['o', 'e']),
  /** When the agent read the line, in ms since the epoch. */
  t: z.number(),
  /** In characters, which UTF-8 bytes bound from above. */
  x: z.string().max(OUTPUT_LIMITS.maxLineBytes),
});

export const outputBatchSchema = z.object({
  sweepId: z.string().min(1).max(MAX_ID_CHARS),
  trialId: z.string().min(1).max(MAX_ID_CHARS),
  /** This run of the trial, chosen by its agent. */
  run: z.string().min(1).max(64),
  seq: z.number().int().positive(),
  lines: z.array(outputLineSchema).max(OUTPUT_LIMITS.maxLinesPerBatch),
  /** Lines (and their bytes) the agent did not send since its previous batch: over its rate limit, or while NATS was slow. */
  droppedLines: z.number().int().nonnegative().optional(),
  droppedBytes: z.number().int().nonnegative().optional(),
  /** The run's last batch: its program has exited. */
  final: z.boolean().optional(),
});

export type OutputLineWire = z.infer<typeof outputLineSchema>;
export type OutputBatch = z.infer<typeof outputBatchSchema>;

export function streamOfWire(s: OutputLineWire['s']): OutputStreamName {
  return s === 'o' ? 'stdout' : 'stderr';
}
