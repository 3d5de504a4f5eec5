/**
 * The controller's core: sweeps, trials and agents, behind plain async methods. The gRPC server
 * and the dashboard are thin adapters over this class, and it knows nothing of the network
 * itself: events go to an `EventLog`, metrics arrive through `onMetrics`, stop orders leave
 * through `sendControl`.
 *
 * Every state change is appended to the event log first and applied to memory after, so the
 * in-memory view is always something the log can rebuild. What the service keeps beside the
 * event-sourced state is either derived (each sweep's `SweepAggregate`, rebuilt by `rebuild()`
 * and fed by the metric replay) or liveness that a restart asks for again (agents, stop orders,
 * the standby: liveness.ts, scheduling.ts).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ControlMessage } from '../../common/control-wire.js';
import { LatencyHistogram } from '../../common/histogram.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { MetricBatch } from '../../common/metrics-wire.js';
import {
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_MAX_CRASH_RETRIES,
  DEFAULT_METRIC_WAIT_MS,
  heartbeatIntervalFor,
} from '../../domain/defaults.js';
import { IllegalStateError, NotFoundError, NotHolderError } from '../../domain/errors.js';
import { trialIdOf } from '../../domain/ids.js';
import type { StopKind } from '../../domain/stop-kind.js';
import { leafEntries } from '../../domain/params.js';
import { isRankable, isSweepOver, isTerminal, type SweepState, type TrialState } from '../../domain/trial-state.js';
import { stringifyTyped } from '../../domain/values.js';
import { decodeConfig, encodeConfig } from '../config/codec.js';
import { ConfigError } from '../config/errors.js';
import { parseConfigText } from '../config/parse.js';
import { createStrategy } from '../strategies/index.js';
import type { Strategy } from '../strategies/types.js';
import { SweepAggregate } from './aggregate.js';
import { countedTrials } from '../optimizer/ask.js';
import type { EventLog } from './event-log.js';
import { countRefusals, logRefusals } from './event-log.js';
import type { MetricRefusal } from './ingest.js';
import { AGENT_GRACE, AgentRegistry, heartbeatStops, lostTrials, StopOrders, type StopOrder } from './liveness.js';
import { MetricStore } from './metric-store.js';
import { crashedToRetry, hasUnfinished, heldTrials, PAUSED_POLL_MS, preemptedToResume, Standby, STANDBY_POLL_MS } from './scheduling.js';
import type { ControllerEvent, ControllerState, SweepRecord, TrialRecord } from './state.js';
import { applyEvent, emptyState, EVENT_LIMITS, rebuildState } from './state.js';
import { classifyEnd, type TrialCompletion } from './trial-end.js';
import * as views from './trial-view.js';
import type { SweepView, TrialView } from './trial-view.js';

export type { StopOrder } from './liveness.js';
export { classifyEnd, type TrialCompletion } from './trial-end.js';

export type { SweepView, TrialView } from './trial-view.js';

/** What recording a trial's end needs of its agent's report. */
type EndReport = Pick<TrialCompletion, 'exitCode' | 'signal' | 'argv' | 'stdoutTail' | 'stderrTail' | 'metricPoints' | 'droppedPoints' | 'lostReason'>;

export type TrialRequestOutcome =
  | { kind: 'trial'; trial: TrialRecord; command: readonly string[]; program: string }
  | { kind: 'retry'; afterMs: number }
  | { kind: 'done'; reason: string };

export interface SweepServiceOptions {
  eventLog: EventLog;
  metrics?: MetricStore;
  log?: Logger;
  now?: () => number;
  heartbeatIntervalMs?: number;
  /** A trial whose agent sent no heartbeat for this long becomes `crashed`. Default 30 s. */
  heartbeatTimeoutMs?: number;
  /** How many times the parameters of a crashed trial are run again. Default 1. */
  maxCrashRetries?: number;
  /** How long CompleteTrial waits for the trial's last metric batch to be ingested. */
  metricWaitMs?: number;
  sendControl?: (agentId: string, message: ControlMessage) => void;
}

