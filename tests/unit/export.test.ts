/**
 * Exports of a sweep: the pure formatting (common/export-format.ts) with exact outputs, and what
 * controller/sweeps/export.ts reads out of a real SweepService and its MetricStore.
 */
import { describe, expect, it } from 'vitest';
import {
  csvRecord,
  exportColumns,
  exportFileName,
  ExportEncoder,
  historyRows,
  jsonlRecord,
  orderParamNames,
  summaryRow,
  type ExportHeader,
  type ExportTrial,
} from '../../common/export-format.js';
import { MemoryEventLog } from '../../controller/sweeps/event-log.js';
import { exportSweep, type ExportPart } from '../../controller/sweeps/export.js';
import { SweepService } from '../../controller/sweeps/sweep-service.js';
import { Float, stringifyTyped } from '../../domain/values.js';

const T0 = Date.UTC(2025, 0, 1);

const header: ExportHeader = {
  sweepId: 'sw',
  metricName: 'loss',
  metricGoal: 'minimize',
  paramNames: ['lr', 'opt.name', 'width', 'layers'],
  metricNames: ['acc', 'loss'],
  exportedAt: T0 + 60_000,
};

const finished: ExportTrial = {
  id: 'sw-1',
  number: 1,
  state: 'finished',
  agentId: 'host-1',
  paramsJson: stringifyTyped({ lr: 1e-5, opt: { name: 'adam, "fast"\nv2' }, width: new Float(3), layers: [64, 32] }),
  startedAt: T0,
  endedAt: T0 + 12_500,
  reason: '',
  value: 0.25,
  rank: 1,
  metrics: [
    { name: 'loss', last: 0.25, min: 0.25, max: 1 },
    // Only NaN logged: a summary without numbers.
    { name: 'acc', last: NaN, min: NaN, max: NaN },
  ],
  series: [
    { name: 'loss', steps: [0, 1, 1, 2], values: [1, 0.5, 0.4, 0.25] },
    { name: 'acc', steps: [], values: [] },
  ],
};

const running: ExportTrial = {
  id: 'sw-2',
  number: 2,
  state: 'running',
  agentId: 'host-2',
  paramsJson: stringifyTyped({ lr: 0.1, opt: { name: 'sgd' }, width: 4, extra: true }),
  startedAt: T0 + 30_000,
  endedAt: 0,
  reason: '',
  value: null,
  rank: 0,
  metrics: [{ name: 'acc', last: 0.5, min: 0.5, max: 0.75 }],
  series: [{ name: 'acc', steps: [3, 1], values: [0.75, 0.5] }],
};

describe('csvRecord (RFC 4180)', () => {
  it('quotes fields with commas, quotes and line breaks, doubling quotes; ends with CRLF', () => {
    expect(csvRecord(['plain', 'a,b', 'say "hi"', 'two\nlines', 'cr\rhere', ''])).toBe('plain,"a,b","say ""hi""","two\nlines","cr\rhere",\r\n');
  });

  it('writes values with their types: ints bare, floats as Python writes them, nothing for null', () => {
    expect(csvRecord([3, new Float(3), 1e-5, 0.1, -0, 1e16, new Float(1e16), NaN, Infinity, true, false, null, undefined, [1, new Float(2)], { a: 'x' }])).toBe(
      '3,3.0,1e-05,0.1,-0.0,10000000000000000,1e+16,nan,inf,true,false,,,"[1,2.0]","{""a"":""x""}"\r\n',
    );
  });
});

describe('jsonlRecord', () => {
  it('is one object with the columns as keys, floats kept as floats, null for nothing', () => {
    expect(jsonlRecord(['a', 'b', 'c', 'd', 'e'], [new Float(3), 3, 'x "y"', null, undefined])).toBe('{"a":3.0,"b":3,"c":"x \\"y\\"","d":null,"e":null}\n');
  });
});

