/**
 * The controller's durable state as an event log. Every change to a sweep or trial is an event,
 * appended to JetStream before it takes effect; the in-memory view is `applyEvent` folded over
 * the log, so a restarted controller rebuilds exactly the same view by replaying it.
 * Metric points are not events: they live in their own stream (see controller/metric-store.ts).
 *
 * Replay trusts nothing it reads: whoever can publish to the state subjects can write the log, so
 * every replayed event is checked against its schema (controller/event-log.ts) and against the
 * state so far (`rebuildState`), and one that fails is skipped and counted, never thrown.
 */
import { z } from 'zod';
import { ID_RULE, isValidId } from '../../domain/ids.js';
import { MAX_ARGV_ENTRIES, MAX_ARGV_ENTRY_CHARS } from '../../common/limits.js';
import type { Params } from '../../domain/values.js';
import { parseTypedJson } from '../../domain/values.js';
import type { SweepConfig } from '../../domain/sweep-config.js';
import { METHODS } from '../../domain/sweep-config.js';
import { isSweepOver, isTerminal, SWEEP_STATES, TRIAL_STATES, type SweepState, type TrialState } from '../../domain/trial-state.js';

export const sweepStateSchema = z.enum(SWEEP_STATES);
export type { SweepState };

const trialStateSchema = z.enum(TRIAL_STATES);

/**
 * Bounds of a replayed event. Each is at least what the writer can produce, since refusing a real
 * event would lose it (and every later trial of its sweep, whose numbers then no longer follow):
 * the API's limits (controller/grpc-server.ts) and what `SweepService.endTrial` keeps.
 */
export const EVENT_LIMITS = {
  /** CreateSweep refuses a longer config text (MAX_CONFIG_CHARS in sweep-service.ts). */
  maxConfigTextChars: 1024 * 1024,
  /** Typed JSON of a config or of parameters drawn from it: a 1 MiB text may expand (YAML aliases). */
  maxJsonChars: 4 * 1024 * 1024,
  /** One reason, signal or output line: the API's per-entry limit. */
  maxLineChars: 64 * 1024,
  /** The limits CompleteTrial holds argv to (common/limits.ts). */
  maxArgv: MAX_ARGV_ENTRIES,
  maxArgvEntryChars: MAX_ARGV_ENTRY_CHARS,
  /** `endTrial` keeps the last 200 lines of each output. */
  maxTailLines: 200,
} as const;

/**
 * One bound on a field, checked after the event's shape. Replay parses every event of a big log,
 * and zod parses a shape several times faster when none of its fields carries checks of its own,
 * so each kind of event runs its bounds in one pass (`bounded`) instead.
 */
interface Bound<T> {
  test(v: T): boolean;
  message: string;
}

/** Sweep and trial ids (domain/ids.ts): sweep ids are 8 characters, trial ids `<sweepId>-<number>`. */
const ID: Bound<string> = { test: isValidId, message: ID_RULE };
/**
 * Agent ids in a replayed log: RequestTrial once accepted an unregistered agent with up to 200
 * characters, and refusing such an old event would lose its trial, so replay stays that lenient.
 */
