/**
 * Who is alive and what they were told: the registered agents with the last time each was heard
 * from, and the stop orders still owed to them. Kept in memory only: a restarted controller asks
 * every agent to register again and counts each as seen at its own start, and stop orders are
 * derived again from the sweep's state (heartbeats repeat them), so nothing here needs the log.
 */
import { NotFoundError, UsageError, WrongSweepError } from '../../domain/errors.js';
import { isValidId, ID_RULE } from '../../domain/ids.js';
import type { StopKind } from '../../domain/stop-kind.js';
import { isSweepOver } from '../../domain/trial-state.js';
import type { SweepRecord, TrialRecord } from './state.js';

export interface AgentInfo {
  id: string;
  sweepId: string;
  hostname: string;
  pid: number;
  slots: number;
  lastSeen: number;
}

export interface StopOrder {
  trialId: string;
  /** For people: the leaderboard shows it as the trial's reason. */
  reason: string;
  /** 0 kills at once; -1 leaves the agent's own grace period. */
  graceMs: number;
  kind: StopKind;
}

/** The agent's own grace period, for a stop order. */
export const AGENT_GRACE = -1;

export class AgentRegistry {
  private readonly agents = new Map<string, AgentInfo>();

  register(info: Omit<AgentInfo, 'slots'> & { slots: number }): AgentInfo {
    if (!isValidId(info.id)) throw new UsageError(`invalid agent id '${info.id}': ${ID_RULE}`);
    const agent = { ...info, slots: Math.max(1, info.slots || 1) };
    this.agents.set(agent.id, agent);
    return agent;
  }

  get(agentId: string): AgentInfo | undefined {
    return this.agents.get(agentId);
  }

  /**
   * The registered agent, or a refusal: an agent must register (again, after a controller
   * restart) before it is handed or may report trials, and only for the sweep it registered for.
   * Typed errors, since the API adapter counts each refusal by its type (unknown_agent, wrong_sweep).
   */
  require(agentId: string, sweepId: string): AgentInfo {
    const agent = this.agents.get(agentId);
    if (!agent) throw new NotFoundError('agent', agentId);
    if (agent.sweepId !== sweepId) throw new WrongSweepError(`agent '${agentId}' registered for sweep '${agent.sweepId}', not '${sweepId}'`);
    return agent;
  }

  /** Agents of the sweep heard from at or after `since`. */
  activeCount(sweepId: string, since: number): number {
    let n = 0;
    for (const a of this.agents.values()) if (a.sweepId === sweepId && a.lastSeen >= since) n++;
    return n;
  }
}

/** Per agent: trial id → why and how to stop it, until the trial ends. */
export class StopOrders {
  private readonly byAgent = new Map<string, Map<string, Omit<StopOrder, 'trialId'>>>();

  add(trial: Pick<TrialRecord, 'id' | 'agentId'>, order: Omit<StopOrder, 'trialId'>): StopOrder {
    let orders = this.byAgent.get(trial.agentId);
    if (!orders) this.byAgent.set(trial.agentId, (orders = new Map()));
    orders.set(trial.id, order);
    return { trialId: trial.id, ...order };
  }

  get(agentId: string, trialId: string): StopOrder | undefined {
    const order = this.byAgent.get(agentId)?.get(trialId);
    return order && { trialId, ...order };
  }

  /** The trial ended: nothing is owed about it any more. */
  settle(trial: Pick<TrialRecord, 'id' | 'agentId'>): void {
    this.byAgent.get(trial.agentId)?.delete(trial.id);
  }
}

/**
 * What a heartbeat answers about the trials an agent says it runs: pending orders, and a stop for
 * every trial the controller does not count as that agent's running trial (declared crashed while
 * the agent was cut off, so its parameters may already run elsewhere, or of a sweep stopped
 * while the controller was down).
 */
export function heartbeatStops(
  sweep: SweepRecord,
  agentId: string,
  runningTrialIds: readonly string[],
  trials: ReadonlyMap<string, TrialRecord>,
  orders: StopOrders,
): StopOrder[] {
  const stop: StopOrder[] = [];
  for (const id of runningTrialIds) {
    const order = orders.get(agentId, id);
    if (order) {
      stop.push(order);
      continue;
    }
    const trial = trials.get(id);
    if (!trial || trial.agentId !== agentId || trial.state !== 'running') {
      stop.push({ trialId: id, reason: `trial is ${trial ? trial.state : 'unknown'} on the controller`, graceMs: AGENT_GRACE, kind: 'lost' });
    } else if (isSweepOver(sweep.state)) {
      stop.push({ trialId: id, reason: `sweep ${sweep.state}`, graceMs: sweep.state === 'cancelled' ? 0 : AGENT_GRACE, kind: 'sweep-over' });
    }
  }
  return stop;
}

/**
 * Running trials whose agent has sent nothing for longer than the timeout, with the reason they
 * crashed. A restarted controller counts every agent as seen at its own start (`startedAt`).
 */
export function* lostTrials(
  sweeps: Iterable<SweepRecord>,
  agents: AgentRegistry,
  opts: { now: number; startedAt: number; timeoutMs: number },
): Generator<{ trial: TrialRecord; reason: string }> {
  for (const sweep of sweeps) {
    for (const trial of sweep.trials) {
      if (trial.state !== 'running') continue;
      const lastSeen = Math.max(agents.get(trial.agentId)?.lastSeen ?? 0, opts.startedAt, trial.startedAt);
      if (opts.now - lastSeen <= opts.timeoutMs) continue;
      yield { trial, reason: `agent ${trial.agentId} sent no heartbeat for ${Math.round((opts.now - lastSeen) / 1000)}s` };
    }
  }
}