describe('orderParamNames', () => {
  it('puts names where the config lists them, sub-keys of a config leaf in its place, unknown ones last', () => {
    expect(orderParamNames(['width', 'opt', 'lr'], ['lr', 'extra', 'opt.name', 'opt.beta', 'width', 'lr', 'zz.a'])).toEqual([
      'width',
      'opt.name',
      'opt.beta',
      'lr',
      'extra',
      'zz.a',
    ]);
    expect(orderParamNames(['a.b', 'a.c'], ['a.c', 'a.b'])).toEqual(['a.b', 'a.c']);
    expect(orderParamNames(['a'], [])).toEqual([]);
  });
});

describe('one row per trial', () => {
  it('has fixed columns, then params.<name> in order, then metrics.<name>.last/min/max, metrics sorted', () => {
    expect(exportColumns(header, false)).toEqual([
      'trial_id',
      'number',
      'state',
      'rank',
      'value',
      'runtime_s',
      'reason',
      'agent_id',
      'started_at',
      'ended_at',
      'params.lr',
      'params.opt.name',
      'params.width',
      'params.layers',
      'metrics.acc.last',
      'metrics.acc.min',
      'metrics.acc.max',
      'metrics.loss.last',
      'metrics.loss.min',
      'metrics.loss.max',
    ]);
  });

  it('writes a trial: runtime in seconds as a float, a running one up to the export, times in ISO 8601', () => {
    expect(summaryRow(header, finished)).toEqual([
      'sw-1',
      1,
      'finished',
      1,
      0.25,
      12.5,
      null,
      'host-1',
      '2025-01-01T00:00:00.000Z',
      '2025-01-01T00:00:12.500Z',
      1e-5,
      'adam, "fast"\nv2',
      new Float(3),
      [64, 32],
      null,
      null,
      null,
      0.25,
      0.25,
      1,
    ]);
    expect(summaryRow(header, running)).toEqual([
      'sw-2',
      2,
      'running',
      null,
      null,
      new Float(30),
      null,
      'host-2',
      '2025-01-01T00:00:30.000Z',
      null,
      0.1,
      'sgd',
      4,
      undefined,
      0.5,
      0.5,
      0.75,
      null,
      null,
      null,
    ]);
  });

  it('is exact CSV', () => {
    const e = new ExportEncoder('csv', header, false);
    expect(e.head() + e.trial(finished) + e.trial(running)).toBe(
      'trial_id,number,state,rank,value,runtime_s,reason,agent_id,started_at,ended_at,params.lr,params.opt.name,params.width,params.layers,' +
        'metrics.acc.last,metrics.acc.min,metrics.acc.max,metrics.loss.last,metrics.loss.min,metrics.loss.max\r\n' +
        'sw-1,1,finished,1,0.25,12.5,,host-1,2025-01-01T00:00:00.000Z,2025-01-01T00:00:12.500Z,1e-05,"adam, ""fast""\nv2",3.0,"[64,32]",,,,0.25,0.25,1\r\n' +
        'sw-2,2,running,,,30.0,,host-2,2025-01-01T00:00:30.000Z,,0.1,sgd,4,,0.5,0.5,0.75,,,\r\n',
    );
  });

  it('is exact JSONL, with the same keys', () => {
    const e = new ExportEncoder('jsonl', header, false);
    expect(e.head()).toBe('');
    expect(e.trial(finished)).toBe(
      '{"trial_id":"sw-1","number":1,"state":"finished","rank":1,"value":0.25,"runtime_s":12.5,"reason":null,"agent_id":"host-1",' +
        '"started_at":"2025-01-01T00:00:00.000Z","ended_at":"2025-01-01T00:00:12.500Z","params.lr":1e-05,"params.opt.name":"adam, \\"fast\\"\\nv2",' +
        '"params.width":3.0,"params.layers":[64,32],"metrics.acc.last":null,"metrics.acc.min":null,"metrics.acc.max":null,' +
        '"metrics.loss.last":0.25,"metrics.loss.min":0.25,"metrics.loss.max":1}\n',
    );
    expect(e.trial(running)).toBe(
      '{"trial_id":"sw-2","number":2,"state":"running","rank":null,"value":null,"runtime_s":30.0,"reason":null,"agent_id":"host-2",' +
        '"started_at":"2025-01-01T00:00:30.000Z","ended_at":null,"params.lr":0.1,"params.opt.name":"sgd","params.width":4,"params.layers":null,' +
        '"metrics.acc.last":0.5,"metrics.acc.min":0.5,"metrics.acc.max":0.75,"metrics.loss.last":null,"metrics.loss.min":null,"metrics.loss.max":null}\n',
    );
  });
});

