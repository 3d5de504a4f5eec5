import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JournalError, MetricSpool, processStart, readJournal } from '../../agent/spool.js';
import { silentLogger } from '../../common/log.js';

const pt = (step: number) => ({ step, t: 1000 + step, values: { loss: step / 10 } });
const line = (r: unknown) => JSON.stringify(r);

describe('readJournal', () => {
  it('rebuilds the unacknowledged batch and the queued points', () => {
    const text = [
      line({ trial: 's-1', seq: 1 }),
      line({ p: pt(1) }),
      line({ p: pt(2) }),
      line({ m: 1 }),
      line({ c: [1, 2, 1] }),
      line({ a: 1 }),
      line({ p: pt(3) }),
      line({ p: pt(4) }),
      line({ c: [2, 1, 0] }),
      line({ p: pt(5) }),
      line({ m: 1 }),
      '',
    ].join('\n');
    expect(readJournal(text)).toEqual({
      trialId: 's-1',
      unacked: { seq: 2, points: [pt(3)], malformed: 0 },
      queued: [pt(4), pt(5)],
      malformed: 1,
      nextSeq: 3,
    });
  });

  it('applies drops to the oldest queued points, and a fully acknowledged journal has nothing left', () => {
    const dropped = [line({ trial: 't', seq: 4 }), line({ p: pt(1) }), line({ p: pt(2) }), line({ p: pt(3) }), line({ d: 2 })].join('\n');
    expect(readJournal(dropped)).toEqual({ trialId: 't', unacked: null, queued: [pt(3)], malformed: 0, nextSeq: 4 });
    const settled = [line({ trial: 't', seq: 1 }), line({ p: pt(1) }), line({ c: [1, 1, 0] }), line({ a: 1 })].join('\n');
    expect(readJournal(settled)).toEqual({ trialId: 't', unacked: null, queued: [], malformed: 0, nextSeq: 2 });
  });

  it('ignores a last line torn by the agent dying mid-write, and refuses damage anywhere else', () => {
    const torn = [line({ trial: 't', seq: 1 }), line({ p: pt(1) }), '{"p":{"step":2,"t":10'].join('\n');
    expect(readJournal(torn).queued).toEqual([pt(1)]);
    expect(() => readJournal([line({ trial: 't', seq: 1 }), '{"p":', line({ p: pt(1) })].join('\n'))).toThrow(JournalError);
    expect(() => readJournal(line({ p: pt(1) }))).toThrow('no header');
    expect(() => readJournal([line({ trial: 't', seq: 1 }), line({ c: [1, 3, 0] })].join('\n'))).toThrow('does not fit');
    expect(() => readJournal([line({ trial: 't', seq: 1 }), line({ x: 1 })].join('\n'))).toThrow('unknown record');
  });
});

