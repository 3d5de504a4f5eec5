/**
 * OneInFlight (agent/one-in-flight.ts), which the agent's heartbeats and GPU samples run through:
 * one run at a time, ticks during a run coalesced into one more run that reads the newest state.
 */
import { describe, expect, it } from 'vitest';
import { OneInFlight } from '../../agent/one-in-flight.js';

/** A run whose end the test decides; each call records the state it read when it started. */
function controlledRuns(read: () => number) {
  const started: number[] = [];
  const finish: Array<(err?: Error) => void> = [];
  const run = () =>
    new Promise<void>((resolve, reject) => {
      started.push(read());
      finish.push((err) => (err ? reject(err) : resolve()));
    });
  /** Ends the oldest run still going, then lets the coalescer react. */
  const end = async (err?: Error) => {
    finish.shift()!(err);
    await new Promise((r) => setImmediate(r));
  };
  return { run, started, end, inFlight: () => finish.length };
}

describe('OneInFlight', () => {
  it('runs at once when idle, and again for each request after the run returned', async () => {
    const c = controlledRuns(() => 0);
    const ticks = new OneInFlight(c.run, () => undefined);
    ticks.request();
    expect(c.started).toHaveLength(1);
    await c.end();
    ticks.request();
    expect(c.started).toHaveLength(2);
    await c.end();
    expect(c.inFlight()).toBe(0);
  });

  it('coalesces the requests that come during a run into one more run, which reads the newest state', async () => {
    let state = 1;
    const c = controlledRuns(() => state);
    const ticks = new OneInFlight(c.run, () => undefined);
    ticks.request();
    for (state = 2; state <= 5; state++) ticks.request();
    state = 9;
    // However many ticks came, one run is in flight and nothing queued behind it but one "again".
    expect(c.inFlight()).toBe(1);
    await c.end();
    expect(c.started).toEqual([1, 9]);
    expect(c.inFlight()).toBe(1);
    await c.end();
    expect(c.started).toEqual([1, 9]);
    expect(c.inFlight()).toBe(0);
  });

  it('reports a failed run and keeps going', async () => {
    const errors: unknown[] = [];
    const c = controlledRuns(() => 0);
    const ticks = new OneInFlight(c.run, (err) => errors.push(err));
    ticks.request();
    ticks.request();
    const boom = new Error('controller away');
    await c.end(boom);
    expect(errors).toEqual([boom]);
    // The request made during the failed run still runs.
    expect(c.started).toHaveLength(2);
    await c.end();
  });

  it('runs nothing after stop, and stop resolves once the run in flight has returned', async () => {
    const c = controlledRuns(() => 0);
    const ticks = new OneInFlight(c.run, () => undefined);
    ticks.request();
    ticks.request();
    let stopped = false;
    const done = ticks.stop().then(() => (stopped = true));
    ticks.request();
    expect(stopped).toBe(false);
    await c.end();
    await done;
    expect(stopped).toBe(true);
    expect(c.started).toHaveLength(1);
    expect(c.inFlight()).toBe(0);
  });
});