describe('one row per logged point (history)', () => {
  it('makes a row of what one step logged, in step order; a second value at a step is a second row', () => {
    expect(exportColumns(header, true)).toEqual(['trial_id', 'step', 'metrics.acc', 'metrics.loss']);
    expect(historyRows(header, finished)).toEqual([
      ['sw-1', 0, null, 1],
      ['sw-1', 1, null, 0.5],
      ['sw-1', 1, null, 0.4],
      ['sw-1', 2, null, 0.25],
    ]);
    expect(historyRows(header, running)).toEqual([
      ['sw-2', 1, 0.5, null],
      ['sw-2', 3, 0.75, null],
    ]);
    const merged: ExportTrial = {
      ...finished,
      series: [
        { name: 'acc', steps: [0, 1], values: [0.1, 0.2] },
        { name: 'loss', steps: [0, 1], values: [1, 0.5] },
      ],
    };
    expect(historyRows(header, merged)).toEqual([
      ['sw-1', 0, 0.1, 1],
      ['sw-1', 1, 0.2, 0.5],
    ]);
  });

  it('puts system samples after the rows, by time, with a time column, when the header has them', () => {
    const withSystem: ExportHeader = { ...header, metricNames: ['loss', 'system/cpu.percent', 'system/memory.rss_mb'] };
    const t: ExportTrial = {
      ...finished,
      series: [
        { name: 'loss', steps: [0], values: [1] },
        { name: 'system/cpu.percent', steps: [T0 + 10_000, T0 + 5000], values: [150, 99.5] },
        { name: 'system/memory.rss_mb', steps: [T0 + 5000], values: [120.5] },
      ],
    };
    expect(exportColumns(withSystem, true)).toEqual(['trial_id', 'step', 'time', 'metrics.loss', 'metrics.system/cpu.percent', 'metrics.system/memory.rss_mb']);
    const e = new ExportEncoder('csv', withSystem, true);
    expect(e.head() + e.trial(t)).toBe(
      'trial_id,step,time,metrics.loss,metrics.system/cpu.percent,metrics.system/memory.rss_mb\r\n' +
        'sw-1,0,,1,,\r\n' +
        'sw-1,,2025-01-01T00:00:05.000Z,,99.5,120.5\r\n' +
        'sw-1,,2025-01-01T00:00:10.000Z,,150,\r\n',
    );
    expect(new ExportEncoder('jsonl', withSystem, true).trial(t).split('\n')[1]).toBe(
      '{"trial_id":"sw-1","step":null,"time":"2025-01-01T00:00:05.000Z","metrics.loss":null,"metrics.system/cpu.percent":99.5,"metrics.system/memory.rss_mb":120.5}',
    );
  });
});

it('names the files a download is saved as', () => {
  expect([exportFileName('abc', 'csv', false), exportFileName('abc', 'jsonl', true)]).toEqual(['abc.csv', 'abc-history.jsonl']);
});

