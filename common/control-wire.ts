/**
 * Orders from the controller to one agent, on core NATS for speed (a stop reaches the agent in
 * milliseconds). Heartbeat responses repeat pending orders, so a lost message only delays a stop.
 */
import { z } from 'zod';
import { STOP_KINDS } from '../domain/stop-kind.js';

export function controlSubject(agentId: string): string {
  return `sweeper.control.${agentId}`;
}

/** The inbox prefix of an agent's NATS connection; with Sweeper's NATS auth it may subscribe to no other replies. */
export function agentInboxPrefix(agentId: string): string {
  return `_INBOX.${agentId}`;
}

export const controlMessageSchema = z.object({
  type: z.literal('stop'),
  trialId: z.string().min(1).max(200),
  reason: z.string().max(1000),
  /** 0: kill at once (cancel); -1 or absent: the agent's own grace period. */
  graceMs: z.number().int().min(-1).max(3_600_000).optional(),
  /** Why, as a kind; absent from a controller older than the field. */
  kind: z.enum(STOP_KINDS).optional(),
});

export type ControlMessage = z.infer<typeof controlMessageSchema>;
