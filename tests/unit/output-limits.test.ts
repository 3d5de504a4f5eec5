/**
 * What one trial's live output may cost (agent/output-limits.ts): lines cut to a size, a rate in
 * lines and bytes per second, a bound on what waits, batches cut by count and size; every drop
 * counted. Exact, on a clock the test moves.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_OUTPUT_LIMITS, OutputBuffer, outputLimits, RateLimiter } from '../../agent/output-limits.js';
import { OUTPUT_LIMITS } from '../../common/output-wire.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('RateLimiter', () => {
  it('lets one second of lines through at once, then refills continuously up to one second', () => {
    const c = clock();
    const r = new RateLimiter(3, 1000, c.now);
    expect([r.take(1), r.take(1), r.take(1), r.take(1)]).toEqual([true, true, true, false]);
    c.advance(500); // 1.5 lines
    expect([r.take(1), r.take(1)]).toEqual([true, false]);
    c.advance(10_000); // capped at 3, not 30
    expect([r.take(1), r.take(1), r.take(1), r.take(1)]).toEqual([true, true, true, false]);
  });

  it('holds bytes to their own budget: a line passes only when both have room', () => {
    const c = clock();
    const r = new RateLimiter(100, 100, c.now);
    expect(r.take(60)).toBe(true);
    expect(r.take(50)).toBe(false); // 40 bytes left
    expect(r.take(40)).toBe(true);
    c.advance(100); // 10 bytes back
    expect(r.take(11)).toBe(false);
    expect(r.take(10)).toBe(true);
  });

  it('a clock that goes back refills nothing', () => {
    const c = clock();
    const r = new RateLimiter(1, 100, c.now);
    expect(r.take(1)).toBe(true);
    c.advance(-5000);
    expect(r.take(1)).toBe(false);
  });
});

describe('outputLimits', () => {
  it('defaults, and keeps what is given inside what one message may hold', () => {
    expect(outputLimits()).toEqual(DEFAULT_OUTPUT_LIMITS);
    const l = outputLimits({ maxLineBytes: 1e9, maxBatchLines: 1e9, maxBatchBytes: 1e9 });
    expect(l.maxLineBytes).toBe(OUTPUT_LIMITS.maxLineBytes);
    expect(l.maxBatchLines).toBe(OUTPUT_LIMITS.maxLinesPerBatch);
    expect(l.maxBatchBytes).toBe(OUTPUT_LIMITS.maxMessageBytes / 2);
    expect(outputLimits({ maxLineBytes: 1 }).maxLineBytes).toBe(16);
  });
});

describe('OutputBuffer', () => {
  const limits = (over: Partial<typeof DEFAULT_OUTPUT_LIMITS> = {}) => outputLimits({ ...DEFAULT_OUTPUT_LIMITS, ...over });

  it('cuts each line to maxLineBytes of UTF-8, never inside a character, ending it in …', () => {
    const c = clock();
    const b = new OutputBuffer(limits({ maxLineBytes: 16 }), c.now);
    b.add('stdout', 'x'.repeat(40));
    b.add('stderr', 'é'.repeat(20)); // 2 bytes each
    b.add('stdout', 'short');
    const chunk = b.cut();
    expect(chunk.lines).toEqual([
      { s: 'o', t: c.now(), x: `${'x'.repeat(13)}…` },
      { s: 'e', t: c.now(), x: `${'é'.repeat(6)}…` },
      { s: 'o', t: c.now(), x: 'short' },
    ]);
    expect(chunk.lines.map((l) => Buffer.byteLength(l.x))).toEqual([16, 15, 5]);
    // Each with its newline.
    expect(chunk.bytes).toBe(39);
  });

  it('drops lines over the rate and says how many, and their bytes with newlines, with the next chunk only', () => {
    const c = clock();
    const b = new OutputBuffer(limits({ linesPerSecond: 5 }), c.now);
    const kept = Array.from({ length: 8 }, (_, i) => b.add('stdout', `line ${i}`));
    expect(kept).toEqual([true, true, true, true, true, false, false, false]);
    expect(b.kept).toBe(5);
    expect(b.dropped).toEqual({ rate: 3, backlog: 0, bytes: 21 });
    const first = b.cut();
    expect(first.lines.map((l) => l.x)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
    expect([first.droppedLines, first.droppedBytes]).toEqual([3, 21]);
    c.advance(200); // one more line's worth
    expect(b.add('stderr', 'again')).toBe(true);
    const second = b.cut();
    expect(second.lines.map((l) => l.x)).toEqual(['again']);
    expect([second.droppedLines, second.droppedBytes]).toEqual([0, 0]);
    expect(b.totalDropped).toBe(3);
  });

  it('100,000 lines in one instant: one second of them kept, the rest counted', () => {
    const c = clock();
    const b = new OutputBuffer(limits({ maxPendingBytes: 1e9 }), c.now);
    for (let i = 0; i < 100_000; i++) b.add('stdout', `step ${i}`);
    expect(b.kept).toBe(DEFAULT_OUTPUT_LIMITS.linesPerSecond);
    expect(b.dropped.rate).toBe(100_000 - DEFAULT_OUTPUT_LIMITS.linesPerSecond);
  });

  it('holds at most maxPendingBytes waiting (a line with its newline), counting a cut chunk until it is released', () => {
    const c = clock();
    const b = new OutputBuffer(limits({ maxPendingBytes: 10 }), c.now);
    expect([b.add('stdout', 'abcd'), b.add('stdout', 'efgh'), b.add('stdout', 'ijkl')]).toEqual([true, true, false]);
    expect(b.dropped).toEqual({ rate: 0, backlog: 1, bytes: 5 });
    const chunk = b.cut();
    // On the wire, not yet acknowledged: still counted against the bound.
    expect(b.add('stdout', 'mnop')).toBe(false);
    b.release(chunk);
    expect(b.add('stdout', 'qrst')).toBe(true);
    expect(b.cut()).toEqual({ lines: [{ s: 'o', t: c.now(), x: 'qrst' }], droppedLines: 1, droppedBytes: 5, bytes: 5 });
  });

  it('cuts batches of at most maxBatchLines and maxBatchBytes, oldest first, at least one line each', () => {
    const c = clock();
    const b = new OutputBuffer(limits({ maxBatchLines: 3, maxBatchBytes: 10 }), c.now); // 'aa' costs 3 bytes
    for (const x of ['aa', 'bb', 'cc', 'dd', 'eeeeeeeeeeee', 'ff']) b.add('stdout', x);
    expect(b.full).toBe(true);
    const sizes = [];
    while (b.pendingLines > 0) sizes.push(b.cut().lines.map((l) => l.x));
    expect(sizes).toEqual([['aa', 'bb', 'cc'], ['dd'], ['eeeeeeeeeeee'], ['ff']]);
    expect(b.full).toBe(false);
    expect(b.hasPending).toBe(false);
  });

  it('has something to send when only drops are left to report', () => {
    const c = clock();
    const b = new OutputBuffer(limits({ linesPerSecond: 1 }), c.now);
    b.add('stdout', 'a');
    b.cut();
    b.add('stdout', 'b');
    expect(b.pendingLines).toBe(0);
    expect(b.hasPending).toBe(true);
    expect(b.cut()).toEqual({ lines: [], droppedLines: 1, droppedBytes: 2, bytes: 0 });
    expect(b.hasPending).toBe(false);
  });
});
