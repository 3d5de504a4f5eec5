import { describe, expect, it } from 'vitest';
import type { ApiSweepDetail, ApiTrial } from '../../common/api-types.js';
import { Float, type ParamValue } from '../../domain/values.js';
import { Objective } from '../../domain/objective.js';
import { bestSoFar, formatDuration, formatParam, formatValue, objectiveOfSweep, renderLeaderboard, renderSummary, sparkline } from '../../cli/table.js';

const NOW = 1_700_000_100_000;
const T0 = 1_700_000_000_000;

const CONFIG = JSON.stringify({
  method: 'random',
  metric: { name: 'val_loss', goal: 'minimize' },
  parameters: {
    lr: { kind: 'leaf', distribution: 'log_uniform_values', min: 0.0001, max: 1 },
    optimizer: {
      kind: 'nested',
      parameters: {
        name: { kind: 'leaf', distribution: 'categorical', values: ['adam', 'sgd'] },
        beta1: { kind: 'leaf', distribution: 'uniform', min: 0.8, max: 0.99 },
      },
    },
    epochs: { kind: 'leaf', distribution: 'constant', value: 6 },
    batch_size: { kind: 'leaf', distribution: 'categorical', values: [64, 128] },
    scheduler: { kind: 'leaf', distribution: 'categorical', values: ['cosine', 'linear-warmup-then-cosine-decay'] },
    dropout: { kind: 'leaf', distribution: 'uniform', min: 0, max: 0.5 },
  },
});

function trial(number: number, t: Partial<ApiTrial> & { params: string }): ApiTrial {
  const { params, ...rest } = t;
  return {
    id: `k3x9q-${number}`,
    sweepId: 'k3x9q',
    number,
    state: 'finished',
    paramsJson: params,
    agentId: 'gpu1-1',
    gpu: '',
    createdAt: T0,
    startedAt: T0,
    endedAt: 0,
    lastStep: 0,
    points: 0,
    signal: '',
    reason: '',
    rank: 0,
    missingPoints: 0,
    droppedPoints: 0,
    ...rest,
  };
}

// Best first, as the controller sends them.
const TRIALS: ApiTrial[] = [
  trial(3, {
    rank: 1,
    bestValue: 0.012345,
    lastValue: 0.01301,
    lastStep: 5,
    points: 6,
    endedAt: T0 + 63_000,
    exitCode: 0,
    params: '{"lr":0.01234567,"optimizer":{"name":"adam","beta1":0.9},"epochs":6,"batch_size":64,"scheduler":"cosine","dropout":0.1}',
  }),
  trial(1, {
    rank: 2,
    bestValue: 0.5,
    lastValue: 0.5123,
    lastStep: 5,
    points: 6,
    endedAt: T0 + 42_400,
    exitCode: 0,
    params:
      '{"lr":1.2e-05,"optimizer":{"name":"sgd","beta1":0.85},"epochs":6,"batch_size":128,"scheduler":"linear-warmup-then-cosine-decay","dropout":0.25}',
  }),
  trial(5, {
    state: 'running',
    rank: 3,
    bestValue: 0.2,
    lastValue: 0.25,
    lastStep: 2,
    points: 3,
    startedAt: NOW - 3_500,
    params: '{"lr":0.1,"optimizer":{"name":"adam","beta1":0.95},"epochs":6,"batch_size":64,"scheduler":"cosine","dropout":0.0}',
  }),
  trial(4, {
    state: 'stopped',
    rank: 4,
    bestValue: 12345.6,
    lastValue: 12345.6,
    lastStep: 0,
    points: 1,
    endedAt: T0 + 7_200_000,
    signal: 'SIGTERM',
    reason: 'stopped by user',
    params: '{"lr":1.0,"optimizer":{"name":"sgd","beta1":0.8},"epochs":6,"batch_size":128,"scheduler":"cosine","dropout":0.5}',
  }),
  trial(2, {
    state: 'failed',
    endedAt: T0 + 1_200,
    exitCode: 1,
    reason: 'exit code 1: ValueError: lr must be positive',
    params: '{"lr":0.0003,"optimizer":{"name":"adam","beta1":0.9},"epochs":6,"batch_size":64,"scheduler":"cosine","dropout":0.3}',
  }),
  trial(6, {
    state: 'crashed',
    startedAt: 0,
    reason: 'agent gpu1-1 sent no heartbeat for 31s',
    params: '{"lr":0.003,"optimizer":{"name":"sgd","beta1":0.99},"epochs":6,"batch_size":64,"scheduler":"cosine","dropout":0.2}',
  }),
];

