/**
 * The controller's core: sweeps, trials and agents, behind plain async methods. The gRPC server
 * is a thin adapter over this class, and it knows nothing of the network itself: events go to an
 * `EventLog`, metrics arrive through `onMetrics`, stop orders leave through `sendControl`.
 *
 * Every state change is appended to the event log first and applied to memory after, so the
 * in-memory view is always something the log can rebuild.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ControlMessage } from '../../common/control-wire.js';
import { IllegalStateError, NotFoundError, NotHolderError, SweeperError, WrongSweepError } from '../../domain/errors.js';
import { LatencyHistogram } from '../../common/histogram.js';
import type { Logger } from '../../common/log.js';
import { silentLogger } from '../../common/log.js';
import type { MetricBatch } from '../../common/metrics-wire.js';
import type { MetricRefusal } from './ingest.js';
import { DEFAULT_COMMAND } from '../../common/command-template.js';
import { stringifyTyped } from '../../domain/values.js';
import { ConfigError } from '../config/errors.js';
import { parseConfigText } from '../config/parse.js';
import { leafEntries } from '../../domain/params.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import type { EventLog } from './event-log.js';
import { countRefusals, logRefusals } from './event-log.js';
import { MetricStore } from './metric-store.js';
import type { ControllerEvent, ControllerState, SweepRecord, SweepState, TrialRecord } from './state.js';
import { applyEvent, emptyState, EVENT_LIMITS, rebuildState } from './state.js';
import { isRankable, isSweepOver, isTerminal } from '../../domain/trial-state.js';
import { createStrategy } from '../strategies/index.js';
import { createStopMonitor, type StopMonitor } from '../stopping/index.js';
import type { Strategy, TrialObservation, TrialState } from '../strategies/types.js';
import { decodeConfig, encodeConfig } from '../config/codec.js';


export interface TrialView {
  id: string;
  sweepId: string;
  number: number;
  state: TrialState;
  paramsJson: string;
  agentId: string;
  createdAt: number;
  startedAt: number;
  endedAt: number;
  bestValue: number | null;
  lastValue: number | null;
  lastStep: number;
  points: number;
  exitCode: number | null;
  signal: string;
  reason: string;
  rank: number;
  /** From the agent's GPU samples: physical index ('' without one), utilisation %, memory MB. */
  gpu: string;
  gpuUtil: number | null;
  gpuMemoryMb: number | null;
  /** Points the agent reported capturing that have not arrived (0 while it runs or when it did not say). */
  missingPoints: number;
  /** Points the agent dropped before sending them (buffer full, too large). */
  droppedPoints: number;
}

export interface SweepView {
  id: string;
  name: string;
  method: string;
  state: SweepState;
  configJson: string;
  seed: number;
  metricName: string;
  metricGoal: string;
  trialLimit: number;
  trialCount: number;
  stateCounts: Record<string, number>;
  bestValue: number | null;
  bestTrialId: string;
  createdAt: number;
  finishedAt: number;
  finishReason: string;
  activeAgents: number;
}

export type TrialRequestOutcome =
  | { kind: 'trial'; trial: TrialRecord; command: readonly string[]; program: string }
  | { kind: 'retry'; afterMs: number }
  | { kind: 'done'; reason: string };

export interface TrialCompletion {
  agentId: string;
  trialId: string;
  exitCode: number | null;
  signal: string;
  startError: string;
  stoppedReason: string;
  stdoutTail: string[];
  stderrTail: string[];
  lastMetricSeq: number;
  argv: string[];
  /** The agent lost the trial's process (it restarted): the trial crashed. */
  lostReason?: string;
  /** Metric points the agent captured from the trial, and how many of those it dropped; absent when it does not say. */
  metricPoints?: number;
  droppedPoints?: number;
  /** The agent's full report was refused; this one is what it could send: the trial failed, for this reason. */
  reportError?: string;
}

export interface StopOrder {
  trialId: string;
  reason: string;
  /** 0 kills at once; -1 leaves the agent's own grace period. */
  graceMs: number;
}


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

interface AgentInfo {
  id: string;
  sweepId: string;
  hostname: string;
  pid: number;
  slots: number;
  lastSeen: number;
}