const LEGACY_AGENT_ID_CHARS = 200;
const LEGACY_AGENT_ID = new RegExp(`^[A-Za-z0-9_-]{1,${LEGACY_AGENT_ID_CHARS}}$`);
const AGENT_ID: Bound<string> = {
  test: (v) => LEGACY_AGENT_ID.test(v),
  message: `1-${LEGACY_AGENT_ID_CHARS} letters, digits, '-' or '_'`,
};
const OPTIONAL_ID: Bound<string | undefined> = { test: (v) => v === undefined || ID.test(v), message: ID.message };
const maxChars = (max: number): Bound<string> => ({ test: (v) => v.length <= max, message: `at most ${max} characters` });
const LINE = maxChars(EVENT_LIMITS.maxLineChars);
const lines = (max: number, entryChars = EVENT_LIMITS.maxLineChars): Bound<string[]> => ({
  test: (v) => v.length <= max && v.every((l) => l.length <= entryChars),
  message: `at most ${max} entries of at most ${entryChars} characters`,
});
const JSON_TEXT: Bound<string> = { test: (v) => v.length >= 2 && v.length <= EVENT_LIMITS.maxJsonChars, message: `2 to ${EVENT_LIMITS.maxJsonChars} characters` };
const TIME: Bound<number> = { test: (v) => v >= 0, message: 'a time >= 0' };
const COUNT: Bound<number> = { test: (v) => Number.isSafeInteger(v) && v > 0, message: 'an integer >= 1' };
const SEED: Bound<number> = { test: (v) => Number.isSafeInteger(v) && v >= 0, message: 'an integer >= 0' };
/** A count the agent sends as a protobuf uint32. */
const OPTIONAL_TALLY: Bound<number | undefined> = { test: (v) => v === undefined || (Number.isSafeInteger(v) && v >= 0), message: 'an integer >= 0' };
const EXIT_CODE: Bound<number | null> = { test: (v) => v === null || Number.isSafeInteger(v), message: 'an integer or null' };

/** An event's shape, with the bounds of its fields reported as issues at their paths. */
function bounded<S extends z.ZodRawShape>(shape: S, bounds: { [K in keyof S]?: Bound<z.output<S[K]>> }) {
  const checks = Object.entries(bounds) as [string, Bound<unknown>][];
  return z.object(shape).check((ctx) => {
    const event = ctx.value as Record<string, unknown>;
    for (const [key, bound] of checks) {
      if (!bound.test(event[key])) ctx.issues.push({ code: 'custom', message: bound.message, input: event[key], path: [key] });
    }
  });
}

const sweepCreatedSchema = bounded(
  {
    type: z.literal('sweep_created'),
    sweepId: z.string(),
    at: z.number(),
    /** The validated config as typed JSON, and the text the user wrote. */
    configJson: z.string(),
    configText: z.string(),
    seed: z.number(),
  },
  { sweepId: ID, at: TIME, configJson: JSON_TEXT, configText: maxChars(EVENT_LIMITS.maxConfigTextChars), seed: SEED },
);

const sweepStateEventSchema = bounded(
  { type: z.literal('sweep_state'), sweepId: z.string(), at: z.number(), state: sweepStateSchema, reason: z.string() },
  { sweepId: ID, at: TIME, reason: LINE },
);

const trialCreatedSchema = bounded(
  {
    type: z.literal('trial_created'),
    sweepId: z.string(),
    trialId: z.string(),
    number: z.number(),
    at: z.number(),
    paramsJson: z.string(),
    agentId: z.string(),
    /** Set when this trial re-runs the parameters of a crashed one. */
    retryOf: z.string().optional(),
  },
  { sweepId: ID, trialId: ID, number: COUNT, at: TIME, paramsJson: JSON_TEXT, agentId: AGENT_ID, retryOf: OPTIONAL_ID },
);

const trialEndedSchema = bounded(
  {
    type: z.literal('trial_ended'),
    sweepId: z.string(),
    trialId: z.string(),
    at: z.number(),
    state: trialStateSchema,
    exitCode: z.number().nullable(),
    signal: z.string(),
    reason: z.string(),
    argv: z.array(z.string()),
    stdoutTail: z.array(z.string()),
    stderrTail: z.array(z.string()),
    /** The metric points the agent declared it captured, and dropped of those; absent when it did not say. */
    metricPoints: z.number().optional(),
    droppedPoints: z.number().optional(),
  },
  {
    sweepId: ID,
    trialId: ID,
    at: TIME,
    exitCode: EXIT_CODE,
    signal: LINE,
    reason: LINE,
    argv: lines(EVENT_LIMITS.maxArgv, EVENT_LIMITS.maxArgvEntryChars),
    stdoutTail: lines(EVENT_LIMITS.maxTailLines),
    stderrTail: lines(EVENT_LIMITS.maxTailLines),
    metricPoints: OPTIONAL_TALLY,
    droppedPoints: OPTIONAL_TALLY,
  },
);

