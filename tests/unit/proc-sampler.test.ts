/**
 * The agent's CPU and memory sampler (agent/proc-sampler.ts) on a /proc laid out in
 * tests/fixtures/proc: an agent (500) running two trials, whose reapers are 600 and 700.
 *
 *   600 reaper (not counted)
 *   ├── 601 python3            370 ticks (300 user, 20 system, 50 of waited-for children), 200 MiB
 *   │   ├── 602 pt_data_worker 105 ticks, 50 MiB
 *   │   │   └── 603 "my (odd) name", setsid(): group 603, still a descendant; 25 ticks, 10 MiB
 *   │   └── 605 zombie         2 ticks, no VmRSS
 *   604 orphan, re-parented to init but still in group 600: 10 ticks, 1 MiB
 *   700 reaper ── 701 train    1000 ticks, 2 MiB
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRssKb, parseStat, ProcSampler, readProcesses, treeOf } from '../../agent/proc-sampler.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/proc/', import.meta.url));

/** A stat line as the kernel writes it, with the fields the sampler reads. */
const statLine = (pid: number, comm: string, ppid: number, pgrp: number, utime: number, stime: number, cutime = 0, cstime = 0) =>
  `${pid} (${comm}) S ${ppid} ${pgrp} ${pgrp} 0 -1 4194304 100 0 0 0 ${utime} ${stime} ${cutime} ${cstime} 20 0 1 0 602862 3133440 380 18446744073709551615\n`;

describe('parseStat', () => {
  it('reads pid, parent, group and CPU ticks, with a command name holding spaces and parentheses', () => {
    expect(parseStat(statLine(603, 'my (odd) name', 602, 603, 20, 5, 1, 2))).toEqual({ pid: 603, ppid: 602, pgrp: 603, cpuTicks: 28 });
    expect(parseStat('21447 (cat) R 21445 21445 12632 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 602862 3133440 380 18446744073709551615 0')).toEqual({
      pid: 21447,
      ppid: 21445,
      pgrp: 21445,
      cpuTicks: 10,
    });
  });

  it.each(['', 'garbage', '12 (x) S 1', '12 (x) S a b c d e f g h i j k l m n'])('refuses %j', (text) => {
    expect(parseStat(text)).toBeUndefined();
  });
});

describe('parseRssKb', () => {
  it('reads VmRSS, and 0 where there is none', () => {
    expect(parseRssKb('Name:\tpython3\nVmPeak:\t  409600 kB\nVmRSS:\t  204800 kB\nThreads:\t1\n')).toBe(204800);
    expect(parseRssKb('Name:\tzombie\nState:\tZ (zombie)\nThreads:\t1\n')).toBe(0);
  });
});

describe('treeOf', () => {
  it('is the group and the descendants of the reaper, the reaper left out', async () => {
    const processes = await readProcesses(FIXTURE);
    expect([...processes.keys()].sort((a, b) => a - b)).toEqual([1, 500, 600, 601, 602, 603, 604, 605, 700, 701]);
    expect(treeOf(processes, 600)).toEqual([601, 602, 603, 604, 605]);
    expect(treeOf(processes, 700)).toEqual([701]);
    expect(treeOf(processes, 601)).toEqual([602, 603, 605]);
    expect(treeOf(processes, 4242)).toEqual([]);
  });
});