const DETAIL: ApiSweepDetail = {
  sweep: {
    id: 'k3x9q',
    name: 'quadratic',
    method: 'random',
    state: 'running',
    configJson: CONFIG,
    seed: 7,
    metricName: 'val_loss',
    metricGoal: 'minimize',
    trialLimit: 12,
    trialCount: 6,
    stateCounts: { finished: 2, failed: 1, stopped: 1, running: 1, crashed: 1 },
    bestValue: 0.012345,
    bestTrialId: 'k3x9q-3',
    createdAt: T0,
    finishedAt: 0,
    finishReason: '',
    activeAgents: 2,
  },
  trials: TRIALS,
};

const FINISHED: ApiSweepDetail = {
  sweep: { ...DETAIL.sweep, name: '', method: 'grid', state: 'finished', finishReason: 'grid exhausted', trialLimit: 0, trialCount: 2, stateCounts: { finished: 1, failed: 1 }, activeAgents: 0, finishedAt: NOW },
  trials: [TRIALS[0], TRIALS[4]],
};
const ESC = '\x1b';
const stripSgr = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
const lines = (...l: string[]) => l.join('\n');
const board = (detail: ApiSweepDetail, width: number, extra: { maxRows?: number; color?: boolean } = {}) =>
  renderLeaderboard(detail, { width, color: false, now: NOW, ...extra });

describe('formatValue', () => {
  it('keeps 4 significant digits, switching to exponents as %g does', () => {
    const cases: Array<[number, string]> = [
      [0.001234, '0.001234'],
      [1.2e-5, '1.2e-05'],
      [128, '128'],
      [0.5, '0.5'],
      [0.012345678, '0.01235'],
      [9999.7, '1e+04'],
      [123456789, '1.235e+08'],
      [-0.25, '-0.25'],
      [0, '0'],
      [NaN, 'nan'],
      [-Infinity, '-inf'],
    ];
    for (const [n, text] of cases) expect(formatValue(n), String(n)).toBe(text);
  });
});

describe('formatParam', () => {
  it('writes ints exactly, floats as floats, and Python spellings', () => {
    const cases: Array<[ParamValue, string]> = [
      [true, 'True'],
      [null, 'None'],
      [new Float(3), '3.0'],
      [50000, '50000'],
      [1e-5, '1e-05'],
      [0.123456, '0.1235'],
      ['adam', 'adam'],
      [[1, 0.5, 'x'], '[1, 0.5, x]'],
    ];
    for (const [v, text] of cases) expect(formatParam(v)).toBe(text);
  });

  it('cannot smuggle escape codes or newlines into the table', () => {
    expect(formatParam('a\nb\x1b[31m')).toBe('a\\nb\\x1b[31m');
  });
});

describe('formatDuration', () => {
  it('gives tenths under ten seconds, then two units', () => {
    const cases: Array<[number, string]> = [
      [-5, '0s'],
      [300, '0.3s'],
      [10_000, '10s'],
      [63_000, '1m03s'],
      [3_599_999, '59m59s'],
      [7_500_000, '2h05m'],
      [100_800_000, '1d04h'],
    ];
    for (const [ms, text] of cases) expect(formatDuration(ms)).toBe(text);
  });
});

describe('objectiveOfSweep', () => {
  it('reads the goal off the wire: empty is minimize, no metric is no objective', () => {
    expect(objectiveOfSweep({ metricName: 'acc', metricGoal: 'maximize' })).toEqual(new Objective('acc', 'maximize'));
    expect(objectiveOfSweep({ metricName: 'loss', metricGoal: '' })).toEqual(new Objective('loss', 'minimize'));
    expect(objectiveOfSweep({ metricName: '', metricGoal: '' })).toBeNull();
  });
});