const trialPreemptedSchema = bounded(
  {
    type: z.literal('trial_preempted'),
    sweepId: z.string(),
    trialId: z.string(),
    at: z.number(),
    reason: z.string(),
    /** The last metric batch its agent published: the continuation publishes from the next one. */
    lastMetricSeq: z.number(),
    /** As in trial_ended, for this run of the trial. */
    metricPoints: z.number().optional(),
    droppedPoints: z.number().optional(),
    stdoutTail: z.array(z.string()),
    stderrTail: z.array(z.string()),
  },
  {
    sweepId: ID,
    trialId: ID,
    at: TIME,
    reason: LINE,
    lastMetricSeq: OPTIONAL_TALLY,
    metricPoints: OPTIONAL_TALLY,
    droppedPoints: OPTIONAL_TALLY,
    stdoutTail: lines(EVENT_LIMITS.maxTailLines),
    stderrTail: lines(EVENT_LIMITS.maxTailLines),
  },
);

const trialResumedSchema = bounded(
  { type: z.literal('trial_resumed'), sweepId: z.string(), trialId: z.string(), at: z.number(), agentId: z.string() },
  { sweepId: ID, trialId: ID, at: TIME, agentId: AGENT_ID },
);

/** Every event the controller writes. Unknown keys are dropped, so a newer writer's extras do not refuse an event. */
export const controllerEventSchema = z.discriminatedUnion('type', [
  sweepCreatedSchema,
  sweepStateEventSchema,
  trialCreatedSchema,
  trialEndedSchema,
  trialPreemptedSchema,
  trialResumedSchema,
]);
export type ControllerEvent = z.infer<typeof controllerEventSchema>;
type SweepCreated = z.infer<typeof sweepCreatedSchema>;
type SweepStateEvent = z.infer<typeof sweepStateEventSchema>;
type TrialCreated = z.infer<typeof trialCreatedSchema>;
type TrialEnded = z.infer<typeof trialEndedSchema>;
type TrialPreempted = z.infer<typeof trialPreemptedSchema>;
type TrialResumed = z.infer<typeof trialResumedSchema>;

export interface StateChange {
  state: string;
  at: number;
  reason: string;
}

export interface TrialRecord {
  id: string;
  sweepId: string;
  number: number;
  state: TrialState;
  params: Params;
  paramsJson: string;
  agentId: string;
  /** The crashed trial whose parameters this one runs again, or ''. */
  retryOf: string;
  createdAt: number;
  startedAt: number;
  endedAt: number;
  exitCode: number | null;
  signal: string;
  reason: string;
  argv: string[];
  stdoutTail: string[];
  stderrTail: string[];
  history: StateChange[];
  /**
   * Metric points the agent said it captured, when it reported the end (null: it did not say, or
   * the trial was declared crashed). Points beyond it are refused; fewer stored means some are missing.
   */
  declaredPoints: number | null;
  /** Points the agent itself dropped (buffer full, too large to send): lost, and said so. */
  droppedPoints: number;
  /**
   * Runs cut short by preemption before the current one: how many, and the points their agents
   * declared (null once one did not say), which the final declaration adds to.
   */
  preemptions: number;
  carriedPoints: number | null;
  carriedDropped: number;
  /** The first metric batch seq the current run publishes (1, or after a preempted run's last). */
  firstMetricSeq: number;
}

export interface SweepRecord {
  id: string;
  config: SweepConfig;
  configJson: string;
  configText: string;
  seed: number;
  state: SweepState;
  createdAt: number;
  finishedAt: number;
  finishReason: string;
  /** Trials in creation order; index = number - 1. */
  trials: TrialRecord[];
}

export interface ControllerState {
  sweeps: Map<string, SweepRecord>;
  trials: Map<string, TrialRecord>;
}

export function emptyState(): ControllerState {
  return { sweeps: new Map(), trials: new Map() };
}

/**
 * Apply one event the controller itself just wrote. Idempotent for replays: an event that was
 * already applied (a trial that already exists, an end for a trial already ended) changes
 * nothing, so replaying a log twice or with a duplicate is harmless.
 */
