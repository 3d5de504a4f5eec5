import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import type { ImportanceColumn, ImportanceRow } from '../../controller/dashboard/importance.js';
import { averageRanks, MIN_TRIALS, parameterImportance } from '../../controller/dashboard/importance.js';

const COLUMNS: ImportanceColumn[] = [
  { name: 'strong', kind: 'numeric' },
  { name: 'weak', kind: 'numeric' },
  { name: 'noise', kind: 'numeric' },
  { name: 'opt', kind: 'categorical' },
];

/** y = 10·strong + 2·weak + 3·[opt = sgd] + a little noise; `noise` plays no part. */
function sample(n: number, seed = 'importance'): ImportanceRow[] {
  const rand = seedrandom(seed);
  return Array.from({ length: n }, () => {
    const strong = rand();
    const weak = rand();
    const noise = rand();
    const opt = rand() < 0.5 ? 'adam' : 'sgd';
    return { cells: [strong, weak, noise, opt], value: 10 * strong + 2 * weak + (opt === 'sgd' ? 3 : 0) + rand() * 0.1 };
  });
}

const byName = (r: ReturnType<typeof parameterImportance>) => Object.fromEntries(r.params.map((p) => [p.name, p]));

describe('parameterImportance', () => {
  it('ranks parameters by the share of the metric they explain, and noise near zero', () => {
    const r = parameterImportance(COLUMNS, sample(400));
    expect(r.trials).toBe(400);
    expect(r.params.map((p) => p.name)).toEqual(['strong', 'opt', 'weak', 'noise']);
    const p = byName(r);
    expect(p.strong.explained).toBeGreaterThan(0.5);
    expect(p.noise.explained).toBeLessThan(0.02);
    expect(p.noise.importance).toBeLessThan(0.03);
    expect(r.params.reduce((s, x) => s + x.importance, 0)).toBeCloseTo(1, 12);
  });

  it('gives the direction of numeric parameters as Spearman correlation, none for categorical ones', () => {
    const p = byName(parameterImportance(COLUMNS, sample(400)));
    expect(p.strong.correlation).toBeGreaterThan(0.8);
    expect(p.weak.correlation).toBeGreaterThan(0);
    expect(Math.abs(p.noise.correlation!)).toBeLessThan(0.15);
    expect(p.opt.correlation).toBeNull();
    const flipped = sample(400).map((row) => ({ ...row, value: -row.value }));
    expect(byName(parameterImportance(COLUMNS, flipped)).strong.correlation).toBeCloseTo(-p.strong.correlation!, 12);
  });

  it('depends only on the order of the metric: a monotone transform changes nothing', () => {
    const rows = sample(200);
    const logged = rows.map((row) => ({ ...row, value: Math.exp(row.value) * 1e6 }));
    expect(parameterImportance(COLUMNS, logged)).toEqual(parameterImportance(COLUMNS, rows));
  });

  it('is not fooled by one diverged trial', () => {
    const rows = sample(200);
    rows[0] = { ...rows[0], value: 1e12 };
    expect(parameterImportance(COLUMNS, rows).params[0].name).toBe('strong');
  });

  it('gives a constant parameter nothing, and handles parameters some trials lack', () => {
    const rows = sample(100).map((row, i) => ({ cells: [...row.cells, 7, i % 3 === 0 ? null : row.cells[0]], value: row.value }));
    const columns: ImportanceColumn[] = [...COLUMNS, { name: 'constant', kind: 'numeric' }, { name: 'sometimes', kind: 'numeric' }];
    const p = byName(parameterImportance(columns, rows));
    expect(p.constant.explained).toBe(0);
    expect(p.constant.groups).toBe(1);
    expect(p.constant.correlation).toBeNull();
    expect(p.sometimes.explained).toBeGreaterThan(0.2);
  });

  it('gives a few-valued numeric parameter one group per value', () => {
    const rows = Array.from({ length: 60 }, (_, i) => ({ cells: [(i % 3) + 1], value: (i % 3) * 10 + (i % 7) * 0.01 }));
    const [p] = parameterImportance([{ name: 'layers', kind: 'numeric' }], rows).params;
    expect(p.groups).toBe(3);
    // Three groups that split the metric perfectly still leave the ranks' spread inside each
    // group: 1 - (20² - 1) / (60² - 1) of the rank variance, about 0.89, is all it can explain.
    expect(p.explained).toBeCloseTo(1 - 399 / 3599, 2);
  });

  it('says why when there are too few trials, and skips non-finite values', () => {
    const rows = sample(MIN_TRIALS - 1);
    const r = parameterImportance(COLUMNS, [...rows, { cells: [0, 0, 0, 'adam'], value: NaN }]);
    expect(r.trials).toBe(MIN_TRIALS - 1);
    expect(r.params).toEqual([]);
    expect(r.note).toMatch(/at least 8 trials/);
  });

  it('splits a numeric parameter in two halves at least, so a small sweep still shows a strong effect', () => {
    const r = parameterImportance(COLUMNS, sample(MIN_TRIALS, 'small'));
    expect(r.params[0].groups).toBe(2);
    expect(r.note).toBeUndefined();
  });

  it('says so when no parameter explains anything', () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ cells: [i % 2, i % 2, i % 2, 'adam'], value: [1, 2, 3, 4, 5, 6][Math.floor(i / 2)] }));
    const r = parameterImportance(COLUMNS, rows);
    expect(r.params.every((p) => p.importance === 0)).toBe(true);
    expect(r.note).toBe('no parameter explains the metric on its own yet');
  });

  it('is deterministic and orders ties by name', () => {
    const rows = Array.from({ length: 20 }, (_, i) => ({ cells: [i % 2, i % 2], value: i % 2 }));
    const columns: ImportanceColumn[] = [
      { name: 'b', kind: 'numeric' },
      { name: 'a', kind: 'numeric' },
    ];
    const r = parameterImportance(columns, rows);
    expect(r.params.map((p) => [p.name, p.importance])).toEqual([
      ['a', 0.5],
      ['b', 0.5],
    ]);
  });
});

describe('averageRanks', () => {
  it('gives ties the mean of the ranks they span', () => {
    expect(averageRanks([10, 30, 20, 30, 5])).toEqual([2, 4.5, 3, 4.5, 1]);
  });
});
