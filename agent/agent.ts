/**
 * The agent: asks the controller for trials, runs each as a child process, streams its metrics
 * to NATS JetStream and reports how it ended.
 *
 * Lifecycle (one setter logs every transition, illegal ones throw):
 *   initialized → running → stopping → stopped        (sweep over, --count reached, or a signal)
 *   any → failed                                      (an error it cannot recover from)
 * Shutdown is two-stage: the first `shutdown()` stops taking work and gives the running trial its
 * grace period (SIGTERM, then SIGKILL); a second one kills it at once.
 *
 * Each trial has one AbortController, aborted with a typed StopReason (stop-reason.ts) whoever
 * stops it; the reason is what the controller is told. Heartbeats and GPU samples run one at a
 * time (one-in-flight.ts), so a slow controller never has a pile of them in flight.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostname as osHostname } from 'node:os';
import { isLoopbackHost } from '../common/net.js';
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection, Subscription } from 'nats';
import { Events, nkeys } from 'nats';
import { ApiError, SweeperClient, sleep, withRetry } from '../common/api-client.js';
import type { ApiAssignment, ApiCompleteTrialRequest, ApiRegisterAgentResponse } from '../common/api-types.js';
import { agentInboxPrefix, controlMessageSchema, controlSubject } from '../common/control-wire.js';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS, heartbeatIntervalFor } from '../domain/defaults.js';
import { coerceError, IllegalStateError, SweeperError, UsageError } from '../domain/errors.js';
import type { Logger } from '../common/log.js';
import { connectNats } from '../common/nats-connect.js';
import { formatCreds, parseCreds } from '../common/nats-jwt.js';
import type { Params } from '../domain/values.js';
import { parseTypedJson } from '../domain/values.js';
import { compileAgentOptions, type AgentConfig, type AgentOptions } from './agent-options.js';
import { buildCommand, CommandError } from './command.js';
import type { Slot } from './gpus.js';
import { sampleGpus } from './gpus.js';
import { OneInFlight } from './one-in-flight.js';
import { procAvailable, ProcSampler } from './proc-sampler.js';
import { MetricPublisher } from './publisher.js';
import { OutputPublisher } from './output-publisher.js';
import { MetricSpool, type RecoveredTrial, type SpoolIdentity } from './spool.js';
import { orderedStop, SHUTDOWN, stopText, type StopReason } from './stop-reason.js';
import type { TrialProcess, TrialResult } from './trial-process.js';
import { startTrial } from './trial-process.js';

export type { AgentConfig, AgentOptions } from './agent-options.js';

export type AgentState = 'initialized' | 'running' | 'stopping' | 'stopped' | 'failed';

const TRANSITIONS: Record<AgentState, readonly AgentState[]> = {
  initialized: ['running', 'stopping', 'failed'],
  running: ['stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

/**
 * After the first shutdown signal and the trials' grace, how long the agent still waits for NATS
 * to take its last points and for the controller to take its reports. Past it (or at a second
 * signal) it exits anyway: the spool keeps the points for the next agent, and the controller
 * counts an unreported trial as crashed.
 */
const SHUTDOWN_PATIENCE_MS = 15_000;

/** How often a running agent looks for journals that dead agents of its host left in the spool. */
const ADOPT_INTERVAL_MS = 10_000;

/** The window of the agent's first trials in which failing ones count as flapping (maxInitialFailures). */
const FLAPPING_WINDOW_MS = 60_000;

/** The agent stopped itself because its first trials kept failing. */
export class AgentFlappingError extends UsageError {}

/** The agent stopped itself because the controller stayed unreachable past --controller-timeout. */
export class ControllerUnreachableError extends SweeperError {}

export interface AgentSummary {
  agentId: string;
  trialsRun: number;
  /** Why the agent stopped asking for work. */
  reason: string;
}

/** A trial this agent runs: its process, and the controller whose abort reason says why it was stopped. */
interface RunningTrial {
  readonly proc: TrialProcess;
  readonly stop: AbortController;
}