describe('MetricSpool', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'sweeper-spool-test-'));
    dirs.push(d);
    return d;
  };
  const host = hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60);
  const settle = () => new Promise((r) => setImmediate(r));

  it("journals a trial's queue, and the next agent adopts what a dead one left", async () => {
    const dir = tmp();
    const dead = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 101, isAlive: () => false });
    dead.opened('sw-1', 1);
    dead.point('sw-1', pt(1));
    dead.point('sw-1', pt(2));
    dead.cut('sw-1', 1, 2, 0);
    dead.point('sw-1', pt(3));
    dead.opened('sw-2', 1);
    dead.point('sw-2', pt(1));
    dead.cut('sw-2', 1, 1, 0);
    dead.acked('sw-2', 1);
    await settle(); // journals are written at the end of the turn; then the agent "dies" (no close)
    expect(readdirSync(join(dir, 'sw', `${host}-101`)).sort()).toEqual(['sw-1.jsonl', 'sw-2.jsonl']);

    const alive = (pid: number) => pid === 202;
    const next = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 202, isAlive: alive });
    const adopted = next.adoptOrphans().sort((a, b) => a.trialId.localeCompare(b.trialId));
    expect(adopted).toEqual([
      { trialId: 'sw-1', unacked: { seq: 1, points: [pt(1), pt(2)], malformed: 0 }, queued: [pt(3)], malformed: 0, nextSeq: 2 },
      { trialId: 'sw-2', unacked: null, queued: [], malformed: 0, nextSeq: 2 },
    ]);
    // Moved into the adopter's folder; the dead agent's folder is gone.
    expect(existsSync(join(dir, 'sw', `${host}-101`))).toBe(false);
    expect(readdirSync(next.dir).sort()).toEqual(['sw-1.jsonl', 'sw-2.jsonl']);

    // The adopter keeps journaling into the adopted file, then forgets it once all is acknowledged.
    next.acked('sw-1', 1);
    next.cut('sw-1', 2, 1, 0);
    await settle();
    expect(readJournal(readFileSync(join(next.dir, 'sw-1.jsonl'), 'utf8')).unacked).toEqual({ seq: 2, points: [pt(3)], malformed: 0 });
    next.acked('sw-1', 2);
    next.finished('sw-1');
    next.finished('sw-2');
    expect(readdirSync(next.dir)).toEqual([]);
    next.close();
    expect(existsSync(join(dir, 'sw'))).toBe(false);

    // A third agent finds nothing to adopt.
    expect(new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 303, isAlive: () => false }).adoptOrphans()).toEqual([]);
  });

  it('rewrites a journal grown past its bound as a snapshot of the queue when the trial is idle', async () => {
    const dir = tmp();
    const spool = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 101, compactBytes: 400 });
    spool.opened('sw-1', 1);
    for (let i = 1; i <= 4; i++) spool.point('sw-1', pt(i));
    spool.cut('sw-1', 1, 4, 0);
    spool.acked('sw-1', 1);
    spool.point('sw-1', pt(5));
    spool.idle('sw-1', 2, [pt(5)], 0); // still small: kept as it is
    await settle();
    const file = join(spool.dir, 'sw-1.jsonl');
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(8);
    for (let i = 6; i <= 9; i++) spool.point('sw-1', pt(i));
    spool.cut('sw-1', 2, 5, 0);
    spool.acked('sw-1', 2);
    spool.point('sw-1', pt(10));
    spool.malformed('sw-1');
    spool.idle('sw-1', 3, [pt(10)], 1);
    await settle();
    expect(readFileSync(file, 'utf8')).toBe([line({ trial: 'sw-1', seq: 3 }), line({ p: pt(10) }), line({ m: 1 }), ''].join('\n'));
    // Journaling goes on in the rewritten file.
    spool.cut('sw-1', 3, 1, 1);
    await settle();
    expect(readJournal(readFileSync(file, 'utf8'))).toEqual({ trialId: 'sw-1', unacked: { seq: 3, points: [pt(10)], malformed: 1 }, queued: [], malformed: 0, nextSeq: 4 });
    expect(readdirSync(spool.dir)).toEqual(['sw-1.jsonl']);
  });

  it("leaves live agents', other hosts' and other sweeps' journals alone", async () => {
    const dir = tmp();
    const live = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 101 });
    live.opened('sw-1', 1);
    live.point('sw-1', pt(1));
    const otherSweep = new MetricSpool({ dir, sweepId: 'other', log: silentLogger, pid: 102 });
    otherSweep.opened('other-1', 1);
    otherSweep.point('other-1', pt(1));
    await settle();
    mkdirSync(join(dir, 'sw', 'elsewhere-103'), { recursive: true });
    writeFileSync(join(dir, 'sw', 'elsewhere-103', 'sw-9.jsonl'), line({ trial: 'sw-9', seq: 1 }) + '\n');

    const next = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 202, isAlive: (pid) => pid === 101 });
    expect(next.adoptOrphans()).toEqual([]);
    expect(readdirSync(join(dir, 'sw')).sort()).toEqual(['elsewhere-103', `${host}-101`].sort());
  });

  it("tells a live agent from a dead one whose pid was reused, by the process's start time", () => {
    const dir = tmp();
    const start = processStart(process.pid);
    expect(start).toMatch(/^\d+$/);
    const put = (owner: string, trial: string) => {
      mkdirSync(join(dir, 'sw', owner), { recursive: true });
      writeFileSync(join(dir, 'sw', owner, `${trial}.jsonl`), line({ trial, seq: 1 }) + '\n' + line({ p: pt(1) }) + '\n');
    };
    put(`${host}-${process.pid}.1`, 'sw-reused'); // this pid, another process's start: that agent is dead
    put(`${host}-${process.pid}.${start}`, 'sw-live'); // this very process
    put(`${host}-${process.pid}`, 'sw-nostart'); // this pid, start time unknown: taken as alive
    const adopter = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 999_999_999 });
    expect(adopter.adoptOrphans().map((r) => r.trialId)).toEqual(['sw-reused']);
  });

  it('sets aside a journal it cannot read', () => {
    const dir = tmp();
    const deadDir = join(dir, 'sw', `${host}-101`);
    mkdirSync(deadDir, { recursive: true });
    writeFileSync(join(deadDir, 'sw-1.jsonl'), 'garbage\n' + line({ p: pt(1) }) + '\n');
    const next = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 202, isAlive: () => false });
    expect(next.adoptOrphans()).toEqual([]);
    expect(readdirSync(next.dir)).toEqual(['sw-1.jsonl.unreadable']);
  });

  it('turns itself off, without throwing, when it cannot write', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'sw'), 'a file where the sweep folder should be');
    const spool = new MetricSpool({ dir, sweepId: 'sw', log: silentLogger, pid: 101 });
    expect(() => {
      spool.opened('sw-1', 1);
      spool.point('sw-1', pt(1));
      spool.close();
    }).not.toThrow();
  });
});
