/**
 * TrialProcess against real child processes (tests/fixtures/programs). Needs bash and python3.
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type BuildCommandOptions, buildCommand } from '../../agent/command.js';
import { CANCELLED, SHUTDOWN, type StopReason } from '../../agent/stop-reason.js';
import { LineSplitter, MAX_LINE_BYTES, type TrialOptions, startTrial } from '../../agent/trial-process.js';
import type { MetricPoint } from '../../common/metrics-wire.js';
import { Float, type Params } from '../../domain/values.js';

const PROGRAMS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'programs');

function command(program: string, params: Params = {}, extra: Partial<BuildCommandOptions> = {}) {
  return buildCommand({ program, params, cwd: PROGRAMS, sweepId: 'sw', trialId: 'tr', ...extra });
}

/** Starts a trial and collects everything it reports. */
function run(cmd: ReturnType<typeof buildCommand>, opts: Partial<TrialOptions> = {}) {
  const points: MetricPoint[] = [];
  const malformed: string[] = [];
  const stdout: string[] = [];
  let onStdout: ((line: string) => void) | undefined;
  const trial = startTrial({
    command: cmd,
    cwd: PROGRAMS,
    onPoint: (p) => points.push(p),
    onMalformed: (_source, line) => malformed.push(line),
    onOutput: (stream, line) => {
      if (stream !== 'stdout') return;
      stdout.push(line);
      onStdout?.(line);
    },
    ...opts,
  });
  /** Resolves once the trial has printed a line matching `re`. */
  const printed = (re: RegExp) =>
    new Promise<void>((resolve) => {
      if (stdout.some((l) => re.test(l))) return resolve();
      onStdout = (l) => re.test(l) && resolve();
    });
  return { trial, points, malformed, stdout, printed };
}