const TARGET_REASON = 'metric.target reached';
/**
 * Once every trial is handed out, one idle agent per sweep (the standby) is told to wait while
 * trials still run, so a trial that crashes with its agent has someone to run it again; the
 * others are told the sweep is over and exit, freeing whatever they hold (a GPU allocation).
 * The standby runs none of the trials (it must outlive them); an agent running some keeps its
 * free slots asking too, at no cost. It asks every STANDBY_POLL_MS; silent for STANDBY_LOST_MS,
 * another idle agent takes over.
 */
const STANDBY_POLL_MS = 2000;
const STANDBY_LOST_MS = 10_000;
/** Limits on what one sweep may ask of the controller. */
const MAX_CONFIG_CHARS = 1024 * 1024;
const MAX_PARAMETERS = 1000;
/** Room under NATS's default max_payload (1 MiB) for the headers. */
const MAX_EVENT_BYTES = 1024 * 1024 - 4096;

export class SweepService {
  readonly metrics: MetricStore;
  /** Capture-to-controller delay of metric points, for `GetStats` and the ingest benchmark. */
  readonly ingestLag = new LatencyHistogram();
  private readonly state: ControllerState = emptyState();
  private readonly strategies = new Map<string, Strategy>();
  /** Early stopping per sweep, created with its first metrics; null when it has no rule. */
  private readonly stopMonitors = new Map<string, StopMonitor | null>();
  /** Sweeps whose strategy said the space is used up (recomputed after a restart on demand). */
  private readonly exhausted = new Set<string>();
  /** Per sweep: the idle agent that waits while trials run, and when it last asked. */
  private readonly standby = new Map<string, { agentId: string; askedAt: number }>();
  /** Sweeps where a trial reached `metric.target` (recomputed from metrics after a restart). */
  private readonly targetReached = new Set<string>();
  private readonly agents = new Map<string, AgentInfo>();
  /** Per agent: trial id → why and how to stop it, until the trial ends. */
  private readonly stopOrders = new Map<string, Map<string, { reason: string; graceMs: number }>>();
  /** Wall-clock start, for telling live metric points from replayed ones. */
  private readonly liveSince = Date.now();
  /** Start on the service's clock: every agent counts as seen then. */
  private readonly startedAt: number;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly changes = new EventEmitter();
  private readonly log: Logger;
  private readonly now: () => number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  private readonly maxCrashRetries: number;
  private readonly metricWaitMs: number;
  /** Metric points applied per trial, to hold an ended trial to what its agent declared. */
  private readonly appliedPoints = new Map<string, number>();
  /** Calls and metric batches refused inside the service, by reason (GetStats shows them). */
  private readonly refused: Record<string, number> = {};

  constructor(private readonly options: SweepServiceOptions) {
    this.metrics = options.metrics ?? new MetricStore();
    this.log = options.log ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 30_000;
    // Several beats must fit in a timeout, or a live agent would be declared dead.
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.min(5000, Math.floor(this.heartbeatTimeoutMs / 4));
    this.maxCrashRetries = options.maxCrashRetries ?? 1;
    this.metricWaitMs = options.metricWaitMs ?? 10_000;
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
    this.log.info('state rebuilt from event log', { events: replay.events.length, skipped: skipped.length, sweeps: this.state.sweeps.size });
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
    // Building the strategy validates what only it can (grid-only distributions).
    createStrategy(config, { seed });
    const sweepId = newSweepId();
    const event: ControllerEvent = { type: 'sweep_created', sweepId, at: this.now(), configJson: encodeConfig(config), configText, seed };
    // The event carries the text and its typed JSON; NATS refuses a message over its max_payload
    // (1 MiB by default), which would surface as an internal error rather than the config's.
    const bytes = Buffer.byteLength(JSON.stringify(event));
    if (bytes > MAX_EVENT_BYTES) {
      throw new ConfigError([{ path: '', message: `config is too large to store: ${bytes} bytes as an event (text and parsed form); the limit is ${MAX_EVENT_BYTES}` }]);
    }
    await this.commit(event, `${sweepId}:created`);
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
    for (const t of sweep.trials) if (t.state === 'running') this.orderStop(t, 'sweep stopped by user');
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
    for (const t of sweep.trials) if (t.state === 'running') this.orderStop(t, 'sweep cancelled by user', 0);
    return sweep;
  }

  // ---- agents -------------------------------------------------------------------------------

