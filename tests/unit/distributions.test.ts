import { readFileSync } from 'node:fs';
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import {
  Float,
  isFloatValue,
  isNumeric,
  parseTypedJson,
  stringifyTyped,
  toNumber,
  type ParamValue,
} from '../../domain/values.js';
import type { LeafParam } from '../../domain/sweep-config.js';
import { DISTRIBUTIONS, DISTRIBUTION_TRAITS, isDistribution, isLogScale, type DistributionTraits } from '../../domain/distributions.js';
import { ppf, roundHalfEven, sample } from '../../controller/strategies/distributions.js';
import { incompleteBeta, ndtri } from '../../controller/strategies/numerics/special.js';

interface Check {
  u: number | Float;
  value: ParamValue;
  type: string;
  boundary?: boolean;
  tie_distance?: number;
}

interface ParamsCase {
  name: string;
  filled?: { [key: string]: ParamValue };
  exact?: boolean;
  checks?: Check[];
  error?: string;
}

// Plain JSON.parse would turn 5.0 into the int 5; the typed parser keeps it a float.
const cases = parseTypedJson(
  readFileSync(new URL('../fixtures/conformance/params.json', import.meta.url), 'utf8'),
) as unknown as ParamsCase[];

/** Python's type name for a value, as params.json writes it. */
function pyType(v: ParamValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  if (isNumeric(v)) return isFloatValue(v) ? 'float' : 'int';
  return 'dict';
}

/** params.json spells non-finite floats as strings. */
function expectedValue(check: Check): ParamValue {
  if (check.type === 'float' && typeof check.value === 'string') return Number(check.value);
  return check.value;
}

function leafOf(filled: { [key: string]: ParamValue }): LeafParam {
  return { kind: 'leaf', ...filled } as unknown as LeafParam;
}

describe('ppf matches W&B (params.json)', () => {
  const withChecks = cases.filter((c) => c.checks && c.filled);

  it('covers every case that has checks', () => {
    const total = withChecks.reduce((n, c) => n + (c.checks?.length ?? 0), 0);
    expect(withChecks.length).toBe(cases.filter((c) => c.error === undefined).length);
    expect(total).toBeGreaterThan(250);
  });

  for (const c of withChecks) {
    it(c.name, () => {
      const param = leafOf(c.filled ?? {});
      for (const check of c.checks ?? []) {
        const u = toNumber(check.u);
        const got = ppf(param, u);
        const want = expectedValue(check);
        const where = `${c.name} at u=${u}`;
        expect(pyType(got), where).toBe(check.type);
        // Rounded (q_*) results are exact multiples of q once the rounding agrees, and
        // tie_distance says it is never close: those compare exactly too.
        if (c.exact || check.tie_distance !== undefined || !isNumeric(want)) {
          expect(stringifyTyped(got), where).toBe(stringifyTyped(want));
        } else {
          const g = toNumber(got as number | Float);
          const w = toNumber(want);
          if (g !== w) expect(Math.abs(g - w), where).toBeLessThanOrEqual(1e-9 * Math.abs(w));
        }
      }
    });
  }
});

describe('rounding and typing', () => {
  it('rounds half to even and keeps the sign of zero', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, -2, 2, 3,
    ]);
    expect(Object.is(roundHalfEven(-0.25), -0)).toBe(true);
  });

  it('types q_* results by q: int q gives ints (never -0), float q gives floats', () => {
    const intQ: LeafParam = { kind: 'leaf', distribution: 'q_uniform', min: -1, max: 1, q: 2 };
    const got = ppf(intQ, 0.4);
    expect(Object.is(got, 0)).toBe(true);
    const floatQ: LeafParam = { ...intQ, q: new Float(2) };
    expect(stringifyTyped(ppf(floatQ, 0.4))).toBe('-0.0');
  });

  it('rejects u outside [0, 1]', () => {
    const p: LeafParam = { kind: 'leaf', distribution: 'uniform', min: 0, max: 1 };
    expect(() => ppf(p, -0.1)).toThrow(RangeError);
    expect(() => ppf(p, 1.5)).toThrow(RangeError);
    expect(() => ppf(p, NaN)).toThrow(RangeError);
  });

  it('sample draws again on u = 0 instead of hitting the boundary quirks', () => {
    const draws = [0, 0, 0.05];
    const rng = () => draws.shift() ?? 0.5;
    const p: LeafParam = { kind: 'leaf', distribution: 'int_uniform', min: 1, max: 10 };
    expect(sample(p, rng)).toBe(1);
  });
});