describe('renderLeaderboard', () => {
  // States carry a mark as well as a colour, so stopped and failed trials stand out without
  // colour too; the best-so-far line follows trials 1..6 in creation order (2 and 6 have no value).
  // States are counted in TRIAL_STATES order, the dashboard's too.
  it('fits 80 columns: fixed columns kept, trailing params dropped and named', () => {
    expect(board(DETAIL, 80)).toBe(
      lines(
        'sweep k3x9q "quadratic" · random · running · 2 agents',
        'metric val_loss (minimize) · best 0.01235 (trial 3)',
        'best so far ██▁▁▁▁  0.5 → 0.01235',
        '6/12 trials [████▒░░░░░]',
        'running 1 · finished 2 · stopped 1 · failed 1 · crashed 1',
        '',
        '#  trial  state            best       last  step  runtime       lr  …imizer.name',
        '1      3  ✓ finished    0.01235    0.01301     5    1m03s  0.01235  adam',
        '2      1  ✓ finished        0.5     0.5123     5      42s  1.2e-05  sgd',
        '3      5  ● running         0.2       0.25     2     3.5s      0.1  adam',
        '4      4  ■ stopped   1.235e+04  1.235e+04     0    2h00m      1.0  sgd',
        '       2  ✗ failed            -          -     -     1.2s   0.0003  adam',
        '       6  ✗ crashed           -          -     -        -    0.003  sgd',
        '+5 params: optimizer.beta1, batch_size, scheduler, dropout, epochs',
      ),
    );
  });

  it('at 160 columns shows every param (constants last), long cells cut, and full trial ids', () => {
    expect(board(DETAIL, 160)).toBe(
      lines(
        'sweep k3x9q "quadratic" · random · running · 2 agents',
        'metric val_loss (minimize) · best 0.01235 (trial 3)',
        'best so far ██▁▁▁▁  0.5 → 0.01235',
        '6/12 trials [████▒░░░░░] · running 1 · finished 2 · stopped 1 · failed 1 · crashed 1',
        '',
        '#    trial  state            best       last  step  runtime       lr  optimizer.name  optimizer.beta1  batch_size  scheduler                 dropout  epochs',
        '1  k3x9q-3  ✓ finished    0.01235    0.01301     5    1m03s  0.01235  adam                        0.9          64  cosine                        0.1       6',
        '2  k3x9q-1  ✓ finished        0.5     0.5123     5      42s  1.2e-05  sgd                        0.85         128  linear-warmup-then-cosi…     0.25       6',
        '3  k3x9q-5  ● running         0.2       0.25     2     3.5s      0.1  adam                       0.95          64  cosine                        0.0       6',
        '4  k3x9q-4  ■ stopped   1.235e+04  1.235e+04     0    2h00m      1.0  sgd                         0.8         128  cosine                        0.5       6',
        '   k3x9q-2  ✗ failed            -          -     -     1.2s   0.0003  adam                        0.9          64  cosine                        0.3       6',
        '   k3x9q-6  ✗ crashed           -          -     -        -    0.003  sgd                        0.99          64  cosine                        0.2       6',
      ),
    );
  });

  it('limits rows with maxRows and counts the rest', () => {
    expect(board(DETAIL, 80, { maxRows: 2 })).toBe(
      lines(
        'sweep k3x9q "quadratic" · random · running · 2 agents',
        'metric val_loss (minimize) · best 0.01235 (trial 3)',
        'best so far ██▁▁▁▁  0.5 → 0.01235',
        '6/12 trials [████▒░░░░░]',
        'running 1 · finished 2 · stopped 1 · failed 1 · crashed 1',
        '',
        '#  trial  state          best     last  step  runtime       lr  optimizer.name',
        '1      3  ✓ finished  0.01235  0.01301     5    1m03s  0.01235  adam',
        '2      1  ✓ finished      0.5   0.5123     5      42s  1.2e-05  sgd',
        '… 4 more',
        '+5 params: optimizer.beta1, batch_size, scheduler, dropout, epochs',
      ),
    );
  });

  it('counts trials a limited snapshot left out', () => {
    const partial = { ...DETAIL, sweep: { ...DETAIL.sweep, trialCount: 40 } };
    expect(board(partial, 80).split('\n').at(-2)).toBe('… 34 more');
  });

  it('says why a finished sweep finished, without a progress bar when unbounded', () => {
    expect(board(FINISHED, 80)).toBe(
      lines(
        'sweep k3x9q · grid · finished',
        'metric val_loss (minimize) · best 0.01235 (trial 3)',
        '2 trials · finished 1 · failed 1',
        'finished: grid exhausted',
        '',
        '#  trial  state          best     last  step  runtime       lr  optimizer.name',
        '1      3  ✓ finished  0.01235  0.01301     5    1m03s  0.01235  adam',
        '       2  ✗ failed          -        -     -     1.2s   0.0003  adam',
        '+5 params: optimizer.beta1, batch_size, scheduler, dropout, epochs',
      ),
    );
  });

  it('renders a sweep with no trials and no metric', () => {
    const empty: ApiSweepDetail = {
      sweep: { ...DETAIL.sweep, metricName: '', metricGoal: '', bestValue: undefined, bestTrialId: '', trialCount: 0, stateCounts: {} },
      trials: [],
    };
    expect(board(empty, 80)).toBe(
      lines('sweep k3x9q "quadratic" · random · running · 2 agents', 'no metric', '0/12 trials [░░░░░░░░░░]', '', 'no trials yet'),
    );
  });

  it('never writes a line wider than asked, at any width', () => {
    for (let width = 1; width <= 200; width++) {
      for (const line of board(DETAIL, width).split('\n')) expect([...line].length, `width ${width}: ${line}`).toBeLessThanOrEqual(width);
    }
  });

  it('has no escape codes without color, and the same text with it', () => {
    for (const width of [40, 80, 100, 160]) {
      const plain = board(DETAIL, width, { maxRows: 3 });
      expect(plain).not.toContain(ESC);
      const colored = board(DETAIL, width, { maxRows: 3, color: true });
      expect(colored).toContain(ESC);
      expect(stripSgr(colored)).toBe(plain);
    }
    expect(renderSummary(DETAIL, { width: 80, color: false })).not.toContain(ESC);
  });

  it('colors states: red failed, yellow stopped, green finished, cyan running', () => {
    const colored = board(DETAIL, 80, { color: true });
    expect(colored).toContain('\x1b[31m✗ failed\x1b[0m');
    expect(colored).toContain('\x1b[33m■ stopped\x1b[0m');
    expect(colored).toContain('\x1b[32m✓ finished\x1b[0m');
    expect(colored).toContain('\x1b[36m● running\x1b[0m');
    expect(colored).toContain('best so far \x1b[32m██▁▁▁▁\x1b[0m');
  });

  it('leaves the best-so-far line out when it would say nothing or not fit', () => {
    expect(board(DETAIL, 30)).not.toContain('best so far');
    const oneValue = { ...DETAIL, trials: [TRIALS[0], TRIALS[4]] };
    expect(board(oneValue, 80)).not.toContain('best so far');
  });
});