const TARGET_REASON = 'metric.target reached';
/** Limits on what one sweep may ask of the controller. */
const MAX_CONFIG_CHARS = EVENT_LIMITS.maxConfigTextChars;
const MAX_PARAMETERS = 1000;
/** Room under NATS's default max_payload (1 MiB) for the headers. */
const MAX_EVENT_BYTES = 1024 * 1024 - 4096;
/**
 * How long RequestTrial for a model-based sweep waits for the metric replay of a restarted
 * controller to catch up before telling the agent to ask again (it is never handed a trial
 * chosen from half the values).
 */
const REPLAY_WAIT_MS = 10_000;
const REPLAY_RETRY_MS = 1000;
/** An agent heard from within this long counts as active in a sweep's view. */
const ACTIVE_AGENT_MS = 30_000;

export class SweepService {
  readonly metrics: MetricStore;
  /** Capture-to-controller delay of metric points, for `GetStats` and the ingest benchmark. */
  readonly ingestLag = new LatencyHistogram();
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  private readonly state: ControllerState = emptyState();
  /** Per sweep: what is derived from its record and its metrics (see aggregate.ts). */
  private readonly aggregates = new Map<string, SweepAggregate>();
  private readonly agents = new AgentRegistry();
  private readonly stopOrders = new StopOrders();
  private readonly standby: Standby;
  /** Resolves once the metric store holds the replayed stream (see `awaitMetricReplay`). */
  private metricReplay: Promise<void> = Promise.resolve();
  private metricReplayDone = true;
  /** Wall-clock start, for telling live metric points from replayed ones. */
  private readonly liveSince = Date.now();
  /** Start on the service's clock: every agent counts as seen then. */
  private readonly startedAt: number;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly changes = new EventEmitter();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxCrashRetries: number;
  private readonly metricWaitMs: number;
  /** Calls and metric batches refused inside the service, by reason (GetStats shows them). */
  private readonly refused: Record<string, number> = {};

  constructor(private readonly options: SweepServiceOptions) {
    this.metrics = options.metrics ?? new MetricStore();
    this.log = options.log ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    // Several beats must fit in a timeout, or a live agent would be declared dead.
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? heartbeatIntervalFor(this.heartbeatTimeoutMs);
    this.maxCrashRetries = options.maxCrashRetries ?? DEFAULT_MAX_CRASH_RETRIES;
    this.metricWaitMs = options.metricWaitMs ?? DEFAULT_METRIC_WAIT_MS;
    this.standby = new Standby(this.maxCrashRetries);
    this.changes.setMaxListeners(0);
  }

  /** Rebuild the view from the event log. Call once before serving. */
  async init(): Promise<void> {
    const replay = await this.options.eventLog.replay();
    // What could not have been written by a controller is skipped and counted, never thrown:
    // one forged or corrupt message must not keep the controller from starting.
    const skipped = rebuildState(this.state, replay, decodeConfig);
    // Counted with the service's other refusals, so `refusals()` (GetStats) shows them.
    for (const [reason, n] of Object.entries(countRefusals(skipped))) this.refused[reason] = (this.refused[reason] ?? 0) + n;
    logRefusals(this.log, skipped);
    this.rebuild();
    this.log.info('state rebuilt from event log', { events: replay.events.length, skipped: skipped.length, sweeps: this.state.sweeps.size });
  }

  /**
   * Every derived fact, from the replayed state: one aggregate per sweep, empty of metrics. The
   * metric replay (`onMetrics`) then fills in values, stop decisions and `metric.target`.
   */
  private rebuild(): void {
    this.aggregates.clear();
    for (const sweep of this.state.sweeps.values()) this.aggregates.set(sweep.id, SweepAggregate.of(sweep, this.log));
  }