describe('special functions', () => {
  it('ndtri is antisymmetric and holds its precision in the tail', () => {
    // Powers of two, so that 1 − p is exact.
    for (const p of [2 ** -40, 2 ** -20, 2 ** -7, 0.25, 0.375]) {
      expect(ndtri(1 - p)).toBe(-ndtri(p));
    }
    // scipy.special.ndtri's values deep in the tail
    expect(ndtri(1e-300) / -37.0470962993612 - 1).toBeLessThan(1e-13);
    expect(ndtri(2 ** -40) / -7.047700256664409 - 1).toBeLessThan(1e-13);
    expect(ndtri(0)).toBe(-Infinity);
    expect(ndtri(1)).toBe(Infinity);
    expect(ndtri(-0.1)).toBeNaN();
  });

  it('incomplete beta has the closed forms it should', () => {
    // I_x(1, 1) = x, I_x(a, 1) = x^a, I_x(1, b) = 1 − (1−x)^b
    for (const x of [1e-9, 0.1, 0.5, 0.93]) {
      expect(incompleteBeta(1, 1, x)).toBeCloseTo(x, 15);
      expect(incompleteBeta(3.5, 1, x) / x ** 3.5).toBeCloseTo(1, 13);
      expect(incompleteBeta(1, 0.25, x)).toBeCloseTo(1 - (1 - x) ** 0.25, 14);
    }
  });
});

describe('random draws have the right distribution', () => {
  const N = 20_000;
  const draw = (param: LeafParam, seed: string): ParamValue[] => {
    const rng = seedrandom(seed);
    return Array.from({ length: N }, () => sample(param, () => rng.double()));
  };
  const moments = (xs: number[]) => {
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1);
    return { mean, variance };
  };
  const numbers = (vs: ParamValue[]) => vs.map((v) => toNumber(v as number | Float));

  it('uniform', () => {
    const xs = draw({ kind: 'leaf', distribution: 'uniform', min: new Float(-1), max: new Float(3) }, 'u');
    const { mean, variance } = moments(numbers(xs));
    expect(Math.abs(mean - 1)).toBeLessThan(0.035);
    expect(Math.abs(variance - 16 / 12)).toBeLessThan(0.04);
    expect(numbers(xs).every((x) => x >= -1 && x < 3)).toBe(true);
    expect(xs.every(isFloatValue)).toBe(true);
  });

  it('int_uniform: ints, every value equally often', () => {
    const xs = draw({ kind: 'leaf', distribution: 'int_uniform', min: 1, max: 10 }, 'i');
    const counts = new Map<ParamValue, number>();
    for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => Number(a) - Number(b))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const n of counts.values()) expect(Math.abs(n / N - 0.1)).toBeLessThan(0.01);
  });

  it('log_uniform_values: uniform in log10', () => {
    const xs = draw({ kind: 'leaf', distribution: 'log_uniform_values', min: 1e-4, max: 1e-2 }, 'l');
    const { mean, variance } = moments(numbers(xs).map(Math.log10));
    expect(Math.abs(mean + 3)).toBeLessThan(0.02);
    expect(Math.abs(variance - 4 / 12)).toBeLessThan(0.01);
  });

  it('normal', () => {
    const xs = draw({ kind: 'leaf', distribution: 'normal', mu: 10, sigma: 2.5 }, 'n');
    const { mean, variance } = moments(numbers(xs));
    expect(Math.abs(mean - 10)).toBeLessThan(0.07);
    expect(Math.abs(variance - 6.25)).toBeLessThan(0.25);
    // About 95.45% within two sigma.
    const inside = numbers(xs).filter((x) => Math.abs(x - 10) < 5).length / N;
    expect(Math.abs(inside - 0.9545)).toBeLessThan(0.006);
  });

  it('beta', () => {
    const xs = draw({ kind: 'leaf', distribution: 'beta', a: 2, b: 5 }, 'b');
    const { mean, variance } = moments(numbers(xs));
    expect(Math.abs(mean - 2 / 7)).toBeLessThan(0.005);
    expect(Math.abs(variance - 10 / 392)).toBeLessThan(0.0015);
  });

  it('categorical with probabilities', () => {
    const xs = draw(
      { kind: 'leaf', distribution: 'categorical_w_probabilities', values: ['a', 'b', 'c'], probabilities: [0.2, 0.5, 0.3] },
      'p',
    );
    const freq = (v: string) => xs.filter((x) => x === v).length / N;
    expect(Math.abs(freq('a') - 0.2)).toBeLessThan(0.012);
    expect(Math.abs(freq('b') - 0.5)).toBeLessThan(0.015);
    expect(Math.abs(freq('c') - 0.3)).toBeLessThan(0.013);
  });

  it('categorical: list positions equally often', () => {
    const xs = draw({ kind: 'leaf', distribution: 'categorical', values: ['x', 'y', 'z', 'w'] }, 'c');
    for (const v of ['x', 'y', 'z', 'w']) {
      expect(Math.abs(xs.filter((x) => x === v).length / N - 0.25)).toBeLessThan(0.013);
    }
  });
});

