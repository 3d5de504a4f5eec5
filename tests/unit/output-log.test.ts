/**
 * The controller's hold on trials' live output: the bounded rings (controller/sweeps/output-ring.ts)
 * and the store that admits stream messages into them (controller/sweeps/output-log.ts), which
 * refuses what a trial's holder did not send, counts each refusal by reason, and lets go of
 * ended trials. Fed messages as the stream delivers them: subject, body, stream sequence.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { OUTPUT_LIMITS, outputSubject, type OutputBatch } from '../../common/output-wire.js';
import { OutputStore, outputTails, outputView, type OutputTrial } from '../../controller/sweeps/output-log.js';
import { LineRing, lineSeq, SEQ_PER_BATCH, TrialOutputRing } from '../../controller/sweeps/output-ring.js';

const log = createLogger('test', () => {});
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

function batch(over: Partial<OutputBatch> & { texts?: Array<[string, 'o' | 'e']> } = {}): OutputBatch {
  const { texts = [['hello', 'o']], ...rest } = over;
  return { sweepId: 'sw', trialId: 'sw-1', run: 'r1', seq: 1, lines: texts.map(([x, s], i) => ({ s, t: 1000 + i, x })), ...rest };
}

describe('LineRing', () => {
  it('keeps the newest lines within its line and character bounds, oldest first', () => {
    const r = new LineRing(3, 10);
    for (const [i, text] of ['aaaa', 'bbbb', 'cc', 'dd'].entries()) r.push({ seq: i + 1, stream: 'stdout', at: 0, text });
    // Four lines, 12 characters: 'aaaa' goes for both bounds.
    expect(r.size).toBe(3);
    expect(r.heldChars).toBe(8);
    expect(r.last(10, Infinity)).toEqual(['bbbb', 'cc', 'dd']);
    expect(r.last(2, Infinity)).toEqual(['cc', 'dd']);
    expect(r.last(10, 5)).toEqual(['cc', 'dd']);
    expect(r.firstAfter(0)).toBe(0);
    expect(r.firstAfter(2)).toBe(1);
    expect(r.firstAfter(3)).toBe(2);
    expect(r.firstAfter(4)).toBe(3);
    r.shrink(1, 100);
    expect(r.last(10, Infinity)).toEqual(['dd']);
  });

  it('stays bounded over a million lines', () => {
    const r = new LineRing(2000, 512 * 1024);
    for (let i = 1; i <= 1_000_000; i++) r.push({ seq: i, stream: 'stdout', at: 0, text: `line ${i}` });
    expect(r.size).toBe(2000);
    expect(r.at(0).seq).toBe(998_001);
    expect(r.last(1, Infinity)).toEqual(['line 1000000']);
  });
});

describe('TrialOutputRing', () => {
  it("numbers lines by their stream position and merges both streams in that order", () => {
    expect(OUTPUT_LIMITS.maxLinesPerBatch).toBeLessThan(SEQ_PER_BATCH);
    const ring = new TrialOutputRing({ linesPerStream: 100, charsPerStream: 1000 });
    ring.add(batch({ texts: [['a', 'o'], ['b', 'e'], ['c', 'o']] }), 7);
    ring.add(batch({ seq: 2, texts: [['d', 'e']], droppedLines: 5, droppedBytes: 50 }), 9);
    expect(ring.after(0).map((l) => [l.seq, l.stream, l.text])).toEqual([
      [lineSeq(7, 0), 'stdout', 'a'],
      [lineSeq(7, 1), 'stderr', 'b'],
      [lineSeq(7, 2), 'stdout', 'c'],
      [lineSeq(9, 0), 'stderr', 'd'],
    ]);
    expect(lineSeq(7, 2)).toBe(7 * 1024 + 2);
    expect(ring.after(lineSeq(7, 1)).map((l) => l.text)).toEqual(['c', 'd']);
    expect(ring.after(lineSeq(9, 0))).toEqual([]);
    // Chunks of about maxChars, always at least one line.
    expect(ring.after(0, 2).map((l) => l.text)).toEqual(['a', 'b']);
    expect(ring.after(0, 0).map((l) => l.text)).toEqual(['a']);
    expect([ring.droppedLines, ring.droppedBytes, ring.received]).toEqual([5, 50, 4]);
    expect(ring.stdout.last(10, Infinity)).toEqual(['a', 'c']);
  });

  it('knows when the newest run has sent its final batch', () => {
    const ring = new TrialOutputRing({ linesPerStream: 10, charsPerStream: 100 });
    ring.add(batch({ run: 'r1' }), 1);
    expect(ring.finalSeen).toBe(false);
    ring.add(batch({ run: 'r1', seq: 2, final: true }), 2);
    expect(ring.finalSeen).toBe(true);
    // A preempted trial continued elsewhere: a new run, not final yet.
    ring.add(batch({ run: 'r2' }), 3);
    expect([ring.finalSeen, ring.run]).toEqual([false, 'r2']);
  });
});

/** A store over a table of trials the test edits, on a clock it moves. */
function storeWith(trials: Record<string, OutputTrial>, now = { t: 1_000_000 }) {
  const store = new OutputStore({ log, trialOf: (id) => trials[id], keepEndedMs: 60_000, linesPerStream: 5, charsPerStream: 1000, endedLinesPerStream: 2, now: () => now.t });
  let seq = 0;
  const send = (agent: string, b: OutputBatch | string, subject = outputSubject('sw', agent, typeof b === 'string' ? 'sw-1' : b.trialId)) =>
    store.handle({ subject, data: enc(b), seq: ++seq });
  return { store, send, now };
}