describe('ProcSampler', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('gives memory at once and CPU from the second sample, over the time between them', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sweeper-proc-'));
    cpSync(FIXTURE, dir, { recursive: true });
    let now = 1000;
    const sampler = new ProcSampler({ procRoot: dir, now: () => now });
    const roots = new Map([
      ['sw-1', 600],
      ['sw-2', 700],
    ]);
    expect(await sampler.sample(roots)).toEqual(
      new Map([
        // 200 + 50 + 10 + 1 MiB; the zombie has none.
        ['sw-1', { processes: 5, rssMb: 261 }],
        ['sw-2', { processes: 1, rssMb: 2 }],
      ]),
    );

    // Two seconds on: 601 ran 150 more ticks, and its data loader 602 exited, waited for by 601
    // (its 105 ticks move into 601's cutime); 603, orphaned, went to init and left the tree with
    // its 25 ticks; the orphan 604 ran 10 more; 701 ran 400 more, two cores busy.
    now = 3000;
    rmSync(join(dir, '602'), { recursive: true });
    writeFileSync(join(dir, '601', 'stat'), statLine(601, 'python3', 600, 600, 450, 20, 145, 10));
    writeFileSync(join(dir, '603', 'stat'), statLine(603, 'my (odd) name', 1, 603, 30, 5));
    writeFileSync(join(dir, '604', 'stat'), statLine(604, 'orphan', 1, 600, 17, 3));
    writeFileSync(join(dir, '701', 'stat'), statLine(701, 'train', 700, 700, 1300, 100));
    expect(await sampler.sample(roots)).toEqual(
      new Map([
        // (625 + 20 + 2) - 512 = 135 ticks = 1.35 s of CPU in 2 s.
        ['sw-1', { processes: 3, cpuPercent: 67.5, rssMb: 201 }],
        // 400 ticks = 4 s of CPU in 2 s: two cores.
        ['sw-2', { processes: 1, cpuPercent: 200, rssMb: 2 }],
      ]),
    );
  });

  it('never goes below 0 CPU, forgets trees that are gone, and starts again for another root', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sweeper-proc-'));
    cpSync(FIXTURE, dir, { recursive: true });
    let now = 0;
    const sampler = new ProcSampler({ procRoot: dir, now: () => now });
    await sampler.sample(new Map([['sw-1', 600]]));
    // 602 exits and nobody in the tree waits for it: its 105 ticks leave with it (and 603, whose
    // parent it was, is no descendant any more).
    now = 1000;
    rmSync(join(dir, '602'), { recursive: true });
    expect((await sampler.sample(new Map([['sw-1', 600]]))).get('sw-1')).toEqual({ processes: 3, cpuPercent: 0, rssMb: 201 });
    // A sample without sw-1 forgets it: its next sample has no CPU figure.
    now = 2000;
    expect(await sampler.sample(new Map())).toEqual(new Map());
    now = 3000;
    expect((await sampler.sample(new Map([['sw-1', 600]]))).get('sw-1')).toEqual({ processes: 3, rssMb: 201 });
    // The same key under another root (the trial continued in a new process): no CPU across the two.
    now = 4000;
    expect((await sampler.sample(new Map([['sw-1', 700]]))).get('sw-1')).toEqual({ processes: 1, rssMb: 2 });
    // A root with no process in its tree is left out.
    expect(await sampler.sample(new Map([['sw-9', 4242]]))).toEqual(new Map());
    // So is one whose program has just exited: its zombie waits for the reaper, nothing resident.
    writeFileSync(join(dir, '701', 'status'), 'Name:\ttrain\nState:\tZ (zombie)\nThreads:\t1\n');
    now = 5000;
    expect(await sampler.sample(new Map([['sw-1', 700]]))).toEqual(new Map());
  });

  it('counts CPU from a tree\'s beginning when told of it', async () => {
    let now = 0;
    const sampler = new ProcSampler({ procRoot: FIXTURE, now: () => now });
    sampler.begin('sw-2', 700);
    now = 5000;
    // 1000 ticks = 10 s of CPU in 5 s.
    expect(await sampler.sample(new Map([['sw-2', 700]]))).toEqual(new Map([['sw-2', { processes: 1, cpuPercent: 200, rssMb: 2 }]]));
    // Begun under another root, the sample does not count from it.
    sampler.begin('sw-1', 4242);
    expect(await sampler.sample(new Map([['sw-1', 600]]))).toEqual(new Map([['sw-1', { processes: 5, rssMb: 261 }]]));
  });

  it('samples the real /proc: this test process under its parent', async () => {
    const sampler = new ProcSampler();
    const mine = (await sampler.sample(new Map([['self', process.ppid]]))).get('self');
    expect(mine?.processes).toBeGreaterThanOrEqual(1);
    expect(mine!.rssMb).toBeGreaterThan(0);
  });
});