export class Agent {
  readonly agentId: string;
  private readonly config: AgentConfig;
  private currentState: AgentState = 'initialized';
  private readonly client: SweeperClient;
  private readonly log: Logger;
  private readonly shutdownController = new AbortController();
  /** Aborted when waiting on NATS or the controller is no longer worth it (see SHUTDOWN_PATIENCE_MS). */
  private readonly patience = new AbortController();
  private nc?: NatsConnection;
  private publisher?: MetricPublisher;
  /** What running trials print, live (output-publisher.ts). */
  private output?: OutputPublisher;
  private spool?: MetricSpool;
  private controlSub?: Subscription;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeats?: OneInFlight;
  private readonly running = new Map<string, RunningTrial>();
  private shutdownRequests = 0;
  /** Set once the host is taking the machine back (SIGUSR1): why, in words. */
  private preemptReason?: string;
  /** Trials told to checkpoint, with the timer that stops them after --preempt-grace. */
  private readonly preempting = new Map<string, NodeJS.Timeout>();
  /** Trials that said they are being preempted (`mark_preempting`), whatever this agent was told. */
  private readonly selfPreempted = new Set<string>();
  private trialsRun = 0;
  private readonly startedAt = Date.now();
  private failuresInARow = 0;
  /** The slot of each running trial, for GPU sampling. */
  private readonly slotOf = new Map<string, Slot>();
  /** Trials handed to one of our slots and not yet reported. */
  private readonly assigned = new Set<string>();
  private gpuTimer?: NodeJS.Timeout;
  private gpuSamples?: OneInFlight;
  /** CPU and memory of each running trial's process tree (proc-sampler.ts). */
  private procSampler?: ProcSampler;
  private procTimer?: NodeJS.Timeout;
  private procSamples?: OneInFlight;
  private adoptTimer?: NodeJS.Timeout;
  /** This process's own NATS key: the controller signs a JWT for it, bound to our subjects. */
  private readonly natsKey = nkeys.createUser();
  /** The JWT of our last registration ('' without Sweeper's NATS auth); read at every reconnect. */
  private natsJwt = '';
  /** A registration in flight, so that many refusals at once register once. */
  private registering?: Promise<ApiRegisterAgentResponse>;
  /** Since when calls to the controller have failed with no answer in between (--controller-timeout). */
  private unreachableSince?: number;
  private controllerWatch?: NodeJS.Timeout;
  /** Set and aborted when the controller stayed unreachable past --controller-timeout. */
  private controllerLost?: ControllerUnreachableError;
  private readonly controllerGone = new AbortController();

  constructor(options: AgentOptions) {
    this.config = compileAgentOptions(options);
    this.agentId = this.config.agentId;
    this.client = new SweeperClient(this.config.controller, this.config.security);
    this.log = this.config.log;
  }

  get state(): AgentState {
    return this.currentState;
  }

  private setState(next: AgentState, why: string): void {
    if (!TRANSITIONS[this.currentState].includes(next)) {
      throw new IllegalStateError(`agent cannot go from ${this.currentState} to ${next}`);
    }
    this.log.debug(`agent ${this.currentState} → ${next}`, { why });
    this.currentState = next;
  }

  /**
   * The host is taking the machine back (Slurm's warning signal before a time limit or a
   * preemption): take no new trial, send each running trial SIGUSR1 so it can checkpoint, and
   * after --preempt-grace stop it as usual (SIGTERM, grace, SIGKILL); report them preempted, so
   * the controller continues each under its id on another agent, and exit. Once only.
   */
  preempt(why = 'the host is taking this machine back'): void {
    if (this.preemptReason !== undefined) return;
    this.preemptReason = why;
    this.log.warn(`${why}: the trials get SIGUSR1 to checkpoint and ${this.config.preemptGraceMs / 1000} s before SIGTERM; no new trial`);
    for (const trialId of this.running.keys()) this.preemptTrial(trialId);
    this.shutdown(why);
  }

  private preemptTrial(trialId: string): void {
    const trial = this.running.get(trialId);
    if (!trial || this.preempting.has(trialId)) return;
    trial.proc.signal('SIGUSR1');
    const reason: StopReason = { kind: 'preempted', text: this.preemptReason! };
    const timer = setTimeout(() => this.stopTrial(trialId, reason), this.config.preemptGraceMs);
    timer.unref();
    this.preempting.set(trialId, timer);
  }

  /**
   * First call: take no new trial and stop the running one with its grace period (a preempted
   * one keeps its time to checkpoint first). Second call: kill the running trials now.
   */
  shutdown(why = 'shutdown requested'): void {
    this.shutdownRequests++;
    if (this.shutdownRequests === 1) {
      this.log.info(`${why}: finishing up (again to force)`);
      this.shutdownController.abort();
      for (const trialId of this.running.keys()) if (!this.preempting.has(trialId)) this.stopTrial(trialId, SHUTDOWN);
      const patience = this.config.graceMs + SHUTDOWN_PATIENCE_MS + (this.preemptReason !== undefined ? this.config.preemptGraceMs : 0);
      setTimeout(() => this.patience.abort(new SweeperError(`still waiting ${patience / 1000} s after the shutdown began`)), patience).unref();
    } else {
      this.log.warn('forcing shutdown: killing running trials');
      this.patience.abort(new SweeperError('forced shutdown'));
      for (const trialId of this.running.keys()) this.stopTrial(trialId, SHUTDOWN, 0);
    }
  }