/** A zombie still answers kill(pid, 0), so look at its state where /proc exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Polls until `cond` holds; the bound only keeps a broken test from hanging. */
async function waitUntil(cond: () => boolean, ms = 30_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** A stopping rule's verdict, as the controller orders it. */
const PRUNED: StopReason = { kind: 'early-stop', rule: 'median', text: 'median: best value 5 > median 1 of 3 other trials at iteration 2' };

const values = (points: MetricPoint[]) => points.map(({ step, values: v, invalid }) => ({ step, values: v, ...(invalid ? { invalid } : {}) }));

describe('TrialProcess', () => {
  it('runs a Python script that reports through the sweeper helper', async () => {
    const params = { width: new Float(3), lr: 1e-5, flag: true, name: 'a b' };
    const before = Date.now();
    const { trial, points, stdout } = run(command('helper_metrics.py', params));
    const result = await trial.result;
    const after = Date.now();
    expect(result).toMatchObject({ exitCode: 0, signal: null, malformedLines: 0 });
    expect(result.startError).toBeUndefined();
    expect(result.stoppedBy).toBeUndefined();
    expect(JSON.parse(stdout[0])).toEqual({
      argv: ['--width=3.0', '--lr=1e-05', '--flag=True', '--name=a b'],
      trial: 'tr',
      types: { width: 'float', lr: 'float', flag: 'bool', name: 'str' },
    });
    expect(stdout).toContain('rejected a string metric');
    expect(values(points)).toEqual([
      { step: 0, values: { loss: 1, acc: 0.5 } },
      { step: 1, values: { loss: 0.5, acc: 0.6 } },
      { step: 2, values: { loss: 1 / 3, acc: 0.7 } },
      { step: null, values: {}, invalid: { loss: 'NaN', grad: 'Infinity' } },
    ]);
    // Stamped in epoch milliseconds while the trial ran.
    for (const p of points) {
      expect(p.t).toBeGreaterThanOrEqual(before);
      expect(p.t).toBeLessThanOrEqual(after);
    }
  });

  it('reads metric lines from plain stdout and ignores prose', async () => {
    const { trial, points, malformed } = run(command('print_metrics.sh'));
    const result = await trial.result;
    expect(result.exitCode).toBe(0);
    expect(values(points)).toEqual([
      { step: null, values: { epoch: 1, loss: 0.5, acc: 0.8 } },
      { step: null, values: { epoch: 2, loss: 0.25, acc: 0.9 } },
      { step: 7, values: {}, invalid: { loss: 'nan' } },
      { step: null, values: { loss: 0.125 } },
    ]);
    expect(malformed).toEqual(['loss=abc']);
    expect(result.malformedLines).toBe(1);
    expect(result.stdoutTail).toEqual([
      'loading data...',
      'epoch=1 loss=0.5 acc=0.8',
      'epoch=2 loss=0.25 acc=0.9',
      'Epoch 3 done, see https://example.com/?run=3',
      'loss=abc',
      'step=7 loss=nan',
      'loss=0.125',
    ]);
  });

  it('reports a failing exit code and keeps stderr', async () => {
    const { trial } = run(command('exit3.sh'));
    const result = await trial.result;
    expect(result).toMatchObject({ exitCode: 3, signal: null, stdoutTail: ['about to fail'], stderrTail: ['something broke'] });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('stops with SIGTERM, then SIGKILL for a program that ignores SIGTERM', async () => {
    const { trial, printed, stdout } = run(command('ignore_term.js'));
    await printed(/^ready$/);
    const first = trial.stop(PRUNED, 400);
    const second = trial.stop(SHUTDOWN, 5_000);
    expect(trial.state).toBe('stopping');
    await Promise.all([first, second]);
    const result = await trial.result;
    // SIGTERM came first (the program says so), then the kill.
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGKILL', stoppedBy: PRUNED });
    expect(stdout).toContain('got SIGTERM, ignoring it');
    await trial.stop(PRUNED); // after the end: a no-op
  });

  // Without the second stop this would wait out the 60 s grace and overrun the test's timeout.
  it('a second stop with a shorter grace forces the kill sooner', async () => {
    const { trial, printed } = run(command('ignore_term.js'));
    await printed(/^ready$/);
    void trial.stop(SHUTDOWN, 60_000);
    // The first stop's SIGTERM has arrived (and been ignored).
    await printed(/^got SIGTERM, ignoring it$/);
    await trial.stop(SHUTDOWN, 0);
    expect((await trial.result).signal).toBe('SIGKILL');
  }, 20_000);

  it('a stop right after start still reaches the process', async () => {
    const { trial } = run(command('ignore_term.js'));
    await trial.stop(CANCELLED, 0);
    // SIGTERM may land before node has installed its handler; either way the process is gone.
    expect(await trial.result).toMatchObject({ exitCode: null, signal: expect.stringMatching(/^SIG(TERM|KILL)$/), stoppedBy: CANCELLED });
  });

  it('stops through an AbortSignal, its reason the StopReason it was aborted with', async () => {
    const ac = new AbortController();
    const { trial, printed } = run(command('grandchild.sh', {}, { command: ['${interpreter}', '${program}', 'wait'] }), { signal: ac.signal });
    await printed(/^grandchild pid/);
    ac.abort(PRUNED);
    const result = await trial.result;
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGTERM', stoppedBy: PRUNED });
  });

  it('an abort without a StopReason stops the trial as cancelled', async () => {
    const ac = new AbortController();
    const { trial, printed } = run(command('grandchild.sh', {}, { command: ['${interpreter}', '${program}', 'wait'] }), { signal: ac.signal });
    await printed(/^grandchild pid/);
    ac.abort();
    expect(await trial.result).toMatchObject({ exitCode: null, signal: 'SIGTERM', stoppedBy: CANCELLED });
  });

  // The agent starts a stop with a grace of its own (a cancel: 0) before aborting the trial's controller.
  it('an abort after a stop keeps the reason of that stop', async () => {
    const ac = new AbortController();
    const { trial, printed } = run(command('ignore_term.js'), { signal: ac.signal, graceMs: 60_000 });
    await printed(/^ready$/);
    const stopped = trial.stop(PRUNED, 0);
    ac.abort(SHUTDOWN);
    await stopped;
    expect(await trial.result).toMatchObject({ signal: 'SIGKILL', stoppedBy: PRUNED });
  }, 20_000);

  // The grandchild holds the pipes for 60 s: waiting on them would overrun this test's timeout.
  it('kills a grandchild left behind, without waiting for the pipes it holds', async () => {
    const { trial, stdout } = run(command('grandchild.sh'));
    const result = await trial.result;
    expect(result.exitCode).toBe(0);
    const pid = Number(/^grandchild pid (\d+)$/.exec(stdout[0])?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(await waitUntil(() => !alive(pid))).toBe(true);
  }, 45_000);

  it('kills the whole group on stop', async () => {
    const { trial, printed, stdout } = run(command('grandchild.sh', {}, { command: ['${interpreter}', '${program}', 'wait'] }));
    await printed(/^grandchild pid/);
    const pid = Number(/(\d+)$/.exec(stdout[0])?.[1]);
    expect(alive(pid)).toBe(true);
    await trial.stop(SHUTDOWN, 2_000);
    expect(await waitUntil(() => !alive(pid))).toBe(true);
  });

  it('resolves with startError for a program that does not exist', async () => {
    const { trial } = run(command('argv.js', {}, { command: ['/nonexistent/dir/train-it', '${args}'] }));
    const result = await trial.result;
    expect(result.startError).toMatch(/ENOENT/);
    expect(result).toMatchObject({ exitCode: null, signal: null });
    await trial.stop(SHUTDOWN); // safe on a trial that never ran
  });

  it('resolves with startError for a program that is not executable', async () => {
    const { trial } = run(command('not_executable.run', {}, { command: ['${program}'] }));
    expect((await trial.result).startError).toMatch(/EACCES/);
  });

  it('resolves with startError for a missing working directory', async () => {
    const cmd = command('argv.js');
    const result = await startTrial({ command: cmd, cwd: path.join(PROGRAMS, 'no-such-dir') }).result;
    expect(result.startError).toMatch(/ENOENT/);
  });

  it('passes dangerous values literally, with no shell in between', async () => {
    const marker = path.join(tmpdir(), `sweeper-pwned-${process.pid}-${Date.now()}`);
    const params = { a: `$(touch ${marker})`, b: `; touch ${marker}`, c: 'two\nlines', d: `\`touch ${marker}\``, e: '*', f: "'q'" };
    const cmd = command('argv.js', params, { command: ['${env}', '${interpreter}', '${program}', '${args}', '${args_no_equals}'] });
    const { trial, stdout } = run(cmd);
    expect((await trial.result).exitCode).toBe(0);
    const expected = [
      `--a=$(touch ${marker})`,
      `--b=; touch ${marker}`,
      '--c=two\nlines',
      `--d=\`touch ${marker}\``,
      '--e=*',
      "--f='q'",
      ...Object.entries(params).flatMap(([k, v]) => [`--${k}`, v]),
    ];
    expect(JSON.parse(stdout[0])).toEqual(expected);
    expect(existsSync(marker)).toBe(false);
  });

  it('writes ${args_json_file} for the trial and removes it afterwards', async () => {
    // The program prints the file it was given: what it read while it ran, whenever the output is handled.
    const cmd = command('print_file.js', { width: new Float(3) }, { command: ['${interpreter}', '${program}', '${args_json_file}'] });
    const file = cmd.argv[2];
    const seen: string[] = [];
    const trial = startTrial({ command: cmd, cwd: PROGRAMS, onOutput: (stream, line) => stream === 'stdout' && seen.push(line) });
    expect((await trial.result).exitCode).toBe(0);
    expect(seen).toEqual(['{"width": 3.0}']);
    expect(existsSync(file)).toBe(false);
  });

  it('keeps up with 20k metric lines and keeps only a bounded tail', async () => {
    const { trial, points } = run(command('flood.py'));
    const result = await trial.result;
    expect(result.exitCode).toBe(0);
    expect(points).toHaveLength(20_000);
    expect(points.every((p, i) => p.step === i)).toBe(true);
    expect(points[19_999].values.loss).toBe(1 / 20_000);
    expect(result.stdoutTail).toHaveLength(200);
    expect(result.stdoutTail[199]).toBe('step=19999 loss=5e-05');
  });

  it('cuts a very long line and carries on with the next', async () => {
    const { trial, points } = run(command('long_line.js'));
    const result = await trial.result;
    expect(values(points)).toEqual([{ step: null, values: { loss: 0.5 } }]);
    expect(result.stdoutTail).toHaveLength(2);
    expect(Buffer.byteLength(result.stdoutTail[0])).toBeLessThanOrEqual(4096);
  });

  it('does not let a throwing callback stop the reading', async () => {
    let calls = 0;
    const trial = startTrial({
      command: command('print_metrics.sh'),
      cwd: PROGRAMS,
      onPoint: () => {
        calls++;
        throw new Error('consumer bug');
      },
    });
    expect((await trial.result).exitCode).toBe(0);
    expect(calls).toBe(4);
  });
});

describe('LineSplitter', () => {
  const split = (chunks: (string | Buffer)[], max = MAX_LINE_BYTES) => {
    const out: [string, boolean][] = [];
    const s = new LineSplitter(max, (line, truncated) => out.push([line, truncated]));
    for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c) : c);
    s.end();
    return out;
  };

  it('splits on \\n, \\r\\n and a lone \\r, across chunk boundaries', () => {
    expect(split(['a\nb\r', '\nc\rd', '\n\ne'])).toEqual([
      ['a', false],
      ['b', false],
      ['c', false],
      ['d', false],
      ['', false],
      ['e', false],
    ]);
  });

  it('decodes a character split across chunks', () => {
    const bytes = Buffer.from('é\n');
    expect(split([bytes.subarray(0, 1), bytes.subarray(1)])).toEqual([['é', false]]);
  });

  it('delivers a long line once, cut and flagged, and drops the rest of it', () => {
    expect(split(['abc', 'defgh', 'ij\nok\n'], 4)).toEqual([
      ['abcd', true],
      ['ok', false],
    ]);
    expect(split(['abcdefgh'], 4)).toEqual([['abcd', true]]);
  });
});