describe('best so far', () => {
  const t = (number: number, bestValue?: number) => trial(number, { bestValue, params: '{}' });

  it('follows creation order, keeping the best per the goal', () => {
    const trials = [t(3, 0.2), t(1), t(2, 0.5), t(4, 0.7), t(5, 0.1)];
    expect(bestSoFar(trials, new Objective('loss', 'minimize'))).toEqual([undefined, 0.5, 0.2, 0.2, 0.1]);
    expect(bestSoFar(trials, new Objective('acc', 'maximize'))).toEqual([undefined, 0.5, 0.5, 0.7, 0.7]);
  });

  it('draws at most the cells asked, blank before the first value, each cell the value at its end', () => {
    expect(sparkline([undefined, 8, 8, 4, 4, 0], 6)).toBe(' ██▅▅▁');
    expect(sparkline([undefined, 8, 8, 4, 4, 0], 3)).toBe('█▅▁');
    expect(sparkline([5, 5, 5], 10)).toBe('▁▁▁');
  });

  it('uses a log scale when the values span decades', () => {
    // Linear, 1000 → 10 → 1 would be █▁▁; on a log scale 10 sits a third of the way up.
    expect(sparkline([1000, 10, 1], 3)).toBe('█▃▁');
  });
});

describe('renderSummary', () => {
  it('lists the best trials with full params, wrapped, and why the others did not finish', () => {
    expect(renderSummary(DETAIL, { width: 80, color: false })).toBe(
      lines(
        'sweep k3x9q "quadratic" running · 6 trials',
        'best 4 trials by val_loss (minimize):',
        '  1. trial 3    0.01235  lr=0.01234567  optimizer.name=adam  optimizer.beta1=0.9',
        '                         batch_size=64  scheduler=cosine  dropout=0.1  epochs=6',
        '  2. trial 1        0.5  lr=1.2e-05  optimizer.name=sgd  optimizer.beta1=0.85',
        '                         batch_size=128',
        '                         scheduler=linear-warmup-then-cosine-decay  dropout=0.25',
        '                         epochs=6',
        '  3. trial 5        0.2  lr=0.1  optimizer.name=adam  optimizer.beta1=0.95',
        '                         batch_size=64  scheduler=cosine  dropout=0.0  epochs=6',
        '  4. trial 4  1.235e+04  lr=1.0  optimizer.name=sgd  optimizer.beta1=0.8',
        '                         batch_size=128  scheduler=cosine  dropout=0.5  epochs=6',
        'not finished:',
        '  1 running (trial 5): still running when the run ended',
        '  1 stopped (trial 4): stopped by user',
        '  1 failed (trial 2): exit code 1: ValueError: lr must be positive',
        '  1 crashed (trial 6): agent gpu1-1 sent no heartbeat for 31s',
      ),
    );
  });

  it('groups failures by reason, most common first, and stops at the top N', () => {
    const failed = (n: number, reason: string) =>
      trial(n, { state: 'failed', exitCode: 1, reason, endedAt: T0 + 1000, params: '{"lr":0.1}' });
    const detail: ApiSweepDetail = {
      sweep: { ...FINISHED.sweep, trialCount: 5, stateCounts: { finished: 1, failed: 4 } },
      trials: [TRIALS[0], failed(2, 'exit code 1: boom'), failed(4, 'exit code 1: boom'), failed(5, 'exit code 1: boom'), failed(6, 'killed')],
    };
    expect(renderSummary(detail, { width: 60, color: false, top: 1 })).toBe(
      lines(
        'sweep k3x9q finished (grid exhausted) · 5 trials',
        'best trial by val_loss (minimize):',
        '  1. trial 3  0.01235  lr=0.01234567  optimizer.name=adam',
        '                       optimizer.beta1=0.9  batch_size=64',
        '                       scheduler=cosine  dropout=0.1',
        '                       epochs=6',
        'not finished:',
        '  3 failed (trials 2, 4, 5): exit code 1: boom',
        '  1 failed (trial 6): killed',
      ),
    );
  });

  it('says so when no trial has a value', () => {
    const detail: ApiSweepDetail = { sweep: { ...DETAIL.sweep, bestValue: undefined, bestTrialId: '' }, trials: [TRIALS[4]] };
    expect(renderSummary(detail, { width: 80, color: false })).toBe(
      lines(
        'sweep k3x9q "quadratic" running · 6 trials',
        'no trial logged val_loss',
        'not finished:',
        '  1 failed (trial 2): exit code 1: ValueError: lr must be positive',
      ),
    );
  });
});