  /** Runs until the sweep is over, --count is reached or a shutdown; rejects with a SweeperError. */
  async run(): Promise<AgentSummary> {
    this.watchController();
    try {
      const reason = await this.loop();
      if (this.controllerLost) throw this.controllerLost;
      return { agentId: this.agentId, trialsRun: this.trialsRun, reason };
    } catch (err) {
      const failure = this.controllerLost ?? coerceError(err);
      if (this.currentState !== 'failed') this.setState('failed', failure.message);
      throw failure;
    } finally {
      await this.close();
    }
  }

  /** --controller-timeout: past it without an answer from the controller, stop the trials and fail. */
  private watchController(): void {
    const timeoutMs = this.config.controllerTimeoutMs;
    if (timeoutMs === 0) return;
    this.controllerWatch = setInterval(() => {
      if (this.unreachableSince === undefined || this.controllerLost) return;
      const silentMs = Date.now() - this.unreachableSince;
      if (silentMs < timeoutMs) return;
      this.controllerLost = new ControllerUnreachableError(
        `the controller at ${this.config.controller} has been unreachable for ${Math.round(silentMs / 1000)} s ` +
          `(--controller-timeout ${timeoutMs / 1000}): stopped this agent's trials and gave up`,
      );
      this.log.error(`controller unreachable for ${Math.round(silentMs / 1000)} s (--controller-timeout): stopping trials and exiting`);
      this.controllerGone.abort(this.controllerLost);
      if (this.shutdownRequests === 0) this.shutdown('controller unreachable');
    }, Math.min(1000, timeoutMs));
    this.controllerWatch.unref();
  }

