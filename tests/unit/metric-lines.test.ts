import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PYTHON_HELPERS_DIR } from '../../agent/command.js';
import { log as nodeLog } from '../../agent/helpers/log.js';
import { parseHelperRecord, parseMetricLine } from '../../agent/metric-lines.js';
import { OutputTail, truncateUtf8 } from '../../agent/output-tail.js';

const metrics = (values: Record<string, number>, step: number | null = null, invalid: Record<string, string> = {}) => ({
  kind: 'metrics',
  step,
  values,
  invalid,
});

describe('parseMetricLine', () => {
  it.each([
    ['epoch=3 loss=0.25 acc=0.91', metrics({ epoch: 3, loss: 0.25, acc: 0.91 })],
    ['step=7 loss=0.5', metrics({ loss: 0.5 }, 7)],
    ['loss=0.5 step=0', metrics({ loss: 0.5 }, 0)],
    ['lr=1e-05', metrics({ lr: 1e-5 })],
    ['x=.5', metrics({ x: 0.5 })],
    ['x=5.', metrics({ x: 5 })],
    ['x=-3', metrics({ x: -3 })],
    ['x=+3', metrics({ x: 3 })],
    ['x=1E+3', metrics({ x: 1000 })],
    ['loss=0.25\r', metrics({ loss: 0.25 })],
    ['  \tloss=0.25   acc=1  ', metrics({ loss: 0.25, acc: 1 })],
    ['train/loss=1 val.acc=2 a-b=3 _x=4', metrics({ 'train/loss': 1, 'val.acc': 2, 'a-b': 3, _x: 4 })],
    ['loss=1 loss=2', metrics({ loss: 2 })],
    ['step=5', metrics({}, 5)],
    ['__proto__=1', metrics(JSON.parse('{"__proto__": 1}') as Record<string, number>)],
  ])('reads %j', (line, expected) => {
    expect(parseMetricLine(line)).toEqual(expected);
  });

  it.each([
    ['loss=nan', 'nan'],
    ['loss=NaN', 'NaN'],
    ['loss=inf', 'inf'],
    ['loss=-inf', '-inf'],
    ['loss=Infinity', 'Infinity'],
    ['loss=-Infinity', '-Infinity'],
    ['loss=1e999', '1e999'],
  ])('records %j as invalid, never as a value', (line, text) => {
    expect(parseMetricLine(line)).toEqual(metrics({}, null, { loss: text }));
  });

  it('keeps finite values beside invalid ones, and the last of a repeated name', () => {
    expect(parseMetricLine('step=2 loss=nan acc=0.5')).toEqual(metrics({ acc: 0.5 }, 2, { loss: 'nan' }));
    expect(parseMetricLine('loss=nan loss=0.5')).toEqual(metrics({ loss: 0.5 }));
    expect(parseMetricLine('loss=0.5 loss=inf')).toEqual(metrics({}, null, { loss: 'inf' }));
  });

  it.each([
    '',
    '   ',
    '\r',
    'Epoch 3 done',
    'loading data...',
    'epoch 3: loss=0.25',
    'Saved to https://example.com/run?id=3&x=4',
    'see https://example.com/?a=1',
    '--lr=0.1 --epochs=3',
    'Namespace(lr=0.1, epochs=3)',
    '{"loss": 0.25}',
    'loss = 0.25',
    'x == y',
    '=5',
    '3=4',
    'loss=0.25 done',
    'INFO loss=0.25',
  ])('treats %j as ordinary output', (line) => {
    expect(parseMetricLine(line)).toEqual({ kind: 'none' });
  });

  it.each([
    'loss=abc',
    'epoch=3 loss=tensor(0.25)',
    'loss=',
    'loss=0.5 mode=train',
    'x=1_000',
    'x=0x10',
    'x=1e',
    'x=--3',
    'step=-1 loss=1',
    'step=1.5 loss=1',
    'step=3.0 loss=1',
    'step=nan loss=1',
    'step=99999999999999999999 loss=1',
    `${'a'.repeat(201)}=1`,
  ])('counts %j as malformed', (line) => {
    expect(parseMetricLine(line)).toEqual({ kind: 'malformed' });
  });

  it('caps the number of values in one line', () => {
    const many = Array.from({ length: 501 }, (_, i) => `m${i}=1`).join(' ');
    expect(parseMetricLine(many)).toEqual({ kind: 'malformed' });
    const ok = Array.from({ length: 500 }, (_, i) => `m${i}=1`).join(' ');
    expect(parseMetricLine(ok).kind).toBe('metrics');
  });
});

describe('parseHelperRecord', () => {
  it('reads the preempting mark, and only as a record of its own', () => {
    expect(parseHelperRecord('{"preempting": true}')).toEqual({ kind: 'preempting' });
    expect(parseHelperRecord('{"preempting": false}')).toEqual({ kind: 'malformed' });
    expect(parseHelperRecord('{"preempting": true, "values": {"loss": 1}}')).toEqual(metrics({ loss: 1 }, null));
  });

  it('reads a record with and without a step', () => {
    expect(parseHelperRecord('{"step": 3, "values": {"loss": 0.25, "acc": 1}}')).toEqual(metrics({ loss: 0.25, acc: 1 }, 3));
    expect(parseHelperRecord('{"step": null, "values": {"loss": 0.25}}\r')).toEqual(metrics({ loss: 0.25 }));
    expect(parseHelperRecord('{"values": {"loss": 3.0}}')).toEqual(metrics({ loss: 3 }));
  });

  it('puts non-finite and non-numeric values under invalid', () => {
    expect(
      parseHelperRecord('{"step": 1, "values": {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": NaN, "e": true, "f": "x", "g": 2}}'),
    ).toEqual(metrics({ g: 2 }, 1, { a: 'NaN', b: 'Infinity', c: '-Infinity', d: 'NaN', e: 'true', f: 'x' }));
  });

  it('allows metric names that stdout lines could not carry', () => {
    expect(parseHelperRecord('{"step": null, "values": {"val acc": 1, "é": 2}}')).toEqual(metrics({ 'val acc': 1, é: 2 }));
  });

  it.each([
    '{"step": 1, "values": {"loss": 0.25}',
    'loss=0.25',
    '[1, 2]',
    '{"step": 1}',
    '{"step": 1, "values": [1]}',
    '{"step": -1, "values": {}}',
    '{"step": 1.5, "values": {}}',
    '{"step": "1", "values": {}}',
    '{"step": 1, "values": {"": 1}}',
    `{"values": {"${'a'.repeat(201)}": 1}}`,
  ])('counts %j as malformed', (line) => {
    expect(parseHelperRecord(line)).toEqual({ kind: 'malformed' });
  });

  it('ignores an empty line', () => {
    expect(parseHelperRecord('')).toEqual({ kind: 'none' });
  });
});

