/**
 * The one trial view and sweep view (controller/sweeps/trial-view.ts) that the gRPC API, the
 * dashboard and the CLI map from, and the one ranking rule.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../controller/config/parse.js';
import { MetricStore } from '../../controller/sweeps/metric-store.js';
import type { SweepRecord, TrialRecord } from '../../controller/sweeps/state.js';
import { missingPoints, rankOrder, rankTrials, sweepView, trialView, type TrialView } from '../../controller/sweeps/trial-view.js';
import { Objective } from '../../domain/objective.js';
import type { TrialState } from '../../domain/trial-state.js';

const CONFIG = 'method: random\nname: demo\nmetric: {name: loss, goal: minimize}\nparameters:\n  lr: {min: 0.0, max: 1.0}\n';

function sweepRecord(configText = CONFIG, trials: TrialRecord[] = []): SweepRecord {
  return {
    id: 'sw1',
    config: parseConfigText(configText).config,
    configJson: '{"method":"random"}',
    configText,
    seed: 7,
    state: 'running',
    createdAt: 1000,
    finishedAt: 0,
    finishReason: '',
    trials,
  };
}

function trialRecord(number: number, extra: Partial<TrialRecord> = {}): TrialRecord {
  return {
    id: `sw1-${number}`,
    sweepId: 'sw1',
    number,
    state: 'finished',
    params: { lr: 0.5 },
    paramsJson: '{"lr":0.5}',
    agentId: 'a1',
    retryOf: '',
    createdAt: 1000 + number,
    startedAt: 2000 + number,
    endedAt: 3000 + number,
    exitCode: 0,
    signal: '',
    reason: '',
    argv: [],
    stdoutTail: [],
    stderrTail: [],
    history: [],
    declaredPoints: null,
    droppedPoints: 0,
    preemptions: 0,
    carriedPoints: 0,
    carriedDropped: 0,
    firstMetricSeq: 1,
    ...extra,
  };
}

/** A view with only what ranking reads set; the rest at its unranked defaults. */
function view(number: number, state: TrialState, bestValue: number | null): TrialView {
  return {
    id: `sw1-${number}`,
    sweepId: 'sw1',
    number,
    state,
    paramsJson: '{}',
    agentId: 'a1',
    createdAt: 0,
    startedAt: 0,
    endedAt: 0,
    bestValue,
    lastValue: bestValue,
    lastStep: 0,
    points: bestValue === null ? 0 : 1,
    exitCode: null,
    signal: '',
    reason: '',
    rank: 0,
    gpu: '',
    gpuUtil: null,
    gpuMemoryMb: null,
    missingPoints: 0,
    droppedPoints: 0,
  };
}

describe('trialView', () => {
  it('takes the metric per the goal, the last row, the GPU samples and the missing points', () => {
    const metrics = new MetricStore();
    metrics.apply({
      sweepId: 'sw1',
      trialId: 'sw1-1',
      seq: 1,
      points: [
        { step: 0, t: 1, values: { loss: 0.5, acc: 0.1 } },
        { step: 4, t: 2, values: { loss: 0.3 } },
        { step: 9, t: 3, values: { loss: 0.4 } },
        { step: null, t: 4, values: { 'system/gpu.index': 1, 'system/gpu.util': 87, 'system/gpu.memory_mb': 1000 }, system: true },
      ],
    });
    const trial = trialRecord(1, { declaredPoints: 5, droppedPoints: 1, exitCode: 0 });
    expect(trialView(trial, sweepRecord(), metrics, 3)).toEqual({
      id: 'sw1-1',
      sweepId: 'sw1',
      number: 1,
      state: 'finished',
      paramsJson: '{"lr":0.5}',
      agentId: 'a1',
      createdAt: 1001,
      startedAt: 2001,
      endedAt: 3001,
      bestValue: 0.3,
      lastValue: 0.4,
      lastStep: 9,
      points: 3,
      exitCode: 0,
      signal: '',
      reason: '',
      rank: 0,
      gpu: '1',
      gpuUtil: 87,
      gpuMemoryMb: 1000,
      missingPoints: 1,
      droppedPoints: 1,
    });
    const maximize = sweepRecord(CONFIG.replace('goal: minimize', 'goal: maximize'));
    expect(trialView(trial, maximize, metrics, 3).bestValue).toBe(0.5);
  });

  it('has nulls and -1 for what was never logged, and no value without a metric', () => {
    const metrics = new MetricStore();
    expect(trialView(trialRecord(2, { state: 'running', exitCode: null }), sweepRecord(), metrics, 0)).toMatchObject({
      bestValue: null,
      lastValue: null,
      lastStep: -1,
      points: 0,
      exitCode: null,
      gpu: '',
      gpuUtil: null,
      gpuMemoryMb: null,
      missingPoints: 0,
    });
    metrics.apply({ sweepId: 'sw1', trialId: 'sw1-3', seq: 1, points: [{ step: 0, t: 1, values: { loss: 0.5 } }] });
    const noMetric = sweepRecord('method: random\nparameters:\n  lr: {min: 0.0, max: 1.0}\n');
    expect(trialView(trialRecord(3), noMetric, metrics, 1)).toMatchObject({ bestValue: null, lastValue: null, lastStep: 0, points: 1 });
  });
});