  /**
   * `fn`'s answer from the controller, noting whether it answered (a refusal is an answer) or could
   * not be reached, and since when.
   */
  private async reach<T>(fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      const res = await fn();
      this.unreachableSince = undefined;
      return res;
    } catch (err) {
      if (err instanceof ApiError && err.transient) this.unreachableSince ??= started;
      else if (err instanceof ApiError) this.unreachableSince = undefined;
      throw err;
    }
  }

  private async loop(): Promise<string> {
    const { sweepId, controller } = this.config;
    const abort = this.shutdownController.signal;
    const reg = await this.register(abort).catch((err) => {
      if (err instanceof ApiError && err.code === grpc.status.NOT_FOUND) {
        throw new UsageError(`unknown sweep '${sweepId}' on controller ${controller} (check the id with 'sweeper ls')`, { cause: err });
      }
      throw err;
    });
    this.setState('running', 'registered');
    this.log.info('agent registered', { agent: this.agentId, sweep: sweepId, controller });

    const natsUrl = this.config.natsUrl ?? advertisedNatsUrl(reg.natsUrl, controller);
    // Our own NATS credentials win; otherwise those the controller handed us at registration.
    const ownCreds = this.config.natsUser !== undefined || this.config.natsToken !== undefined;
    const useJwt = !ownCreds && reg.natsJwt !== '';
    this.nc = await connectNats(natsUrl, {
      name: `sweeper-agent-${this.agentId}`,
      user: ownCreds ? this.config.natsUser : reg.natsUser || undefined,
      pass: ownCreds ? this.config.natsPass : reg.natsPassword || undefined,
      token: ownCreds ? this.config.natsToken : reg.natsToken || undefined,
      ...(useJwt ? { jwt: { jwt: () => this.natsJwt, seed: this.natsKey.getSeed() }, inboxPrefix: reg.natsInboxPrefix || agentInboxPrefix(this.agentId) } : {}),
      log: this.log.child('nats'),
      waitOnFirstConnect: true,
    });
    if (useJwt) void this.renewOnAuthErrors(this.nc);
    if (this.config.spoolDir) {
      const identity: SpoolIdentity = { agentId: this.agentId, ...(useJwt ? { creds: formatCreds(this.natsJwt, this.natsKey.getSeed()) } : {}) };
      this.spool = new MetricSpool({ dir: this.config.spoolDir, sweepId, log: this.log.child('spool'), identity });
    }
    this.publisher = new MetricPublisher({ nc: this.nc, sweepId, agentId: this.agentId, log: this.log.child('metrics'), journal: this.spool });
    this.output = new OutputPublisher({ nc: this.nc, sweepId, agentId: this.agentId, log: this.log.child('output') });
    this.adoptOrphanedMetrics();
    // Agents of this host that die while we run leave journals too: look again now and then.
    if (this.spool) this.adoptTimer = setInterval(() => this.adoptOrphanedMetrics(), ADOPT_INTERVAL_MS);
    this.adoptTimer?.unref();
    this.listenForControl(this.nc);
    // An older controller that sends no interval gets the one for the default timeout.
    this.startHeartbeats(reg.heartbeatIntervalMs || heartbeatIntervalFor(DEFAULT_HEARTBEAT_TIMEOUT_MS));

    // Trials the controller thinks we hold but this process does not run were lost with an
    // earlier process under the same id: report them, so they are not left running forever.
    for (const t of reg.heldTrials) {
      if (this.assigned.has(t.id)) continue;
      await this.complete({
        ...emptyCompletion(this.agentId, t.id),
        lostReason: `agent ${this.agentId} restarted while the trial ran; its process was lost`,
      });
    }

    if (this.config.slots.some((s) => s.gpu)) this.startGpuSampling();
    this.startProcSampling();
    // One loop per slot; the agent is done when every slot is.
    const reasons = await Promise.all(this.config.slots.map((slot) => this.slotLoop(slot)));
    return reasons[0];
  }

  /** Publishes what agents of this host killed before they could had left in the spool. */
  private adoptOrphanedMetrics(): void {
    if (this.shutdownController.signal.aborted) return;
    const orphans = this.spool?.adoptOrphans() ?? [];
    if (orphans.length === 0) return;
    const points = orphans.reduce((n, r) => n + r.queued.length + (r.unacked?.points.length ?? 0), 0);
    this.log.info('publishing metric points that dead agents left in the spool', { trials: orphans.length, points });
    // A dead agent's trials are published as that agent (NATS and the controller take a trial's
    // metrics only from its holder): with its credentials where it had its own.
    const byOwner = new Map<string, RecoveredTrial[]>();
    for (const r of orphans) {
      const owner = r.owner?.agentId ?? this.agentId;
      const list = byOwner.get(owner);
      if (list) list.push(r);
      else byOwner.set(owner, [r]);
    }
    for (const [owner, trials] of byOwner) {
      if (owner === this.agentId) {
        const publisher = this.publisher!;
        for (const r of trials) {
          publisher.adopt(r);
          // Closing the publisher flushes these too, and releases what got through.
          void publisher.flushTrial(r.trialId).then(
            () => publisher.release(r.trialId),
            (err) => this.log.warn('spooled metric points not published yet (kept for the next agent)', { trial: r.trialId, error: String(err) }),
          );
        }
      } else {
        void this.publishAs(trials[0].owner!, trials).catch((err) =>
          this.log.warn('spooled metric points of a dead agent not published yet (kept for the next agent)', { owner, error: String(err) }),
        );
      }
    }
  }

  /** Publishes another (dead) agent's spooled trials under its name, then lets go of its connection. */
  private async publishAs(owner: SpoolIdentity, trials: RecoveredTrial[]): Promise<void> {
    let nc = this.nc!;
    if (owner.creds) {
      const { jwt, seed } = parseCreds(owner.creds);
      nc = await connectNats(this.nc!.getServer(), {
        name: `sweeper-agent-${this.agentId}-for-${owner.agentId}`,
        jwt: { jwt, seed: new TextEncoder().encode(seed) },
        inboxPrefix: agentInboxPrefix(owner.agentId),
        log: this.log.child('nats-adopted'),
      });
    }
    const publisher = new MetricPublisher({ nc, sweepId: this.config.sweepId, agentId: owner.agentId, log: this.log.child('metrics-adopted'), journal: this.spool });
    try {
      for (const r of trials) publisher.adopt(r);
      await Promise.all(
        trials.map((r) => publisher.flushTrial(r.trialId, { signal: this.patience.signal }).then(() => publisher.release(r.trialId))),
      );
    } finally {
      await publisher.close({ signal: this.patience.signal });
      if (nc !== this.nc) await nc.close().catch(() => undefined);
    }
  }

  /**
   * With Sweeper's NATS auth, a refused connection means our JWT is no longer trusted (the keys
   * were rotated): register again for a new one, which the next reconnect presents. Points wait
   * in the publisher and the spool meanwhile.
   */
  private async renewOnAuthErrors(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type !== Events.Error || !/authorization|authentication|expired/i.test(String(s.data))) continue;
      this.log.warn('NATS refused our credentials; registering again for new ones', { error: String(s.data) });
      await this.reregister().catch((err) => this.log.warn('could not register again', { error: String(err) }));
    }
  }

  /** One registration at a time, however many calls found the controller had forgotten us. */
  private reregister(): Promise<ApiRegisterAgentResponse> {
    this.registering ??= this.register(this.shutdownController.signal).finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  /**
   * An API call for this agent: retried while the controller is away, and after registering
   * again when a restarted controller no longer knows us.
   */
  private async call<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await withRetry(what, () => this.reach(fn), this.log, signal);
      } catch (err) {
        if (!(err instanceof ApiError && isUnknownAgent(err)) || attempt >= 3) throw err;
        this.log.info('the controller does not know this agent (it restarted?): registering again');
        await this.reregister();
      }
    }
  }

  /** Ask for a trial, run it in this slot, report it; again until the sweep (or --count) is over. */
  private async slotLoop(slot: Slot): Promise<string> {
    const { sweepId, count } = this.config;
    const abort = this.shutdownController.signal;
    for (;;) {
      if (abort.aborted) return 'shut down by signal';
      // --count counts trials across slots: a slot claims one before asking, and gives the
      // claim back when it gets none.
      if (count !== undefined && this.trialsRun >= count) return `ran --count ${count} trials`;
      this.trialsRun++;
      const res = await this.call('request a trial', () => this.client.requestTrial(this.agentId, sweepId), abort).catch(
        (err) => {
          if (abort.aborted) return undefined;
          throw err;
        },
      );
      const trial = res?.outcome === 'trial' ? res.trial : undefined;
      if (!trial || this.assigned.has(trial.trialId) || abort.aborted) this.trialsRun--;
      if (!res || abort.aborted) return 'shut down by signal';
      if (res.outcome === 'done') return res.done || 'sweep over';
      if (res.outcome === 'retryAfterMs') {
        this.log.debug('no trial for now', { retryAfterMs: res.retryAfterMs });
        await sleep(Math.max(100, res.retryAfterMs ?? 1000), abort);
        continue;
      }
      if (!trial) return 'sweep over';
      if (this.assigned.has(trial.trialId)) {
        // Another slot runs it (the controller re-sent it after a reconnect): ask again later.
        await sleep(1000, abort);
        continue;
      }
      this.assigned.add(trial.trialId);
      try {
        const failed = await this.runTrial(trial, slot);
        this.checkFlapping(failed);
      } finally {
        this.assigned.delete(trial.trialId);
      }
    }
  }

  /**
   * GPU utilisation, memory, temperature and power of each running trial's GPU, as system metrics.
   * One nvidia-smi at a time: a tick while it is slow only asks for one more sample after it.
   */
  private startGpuSampling(): void {
    const sample = async () => {
      const samples = await sampleGpus();
      const t = Date.now();
      for (const [trialId, slot] of this.slotOf) {
        const g = slot.gpu && samples.find((x) => x.index === slot.gpu!.index);
        if (!g) continue;
        const values: Record<string, number> = { 'system/gpu.index': Number(g.index) };
        if (Number.isFinite(g.utilizationPct)) values['system/gpu.util'] = g.utilizationPct;
        if (Number.isFinite(g.memoryUsedMb)) values['system/gpu.memory_mb'] = g.memoryUsedMb;
        if (Number.isFinite(g.temperatureC)) values['system/gpu.temp_c'] = g.temperatureC;
        if (Number.isFinite(g.powerW)) values['system/gpu.power_w'] = g.powerW;
        this.publisher?.add(trialId, { step: null, t, values, system: true });
      }
    };
    const samples = new OneInFlight(sample, (err) => this.log.debug('GPU sampling failed', { error: String(err) }));
    this.gpuSamples = samples;
    this.gpuTimer = setInterval(() => samples.request(), this.config.gpuSampleMs);
    this.gpuTimer.unref();
  }

  /**
   * CPU % (100 = one core) and resident memory (MiB) of each running trial's process tree, as
   * system metrics, at the GPU sampling interval; each trial's first sample has its CPU since it
   * started (runTrial tells the sampler). One pass over /proc at a time, as for nvidia-smi.
   */
  private startProcSampling(): void {
    if (!procAvailable()) {
      this.log.debug('no /proc on this host: no CPU and memory samples of trials');
      return;
    }
    const sampler = new ProcSampler();
    this.procSampler = sampler;
    const sample = async () => {
      const roots = new Map<string, number>();
      for (const [trialId, trial] of this.running) if (trial.proc.pid !== undefined) roots.set(trialId, trial.proc.pid);
      const trees = await sampler.sample(roots);
      const t = Date.now();
      for (const [trialId, tree] of trees) {
        // Ended while /proc was read: its points are flushed already.
        if (!this.running.has(trialId)) continue;
        const values: Record<string, number> = { 'system/memory.rss_mb': tree.rssMb };
        if (tree.cpuPercent !== undefined) values['system/cpu.percent'] = tree.cpuPercent;
        this.publisher?.add(trialId, { step: null, t, values, system: true });
      }
    };
    const samples = new OneInFlight(sample, (err) => this.log.debug('CPU and memory sampling failed', { error: String(err) }));
    this.procSamples = samples;
    this.procTimer = setInterval(() => samples.request(), this.config.gpuSampleMs);
    this.procTimer.unref();
  }

  private async register(abort?: AbortSignal): Promise<ApiRegisterAgentResponse> {
    const reg = await withRetry(
      'register agent',
      () =>
        this.reach(() =>
          this.client.registerAgent({
            agentId: this.agentId,
            sweepId: this.config.sweepId,
            hostname: osHostname(),
            pid: process.pid,
            slots: this.config.slots.length,
            natsPublicKey: this.natsKey.getPublicKey(),
          }),
        ),
      this.log,
      abort,
    );
    this.natsJwt = reg.natsJwt;
    return reg;
  }

  /** Stop when the first trials keep failing: the program or its environment is broken. */
  private checkFlapping(failed: boolean): void {
    const max = this.config.maxInitialFailures;
    this.failuresInARow = failed ? this.failuresInARow + 1 : 0;
    if (max > 0 && this.failuresInARow >= max && Date.now() - this.startedAt < FLAPPING_WINDOW_MS) {
      throw new AgentFlappingError(
        `${this.failuresInARow} trials in a row failed within the agent's first minute; stopping this agent. ` +
          `Check the program with 'sweeper logs <trial id>' (--max-initial-failures 0 turns this check off).`,
      );
    }
  }

  /** Runs the trial and reports it; true when it failed (exit status or could not start). */
  private async runTrial(a: ApiAssignment, slot: Slot): Promise<boolean> {
    const log = this.log.child(a.trialId);
    const params = parseTypedJson(a.paramsJson) as Params;
    let result: TrialResult;
    let argv: string[] = [];
    try {
      const command = buildCommand({
        command: a.command.length ? a.command : undefined,
        program: a.program || undefined,
        params,
        cwd: this.config.cwd,
        sweepId: this.config.sweepId,
        trialId: a.trialId,
        checkpointDir: join(this.config.checkpointDir, this.config.sweepId, a.trialId),
        resume: a.resume,
        // The trial sees only its slot's GPU, by physical index, whatever the agent was given.
        env: slot.gpu ? { ...process.env, CUDA_VISIBLE_DEVICES: slot.gpu.index } : process.env,
      });
      argv = command.argv;
      log.info('trial starting', { argv: argv.join(' '), gpu: slot.gpu?.index });
      this.slotOf.set(a.trialId, slot);
      mkdirSync(join(this.config.checkpointDir, this.config.sweepId, a.trialId), { recursive: true });
      // A continued trial's batches go on after the last one its earlier run published.
      if (a.firstMetricSeq > 1) this.publisher!.beginTrial(a.trialId, a.firstMetricSeq);
      const stop = new AbortController();
      const proc = startTrial({
        command,
        cwd: this.config.cwd,
        onPoint: (p) => this.publisher!.add(a.trialId, p),
        onMalformed: () => this.publisher!.noteMalformed(a.trialId),
        onPreempting: () => this.selfPreempted.add(a.trialId),
        onOutput: (stream, line) => this.output?.add(a.trialId, stream, line),
        signal: stop.signal,
        graceMs: this.config.graceMs,
        orphanGraceMs: this.config.graceMs,
        logger: log,
      });
      this.running.set(a.trialId, { proc, stop });
      if (proc.pid !== undefined) this.procSampler?.begin(a.trialId, proc.pid);
      // A shutdown (or preemption) that began while we were starting must reach this trial too.
      if (this.preemptReason !== undefined) this.preemptTrial(a.trialId);
      else if (this.shutdownController.signal.aborted) this.stopTrial(a.trialId, SHUTDOWN);
      result = await proc.result;
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      result = { exitCode: null, signal: null, startError: err.message, stdoutTail: [], stderrTail: [], durationMs: 0, malformedLines: 0 };
    } finally {
      this.running.delete(a.trialId);
      this.slotOf.delete(a.trialId);
      clearTimeout(this.preempting.get(a.trialId));
    }
    // Told to checkpoint: reported as preempted (the controller decides by the exit code, as W&B).
    const preemptedByHost = this.preempting.delete(a.trialId);
    const preempted = this.selfPreempted.delete(a.trialId) || preemptedByHost;
    const [lastSeq] = await Promise.all([this.flushTrial(a.trialId), this.finishOutput(a.trialId)]);
    const points = this.publisher!.pointCounts(a.trialId);
    const stoppedReason = result.stoppedBy && !preempted ? stopText(result.stoppedBy) : '';
    const outcome = result.startError
      ? `could not start: ${result.startError}`
      : result.stoppedBy
        ? `stopped (${stoppedReason})`
        : result.signal
          ? `killed by ${result.signal}`
          : `exit ${result.exitCode}`;
    log.info('trial ended', { outcome, seconds: (result.durationMs / 1000).toFixed(1) });
    await this.complete({
      agentId: this.agentId,
      trialId: a.trialId,
      ...(result.exitCode !== null ? { exitCode: result.exitCode } : {}),
      signal: result.signal ?? '',
      startError: result.startError ?? '',
      stoppedReason,
      stdoutTail: result.stdoutTail,
      stderrTail: result.stderrTail,
      lastMetricSeq: lastSeq,
      argv,
      metricPoints: points.captured,
      droppedPoints: points.dropped,
      preemptedReason: preempted ? (this.preemptReason ?? 'the trial marked itself preempting (mark_preempting)') : '',
    });
    return !preempted && !result.stoppedBy && (result.startError !== undefined || result.exitCode !== 0);
  }

  /**
   * Waits until JetStream has every point of the trial; the last acknowledged batch seq. Shutting
   * down, it stops waiting once patience runs out: what is left waits in the spool.
   */
  private async flushTrial(trialId: string): Promise<number> {
    const publisher = this.publisher!;
    try {
      const { lastSeq } = await publisher.flushTrial(trialId, { signal: this.patience.signal });
      publisher.release(trialId);
      return lastSeq;
    } catch (err) {
      const unsent = publisher.bufferedPoints(trialId);
      if (this.spool) this.log.warn('metric points not yet published; they wait in the spool for the next agent', { trial: trialId, unsent, error: String(err) });
      else this.log.error('metric points not published and lost (--no-spool)', { trial: trialId, unsent, error: String(err) });
      return publisher.ackedSeq(trialId);
    }
  }

  /** Sends the rest of the trial's live output, waiting a little for NATS; says what was dropped. */
  private async finishOutput(trialId: string): Promise<void> {
    if (!this.output) return;
    const { sent, dropped, complete } = await this.output.finishTrial(trialId, { signal: this.patience.signal });
    if (dropped.rate + dropped.backlog > 0) {
      const why = { trial: trialId, sent, overRate: dropped.rate, whileNatsSlow: dropped.backlog };
      this.log.warn('some output lines were not streamed live; the end report keeps the last ones', why);
    }
    if (!complete) this.log.debug('the last live output batch was not acknowledged in time', { trial: trialId });
  }

  /**
   * Reports a trial's end. Must survive a controller restart: retried, while shutting down too
   * until patience runs out. A report the controller refuses never stops the agent: it sends
   * what it can instead (the trial then ends failed with the reason), or logs the refusal.
   */
  private async complete(req: ApiCompleteTrialRequest): Promise<void> {
    // Past patience, or once the controller is given up on (--controller-timeout), stop retrying.
    const giveUp = AbortSignal.any([this.patience.signal, this.controllerGone.signal]);
    const send = (r: ApiCompleteTrialRequest) => this.call(`report trial ${r.trialId}`, () => this.client.completeTrial(r), giveUp);
    try {
      await send(req);
    } catch (err) {
      if (giveUp.aborted) {
        this.log.warn('trial not reported; the controller will count it crashed', { trial: req.trialId, error: String(err) });
        return;
      }
      if (!(err instanceof ApiError) || err.code !== grpc.status.INVALID_ARGUMENT) {
        this.log.error('the controller refused the trial report', { trial: req.trialId, error: String(err) });
        return;
      }
      const reportError = `the controller refused the agent's report: ${err.details.slice(0, 500)}`;
      this.log.error(`${reportError}; sending a reduced one`, { trial: req.trialId });
      await send(reducedReport(req, reportError)).catch((again) =>
        this.log.error('the controller refused the reduced trial report too', { trial: req.trialId, error: String(again) }),
      );
    }
  }

  private listenForControl(nc: NatsConnection): void {
    this.controlSub = nc.subscribe(controlSubject(this.agentId), {
      callback: (err, msg) => {
        if (err) return;
        let parsed;
        try {
          parsed = controlMessageSchema.safeParse(JSON.parse(new TextDecoder().decode(msg.data)));
        } catch {
          parsed = undefined;
        }
        if (!parsed?.success) {
          this.log.warn('ignored a malformed control message');
          return;
        }
        this.obeyStopOrder(parsed.data.trialId, parsed.data.reason, parsed.data.graceMs, parsed.data.kind);
      },
    });
  }

  /** A stop order of the controller (control message or heartbeat answer): `graceMs` 0 kills at once; -1 or undefined uses this agent's grace period. */
  private obeyStopOrder(trialId: string, text: string, graceMs?: number, kind?: string): void {
    if (!this.running.has(trialId)) return;
    const reason = orderedStop(text, kind);
    const grace = graceMs === undefined || graceMs < 0 ? this.config.graceMs : graceMs;
    this.log.info("stopping trial on the controller's order", { trial: trialId, reason: text, kind: reason.kind, graceMs: grace });
    this.stopTrial(trialId, reason, grace);
  }

  /**
   * Stops a running trial: SIGTERM to its group, SIGKILL after `graceMs`. The first stop's reason
   * is the trial's (it aborts the trial's controller); a later one can only bring the SIGKILL forward.
   */
  private stopTrial(trialId: string, reason: StopReason, graceMs = this.config.graceMs): void {
    const trial = this.running.get(trialId);
    if (!trial) return;
    // A grace of its own (a cancel, a forced shutdown, the controller's) starts the stop directly;
    // the abort then finds it under way and keeps that grace.
    if (graceMs !== this.config.graceMs) void trial.proc.stop(reason, graceMs);
    trial.stop.abort(reason);
  }

  /**
   * Heartbeats, one in flight at a time: a tick while one is out (the controller is slow or away)
   * only asks for one more, sent when it returns, with the trials running then.
   */
  private startHeartbeats(intervalMs: number): void {
    const beat = async () => {
      const res = await this.reach(() =>
        this.client.heartbeat({
          agentId: this.agentId,
          sweepId: this.config.sweepId,
          runningTrialIds: [...this.running.keys()],
        }),
      );
      for (const order of res.stop) this.obeyStopOrder(order.trialId, order.reason, order.graceMs, order.kind);
      // The controller restarted and forgot us: register again (it keeps our trials). Not part of
      // this heartbeat: the next ones go out meanwhile.
      if (res.unknownAgent) void this.reregister().catch((err) => this.log.debug('could not register again', { error: String(err) }));
    };
    const heartbeats = new OneInFlight(beat, (err) => this.log.debug('heartbeat failed', { error: String(err) }));
    this.heartbeats = heartbeats;
    this.heartbeatTimer = setInterval(() => heartbeats.request(), intervalMs);
    this.heartbeatTimer.unref();
  }

  private async close(): Promise<void> {
    if (this.currentState === 'running' || this.currentState === 'initialized') this.setState('stopping', 'closing');
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    void this.heartbeats?.stop();
    if (this.controllerWatch) clearInterval(this.controllerWatch);
    if (this.gpuTimer) clearInterval(this.gpuTimer);
    void this.gpuSamples?.stop();
    if (this.procTimer) clearInterval(this.procTimer);
    void this.procSamples?.stop();
    if (this.adoptTimer) clearInterval(this.adoptTimer);
    this.controlSub?.unsubscribe();
    this.output?.close();
    try {
      await this.publisher?.close({ signal: this.patience.signal });
      this.spool?.close();
      // Draining waits on the server: not past patience.
      await Promise.race([this.nc?.drain(), aborted(this.patience.signal)]);
      if (this.nc && !this.nc.isClosed()) await this.nc.close();
    } catch (err) {
      this.log.warn('error while closing NATS', { error: String(err) });
    }
    this.client.close();
    if (this.currentState === 'stopping') this.setState('stopped', 'closed');
  }
}