export function applyEvent(state: ControllerState, event: ControllerEvent, decodeConfig: (json: string) => SweepConfig): void {
  switch (event.type) {
    case 'sweep_created':
      if (!state.sweeps.has(event.sweepId)) addSweep(state, event, decodeConfig(event.configJson));
      return;
    case 'sweep_state':
      changeSweepState(state, event);
      return;
    case 'trial_created':
      if (state.sweeps.has(event.sweepId) && !state.trials.has(event.trialId)) addTrial(state, event, parseTypedJson(event.paramsJson) as Params);
      return;
    case 'trial_ended':
      endTrial(state, event);
      return;
    case 'trial_preempted':
      preemptTrial(state, event);
      return;
    case 'trial_resumed':
      resumeTrial(state, event);
      return;
  }
}

// ---- replay -----------------------------------------------------------------------------------

/** Why a message of the state log was skipped; the counters `sweeper stats` shows. */
export type RefusalReason = 'bad_event_json' | 'bad_event_schema' | 'bad_event_subject' | 'bad_event_invalid';

/** An event read back from the log, with its stream sequence. */
export interface LoggedEvent {
  seq: number;
  event: ControllerEvent;
}

export interface SkippedEvent {
  seq: number;
  reason: RefusalReason;
  /** What was wrong, short enough to log. */
  detail: string;
}

/** A replayed log: the events that decoded, in order, and the messages that did not. */
export interface EventReplay {
  events: LoggedEvent[];
  skipped: SkippedEvent[];
}

/**
 * Fold a replayed log into `state`. Each event is checked against the state so far and applied
 * only if the controller could have written it; the others are skipped (`bad_event_invalid`).
 * Returns every skipped message, the undecodable ones included, in stream order.
 */
export function rebuildState(state: ControllerState, replay: EventReplay, decodeConfig: (json: string) => SweepConfig): SkippedEvent[] {
  const skipped = [...replay.skipped];
  for (const { seq, event } of replay.events) {
    let why: string | undefined;
    try {
      why = replayEvent(state, event, decodeConfig);
    } catch (err) {
      // A check we did not think of must not keep the controller from starting either. Safe:
      // every apply step decodes what it needs before it changes anything.
      why = `could not be applied: ${errorText(err)}`;
    }
    if (why !== undefined) skipped.push({ seq, reason: 'bad_event_invalid', detail: why });
  }
  return skipped.sort((a, b) => a.seq - b.seq);
}

/**
 * Apply one replayed event if the controller could have written it given the state so far;
 * otherwise change nothing and say why. A duplicate of an applied event is no refusal: the log
 * may hold one (an append retried after its ack was lost, past the duplicate window).
 */
export function replayEvent(state: ControllerState, event: ControllerEvent, decodeConfig: (json: string) => SweepConfig): string | undefined {
  switch (event.type) {
    case 'sweep_created':
      return replaySweepCreated(state, event, decodeConfig);
    case 'sweep_state':
      if (!state.sweeps.has(event.sweepId)) return `sweep_state for unknown sweep ${event.sweepId}`;
      changeSweepState(state, event);
      return undefined;
    case 'trial_created':
      return replayTrialCreated(state, event);
    case 'trial_ended':
      return replayTrialEnded(state, event);
    case 'trial_preempted':
      return replayTrialPreempted(state, event);
    case 'trial_resumed':
      return replayTrialResumed(state, event);
  }
}

function replaySweepCreated(state: ControllerState, event: SweepCreated, decodeConfig: (json: string) => SweepConfig): string | undefined {
  const existing = state.sweeps.get(event.sweepId);
  if (existing) {
    return existing.configJson === event.configJson && existing.seed === event.seed ? undefined : `sweep ${event.sweepId} created again with another config`;
  }
  let config: SweepConfig;
  try {
    config = decodeConfig(event.configJson);
  } catch (err) {
    return `config of sweep ${event.sweepId} does not decode: ${errorText(err)}`;
  }
  const wrong = configShapeProblem(config);
  if (wrong) return `config of sweep ${event.sweepId}: ${wrong}`;
  addSweep(state, event, config);
  return undefined;
}