const running = (agentId = 'agent-a'): OutputTrial => ({ sweepId: 'sw', agentId, state: 'running', endedAt: 0, stdoutTail: [], stderrTail: [] });

describe('OutputStore', () => {
  it("takes only its holder's batches of a known trial, and counts each refusal by its reason", () => {
    const { store, send } = storeWith({ 'sw-1': running() });
    send('agent-a', batch());
    send('agent-b', batch()); // not the holder
    send('agent-a', batch({ trialId: 'sw-99' })); // no such trial
    store.handle({ subject: outputSubject('other', 'agent-a', 'sw-1'), data: enc(batch()), seq: 50 }); // another sweep's subject
    send('agent-a', batch({ sweepId: 'other' })); // body names another sweep
    send('agent-a', '{not json');
    send('agent-a', { ...batch(), seq: 0 }); // schema
    send('agent-a', batch({ texts: [['x'.repeat(OUTPUT_LIMITS.maxLineBytes + 1), 'o']] })); // schema: line too long
    send('agent-a', 'x'.repeat(OUTPUT_LIMITS.maxMessageBytes + 1)); // oversized
    store.handle({ subject: 'sweeper.metrics.sw.agent-a.sw-1', data: enc(batch()), seq: 60 });
    expect(store.stats()).toEqual({
      batches: 1,
      lines: 1,
      skipped: 0,
      trials: 1,
      heldLines: 1,
      rejected: { not_holder: 1, unknown_trial: 2, subject_mismatch: 2, bad_json: 1, schema: 2, oversized: 1 },
    });
    expect(store.rejections()).toEqual({
      output_not_holder: 1,
      output_unknown_trial: 2,
      output_subject_mismatch: 2,
      output_bad_json: 1,
      output_schema: 2,
      output_oversized: 1,
    });
    expect(store.ring('sw-1')!.after(0).map((l) => l.text)).toEqual(['hello']);
  });

  it('tells watchers of each batch, and awaitFinal of the final one', async () => {
    const { store, send } = storeWith({ 'sw-1': running() });
    let calls = 0;
    const unwatch = store.watch('sw-1', () => calls++);
    const final = store.awaitFinal('sw-1', 10_000);
    send('agent-a', batch());
    send('agent-a', batch({ seq: 2, final: true }));
    expect(await final).toBe(true);
    expect(calls).toBe(2);
    unwatch();
    send('agent-a', batch({ run: 'r2' }));
    expect(calls).toBe(2);
    expect(await store.awaitFinal('sw-1', 10)).toBe(false);
  });

  it('lets go of a trial that ended with its tails once keepEndedMs has passed; keeps the last lines of one that ended without', () => {
    const trials: Record<string, OutputTrial> = { 'sw-1': running(), 'sw-2': running() };
    const { store, send, now } = storeWith(trials);
    for (const id of ['sw-1', 'sw-2']) send('agent-a', batch({ trialId: id, texts: [['1', 'o'], ['2', 'o'], ['3', 'o'], ['4', 'e']] }));
    trials['sw-1'] = { ...running(), state: 'finished', endedAt: now.t, stdoutTail: ['3'] };
    trials['sw-2'] = { ...running(), state: 'crashed', endedAt: now.t };
    store.compact();
    expect(store.ring('sw-1')!.size).toBe(4);
    expect(store.ring('sw-2')!.after(0).map((l) => l.text)).toEqual(['2', '3', '4']);
    now.t += 60_001;
    store.compact();
    expect(store.ring('sw-1')).toBeUndefined();
    expect(store.ring('sw-2')!.size).toBe(3);
    // Replayed after a restart: a long-ended trial's batches are read past, unparsed.
    send('agent-a', batch({ trialId: 'sw-1' }));
    expect(store.stats()).toMatchObject({ skipped: 1, trials: 1 });
    // A crashed trial's late batch still lands, within its ended bounds.
    send('agent-a', batch({ trialId: 'sw-2', seq: 2, texts: [['5', 'o'], ['6', 'o']] }));
    expect(store.ring('sw-2')!.after(0).map((l) => l.text)).toEqual(['4', '5', '6']);
  });
});