  /**
   * The metric replay of a restarted controller: until it resolves, sweeps whose next trial
   * depends on metric values (bayes, tpe, `metric.target`) hand out no trial, so a replayed
   * controller proposes exactly what the old one would have.
   */
  awaitMetricReplay(caughtUp: Promise<void>): void {
    this.metricReplayDone = false;
    this.metricReplay = caughtUp.then(() => {
      this.metricReplayDone = true;
      this.log.info('metric replay caught up');
    });
  }

  // ---- sweeps -------------------------------------------------------------------------------

  async createSweep(configText: string, filename?: string): Promise<SweepRecord> {
    if (configText.length > MAX_CONFIG_CHARS) {
      throw new ConfigError([{ path: '', message: `config is ${configText.length} characters; the limit is ${MAX_CONFIG_CHARS}` }]);
    }
    const { config, warnings } = parseConfigText(configText, filename);
    const leaves = leafEntries(config.parameters).length;
    if (leaves > MAX_PARAMETERS) {
      throw new ConfigError([{ path: 'parameters', message: `${leaves} parameters; the limit is ${MAX_PARAMETERS}` }]);
    }
    for (const w of warnings) this.log.warn(`config: ${w.path}: ${w.message}`);
    const seed = config.seed ?? randomInt(0, 2 ** 31);
    // Built once: the sweep's aggregate keeps this strategy.
    const strategy = createStrategy(config, { seed });
    const sweepId = newSweepId();
    const event: ControllerEvent = { type: 'sweep_created', sweepId, at: this.now(), configJson: encodeConfig(config), configText, seed };
    // The event carries the text and its typed JSON; NATS refuses a message over its max_payload
    // (1 MiB by default), which would surface as an internal error rather than the config's.
    const bytes = Buffer.byteLength(JSON.stringify(event));
    if (bytes > MAX_EVENT_BYTES) {
      throw new ConfigError([{ path: '', message: `config is too large to store: ${bytes} bytes as an event (text and parsed form); the limit is ${MAX_EVENT_BYTES}` }]);
    }
    await this.commit(event, `${sweepId}:created`, strategy);
    const sweep = this.requireSweep(sweepId);
    this.log.info('sweep created', { sweep: sweepId, method: config.method, seed });
    return sweep;
  }

  getSweep(sweepId: string): SweepRecord {
    return this.requireSweep(sweepId);
  }

  listSweeps(): SweepRecord[] {
    return [...this.state.sweeps.values()].sort((a, b) => b.createdAt - a.createdAt);
  }

  async pauseSweep(sweepId: string): Promise<SweepRecord> {
    const sweep = this.requireSweep(sweepId);
    if (sweep.state === 'paused') return sweep;
    if (sweep.state !== 'running') throw new IllegalStateError(`sweep ${sweepId} is ${sweep.state}; only a running sweep can be paused`);
    await this.setSweepState(sweep, 'paused', 'paused by user');
    return sweep;
  }

  async resumeSweep(sweepId: string): Promise<SweepRecord> {
    const sweep = this.requireSweep(sweepId);
    if (sweep.state === 'running') return sweep;
    if (sweep.state !== 'paused') throw new IllegalStateError(`sweep ${sweepId} is ${sweep.state}; only a paused sweep can be resumed`);
    await this.setSweepState(sweep, 'running', 'resumed by user');
    return sweep;
  }

  /** No new trials; running trials are told to stop (SIGTERM, grace, SIGKILL on their agent). */
  async stopSweep(sweepId: string): Promise<SweepRecord> {
    const sweep = this.requireSweep(sweepId);
    if (isSweepOver(sweep.state)) return sweep;
    await this.setSweepState(sweep, 'stopped', 'stopped by user');
    await this.withLock(sweepId, () => this.endPreempted(sweep, 'sweep stopped by user while the trial was preempted'));
    for (const t of sweep.trials) if (t.state === 'running') this.orderStop(t, 'sweep-over', 'sweep stopped by user');
    return sweep;
  }

