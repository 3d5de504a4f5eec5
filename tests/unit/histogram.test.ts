import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../common/histogram.js';

describe('LatencyHistogram', () => {
  it('is empty at first', () => {
    expect(new LatencyHistogram().quantile(0.5)).toBeNaN();
  });

  it('gives percentiles within its 2% bucket width', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i);
    expect(h.count).toBe(1000);
    expect(h.quantile(0.5)).toBeGreaterThanOrEqual(500);
    expect(h.quantile(0.5)).toBeLessThanOrEqual(510);
    expect(h.quantile(0.99)).toBeGreaterThanOrEqual(990);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(1000);
    expect(h.quantile(1)).toBe(1000);
  });

  it('counts weighted recordings and clamps negatives to zero', () => {
    const h = new LatencyHistogram();
    h.record(-5);
    h.record(10, 99);
    expect(h.count).toBe(100);
    expect(h.quantile(0.01)).toBe(0.1);
    expect(h.quantile(0.5)).toBeCloseTo(10, 0);
    h.reset();
    expect(h.count).toBe(0);
  });
});