describe('GPU column', () => {
  it('appears only when a trial ran on a GPU, with its latest utilisation', () => {
    const base: ApiSweepDetail = {
      sweep: {
        id: 'g1', name: '', method: 'grid', state: 'running', configJson: '{"parameters":{}}', seed: 1, metricName: 'loss',
        metricGoal: 'minimize', trialLimit: 0, trialCount: 2, stateCounts: { running: 2 }, bestTrialId: '', createdAt: 0,
        finishedAt: 0, finishReason: '', activeAgents: 1,
      },
      trials: [
        { id: 'g1-1', sweepId: 'g1', number: 1, state: 'running', paramsJson: '{}', agentId: 'a', createdAt: 0, startedAt: 0, endedAt: 0, lastStep: 0, points: 0, signal: '', reason: '', rank: 0, gpu: '0', gpuUtil: 87.4, gpuMemoryMb: 1000, missingPoints: 0, droppedPoints: 0 },
        { id: 'g1-2', sweepId: 'g1', number: 2, state: 'running', paramsJson: '{}', agentId: 'a', createdAt: 0, startedAt: 0, endedAt: 0, lastStep: 0, points: 0, signal: '', reason: '', rank: 0, gpu: '1', missingPoints: 0, droppedPoints: 0 },
      ],
    };
    const text = renderLeaderboard(base, { width: 120, color: false, now: 1000 });
    expect(text).toMatch(/ gpu\s*$/m);
    expect(text).toContain('0 87%');
    expect(text).toMatch(/g1-2 .* 1\s*$/m);
    const noGpu = { ...base, trials: base.trials.map((t) => ({ ...t, gpu: '', gpuUtil: undefined })) };
    expect(renderLeaderboard(noGpu, { width: 120, color: false, now: 1000 })).not.toContain('gpu');
  });
});