  /** No new trials; running trials are killed at once (SIGKILL to their process group). */
  async cancelSweep(sweepId: string): Promise<SweepRecord> {
    const sweep = this.requireSweep(sweepId);
    if (sweep.state !== 'cancelled') {
      // A stopped sweep can still be cancelled: that kills trials still in their grace period.
      if (!isSweepOver(sweep.state) || sweep.state === 'stopped') {
        await this.commit(
          { type: 'sweep_state', sweepId, at: this.now(), state: 'cancelled', reason: 'cancelled by user' },
          `${sweepId}:state:cancelled`,
        );
        this.log.info('sweep cancelled', { sweep: sweepId });
      }
    }
    await this.withLock(sweepId, () => this.endPreempted(sweep, 'sweep cancelled by user while the trial was preempted'));
    for (const t of sweep.trials) if (t.state === 'running') this.orderStop(t, 'sweep-over', 'sweep cancelled by user', 0);
    return sweep;
  }

  // ---- agents -------------------------------------------------------------------------------

  registerAgent(req: { agentId: string; sweepId: string; hostname: string; pid: number; slots: number }) {
    const sweep = this.requireSweep(req.sweepId);
    this.agents.register({ id: req.agentId, sweepId: req.sweepId, hostname: req.hostname, pid: req.pid, slots: req.slots, lastSeen: this.now() });
    this.log.info('agent registered', { agent: req.agentId, sweep: req.sweepId, host: req.hostname });
    return { heldTrials: heldTrials(sweep, req.agentId) };
  }

  heartbeat(req: { agentId: string; sweepId: string; runningTrialIds: string[] }): { stop: StopOrder[]; unknownAgent: boolean } {
    const sweep = this.requireSweep(req.sweepId);
    const agent = this.agents.get(req.agentId);
    if (agent) agent.lastSeen = this.now();
    const stop = heartbeatStops(sweep, req.agentId, req.runningTrialIds, this.state.trials, this.stopOrders);
    return { stop, unknownAgent: !agent };
  }

  /**
   * Trials whose agent has sent nothing for longer than the heartbeat timeout become `crashed`;
   * their parameters are offered again (up to maxCrashRetries). Safe to call at any time and
   * more than once. After a restart every agent gets a full timeout to reconnect.
   */
  async reapLostTrials(): Promise<number> {
    const lost = [...lostTrials(this.state.sweeps.values(), this.agents, { now: this.now(), startedAt: this.startedAt, timeoutMs: this.heartbeatTimeoutMs })];
    for (const { trial, reason } of lost) {
      await this.endTrial(trial, 'crashed', reason, { exitCode: null, signal: '', argv: [], stdoutTail: [], stderrTail: [] });
    }
    return lost.length;
  }