describe('exportSweep (controller/sweeps/export.ts)', () => {
  const CONFIG = `
method: grid
metric: {name: loss, goal: minimize}
parameters:
  width: {values: [3.0, 4]}
  opt:
    parameters:
      name: {value: adam}
  lr: {value: 0.01}
`;

  async function sweepWithMetrics() {
    let now = T0;
    const service = new SweepService({ eventLog: new MemoryEventLog(), now: () => now, metricWaitMs: 10 });
    const sweep = await service.createSweep(CONFIG);
    service.registerAgent({ agentId: 'a1', sweepId: sweep.id, hostname: 'h', pid: 1, slots: 1 });
    const ask = async () => {
      const r = await service.requestTrial('a1', sweep.id);
      if (r.kind !== 'trial') throw new Error(JSON.stringify(r));
      return r.trial;
    };
    const t1 = await ask();
    service.onMetrics({
      sweepId: sweep.id,
      trialId: t1.id,
      seq: 1,
      points: [
        { step: null, t: T0, values: { loss: 1, acc: 0.5 } },
        { step: null, t: T0, values: { loss: 0.5 } },
        { step: null, t: T0 + 5000, values: { 'system/cpu.percent': 99.5 }, system: true },
      ],
    });
    now += 10_000;
    await service.completeTrial({ agentId: 'a1', trialId: t1.id, exitCode: 0, signal: '', startError: '', stoppedReason: '', stdoutTail: [], stderrTail: [], lastMetricSeq: 1, argv: [] });
    const t2 = await ask();
    service.onMetrics({ sweepId: sweep.id, trialId: t2.id, seq: 1, points: [{ step: 4, t: T0, values: { loss: 0.25 } }] });
    return { service, sweep, t1, t2 };
  }

  it('gives the header, then each trial with its summaries, by number', async () => {
    const { service, sweep, t1, t2 } = await sweepWithMetrics();
    const parts = [...exportSweep(service, sweep.id, { history: false, system: false, now: T0 + 20_000 })];
    const expected: ExportPart[] = [
      {
        kind: 'header',
        header: { sweepId: sweep.id, metricName: 'loss', metricGoal: 'minimize', paramNames: ['width', 'opt.name', 'lr'], metricNames: ['acc', 'loss'], exportedAt: T0 + 20_000 },
      },
      {
        kind: 'trial',
        trial: {
          id: t1.id,
          number: 1,
          state: 'finished',
          agentId: 'a1',
          paramsJson: t1.paramsJson,
          startedAt: T0,
          endedAt: T0 + 10_000,
          reason: '',
          value: 0.5,
          rank: 2,
          metrics: [
            { name: 'loss', last: 0.5, min: 0.5, max: 1 },
            { name: 'acc', last: 0.5, min: 0.5, max: 0.5 },
          ],
          series: [],
        },
      },
      {
        kind: 'trial',
        trial: {
          id: t2.id,
          number: 2,
          state: 'running',
          agentId: 'a1',
          paramsJson: t2.paramsJson,
          startedAt: T0 + 10_000,
          endedAt: 0,
          reason: '',
          value: 0.25,
          rank: 1,
          metrics: [{ name: 'loss', last: 0.25, min: 0.25, max: 0.25 }],
          series: [],
        },
      },
    ];
    expect(parts).toEqual(expected);
    // The width keeps its float: the first grid point is 3.0.
    const csv = new ExportEncoder('csv', (parts[0] as { header: ExportHeader }).header, false);
    expect(csv.trial((parts[1] as { trial: ExportTrial }).trial)).toBe(`${t1.id},1,finished,2,0.5,10.0,,a1,2025-01-01T00:00:00.000Z,2025-01-01T00:00:10.000Z,3.0,adam,0.01,0.5,0.5,0.5,0.5,0.5,1\r\n`);
  });

  it('adds every point with history, and system samples only when asked', async () => {
    const { service, sweep } = await sweepWithMetrics();
    const parts = (system: boolean) => [...exportSweep(service, sweep.id, { history: true, system, now: T0 })];
    const shown = (system: boolean) => parts(system).map((p) => (p.kind === 'trial' ? p.trial.series : p.header.metricNames));
    expect(shown(false)).toEqual([
      ['acc', 'loss'],
      [
        { name: 'loss', steps: [0, 1], values: [1, 0.5] },
        { name: 'acc', steps: [0], values: [0.5] },
      ],
      [{ name: 'loss', steps: [4], values: [0.25] }],
    ]);
    expect(parts(true).map((p) => (p.kind === 'trial' ? p.trial.series.map((x) => x.name) : p.header.metricNames))).toEqual([['acc', 'loss', 'system/cpu.percent'], ['loss', 'acc', 'system/cpu.percent'], ['loss']]);
  });

  it('refuses an unknown sweep', () => {
    const service = new SweepService({ eventLog: new MemoryEventLog() });
    expect(() => exportSweep(service, 'nope', { history: false, system: false }).next()).toThrow(/sweep/);
  });
});