describe('helpers write what the parsers read', () => {
  let dir: string | undefined;
  afterEach(() => {
    vi.unstubAllEnvs();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const python = (code: string, env: NodeJS.ProcessEnv) =>
    execFileSync('python3', ['-c', code], { env: { ...process.env, PYTHONPATH: PYTHON_HELPERS_DIR, ...env }, encoding: 'utf8' });

  it('Python helper: JSON records on the metrics fd', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sweeper-helper-'));
    const file = path.join(dir, 'records');
    const out = python(
      [
        'import os, sweeper',
        `fd = os.open(${JSON.stringify(file)}, os.O_WRONLY | os.O_CREAT)`,
        'os.environ["SWEEPER_METRICS_FD"] = str(fd)',
        'sweeper.log({"loss": 0.25, "lr": 1e-05, "n": 3}, step=3)',
        'sweeper.log({"a": float("nan"), "b": float("inf"), "c": float("-inf")})',
        'for bad in ({"x": "1"}, {"x": None}, {"x": True}, [1]):',
        '    try: sweeper.log(bad)',
        '    except TypeError: print("TypeError")',
        'try: sweeper.log({"x": 1}, step=-1)',
        'except ValueError: print("ValueError")',
        'print(sweeper.params(), sweeper.trial_id())',
      ].join('\n'),
      { SWEEPER_PARAMS: '{"width": 3.0, "x": NaN}', SWEEPER_TRIAL_ID: 't9' },
    );
    expect(out.trim().split('\n')).toEqual(['TypeError', 'TypeError', 'TypeError', 'TypeError', 'ValueError', "{'width': 3.0, 'x': nan} t9"]);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toEqual(['{"step": 3, "values": {"loss": 0.25, "lr": 1e-05, "n": 3}}', '{"step": null, "values": {"a": "NaN", "b": "Infinity", "c": "-Infinity"}}', '']);
    expect(parseHelperRecord(lines[0])).toEqual(metrics({ loss: 0.25, lr: 1e-5, n: 3 }, 3));
    expect(parseHelperRecord(lines[1])).toEqual(metrics({}, null, { a: 'NaN', b: 'Infinity', c: '-Infinity' }));
  });

  it('Python helper: name=value lines on stdout outside an agent', () => {
    const out = python('import sweeper\nsweeper.log({"loss": 0.25, "lr": 1e-05, "bad": float("nan")}, step=4)\nprint(sweeper.params())', {
      SWEEPER_METRICS_FD: '',
      SWEEPER_PARAMS: '',
    });
    const [line, params] = out.trim().split('\n');
    expect(line).toBe('loss=0.25 lr=1e-05 bad=nan step=4');
    expect(parseMetricLine(line)).toEqual(metrics({ loss: 0.25, lr: 1e-5 }, 4, { bad: 'nan' }));
    expect(params).toBe('{}');
  });

  it('Node helper: JSON records on the metrics fd', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sweeper-helper-'));
    const file = path.join(dir, 'records');
    const fd = openSync(file, 'w');
    try {
      vi.stubEnv('SWEEPER_METRICS_FD', String(fd));
      nodeLog({ loss: 0.25, acc: NaN }, 2);
      nodeLog({ big: -Infinity });
      expect(() => nodeLog({ x: '1' as unknown as number })).toThrow(TypeError);
      expect(() => nodeLog({ x: 1 }, -1)).toThrow(TypeError);
    } finally {
      closeSync(fd);
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines.map(parseHelperRecord)).toEqual([metrics({ loss: 0.25 }, 2, { acc: 'NaN' }), metrics({}, null, { big: '-Infinity' })]);
  });
});

describe('OutputTail', () => {
  it('keeps the last lines in order', () => {
    const tail = new OutputTail({ maxLines: 3 });
    for (let i = 1; i <= 7; i++) tail.push(`line ${i}`);
    expect(tail.lines()).toEqual(['line 5', 'line 6', 'line 7']);
    expect(tail.dropped).toBe(4);
  });

  it('defaults to 200 lines', () => {
    const tail = new OutputTail();
    for (let i = 0; i < 1000; i++) tail.push(String(i));
    expect(tail.lines()).toHaveLength(200);
    expect(tail.lines()[0]).toBe('800');
  });

  it('cuts long lines to 4 KiB of UTF-8 without splitting a character', () => {
    const tail = new OutputTail();
    tail.push('é'.repeat(5000));
    const [line] = tail.lines();
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
    expect(line.endsWith('é…')).toBe(true);
    expect(truncateUtf8('short', 10)).toBe('short');
    expect(truncateUtf8('abcdefghijk', 10)).toBe('abcdefg…');
  });
});