/** Whether the controller said it does not know this agent (see SweepService.requireAgent). */
function isUnknownAgent(err: ApiError): boolean {
  return err.code === grpc.status.NOT_FOUND && /^unknown agent /.test(err.details);
}

/** What surely fits the wire: short tails and argv, and why the full report was refused. */
function reducedReport(req: ApiCompleteTrialRequest, reportError: string): ApiCompleteTrialRequest {
  const cut = (lines: string[], n: number) => lines.slice(-n).map((l) => (l.length > 1000 ? `${l.slice(0, 1000)}…` : l));
  return { ...req, argv: cut(req.argv.slice(0, 100), 100), stdoutTail: cut(req.stdoutTail, 50), stderrTail: cut(req.stderrTail, 50), reportError };
}

function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function emptyCompletion(agentId: string, trialId: string): ApiCompleteTrialRequest {
  return {
    agentId,
    trialId,
    signal: '',
    startError: '',
    stoppedReason: '',
    stdoutTail: [],
    stderrTail: [],
    lastMetricSeq: 0,
    argv: [],
  };
}

/**
 * The controller advertises the NATS URL it uses itself. When that is a loopback address but the
 * controller is on another host, the agent would dial itself: use the controller's host instead.
 */
export function advertisedNatsUrl(advertised: string, controller: string): string {
  if (!advertised) throw new UsageError('the controller advertised no NATS URL; pass --nats URL');
  const ctrlHost = controller.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1');
  return advertised
    .split(',')
    .map((u) => {
      const m = /^(nats:\/\/|tls:\/\/)?([^@]*@)?(\[[^\]]+\]|[^:/]+)(:\d+)?$/.exec(u.trim());
      if (!m) return u;
      const host = m[3].replace(/^\[|\]$/g, '');
      if (!isLoopbackHost(host) || isLoopbackHost(ctrlHost)) return u;
      return `${m[1] ?? 'nats://'}${m[2] ?? ''}${ctrlHost}${m[4] ?? ''}`;
    })
    .join(',');
}
