/**
 * Why trials stop (agent/stop-reason.ts): the controller's orders typed by their words, and the
 * text each reason gives back to the controller, which its tests and leaderboard rely on.
 */
import { describe, expect, it } from 'vitest';
import { asStopReason, CANCELLED, orderedStop, SHUTDOWN, stopText } from '../../agent/stop-reason.js';

describe('StopReason', () => {
  it("types the controller's orders by their words, and gives the words back unchanged", () => {
    const orders: Array<[string, string]> = [
      ['sweep stopped by user', 'sweep-over'],
      ['sweep cancelled by user', 'sweep-over'],
      ['sweep stopped', 'sweep-over'],
      ['sweep finished', 'sweep-over'],
      ['trial is crashed on the controller', 'lost'],
      ['trial is unknown on the controller', 'lost'],
      ['hyperband: value 5 > threshold 1 at bracket 2', 'early-stop'],
      ['something new the controller says', 'early-stop'],
    ];
    for (const [text, kind] of orders) {
      const reason = orderedStop(text);
      expect(reason.kind).toBe(kind);
      expect(stopText(reason)).toBe(text);
    }
    expect(orderedStop('median: best value 3 > median 1 of 4 other trials at iteration 2')).toEqual({
      kind: 'early-stop',
      rule: 'median',
      text: 'median: best value 3 > median 1 of 4 other trials at iteration 2',
    });
    expect(orderedStop('no rule here')).toMatchObject({ rule: 'unknown' });
  });

  it('takes the kind the order carries over what its words suggest; an unknown kind falls back to the words', () => {
    expect(orderedStop('sweep stopped by user', 'early-stop')).toEqual({ kind: 'early-stop', rule: 'unknown', text: 'sweep stopped by user' });
    expect(orderedStop('asha: value 3 > 1 at rung 9', 'early-stop')).toEqual({ kind: 'early-stop', rule: 'asha', text: 'asha: value 3 > 1 at rung 9' });
    expect(orderedStop('anything', 'lost')).toEqual({ kind: 'lost', text: 'anything' });
    expect(orderedStop('sweep cancelled by user', 'from-the-future')).toEqual({ kind: 'sweep-over', text: 'sweep cancelled by user' });
    expect(orderedStop('sweep cancelled by user', '')).toEqual({ kind: 'sweep-over', text: 'sweep cancelled by user' });
  });

  it("says 'agent shutting down' for a shutdown, as the controller and its tests expect", () => {
    expect(stopText(SHUTDOWN)).toBe('agent shutting down');
    expect(stopText(CANCELLED)).toBe('cancelled');
  });

  it('reads an abort reason that is not a StopReason as cancelled', () => {
    expect(asStopReason(SHUTDOWN)).toBe(SHUTDOWN);
    const order = orderedStop('sweep stopped by user');
    expect(asStopReason(order)).toBe(order);
    for (const other of [undefined, null, 'pruned', new DOMException('aborted', 'AbortError'), { kind: 'bogus' }]) {
      expect(asStopReason(other)).toBe(CANCELLED);
    }
  });
});