describe('missingPoints', () => {
  it('counts declared points, less dropped and applied ones, never below 0, and 0 when undeclared', () => {
    expect(missingPoints(trialRecord(1, { declaredPoints: 10, droppedPoints: 2 }), 5)).toBe(3);
    expect(missingPoints(trialRecord(1, { declaredPoints: 10, droppedPoints: 2 }), 9)).toBe(0);
    expect(missingPoints(trialRecord(1, { declaredPoints: null, droppedPoints: 2 }), 0)).toBe(0);
  });
});

describe('rankTrials', () => {
  // 2 failed and 6 crashed with the best values: they never rank. 3 and 5 tie: the lower number first.
  const views = [
    view(1, 'finished', 0.5),
    view(2, 'failed', 0.05),
    view(3, 'running', 0.2),
    view(4, 'finished', null),
    view(5, 'stopped', 0.2),
    view(6, 'crashed', 0.01),
  ];
  const board = (ranked: TrialView[]) => ranked.map((v) => [v.number, v.rank]);

  it('ranks trials that may rank by value per the goal, ties by number, then the rest by number', () => {
    expect(board(rankTrials(views, new Objective('loss', 'minimize')))).toEqual([
      [3, 1],
      [5, 2],
      [1, 3],
      [2, 0],
      [4, 0],
      [6, 0],
    ]);
    expect(board(rankTrials(views, new Objective('acc', 'maximize')))).toEqual([
      [1, 1],
      [3, 2],
      [5, 3],
      [2, 0],
      [4, 0],
      [6, 0],
    ]);
  });

  it('leaves the given views as they were', () => {
    rankTrials(views, new Objective('loss'));
    expect(views.map((v) => [v.number, v.rank])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 0],
      [5, 0],
      [6, 0],
    ]);
  });

  it('orders by ascending value without an objective, as a missing goal means minimize', () => {
    expect(board(rankTrials([view(1, 'finished', 2), view(2, 'finished', 1)], null))).toEqual([
      [2, 1],
      [1, 2],
    ]);
    expect(rankOrder(null, { bestValue: 1, number: 2 }, { bestValue: 1, number: 1 })).toBeGreaterThan(0);
  });
});

describe('sweepView', () => {
  it('counts states, takes the best from the board, and the limit and agents as given', () => {
    const trials = [trialRecord(1), trialRecord(2, { state: 'failed' }), trialRecord(3, { state: 'running' }), trialRecord(4)];
    const sweep = sweepRecord(CONFIG, trials);
    const board = rankTrials([view(1, 'finished', 0.4), view(2, 'failed', 0.1), view(3, 'running', 0.3), view(4, 'finished', null)], new Objective('loss'));
    expect(sweepView(sweep, board, 12, 2)).toEqual({
      id: 'sw1',
      name: 'demo',
      method: 'random',
      state: 'running',
      configJson: '{"method":"random"}',
      seed: 7,
      metricName: 'loss',
      metricGoal: 'minimize',
      trialLimit: 12,
      trialCount: 4,
      stateCounts: { finished: 2, failed: 1, running: 1 },
      bestValue: 0.3,
      bestTrialId: 'sw1-3',
      createdAt: 1000,
      finishedAt: 0,
      finishReason: '',
      activeAgents: 2,
    });
    expect(sweepView(sweep, [], undefined, 0)).toMatchObject({ trialLimit: 0, bestValue: null, bestTrialId: '', activeAgents: 0 });
  });
});