describe('distribution traits (domain/distributions.ts)', () => {
  const having = (trait: (t: DistributionTraits) => unknown) => DISTRIBUTIONS.filter((d) => trait(DISTRIBUTION_TRAITS[d]));

  it('say which distributions have each trait', () => {
    expect(DISTRIBUTIONS.filter(isLogScale)).toEqual([
      'log_uniform',
      'log_uniform_values',
      'q_log_uniform',
      'q_log_uniform_values',
      'inv_log_uniform',
      'inv_log_uniform_values',
      'log_normal',
      'q_log_normal',
    ]);
    expect(having((t) => t.gridable)).toEqual(['constant', 'categorical', 'int_uniform', 'q_uniform']);
    expect(having((t) => t.integer)).toEqual(['int_uniform']);
    expect(having((t) => t.weighted)).toEqual(['categorical_w_probabilities']);
    expect(having((t) => t.inverted)).toEqual(['inv_log_uniform', 'inv_log_uniform_values']);
    expect(having((t) => t.positiveBounds)).toEqual(['log_uniform_values', 'q_log_uniform_values', 'inv_log_uniform_values']);
    expect(Object.fromEntries(having((t) => t.valuesForm).map((d) => [d, DISTRIBUTION_TRAITS[d].valuesForm]))).toEqual({
      log_uniform: 'log_uniform_values',
      q_log_uniform: 'q_log_uniform_values',
      inv_log_uniform: 'inv_log_uniform_values',
    });
    expect(Object.fromEntries(having((t) => t.quantized).map((d) => [d, DISTRIBUTION_TRAITS[d].continuous]))).toEqual({
      q_uniform: 'uniform',
      q_log_uniform: 'log_uniform',
      q_log_uniform_values: 'log_uniform_values',
      q_normal: 'normal',
      q_log_normal: 'log_normal',
      q_beta: 'beta',
    });
    expect(having((t) => t.family === 'normal')).toEqual(['normal', 'q_normal', 'log_normal', 'q_log_normal']);
  });

  it('a q_ form draws what its continuous base draws, rounded', () => {
    for (const u of [0.1, 0.5, 0.93]) {
      const drawn = toNumber(ppf({ kind: 'leaf', distribution: 'log_uniform_values', min: 1, max: 1000 }, u) as number | Float);
      expect(ppf({ kind: 'leaf', distribution: 'q_log_uniform_values', min: 1, max: 1000, q: 5 }, u)).toBe(roundHalfEven(drawn / 5) * 5);
    }
  });

  it('isDistribution knows the names and nothing else', () => {
    expect(isDistribution('q_beta')).toBe(true);
    for (const v of ['nromal', 'toString', '__proto__', 3, undefined]) expect(isDistribution(v)).toBe(false);
  });
});