  /**
   * Hand the agent its next trial. Serialised per sweep so that concurrent agents never get the
   * same trial number or the same grid point.
   */
  async requestTrial(agentId: string, sweepId: string): Promise<TrialRequestOutcome> {
    const aggregate = this.requireAggregate(sweepId);
    if (aggregate.readsValues && !this.metricReplayDone && !(await this.replayCaughtUp())) {
      this.agents.require(agentId, sweepId).lastSeen = this.now();
      return { kind: 'retry', afterMs: REPLAY_RETRY_MS };
    }
    return this.withLock(sweepId, async () => {
      const sweep = aggregate.record;
      // An agent known from before a controller restart is told to register again first.
      const agent = this.agents.require(agentId, sweepId);
      agent.lastSeen = this.now();
      const { command, program } = aggregate;
      // An agent that asks again while holding as many trials as it has slots lost our answer
      // (or reconnected): give it back what it holds rather than a second trial.
      const held = heldTrials(sweep, agentId);
      if (held.length >= agent.slots) return { kind: 'trial', trial: held[0], command, program };

      if (isSweepOver(sweep.state)) return { kind: 'done', reason: `sweep ${sweep.state}` };
      if (aggregate.targetReached) {
        await this.finishForTarget(sweep);
        return { kind: 'done', reason: TARGET_REASON };
      }
      if (sweep.state === 'paused') return { kind: 'retry', afterMs: PAUSED_POLL_MS };

      // A preempted trial goes on before anything new starts: it is already counted, and its
      // program resumes from its checkpoint.
      const preempted = preemptedToResume(sweep);
      if (preempted) return { kind: 'trial', trial: await this.resumeTrial(preempted, agentId), command, program };

      // Crashed trials were lost to their agent, not to their parameters: run those again first.
      const retry = crashedToRetry(sweep, this.maxCrashRetries);
      if (retry) return { kind: 'trial', trial: await this.createTrial(sweep, agentId, retry.paramsJson, retry.id), command, program };
      const next = aggregate.ask(this.metrics);
      if (next.kind === 'params') return { kind: 'trial', trial: await this.createTrial(sweep, agentId, stringifyTyped(next.params)), command, program };
      await this.finishIfIdle(sweep, next.kind === 'full' ? next.reason : 'grid exhausted');
      if (this.standby.standsBy(sweep, agentId, this.now())) return { kind: 'retry', afterMs: STANDBY_POLL_MS };
      return { kind: 'done', reason: next.kind === 'full' ? 'no more trials to run' : 'search space exhausted' };
    });
  }