describe('outputView and outputTails', () => {
  const ring = () => {
    const r = new TrialOutputRing({ linesPerStream: 10, charsPerStream: 1000 });
    r.add(batch({ texts: [['live out', 'o'], ['live err', 'e']], droppedLines: 3 }), 1);
    return r;
  };

  it('a running trial: its live lines', () => {
    const t = running();
    expect(outputView(t, ring(), 0)).toMatchObject({ state: 'running', live: true, droppedLines: 3, lines: [{ text: 'live out' }, { text: 'live err' }] });
    expect(outputTails(t, ring(), 200, 1000)).toEqual({ stdout: ['live out'], stderr: ['live err'], live: true, droppedLines: 3 });
    expect(outputTails(t, undefined, 200, 1000)).toEqual({ stdout: [], stderr: [], live: false, droppedLines: 0 });
  });

  it('an ended trial with tails: the end report, numbered stdout then stderr', () => {
    const t: OutputTrial = { ...running(), state: 'finished', endedAt: 1, stdoutTail: ['o1', 'o2'], stderrTail: ['e1'] };
    expect(outputView(t, ring(), 0).lines).toEqual([
      { seq: 1, stream: 'stdout', at: 0, text: 'o1' },
      { seq: 2, stream: 'stdout', at: 0, text: 'o2' },
      { seq: 3, stream: 'stderr', at: 0, text: 'e1' },
    ]);
    expect(outputView(t, ring(), 2).lines.map((l) => l.text)).toEqual(['e1']);
    expect(outputView(t, ring(), 0, 4).lines.map((l) => l.text)).toEqual(['o1', 'o2']);
    expect(outputTails(t, ring(), 200, 1000)).toEqual({ stdout: ['o1', 'o2'], stderr: ['e1'], live: false, droppedLines: 3 });
  });

  it('a trial whose agent died (no tails): the live lines it had sent', () => {
    const t: OutputTrial = { ...running(), state: 'crashed', endedAt: 1 };
    expect(outputTails(t, ring(), 200, 1000)).toEqual({ stdout: ['live out'], stderr: ['live err'], live: true, droppedLines: 3 });
    expect(outputView(t, ring(), 0).live).toBe(true);
  });
});
