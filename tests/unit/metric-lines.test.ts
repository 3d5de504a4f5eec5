import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PYTHON_HELPERS_DIR } from '../../agent/command.js';
import { log as nodeLog } from '../../agent/helpers/log.js';
import { parseHelperRecord, parseMetricLine } from '../../agent/metric-lines.js';
import { OutputTail, truncateUtf8 } from '../../agent/output-tail.js';
import { LineSplitter } from '../../agent/trial-process.js';

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

describe('parseMetricLine: Keras progress lines', () => {
  // What Keras's Progbar prints at the end of an epoch, by its format strings (Keras 2: tf.keras
  // 2.x utils/generic_utils.py; Keras 3: keras/src/utils/progbar.py), and by the recordings below.
  it.each([
    // Keras 2, verbose=1, and with a two-digit target (the counter is padded).
    ['32/32 [==============================] - 1s 3ms/step - loss: 0.3000 - val_loss: 0.4000', { loss: 0.3, val_loss: 0.4 }],
    ['10/10 [==============================] - 12s 1s/step - loss: 1.2345e-04 - accuracy: 0.9950', { loss: 1.2345e-4, accuracy: 0.995 }],
    // Keras 2, verbose=2.
    ['32/32 - 1s - loss: 0.3000 - val_loss: 0.4000 - 1s/epoch - 3ms/step', { loss: 0.3, val_loss: 0.4 }],
    // Keras 3, verbose=1 (colours and all) and verbose=2.
    ['\x1b[1m6/6\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m1s\x1b[0m 87ms/step - accuracy: 0.1250 - loss: 0.9194 - val_accuracy: 0.0625 - val_loss: 0.9226', { accuracy: 0.125, loss: 0.9194, val_accuracy: 0.0625, val_loss: 0.9226 }],
    ['8/8 ━━━━━━━━━━━━━━━━━━━━ 0s 417us/step - accuracy: 0.1172 - loss: 0.8874', { accuracy: 0.1172, loss: 0.8874 }],
    ['8/8 ==================== 0s 417us/step - loss: 0.8874', { loss: 0.8874 }],
    ['6/6 - 1s - 204ms/step - accuracy: 0.5208 - loss: 0.7079 - val_accuracy: 0.4531 - val_loss: 0.7815', { accuracy: 0.5208, loss: 0.7079, val_accuracy: 0.4531, val_loss: 0.7815 }],
    // Keras 3's `pinned` progress bar moves the cursor first.
    ['\x1b[H\x1b[K6/6 - 1s - 204ms/step - loss: 0.7079', { loss: 0.7079 }],
    // Without the furniture: pairs alone, separated by ` - ` or spaces.
    ['loss: 0.3 - val_loss: 0.4', { loss: 0.3, val_loss: 0.4 }],
    ['loss: 0.3 val_loss: 0.4', { loss: 0.3, val_loss: 0.4 }],
    ['  val_loss: 0.5\r', { val_loss: 0.5 }],
    ['train/loss: 1 val.acc: 2', { 'train/loss': 1, 'val.acc': 2 }],
    // The epoch counter sets nothing: the row gets the row number as its step, as any row without one.
    ['Epoch 3/10 - loss: 0.25', { loss: 0.25 }],
  ])('reads %j', (line, values) => {
    expect(parseMetricLine(line)).toEqual(metrics(values));
  });

  it('takes a step from a step pair, as from step=N', () => {
    expect(parseMetricLine('step: 4 - loss: 0.5')).toEqual(metrics({ loss: 0.5 }, 4));
  });

  it('records nan and inf as invalid', () => {
    expect(parseMetricLine('32/32 - 1s - loss: nan - val_loss: 0.4000 - 1s/epoch - 3ms/step')).toEqual(metrics({ val_loss: 0.4 }, null, { loss: 'nan' }));
    expect(parseMetricLine('loss: inf')).toEqual(metrics({}, null, { loss: 'inf' }));
  });

  it.each([
    // Redraws during an epoch: running averages over part of it, so no row.
    ' 9/32 [=======>......................] - ETA: 0s - loss: 0.3500',
    '32/32 [==============================] - ETA: 0s - loss: 0.3100',
    '10/32 [========>.....................] - ETA: 1:02 - loss: 0.3500',
    '\x1b[1m3/6\x1b[0m \x1b[32m━━━━━━━━━━\x1b[0m\x1b[37m━━━━━━━━━━\x1b[0m \x1b[1m0s\x1b[0m 31ms/step - accuracy: 0.1458 - loss: 0.9272',
    '5/6 ━━━━━━━━━━━━━━━━━━━━ 1:02:03 31ms/step - loss: 0.9233',
    '     16/Unknown - 1s 3ms/step - loss: 0.3500',
    ' 9/10 [===========================>..] - 0s 5ms/step - loss: 0.3000',
    // A redraw that reached the target: the backspaces say the next write draws over it.
    '6/6 ━━━━━━━━━━━━━━━━━━━━ 0s 32ms/step - loss: 0.9051 \x08\x08\x08\x08',
    // Furniture alone (predict's bar, the epoch counter).
    'Epoch 3/10',
    '32/32 [==============================] - 0s 2ms/step',
    'ETA: 2s',
    // Prose with colons.
    'Loading data: done',
    'data: done',
    'Accuracy: 95%',
    'Time: 12:30',
    'Note: see below',
    'loss: 0.3 (best)',
    'loss: 0.3, acc: 0.9',
    'INFO: loss: 0.3',
    'loss:',
    'loss:0.3',
    'Total params: 7,850 (30.66 KB)',
    'Trainable params: 7850 (30.66 KB)',
    '2024-05-01 12:00:00 loss: 0.3',
    'Epoch 3: val_loss improved from 0.5 to 0.4',
    'epoch 3: loss=0.25',
    '{"loss": 0.25}',
    'x: 1 - y: oops',
  ])('treats %j as no row', (line) => {
    expect(parseMetricLine(line)).toEqual({ kind: 'none' });
  });

  it.each([
    '32/32 [==============================] - 1s 3ms/step - loss: tensor(0.3)',
    '6/6 - 1s - 204ms/step - loss: 0.7079 - lr: abc',
    '6/6 - 1s - 204ms/step - step: 1.5 - loss: 0.7',
    `6/6 - 1s - 204ms/step - ${'a'.repeat(201)}: 1`,
  ])('counts %j as malformed: Keras furniture with a value that is no number', (line) => {
    expect(parseMetricLine(line)).toEqual({ kind: 'malformed' });
  });

  /** The rows the agent takes from a byte stream: split as trial-process.ts splits stdout. */
  const rowsOf = (bytes: Buffer) => {
    const rows: unknown[] = [];
    let malformed = 0;
    const splitter = new LineSplitter(64 * 1024, (line) => {
      const parsed = parseMetricLine(line);
      if (parsed.kind === 'metrics') rows.push(parsed);
      if (parsed.kind === 'malformed') malformed++;
    });
    splitter.push(bytes);
    splitter.end();
    return { rows, malformed };
  };
  const fixture = (name: string) => readFileSync(new URL(`../fixtures/keras/${name}`, import.meta.url));

  it('takes one row per epoch, and one for evaluate, from a recorded Keras 3 fit (verbose=1)', () => {
    expect(rowsOf(fixture('keras3-fit-verbose1.out'))).toEqual({
      rows: [
        metrics({ accuracy: 0.125, loss: 0.9194, val_accuracy: 0.0625, val_loss: 0.9226 }),
        metrics({ accuracy: 0.125, loss: 0.9051, val_accuracy: 0.0781, val_loss: 0.9096 }),
        metrics({ accuracy: 0.125, loss: 0.8914, val_accuracy: 0.0938, val_loss: 0.8969 }),
        metrics({ accuracy: 0.1172, loss: 0.8874 }),
      ],
      malformed: 0,
    });
  });

  it('and from a recorded Keras 3 fit with verbose=2', () => {
    expect(rowsOf(fixture('keras3-fit-verbose2.out'))).toEqual({
      rows: [
        metrics({ accuracy: 0.5208, loss: 0.7079, val_accuracy: 0.4531, val_loss: 0.7815 }),
        metrics({ accuracy: 0.5573, loss: 0.699, val_accuracy: 0.4844, val_loss: 0.77 }),
        metrics({ accuracy: 0.5885, loss: 0.6904, val_accuracy: 0.5156, val_loss: 0.7593 }),
        metrics({ accuracy: 0.582, loss: 0.7044 }),
      ],
      malformed: 0,
    });
  });

  it('and from the bytes Keras 2 writes for one epoch (verbose=1, redrawn into a pipe)', () => {
    // tf.keras 2.x: each update writes backspaces over the previous width, `\r`, then the line;
    // the finalizing update ends with a newline.
    const first = ' 1/32 [>.............................] - ETA: 3s - loss: 0.6931';
    const mid = '32/32 [==============================] - ETA: 0s - loss: 0.5010';
    const last = '32/32 [==============================] - 1s 3ms/step - loss: 0.5000 - val_loss: 0.5500';
    const bs = (s: string) => '\b'.repeat(s.length);
    const stream = `Epoch 1/2\n\r${first}${bs(first)}\r${mid}${bs(mid)}\r${last}\nEpoch 2/2\n\r${first}${bs(first)}\r${last.replace('0.5000', '0.4000')}\n`;
    expect(rowsOf(Buffer.from(stream))).toEqual({ rows: [metrics({ loss: 0.5, val_loss: 0.55 }), metrics({ loss: 0.4, val_loss: 0.55 })], malformed: 0 });
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