  registerAgent(req: { agentId: string; sweepId: string; hostname: string; pid: number; slots: number }) {
    const sweep = this.requireSweep(req.sweepId);
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(req.agentId)) throw new SweeperError(`invalid agent id '${req.agentId}'`);
    this.agents.set(req.agentId, {
      id: req.agentId,
      sweepId: req.sweepId,
      hostname: req.hostname,
      pid: req.pid,
      slots: Math.max(1, req.slots || 1),
      lastSeen: this.now(),
    });
    this.log.info('agent registered', { agent: req.agentId, sweep: req.sweepId, host: req.hostname });
    return {
      heldTrials: this.heldTrials(sweep, req.agentId),
      command: sweep.config.command ?? DEFAULT_COMMAND,
      program: sweep.config.program ?? '',
      sweepState: sweep.state,
    };
  }

  /**
   * The registered agent, or a refusal: an agent must register (again, after a controller
   * restart) before it is handed or may report trials, and only for the sweep it registered for.
   */
  private requireAgent(agentId: string, sweepId: string): AgentInfo {
    const agent = this.agents.get(agentId);
    // Typed errors: the API adapter counts each refusal by its type (unknown_agent, wrong_sweep).
    if (!agent) throw new NotFoundError('agent', agentId);
    if (agent.sweepId !== sweepId) throw new WrongSweepError(`agent '${agentId}' registered for sweep '${agent.sweepId}', not '${sweepId}'`);
    return agent;
  }

  heartbeat(req: { agentId: string; sweepId: string; runningTrialIds: string[] }): {
    sweepState: SweepState;
    stop: StopOrder[];
    unknownAgent: boolean;
  } {
    const sweep = this.requireSweep(req.sweepId);
    const agent = this.agents.get(req.agentId);
    if (agent) agent.lastSeen = this.now();
    const orders = this.stopOrders.get(req.agentId);
    const stop: StopOrder[] = [];
    for (const id of req.runningTrialIds) {
      const order = orders?.get(id);
      if (order !== undefined) {
        stop.push({ trialId: id, ...order });
        continue;
      }
      // What the agent runs but we do not count as its running trial must stop: a trial we
      // declared crashed while the agent was cut off (its parameters may already run elsewhere),
      // or one of a sweep stopped while the controller was down.
      const trial = this.state.trials.get(id);
      if (!trial || trial.agentId !== req.agentId || trial.state !== 'running') {
        stop.push({ trialId: id, reason: `trial is ${trial ? trial.state : 'unknown'} on the controller`, graceMs: -1 });
      } else if (isSweepOver(sweep.state)) {
        stop.push({ trialId: id, reason: `sweep ${sweep.state}`, graceMs: sweep.state === 'cancelled' ? 0 : -1 });
      }
    }
    return { sweepState: sweep.state, stop, unknownAgent: !agent };
  }

  /**
   * Trials whose agent has sent nothing for longer than the heartbeat timeout become `crashed`;
   * their parameters are offered again (up to maxCrashRetries). Safe to call at any time and
   * more than once. After a restart every agent gets a full timeout to reconnect.
   */
  async reapLostTrials(): Promise<number> {
    const now = this.now();
    let reaped = 0;
    for (const sweep of this.state.sweeps.values()) {
      for (const trial of sweep.trials) {
        if (trial.state !== 'running') continue;
        const lastSeen = Math.max(this.agents.get(trial.agentId)?.lastSeen ?? 0, this.startedAt, trial.startedAt);
        if (now - lastSeen <= this.heartbeatTimeoutMs) continue;
        const reason = `agent ${trial.agentId} sent no heartbeat for ${Math.round((now - lastSeen) / 1000)}s`;
        await this.endTrial(trial, 'crashed', reason, { exitCode: null, signal: '', argv: [], stdoutTail: [], stderrTail: [] });
        reaped++;
      }
    }
    return reaped;
  }

  /**
   * Hand the agent its next trial. Serialised per sweep so that concurrent agents never get the
   * same trial number or the same grid point.
   */
  requestTrial(agentId: string, sweepId: string): Promise<TrialRequestOutcome> {
    return this.withLock(sweepId, async () => {
      const sweep = this.requireSweep(sweepId);
      // An agent known from before a controller restart is told to register again first.
      const agent = this.requireAgent(agentId, sweepId);
      agent.lastSeen = this.now();
      const command = sweep.config.command ?? DEFAULT_COMMAND;
      const program = sweep.config.program ?? '';
      // An agent that asks again while holding as many trials as it has slots lost our answer
      // (or reconnected): give it back what it holds rather than a second trial.
      const held = this.heldTrials(sweep, agentId);
      if (held.length >= (agent?.slots ?? 1)) return { kind: 'trial', trial: held[0], command, program };

      if (isSweepOver(sweep.state)) return { kind: 'done', reason: `sweep ${sweep.state}` };
      if (this.targetReached.has(sweep.id)) {
        await this.finishIfIdle(sweep, TARGET_REASON);
        return { kind: 'done', reason: TARGET_REASON };
      }
      if (sweep.state === 'paused') return { kind: 'retry', afterMs: 2000 };

      const strategy = this.strategyFor(sweep);
      // Crashed trials were lost to their agent, not to their parameters: run those again first.
      const retry = this.crashedToRetry(sweep);
      if (retry) return { kind: 'trial', trial: await this.createTrial(sweep, agentId, retry.paramsJson, retry.id), command, program };
      const limit = trialLimit(sweep, strategy);
      if (limit !== undefined && countedTrials(sweep) >= limit) {
        await this.finishIfIdle(sweep, this.limitReason(sweep, strategy));
        if (this.standsBy(sweep, agentId)) return { kind: 'retry', afterMs: STANDBY_POLL_MS };
        return { kind: 'done', reason: 'no more trials to run' };
      }
      const suggestion = strategy.suggest(observations(sweep, this.metrics));
      if (suggestion.kind === 'exhausted') {
        this.exhausted.add(sweep.id);
        await this.finishIfIdle(sweep, 'grid exhausted');
        if (this.standsBy(sweep, agentId)) return { kind: 'retry', afterMs: STANDBY_POLL_MS };
        return { kind: 'done', reason: 'search space exhausted' };
      }
      const trial = await this.createTrial(sweep, agentId, stringifyTyped(suggestion.params));
      return { kind: 'trial', trial, command, program };
    });
  }

  private async createTrial(sweep: SweepRecord, agentId: string, paramsJson: string, retryOf?: string): Promise<TrialRecord> {
    const number = sweep.trials.length + 1;
    const trialId = `${sweep.id}-${number}`;
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

  /** Whether this idle agent is (or now becomes) the sweep's standby; see STANDBY_POLL_MS. */
  private standsBy(sweep: SweepRecord, agentId: string): boolean {
    if (this.maxCrashRetries <= 0 || isSweepOver(sweep.state) || !sweep.trials.some((t) => t.state === 'running')) {
      this.standby.delete(sweep.id);
      return false;
    }
    if (sweep.trials.some((t) => t.state === 'running' && t.agentId === agentId)) return true;
    const now = this.now();
    const current = this.standby.get(sweep.id);
    if (current && current.agentId !== agentId && now - current.askedAt < STANDBY_LOST_MS) return false;
    this.standby.set(sweep.id, { agentId, askedAt: now });
    return true;
  }

  /** The oldest crashed trial whose parameters have crashed at most maxCrashRetries times and never ran otherwise. */
  private crashedToRetry(sweep: SweepRecord): TrialRecord | undefined {
    if (this.maxCrashRetries <= 0 || !sweep.trials.some((t) => t.state === 'crashed')) return undefined;
    const attempts = new Map<string, { crashed: number; other: number }>();
    for (const t of sweep.trials) {
      const a = attempts.get(t.paramsJson) ?? { crashed: 0, other: 0 };
      if (t.state === 'crashed') a.crashed++;
      else a.other++;
      attempts.set(t.paramsJson, a);
    }
    return sweep.trials.find((t) => {
      if (t.state !== 'crashed') return false;
      const a = attempts.get(t.paramsJson)!;
      return a.other === 0 && a.crashed <= this.maxCrashRetries;
    });
  }

  async completeTrial(c: TrialCompletion): Promise<TrialState> {
    const trial = this.state.trials.get(c.trialId);
    if (!trial) throw new NotFoundError('trial', c.trialId);
    this.requireAgent(c.agentId, trial.sweepId).lastSeen = this.now();
    if (trial.agentId !== c.agentId) throw new NotHolderError(c.agentId, trial.id, trial.agentId);
    if (isTerminal(trial.state)) return trial.state;
    // The agent flushed its metrics to JetStream before reporting; wait until they are ingested
    // so the trial's final value is complete when it is marked ended.
    if (c.lastMetricSeq > 0) {
      const ok = await this.metrics.waitForSeq(c.trialId, c.lastMetricSeq, this.metricWaitMs);
      if (!ok) this.log.warn('trial ended before all its metrics arrived', { trial: c.trialId, seq: c.lastMetricSeq });
    }
    const { state, reason } = classifyEnd(c);
    await this.endTrial(trial, state, reason, c);
    const missing = this.trialView(trial).missingPoints;
    if (missing > 0) this.log.warn('trial ended with metric points missing', { trial: trial.id, missing, declared: c.metricPoints });
    return trial.state;
  }

  /** Record a trial's end (once), then finish the sweep if nothing is left to run. */
  private endTrial(
    trial: TrialRecord,
    state: TrialState,
    reason: string,
    c: Pick<TrialCompletion, 'exitCode' | 'signal' | 'argv' | 'stdoutTail' | 'stderrTail' | 'metricPoints' | 'droppedPoints' | 'lostReason'>,
  ): Promise<void> {
    return this.withLock(trial.sweepId, async () => {
      if (isTerminal(trial.state)) return;
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
      this.stopOrders.get(trial.agentId)?.delete(trial.id);
      this.stopMonitors.get(trial.sweepId)?.ended(trial.id, state);
      this.log.info('trial ended', { trial: trial.id, state, reason: reason || undefined });
      const sweep = this.requireSweep(trial.sweepId);
      const strategy = this.strategyFor(sweep);
      const limit = trialLimit(sweep, strategy);
      if (this.targetReached.has(sweep.id)) return this.finishIfIdle(sweep, TARGET_REASON);
      // A crash leaves work to redo (its retry), so it never finishes the sweep by itself.
      if (state === 'crashed' && this.crashedToRetry(sweep)) return;
      if (this.exhausted.has(sweep.id) || (limit !== undefined && countedTrials(sweep) >= limit)) {
        await this.finishIfIdle(sweep, this.exhausted.has(sweep.id) ? 'grid exhausted' : this.limitReason(sweep, strategy));
      }
    });
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

  /**
   * A batch the ingest validated and ordered. An ended trial takes only what it ran with: up to
   * the points its agent declared at the end (the rest of a shortfall, published later from a
   * spool), or, declared crashed, points captured before that moment; a zombie's later points are
   * refused. Both tests read only the batch and the final state, so replay decides the same.
   */
  onMetrics(batch: MetricBatch): MetricRefusal | void {
    const trial = this.state.trials.get(batch.trialId);
    if (trial && isTerminal(trial.state)) {
      const applied = this.appliedPoints.get(trial.id) ?? 0;
      if (trial.declaredPoints !== null ? applied + batch.points.length > trial.declaredPoints - trial.droppedPoints : batch.points.some((p) => p.t > trial.endedAt)) {
        return 'after_end';
      }
    }
    if (trial) this.appliedPoints.set(trial.id, (this.appliedPoints.get(trial.id) ?? 0) + batch.points.length);
    this.metrics.apply(batch);
    const monitor = trial && this.stopMonitorFor(trial.sweepId);
    if (trial && monitor) {
      for (const d of monitor.update(trial.id, trial.state, this.metrics.get(trial.id)?.series.get(monitor.metric))) {
        const target = this.state.trials.get(d.trialId);
        if (target?.state !== 'running') continue;
        this.log.info('stopping trial early', { trial: target.id, reason: d.reason });
        this.orderStop(target, d.reason);
      }
    }
    if (trial) this.checkTarget(trial);
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
  private checkTarget(trial: TrialRecord): void {
    const sweep = this.state.sweeps.get(trial.sweepId);
    const metric = sweep?.config.metric;
    if (!sweep || metric?.target === undefined || this.targetReached.has(sweep.id)) return;
    const best = this.metrics.best(trial.id, metric.name, metric.goal);
    if (best === null) return;
    if (metric.goal === 'maximize' ? best >= metric.target : best <= metric.target) {
      this.targetReached.add(sweep.id);
      this.log.info('metric target reached', { sweep: sweep.id, trial: trial.id, value: best, target: metric.target });
      void this.withLock(sweep.id, () => this.finishIfIdle(sweep, TARGET_REASON)).catch((err) =>
        this.log.warn('could not finish the sweep', { sweep: sweep.id, error: String(err) }),
      );
    }
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

  /**
   * Trials best first: those that may rank (not failed or crashed) with a value by value per the
   * goal, then the rest by number. Only the first get a rank.
   */
  leaderboard(sweep: SweepRecord): TrialView[] {
    const metric = sweep.config.metric;
    const views = sweep.trials.map((t) => this.trialView(t, sweep));
    const sign = metric?.goal === 'maximize' ? -1 : 1;
    const ranked = (v: TrialView) => v.bestValue !== null && isRankable(v.state);
    views.sort((a, b) => {
      if (ranked(a) && ranked(b)) return sign * (a.bestValue! - b.bestValue!) || a.number - b.number;
      if (ranked(a)) return -1;
      if (ranked(b)) return 1;
      return a.number - b.number;
    });
    let rank = 0;
    for (const v of views) v.rank = ranked(v) ? ++rank : 0;
    return views;
  }

  trialView(t: TrialRecord, sweep: SweepRecord = this.requireSweep(t.sweepId)): TrialView {
    const metric = sweep.config.metric;
    const best = metric ? this.metrics.best(t.id, metric.name, metric.goal) : null;
    const last = metric ? this.metrics.last(t.id, metric.name) : null;
    const tm = this.metrics.get(t.id);
    const gpuIndex = this.metrics.last(t.id, 'system/gpu.index');
    return {
      id: t.id,
      sweepId: t.sweepId,
      number: t.number,
      state: t.state,
      paramsJson: t.paramsJson,
      agentId: t.agentId,
      createdAt: t.createdAt,
      startedAt: t.startedAt,
      endedAt: t.endedAt,
      bestValue: best,
      lastValue: last?.value ?? null,
      lastStep: tm ? tm.lastStep : -1,
      points: tm?.rows ?? 0,
      exitCode: t.exitCode,
      signal: t.signal,
      reason: t.reason,
      rank: 0,
      gpu: gpuIndex === null ? '' : String(gpuIndex.value),
      gpuUtil: this.metrics.last(t.id, 'system/gpu.util')?.value ?? null,
      gpuMemoryMb: this.metrics.last(t.id, 'system/gpu.memory_mb')?.value ?? null,
      missingPoints: t.declaredPoints === null ? 0 : Math.max(0, t.declaredPoints - t.droppedPoints - (this.appliedPoints.get(t.id) ?? 0)),
      droppedPoints: t.droppedPoints,
    };
  }

  sweepView(sweep: SweepRecord, board: TrialView[] = this.leaderboard(sweep)): SweepView {
    const counts: Record<string, number> = {};
    for (const t of sweep.trials) counts[t.state] = (counts[t.state] ?? 0) + 1;
    const best = board.find((v) => v.rank > 0);
    const cutoff = this.now() - Math.max(30_000, this.heartbeatIntervalMs * 3);
    let activeAgents = 0;
    for (const a of this.agents.values()) if (a.sweepId === sweep.id && a.lastSeen >= cutoff) activeAgents++;
    return {
      id: sweep.id,
      name: sweep.config.name ?? '',
      method: sweep.config.method,
      state: sweep.state,
      configJson: sweep.configJson,
      seed: sweep.seed,
      metricName: sweep.config.metric?.name ?? '',
      metricGoal: sweep.config.metric?.goal ?? '',
      trialLimit: trialLimit(sweep, this.strategyFor(sweep)) ?? 0,
      trialCount: sweep.trials.length,
      stateCounts: counts,
      bestValue: best?.bestValue ?? null,
      bestTrialId: best?.id ?? '',
      createdAt: sweep.createdAt,
      finishedAt: sweep.finishedAt,
      finishReason: sweep.finishReason,
      activeAgents,
    };
  }

  /** Called whenever something about the sweep changed (trials, metrics, state). */
  subscribe(sweepId: string, listener: () => void): () => void {
    this.changes.on(sweepId, listener);
    return () => this.changes.off(sweepId, listener);
  }

  /** True once the sweep will never change again. */
  isSettled(sweep: SweepRecord): boolean {
    return isSweepOver(sweep.state) && !sweep.trials.some((t) => t.state === 'running');
  }

  // ---- internals ----------------------------------------------------------------------------

  private async commit(event: ControllerEvent, id: string): Promise<void> {
    await this.options.eventLog.append(event, id);
    applyEvent(this.state, event, decodeConfig);
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
    if (sweep.trials.some((t) => t.state === 'running')) return;
    await this.setSweepState(sweep, 'finished', reason);
  }

  private limitReason(sweep: SweepRecord, strategy: Strategy): string {
    const cap = sweep.config.run_cap;
    const size = strategy.size();
    return cap !== undefined && (size === undefined || cap <= size) ? `run_cap ${cap} reached` : 'grid exhausted';
  }

  /** `graceMs` 0 kills at once; -1 leaves the agent's own grace period. */
  private orderStop(trial: TrialRecord, reason: string, graceMs = -1): void {
    let orders = this.stopOrders.get(trial.agentId);
    if (!orders) this.stopOrders.set(trial.agentId, (orders = new Map()));
    orders.set(trial.id, { reason, graceMs });
    this.options.sendControl?.(trial.agentId, { type: 'stop', trialId: trial.id, reason, graceMs });
  }

  private heldTrials(sweep: SweepRecord, agentId: string): TrialRecord[] {
    return sweep.trials.filter((t) => t.agentId === agentId && t.state === 'running');
  }

  private stopMonitorFor(sweepId: string): StopMonitor | null {
    let m = this.stopMonitors.get(sweepId);
    if (m === undefined) {
      try {
        m = createStopMonitor(this.requireSweep(sweepId).config);
      } catch (err) {
        // The parser validated the config; a rule that still refuses it must not stop ingest.
        this.log.warn('early stopping disabled for this sweep', { sweep: sweepId, error: String(err) });
        m = null;
      }
      this.stopMonitors.set(sweepId, m);
    }
    return m;
  }

  private strategyFor(sweep: SweepRecord): Strategy {
    let s = this.strategies.get(sweep.id);
    if (!s) {
      s = createStrategy(sweep.config, { seed: sweep.seed });
      this.strategies.set(sweep.id, s);
    }
    return s;
  }

  private requireSweep(sweepId: string): SweepRecord {
    const s = this.state.sweeps.get(sweepId);
    if (!s) throw new NotFoundError('sweep', sweepId);
    return s;
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

/** Trials that count toward run_cap and the grid's size: all but the crashed, which get retried. */
function countedTrials(sweep: SweepRecord): number {
  let n = 0;
  for (const t of sweep.trials) if (t.state !== 'crashed') n++;
  return n;
}

/** run_cap or the grid's size, whichever is smaller; undefined when unbounded. */
export function trialLimit(sweep: SweepRecord, strategy: Strategy): number | undefined {
  const size = strategy.size();
  const cap = sweep.config.run_cap;
  if (size === undefined) return cap;
  return cap === undefined ? size : Math.min(cap, size);
}

function observations(sweep: SweepRecord, metrics: MetricStore): TrialObservation[] {
  const metric = sweep.config.metric;
  return sweep.trials.map((t) => ({
    id: t.id,
    params: t.params,
    state: t.state,
    value: metric ? metrics.best(t.id, metric.name, metric.goal) : null,
  }));
}

/** A trial that died of CUDA running out of memory, recognised from its stderr (PyTorch, TF, JAX, raw CUDA). */
const GPU_OOM = /CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation|RESOURCE_EXHAUSTED: Out of memory/;

/** The end state of a trial from what its agent reported. */
export function classifyEnd(
  c: Pick<TrialCompletion, 'exitCode' | 'signal' | 'startError' | 'stoppedReason' | 'stderrTail' | 'lostReason' | 'reportError'>,
): {
  state: TrialState;
  reason: string;
} {
  if (c.lostReason) return { state: 'crashed', reason: c.lostReason };
  if (c.reportError) return { state: 'failed', reason: c.reportError };
  if (c.stoppedReason) return { state: 'stopped', reason: c.stoppedReason };
  if (c.startError) return { state: 'failed', reason: `could not start: ${c.startError}` };
  if (c.exitCode === 0) return { state: 'finished', reason: '' };
  // Out of GPU memory is the commonest failure on GPU hosts and says what to change.
  const oom = c.stderrTail.find((l) => GPU_OOM.test(l));
  if (oom) return { state: 'failed', reason: `out of GPU memory: ${oom.trim().slice(0, 300)}` };
  const lastErr = [...c.stderrTail].reverse().find((l) => l.trim() !== '');
  const how = c.signal ? `killed by ${c.signal}` : `exit code ${c.exitCode}`;
  return { state: 'failed', reason: lastErr ? `${how}: ${lastErr.trim().slice(0, 300)}` : how };
}

function newSweepId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(8);
  let id = '';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}