  /** Waits (boundedly) for the metric replay; false when it is still behind. */
  private async replayCaughtUp(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, REPLAY_WAIT_MS)));
    await Promise.race([this.metricReplay, timeout]);
    clearTimeout(timer);
    return this.metricReplayDone;
  }

  private async createTrial(sweep: SweepRecord, agentId: string, paramsJson: string, retryOf?: string): Promise<TrialRecord> {
    const number = sweep.trials.length + 1;
    const trialId = trialIdOf(sweep.id, number);
    await this.commit(
      {
        type: 'trial_created',
        sweepId: sweep.id,
        trialId,
        number,
        at: this.now(),
        paramsJson,
        agentId,
        ...(retryOf ? { retryOf } : {}),
      },
      `${trialId}:created`,
    );
    const trial = this.state.trials.get(trialId)!;
    this.log.info('trial assigned', { trial: trialId, agent: agentId, params: paramsJson, retryOf });
    return trial;
  }

  async completeTrial(c: TrialCompletion): Promise<TrialState> {
    const trial = this.state.trials.get(c.trialId);
    if (!trial) throw new NotFoundError('trial', c.trialId);
    this.agents.require(c.agentId, trial.sweepId).lastSeen = this.now();
    if (trial.agentId !== c.agentId) throw new NotHolderError(c.agentId, trial.id, trial.agentId);
    if (isTerminal(trial.state)) return trial.state;
    // The agent flushed its metrics to JetStream before reporting; wait until they are ingested
    // so the trial's final value is complete when it is marked ended.
    if (c.lastMetricSeq > 0) {
      const ok = await this.metrics.waitForSeq(c.trialId, c.lastMetricSeq, this.metricWaitMs);
      if (!ok) this.log.warn('trial ended before all its metrics arrived', { trial: c.trialId, seq: c.lastMetricSeq });
    }
    const { state, reason } = classifyEnd(c);
    if (state === 'preempted') {
      await this.preemptTrial(trial, reason, c);
      return trial.state;
    }
    await this.endTrial(trial, state, reason, c);
    const missing = this.requireAggregate(trial.sweepId).missingPoints(trial);
    if (missing > 0) this.log.warn('trial ended with metric points missing', { trial: trial.id, missing, declared: c.metricPoints });
    return trial.state;
  }

  /** Record a trial's end (once), then finish the sweep if nothing is left to run. */
  private endTrial(trial: TrialRecord, state: TrialState, reason: string, c: EndReport): Promise<void> {
    return this.withLock(trial.sweepId, async () => {
      if (isTerminal(trial.state)) return;
      await this.recordEnd(trial, state, reason, c);
      const aggregate = this.requireAggregate(trial.sweepId);
      const sweep = aggregate.record;
      if (aggregate.targetReached) return this.finishForTarget(sweep);
      // A crash leaves work to redo (its retry), so it never finishes the sweep by itself.
      if (state === 'crashed' && crashedToRetry(sweep, this.maxCrashRetries)) return;
      const limit = aggregate.limit;
      if (aggregate.exhausted) await this.finishIfIdle(sweep, 'grid exhausted');
      else if (limit !== undefined && countedTrials(sweep.trials) >= limit) await this.finishIfIdle(sweep, aggregate.fullReason);
    });
  }

  /** Appends the trial's end; the caller holds the sweep's lock. */
  private async recordEnd(trial: TrialRecord, state: TrialState, reason: string, c: EndReport): Promise<void> {
    await this.commit(
      {
        type: 'trial_ended',
        sweepId: trial.sweepId,
        trialId: trial.id,
        at: this.now(),
        state,
        exitCode: c.exitCode,
        // Within what replay accepts (EVENT_LIMITS): a longer reason would refuse the whole event.
        signal: c.signal.slice(0, EVENT_LIMITS.maxLineChars),
        reason: reason.slice(0, EVENT_LIMITS.maxLineChars),
        argv: c.argv.slice(0, EVENT_LIMITS.maxArgv),
        stdoutTail: c.stdoutTail.slice(-EVENT_LIMITS.maxTailLines),
        stderrTail: c.stderrTail.slice(-EVENT_LIMITS.maxTailLines),
        // A lost trial's agent does not know what the trial logged: held to its end time instead.
        ...(c.metricPoints !== undefined && !c.lostReason ? { metricPoints: c.metricPoints, droppedPoints: c.droppedPoints ?? 0 } : {}),
      },
      `${trial.id}:ended`,
    );
    this.stopOrders.settle(trial);
    this.requireAggregate(trial.sweepId).stopMonitor?.ended(trial.id, state);
    this.log.info('trial ended', { trial: trial.id, state, reason: reason || undefined });
  }

  /**
   * The trial's host was taken back: the trial waits, under its id, for the next agent that asks
   * (a preemption is no crash and spends no crash retry). A sweep that hands out nothing more
   * (stopped, cancelled, `metric.target` reached) ends it as stopped instead.
   */
  private preemptTrial(trial: TrialRecord, reason: string, c: TrialCompletion): Promise<void> {
    return this.withLock(trial.sweepId, async () => {
      if (trial.state !== 'running') return;
      await this.commit(
        {
          type: 'trial_preempted',
          sweepId: trial.sweepId,
          trialId: trial.id,
          at: this.now(),
          reason: reason.slice(0, EVENT_LIMITS.maxLineChars),
          lastMetricSeq: c.lastMetricSeq,
          stdoutTail: c.stdoutTail.slice(-EVENT_LIMITS.maxTailLines),
          stderrTail: c.stderrTail.slice(-EVENT_LIMITS.maxTailLines),
          ...(c.metricPoints !== undefined ? { metricPoints: c.metricPoints, droppedPoints: c.droppedPoints ?? 0 } : {}),
        },
        `${trial.id}:preempted:${trial.preemptions + 1}`,
      );
      this.stopOrders.settle(trial);
      this.log.info('trial preempted; it continues on the next agent that asks', { trial: trial.id, reason });
      const aggregate = this.requireAggregate(trial.sweepId);
      if (isSweepOver(aggregate.record.state)) await this.endPreempted(aggregate.record, `sweep ${aggregate.record.state} while the trial was preempted`);
      else if (aggregate.targetReached) await this.finishForTarget(aggregate.record);
    });
  }

  /** Continues a preempted trial on this agent: same id, parameters and metric history. */
  private async resumeTrial(trial: TrialRecord, agentId: string): Promise<TrialRecord> {
    await this.commit(
      { type: 'trial_resumed', sweepId: trial.sweepId, trialId: trial.id, at: this.now(), agentId },
      `${trial.id}:resumed:${trial.preemptions}`,
    );
    this.log.info('trial continued', { trial: trial.id, agent: agentId, run: trial.preemptions + 1 });
    return trial;
  }

  /** Preempted trials that will not be continued end stopped; the caller holds the sweep's lock. */
  private async endPreempted(sweep: SweepRecord, reason: string): Promise<void> {
    for (const t of sweep.trials) {
      if (t.state === 'preempted') await this.recordEnd(t, 'stopped', reason, { exitCode: null, signal: '', argv: [], stdoutTail: t.stdoutTail, stderrTail: t.stderrTail });
    }
  }

  /** `metric.target` was reached: preempted trials are not continued, and the sweep finishes once nothing runs. */
  private async finishForTarget(sweep: SweepRecord): Promise<void> {
    await this.endPreempted(sweep, `${TARGET_REASON} while the trial was preempted`);
    await this.finishIfIdle(sweep, TARGET_REASON);
  }

  // ---- metrics ------------------------------------------------------------------------------

  /**
   * Whether the agent named in a batch's subject may send it: the trial must exist and be that
   * agent's. NATS permissions (nats-auth.ts) keep an agent to its own subjects; this keeps it to
   * its own trials. Checked live and on replay alike, so a restart rebuilds the same store.
   */
  admitMetrics(agentId: string, batch: MetricBatch): MetricRefusal | null {
    const trial = this.state.trials.get(batch.trialId);
    if (!trial || trial.sweepId !== batch.sweepId) return 'unknown_trial';
    if (trial.agentId !== agentId) return 'not_holder';
    return null;
  }

  /** A batch the ingest validated and ordered (see `SweepAggregate.refuseAfterEnd` for ended trials). */
  onMetrics(batch: MetricBatch): MetricRefusal | void {
    const trial = this.state.trials.get(batch.trialId);
    const aggregate = trial && this.aggregates.get(trial.sweepId);
    if (trial && aggregate) {
      const refused = aggregate.refuseAfterEnd(trial, batch);
      if (refused) return refused;
      aggregate.recordApplied(trial.id, batch.points.length);
    }
    this.metrics.apply(batch);
    if (trial && aggregate) {
      for (const d of aggregate.stopDecisions(trial, this.metrics)) {
        const target = this.state.trials.get(d.trialId);
        if (target?.state !== 'running') continue;
        this.log.info('stopping trial early', { trial: target.id, reason: d.reason });
        this.orderStop(target, 'early-stop', d.reason);
      }
      this.checkTarget(aggregate, trial);
    }
    // Lag is measured on points captured since this controller started: replayed history would
    // swamp it with old timestamps.
    const now = Date.now();
    for (const p of batch.points) if (p.t >= this.liveSince) this.ingestLag.record(now - p.t);
    this.emitChange(batch.sweepId);
  }

  /**
   * `metric.target`, as W&B defines it: once any trial's best value reaches it, no new trial is
   * started and the sweep finishes when the running ones end. Replayed metrics find it again
   * after a restart.
   */
  private checkTarget(aggregate: SweepAggregate, trial: TrialRecord): void {
    const reached = aggregate.checkTarget(trial, this.metrics);
    if (!reached) return;
    const sweep = aggregate.record;
    this.log.info('metric target reached', { sweep: sweep.id, trial: trial.id, ...reached });
    void this.withLock(sweep.id, () => this.finishForTarget(sweep)).catch((err) =>
      this.log.warn('could not finish the sweep', { sweep: sweep.id, error: String(err) }),
    );
  }

  counts(): { sweeps: number; trials: number } {
    return { sweeps: this.state.sweeps.size, trials: this.state.trials.size };
  }

  /** Refusals counted by the service, by reason. */
  refusals(): Record<string, number> {
    return { ...this.refused };
  }

  // ---- views --------------------------------------------------------------------------------

  getTrial(trialId: string): TrialRecord {
    const t = this.state.trials.get(trialId);
    if (!t) throw new NotFoundError('trial', trialId);
    return t;
  }

  /** Trials best first, ranked (see `rankTrials`). */
  leaderboard(sweep: SweepRecord): TrialView[] {
    return views.rankTrials(
      sweep.trials.map((t) => this.trialView(t, sweep)),
      this.requireAggregate(sweep.id).objective,
    );
  }

  trialView(t: TrialRecord, sweep: SweepRecord = this.requireSweep(t.sweepId)): TrialView {
    return views.trialView(t, sweep, this.metrics, this.requireAggregate(sweep.id).applied(t.id));
  }

  sweepView(sweep: SweepRecord, board: TrialView[] = this.leaderboard(sweep)): SweepView {
    // An agent counts as active while it heartbeats; a few missed beats are not yet absence.
    const cutoff = this.now() - Math.max(ACTIVE_AGENT_MS, this.heartbeatIntervalMs * 3);
    return views.sweepView(sweep, board, this.requireAggregate(sweep.id).limit, this.agents.activeCount(sweep.id, cutoff));
  }

  /** Called whenever something about the sweep changed (trials, metrics, state). */
  subscribe(sweepId: string, listener: () => void): () => void {
    this.changes.on(sweepId, listener);
    return () => this.changes.off(sweepId, listener);
  }

  /** True once the sweep will never change again. */
  isSettled(sweep: SweepRecord): boolean {
    return isSweepOver(sweep.state) && !hasUnfinished(sweep);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** Append, then apply; a new sweep gets its aggregate (with the strategy `createSweep` built). */
  private async commit(event: ControllerEvent, id: string, strategy?: Strategy): Promise<void> {
    await this.options.eventLog.append(event, id);
    applyEvent(this.state, event, decodeConfig);
    if (event.type === 'sweep_created' && !this.aggregates.has(event.sweepId)) {
      this.aggregates.set(event.sweepId, SweepAggregate.of(this.requireSweep(event.sweepId), this.log, strategy));
    }
    this.emitChange(event.sweepId);
  }

  private emitChange(sweepId: string): void {
    this.changes.emit(sweepId);
  }

  private async setSweepState(sweep: SweepRecord, state: SweepState, reason: string): Promise<void> {
    await this.commit({ type: 'sweep_state', sweepId: sweep.id, at: this.now(), state, reason }, `${sweep.id}:state:${state}:${this.now()}`);
    this.log.info(`sweep ${state}`, { sweep: sweep.id, reason });
  }

  private async finishIfIdle(sweep: SweepRecord, reason: string): Promise<void> {
    if (sweep.state !== 'running' && sweep.state !== 'paused') return;
    // Preempted trials will be continued: the sweep is not done with them.
    if (hasUnfinished(sweep)) return;
    await this.setSweepState(sweep, 'finished', reason);
  }

  /** `graceMs` 0 kills at once; AGENT_GRACE (-1) leaves the agent's own grace period. */
  private orderStop(trial: TrialRecord, kind: StopKind, reason: string, graceMs = AGENT_GRACE): void {
    const order = this.stopOrders.add(trial, { kind, reason, graceMs });
    this.options.sendControl?.(trial.agentId, { type: 'stop', ...order });
  }

  private requireSweep(sweepId: string): SweepRecord {
    const s = this.state.sweeps.get(sweepId);
    if (!s) throw new NotFoundError('sweep', sweepId);
    return s;
  }

  private requireAggregate(sweepId: string): SweepAggregate {
    const a = this.aggregates.get(sweepId);
    if (!a) throw new NotFoundError('sweep', sweepId);
    return a;
  }

  private withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }
}

function newSweepId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(8);
  let id = '';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}
