/**
 * The controller's durable state as an event log. Every change to a sweep or trial is an event,
 * appended to JetStream before it takes effect; the in-memory view is `applyEvent` folded over
 * the log, so a restarted controller rebuilds exactly the same view by replaying it.
 * Metric points are not events: they live in their own stream (see controller/metric-store.ts).
 */
import type { Params } from '../common/values.js';
import { parseTypedJson } from '../common/values.js';
import type { SweepConfig } from './config/types.js';
import type { TrialState } from './strategies/types.js';

export type SweepState = 'running' | 'paused' | 'finished' | 'stopped' | 'cancelled';

/** A sweep in one of these states hands out no trial again. */
export function isSweepOver(state: SweepState): boolean {
  return state === 'finished' || state === 'stopped' || state === 'cancelled';
}

export const TERMINAL_TRIAL_STATES: ReadonlySet<TrialState> = new Set(['finished', 'failed', 'crashed', 'stopped']);

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

export type ControllerEvent =
  | {
      type: 'sweep_created';
      sweepId: string;
      at: number;
      /** The validated config as typed JSON, and the text the user wrote. */
      configJson: string;
      configText: string;
      seed: number;
    }
  | { type: 'sweep_state'; sweepId: string; at: number; state: SweepState; reason: string }
  | {
      type: 'trial_created';
      sweepId: string;
      trialId: string;
      number: number;
      at: number;
      paramsJson: string;
      agentId: string;
      /** Set when this trial re-runs the parameters of a crashed one. */
      retryOf?: string;
    }
  | {
      type: 'trial_ended';
      sweepId: string;
      trialId: string;
      at: number;
      state: TrialState;
      exitCode: number | null;
      signal: string;
      reason: string;
      argv: string[];
      stdoutTail: string[];
      stderrTail: string[];
    };

export interface ControllerState {
  sweeps: Map<string, SweepRecord>;
  trials: Map<string, TrialRecord>;
}

export function emptyState(): ControllerState {
  return { sweeps: new Map(), trials: new Map() };
}

/**
 * Apply one event. Idempotent for replays: an event that was already applied (a trial that
 * already exists, an end for a trial already ended) changes nothing, so replaying a log twice or
 * with a duplicate is harmless.
 */
export function applyEvent(state: ControllerState, event: ControllerEvent, decodeConfig: (json: string) => SweepConfig): void {
  switch (event.type) {
    case 'sweep_created': {
      if (state.sweeps.has(event.sweepId)) return;
      state.sweeps.set(event.sweepId, {
        id: event.sweepId,
        config: decodeConfig(event.configJson),
        configJson: event.configJson,
        configText: event.configText,
        seed: event.seed,
        state: 'running',
        createdAt: event.at,
        finishedAt: 0,
        finishReason: '',
        trials: [],
      });
      return;
    }
    case 'sweep_state': {
      const sweep = state.sweeps.get(event.sweepId);
      if (!sweep || sweep.state === event.state) return;
      // Over is over, except that a stopped sweep may still be cancelled (kill what is in its grace).
      if (isSweepOver(sweep.state) && !(sweep.state === 'stopped' && event.state === 'cancelled')) return;
      sweep.state = event.state;
      if (isSweepOver(event.state)) {
        sweep.finishedAt = event.at;
        sweep.finishReason = event.reason;
      }
      return;
    }
    case 'trial_created': {
      const sweep = state.sweeps.get(event.sweepId);
      if (!sweep || state.trials.has(event.trialId)) return;
      const trial: TrialRecord = {
        id: event.trialId,
        sweepId: event.sweepId,
        number: event.number,
        state: 'running',
        params: parseTypedJson(event.paramsJson) as Params,
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
      return;
    }
    case 'trial_ended': {
      const trial = state.trials.get(event.trialId);
      if (!trial || TERMINAL_TRIAL_STATES.has(trial.state)) return;
      trial.state = event.state;
      trial.endedAt = event.at;
      trial.exitCode = event.exitCode;
      trial.signal = event.signal;
      trial.reason = event.reason;
      trial.argv = event.argv;
      trial.stdoutTail = event.stdoutTail;
      trial.stderrTail = event.stderrTail;
      trial.history.push({ state: event.state, at: event.at, reason: event.reason });
      return;
    }
  }
}

export function isTerminal(state: TrialState): boolean {
  return TERMINAL_TRIAL_STATES.has(state);
}