/**
 * The little of a config's shape everything after replay relies on without checking. The rest
 * was validated when the sweep was created; re-parsing the text here could refuse real sweeps
 * once the parser changes, and the stored JSON is what keeps a replayed sweep as it ran.
 */
function configShapeProblem(config: unknown): string | undefined {
  if (!isMapping(config)) return 'not a mapping';
  if (!(METHODS as readonly unknown[]).includes(config.method)) return `unknown method ${JSON.stringify(config.method)?.slice(0, 50)}`;
  if (!isMapping(config.parameters)) return 'parameters is not a mapping';
  return undefined;
}

function replayTrialCreated(state: ControllerState, event: TrialCreated): string | undefined {
  const sweep = state.sweeps.get(event.sweepId);
  if (!sweep) return `trial_created for unknown sweep ${event.sweepId}`;
  const existing = state.trials.get(event.trialId);
  if (existing) {
    const same = existing.sweepId === event.sweepId && existing.paramsJson === event.paramsJson && existing.agentId === event.agentId;
    return same ? undefined : `trial ${event.trialId} created again with other parameters or agent`;
  }
  // The writer numbers trials 1, 2, ... per sweep under the sweep's lock: a trial's number is
  // fixed by those before it, and its id by the number.
  if (event.trialId !== `${event.sweepId}-${event.number}`) return `trial id ${event.trialId} is not ${event.sweepId}-${event.number}`;
  const next = sweep.trials.length + 1;
  if (event.number !== next) return `trial ${event.trialId} has number ${event.number}; the next of sweep ${event.sweepId} is ${next}`;
  if (event.retryOf !== undefined) {
    const retried = state.trials.get(event.retryOf);
    if (!retried || retried.sweepId !== event.sweepId || retried.state !== 'crashed' || retried.paramsJson !== event.paramsJson) {
      return `trial ${event.trialId} retries ${event.retryOf}, which is no crashed trial of its sweep with its parameters`;
    }
  }
  let params: unknown;
  try {
    params = parseTypedJson(event.paramsJson);
  } catch (err) {
    return `parameters of trial ${event.trialId} do not decode: ${errorText(err)}`;
  }
  if (!isMapping(params)) return `parameters of trial ${event.trialId} are not a mapping`;
  addTrial(state, event, params as Params);
  return undefined;
}

function replayTrialEnded(state: ControllerState, event: TrialEnded): string | undefined {
  const trial = state.trials.get(event.trialId);
  if (!trial || trial.sweepId !== event.sweepId) return `trial_ended for unknown trial ${event.trialId} of sweep ${event.sweepId}`;
  if (!isTerminal(event.state)) return `trial ${event.trialId} ended in non-final state ${event.state}`;
  endTrial(state, event);
  return undefined;
}

function replayTrialPreempted(state: ControllerState, event: TrialPreempted): string | undefined {
  const trial = state.trials.get(event.trialId);
  if (!trial || trial.sweepId !== event.sweepId) return `trial_preempted for unknown trial ${event.trialId} of sweep ${event.sweepId}`;
  // A duplicate of an applied event is none of our business; otherwise only a running trial.
  if (trial.state !== 'running' && trial.state !== 'preempted') return `trial ${event.trialId} preempted while ${trial.state}`;
  preemptTrial(state, event);
  return undefined;
}

function replayTrialResumed(state: ControllerState, event: TrialResumed): string | undefined {
  const trial = state.trials.get(event.trialId);
  if (!trial || trial.sweepId !== event.sweepId) return `trial_resumed for unknown trial ${event.trialId} of sweep ${event.sweepId}`;
  if (trial.state === 'running' && trial.agentId === event.agentId) return undefined;
  if (trial.state !== 'preempted') return `trial ${event.trialId} resumed while ${trial.state}`;
  resumeTrial(state, event);
  return undefined;
}

// ---- applying ---------------------------------------------------------------------------------

function addSweep(state: ControllerState, event: SweepCreated, config: SweepConfig): void {
  state.sweeps.set(event.sweepId, {
    id: event.sweepId,
    config,
    configJson: event.configJson,
    configText: event.configText,
    seed: event.seed,
    state: 'running',
    createdAt: event.at,
    finishedAt: 0,
    finishReason: '',
    trials: [],
  });
}

function changeSweepState(state: ControllerState, event: SweepStateEvent): void {
  const sweep = state.sweeps.get(event.sweepId);
  if (!sweep || sweep.state === event.state) return;
  // Over is over, except that a stopped sweep may still be cancelled (kill what is in its grace).
  if (isSweepOver(sweep.state) && !(sweep.state === 'stopped' && event.state === 'cancelled')) return;
  sweep.state = event.state;
  if (isSweepOver(event.state)) {
    sweep.finishedAt = event.at;
    sweep.finishReason = event.reason;
  }
}

function addTrial(state: ControllerState, event: TrialCreated, params: Params): void {
  const sweep = state.sweeps.get(event.sweepId)!;
  const trial: TrialRecord = {
    id: event.trialId,
    sweepId: event.sweepId,
    number: event.number,
    state: 'running',
    params,
    paramsJson: event.paramsJson,
    agentId: event.agentId,
    retryOf: event.retryOf ?? '',
    createdAt: event.at,
    startedAt: event.at,
    endedAt: 0,
    exitCode: null,
    signal: '',
    reason: '',
    argv: [],
    stdoutTail: [],
    stderrTail: [],
    declaredPoints: null,
    droppedPoints: 0,
    preemptions: 0,
    carriedPoints: 0,
    carriedDropped: 0,
    firstMetricSeq: 1,
    history: [
      {
        state: 'running',
        at: event.at,
        reason: `assigned to agent ${event.agentId}${event.retryOf ? ` (retry of crashed trial ${event.retryOf})` : ''}`,
      },
    ],
  };
  sweep.trials.push(trial);
  state.trials.set(trial.id, trial);
}

function endTrial(state: ControllerState, event: TrialEnded): void {
  const trial = state.trials.get(event.trialId);
  if (!trial || isTerminal(trial.state)) return;
  trial.state = event.state;
  trial.endedAt = event.at;
  trial.exitCode = event.exitCode;
  trial.signal = event.signal;
  trial.reason = event.reason;
  trial.argv = event.argv;
  trial.stdoutTail = event.stdoutTail;
  trial.stderrTail = event.stderrTail;
  // The declaration covers this run; earlier, preempted runs declared theirs.
  trial.declaredPoints = event.metricPoints === undefined || trial.carriedPoints === null ? null : trial.carriedPoints + event.metricPoints;
  trial.droppedPoints = trial.carriedDropped + (event.droppedPoints ?? 0);
  trial.history.push({ state: event.state, at: event.at, reason: event.reason });
}

/** The run was cut short by its host: the trial waits, with what that run declared carried over. */
function preemptTrial(state: ControllerState, event: TrialPreempted): void {
  const trial = state.trials.get(event.trialId);
  if (!trial || trial.state !== 'running') return;
  trial.state = 'preempted';
  trial.reason = event.reason;
  trial.stdoutTail = event.stdoutTail;
  trial.stderrTail = event.stderrTail;
  trial.preemptions++;
  trial.carriedPoints = event.metricPoints === undefined || trial.carriedPoints === null ? null : trial.carriedPoints + event.metricPoints;
  trial.carriedDropped += event.droppedPoints ?? 0;
  trial.firstMetricSeq = Math.max(trial.firstMetricSeq, event.lastMetricSeq + 1);
  trial.history.push({ state: 'preempted', at: event.at, reason: event.reason });
}

/** The same trial continues on the agent that asked: same id and parameters. */
function resumeTrial(state: ControllerState, event: TrialResumed): void {
  const trial = state.trials.get(event.trialId);
  if (!trial || trial.state !== 'preempted') return;
  trial.state = 'running';
  trial.agentId = event.agentId;
  trial.reason = '';
  trial.history.push({ state: 'running', at: event.at, reason: `continued on agent ${event.agentId} (run ${trial.preemptions + 1})` });
}

/** A plain object: not an array, not a boxed `Float`, and no prototype smuggled in by a `__proto__` key. */
function isMapping(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 200);
}
