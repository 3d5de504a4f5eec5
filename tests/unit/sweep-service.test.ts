/**
 * The controller's core without any network: an in-memory event log and a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../../controller/sweeps/event-log.js';
import { SweepService, classifyEnd } from '../../controller/sweeps/sweep-service.js';
import type { TrialCompletion } from '../../controller/sweeps/sweep-service.js';

const GRID = `
method: grid
metric: {name: loss}
parameters:
  a: {values: [1, 2]}
  b: {values: [x, y]}
`;

function setup(opts: { heartbeatTimeoutMs?: number; maxCrashRetries?: number } = {}) {
  let now = 1_000_000;
  const log = new MemoryEventLog();
  const sent: Array<{ agent: string; trialId: string; graceMs?: number; kind?: string }> = [];
  const service = new SweepService({
    eventLog: log,
    now: () => now,
    metricWaitMs: 10,
    sendControl: (agent, m) => sent.push({ agent, trialId: m.trialId, graceMs: m.graceMs, kind: m.kind }),
    ...opts,
  });
  return { service, log, sent, advance: (ms: number) => (now += ms) };
}

const done = (agentId: string, trialId: string, extra: Partial<TrialCompletion> = {}): TrialCompletion => ({
  agentId,
  trialId,
  exitCode: 0,
  signal: '',
  startError: '',
  stoppedReason: '',
  stdoutTail: [],
  stderrTail: [],
  lastMetricSeq: 0,
  argv: [],
  ...extra,
});

/** Agents must register before they ask; these tests register each on its first request. */
const registered = new WeakMap<SweepService, Set<string>>();
function register(service: SweepService, req: { agentId: string; sweepId: string; hostname: string; pid: number; slots: number }) {
  if (!registered.has(service)) registered.set(service, new Set());
  registered.get(service)!.add(req.agentId);
  return service.registerAgent(req);
}
function request(service: SweepService, agentId: string, sweepId: string) {
  if (!registered.get(service)?.has(agentId)) register(service, { agentId, sweepId, hostname: 'h', pid: 1, slots: 1 });
  return service.requestTrial(agentId, sweepId);
}

async function ask(service: SweepService, agent: string, sweepId: string) {
  const r = await request(service, agent, sweepId);
  if (r.kind !== 'trial') throw new Error(`expected a trial, got ${JSON.stringify(r)}`);
  return r.trial;
}

describe('SweepService', () => {
  it('hands out the grid in order, never the same point twice, then finishes', async () => {
    const { service } = setup();
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    const t2 = await ask(service, 'a2', sweep.id);
    expect([t1.paramsJson, t2.paramsJson]).toEqual(['{"a":1,"b":"x"}', '{"a":1,"b":"y"}']);
    expect([t1.id, t2.id]).toEqual([`${sweep.id}-1`, `${sweep.id}-2`]);
    // Asking again while holding a trial returns the same trial, never a second one.
    expect((await ask(service, 'a1', sweep.id)).id).toBe(t1.id);
    await service.completeTrial(done('a1', t1.id));
    await service.completeTrial(done('a2', t2.id, { exitCode: 1, stderrTail: ['boom', ''] }));
    expect(service.getTrial(t2.id)).toMatchObject({ state: 'failed', reason: 'exit code 1: boom' });
    const t3 = await ask(service, 'a1', sweep.id);
    const t4 = await ask(service, 'a2', sweep.id);
    // Everything is handed out: one idle agent stands by while trials run (one may crash and need
    // running again), the others are told the sweep is over.
    expect(await request(service, 'a3', sweep.id)).toEqual({ kind: 'retry', afterMs: 2000 });
    expect(await request(service, 'a5', sweep.id)).toEqual({ kind: 'done', reason: 'no more trials to run' });
    expect(await request(service, 'a3', sweep.id)).toEqual({ kind: 'retry', afterMs: 2000 });
    await service.completeTrial(done('a1', t3.id));
    expect(sweep.state).toBe('running');
    await service.completeTrial(done('a2', t4.id));
    expect(sweep.state).toBe('finished');
    expect(sweep.finishReason).toBe('grid exhausted');
    expect(await request(service, 'a1', sweep.id)).toEqual({ kind: 'done', reason: 'sweep finished' });
  });

  it('rebuilds the same state from its event log', async () => {
    const { service, log } = setup();
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    await service.completeTrial(done('a1', t1.id));
    await ask(service, 'a1', sweep.id);
    const again = new SweepService({ eventLog: log });
    await again.init();
    const copy = again.getSweep(sweep.id);
    expect(copy.trials.map((t) => [t.id, t.state, t.paramsJson])).toEqual(sweep.trials.map((t) => [t.id, t.state, t.paramsJson]));
    // The next trial continues the numbering and the grid.
    expect(((await request(again, 'a2', sweep.id)) as { trial: { id: string; paramsJson: string } }).trial).toMatchObject({
      id: `${sweep.id}-3`,
      paramsJson: '{"a":2,"b":"x"}',
    });
  });

  it('declares trials of silent agents crashed after the timeout and runs their parameters again once', async () => {
    const { service, advance } = setup({ heartbeatTimeoutMs: 30_000, maxCrashRetries: 1 });
    const sweep = await service.createSweep(GRID);
    register(service, { agentId: 'a1', sweepId: sweep.id, hostname: 'h', pid: 1, slots: 1 });
    const t1 = await ask(service, 'a1', sweep.id);
    advance(29_000);
    expect(await service.reapLostTrials()).toBe(0);
    advance(2_000);
    expect(await service.reapLostTrials()).toBe(1);
    expect(service.getTrial(t1.id)).toMatchObject({ state: 'crashed', reason: 'agent a1 sent no heartbeat for 31s' });
    const retry = await ask(service, 'a2', sweep.id);
    expect(retry).toMatchObject({ paramsJson: t1.paramsJson, retryOf: t1.id, number: 2 });
    // The first agent comes back and still runs the old trial: it is told to stop it.
    expect(service.heartbeat({ agentId: 'a1', sweepId: sweep.id, runningTrialIds: [t1.id] }).stop).toEqual([
      { trialId: t1.id, reason: 'trial is crashed on the controller', graceMs: -1, kind: 'lost' },
    ]);
    // A second crash of the same point is not retried again.
    advance(31_000);
    await service.reapLostTrials();
    const next = await ask(service, 'a3', sweep.id);
    expect(next.paramsJson).toBe('{"a":1,"b":"y"}');
    // Crashed trials do not count toward the grid's size: 4 points, 2 crashed attempts.
    for (const agent of ['a4', 'a5']) await ask(service, agent, sweep.id);
    for (const t of sweep.trials.filter((x) => x.state === 'running')) await service.completeTrial(done(t.agentId, t.id));
    expect(sweep.trials.filter((t) => t.state === 'finished')).toHaveLength(3);
    // The point that crashed twice is given up; the next ask finds the grid exhausted.
    expect(await request(service, 'a6', sweep.id)).toEqual({ kind: 'done', reason: 'search space exhausted' });
    expect(sweep.state).toBe('finished');
  });

  it('keeps one idle agent standing by while trials run, which then runs a crashed trial again', async () => {
    const { service, advance } = setup({ heartbeatTimeoutMs: 30_000, maxCrashRetries: 1 });
    const sweep = await service.createSweep(GRID);
    register(service, { agentId: 'a1', sweepId: sweep.id, hostname: 'h', pid: 1, slots: 1 });
    const t1 = await ask(service, 'a1', sweep.id);
    for (const agent of ['a2', 'a3', 'a4']) await service.completeTrial(done(agent, (await ask(service, agent, sweep.id)).id));
    // Everything is handed out and t1 runs: a2 stands by, a3 may go. a1, running t1 with a
    // free slot, may wait too, but is no standby: if it dies, t1 dies with it.
    register(service, { agentId: 'a1', sweepId: sweep.id, hostname: 'h', pid: 1, slots: 2 });
    expect(await request(service, 'a1', sweep.id)).toEqual({ kind: 'retry', afterMs: 2000 });
    expect(await request(service, 'a2', sweep.id)).toEqual({ kind: 'retry', afterMs: 2000 });
    expect(await request(service, 'a3', sweep.id)).toEqual({ kind: 'done', reason: 'no more trials to run' });
    // A standby that stops asking is replaced.
    advance(11_000);
    expect(await request(service, 'a3', sweep.id)).toEqual({ kind: 'retry', afterMs: 2000 });
    // t1's agent goes silent: t1 crashes, and the standby runs its parameters again.
    advance(20_000);
    expect(await service.reapLostTrials()).toBe(1);
    const retry = await ask(service, 'a3', sweep.id);
    expect(retry).toMatchObject({ paramsJson: t1.paramsJson, retryOf: t1.id });
    await service.completeTrial(done('a3', retry.id));
    expect(sweep.state).toBe('finished');
    expect(await request(service, 'a2', sweep.id)).toEqual({ kind: 'done', reason: 'sweep finished' });
  });

  it('stop orders a graceful stop, cancel a kill, and heartbeats repeat them', async () => {
    const { service, sent } = setup();
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    await service.stopSweep(sweep.id);
    expect(sent).toEqual([{ agent: 'a1', trialId: t1.id, graceMs: -1, kind: 'sweep-over' }]);
    await service.cancelSweep(sweep.id);
    expect(sweep.state).toBe('cancelled');
    expect(sent[1]).toEqual({ agent: 'a1', trialId: t1.id, graceMs: 0, kind: 'sweep-over' });
    expect(service.heartbeat({ agentId: 'a1', sweepId: sweep.id, runningTrialIds: [t1.id] }).stop).toEqual([
      { trialId: t1.id, reason: 'sweep cancelled by user', graceMs: 0, kind: 'sweep-over' },
    ]);
    await service.completeTrial(done('a1', t1.id, { stoppedReason: 'sweep cancelled by user', exitCode: null, signal: 'SIGKILL' }));
    expect(service.getTrial(t1.id).state).toBe('stopped');
    expect(service.isSettled(sweep)).toBe(true);
  });

  it('finishes once a trial reaches metric.target, letting running trials end', async () => {
    const { service } = setup();
    const sweep = await service.createSweep('method: random\nmetric: {name: loss, target: 0.5}\nparameters:\n  x: {min: 0.0, max: 1.0}\n');
    const t1 = await ask(service, 'a1', sweep.id);
    const t2 = await ask(service, 'a2', sweep.id);
    service.onMetrics({ sweepId: sweep.id, trialId: t1.id, seq: 1, points: [{ step: 1, t: 0, values: { loss: 0.7 } }] });
    expect((await request(service, 'a3', sweep.id)).kind).toBe('trial');
    service.onMetrics({ sweepId: sweep.id, trialId: t2.id, seq: 1, points: [{ step: 1, t: 0, values: { loss: 0.45 } }] });
    expect(await request(service, 'a4', sweep.id)).toEqual({ kind: 'done', reason: 'metric.target reached' });
    for (const t of sweep.trials.filter((x) => x.state === 'running')) await service.completeTrial(done(t.agentId, t.id));
    expect(sweep).toMatchObject({ state: 'finished', finishReason: 'metric.target reached' });
  });

  it('continues a preempted trial under its id on the next agent: counted once, no crash retry spent, metrics appended', async () => {
    const { service, log } = setup({ maxCrashRetries: 0 });
    const sweep = await service.createSweep('method: grid\nmetric: {name: loss}\nrun_cap: 2\nparameters:\n  a: {values: [1, 2, 3]}\n');
    const t1 = await ask(service, 'a1', sweep.id);
    const batch = (seq: number, loss: number) => ({ sweepId: sweep.id, trialId: t1.id, seq, points: [{ step: null, t: 0, values: { loss } }] });
    expect(service.admitMetrics('a1', batch(1, 5))).toBeNull();
    service.onMetrics(batch(1, 5));
    const preempted = { exitCode: null, signal: 'SIGTERM', preemptedReason: 'received SIGUSR1', lastMetricSeq: 1, metricPoints: 1, droppedPoints: 0 };
    expect(await service.completeTrial(done('a1', t1.id, preempted))).toBe('preempted');
    expect(service.getTrial(t1.id)).toMatchObject({ state: 'preempted', reason: 'received SIGUSR1', preemptions: 1, firstMetricSeq: 2 });
    // The next agent to ask continues it, before any new trial.
    const again = await ask(service, 'a2', sweep.id);
    expect(again).toMatchObject({ id: t1.id, paramsJson: t1.paramsJson, agentId: 'a2', state: 'running' });
    // Its batches go on from seq 2, and only the new holder may send them.
    expect(service.admitMetrics('a1', batch(2, 3))).toBe('not_holder');
    expect(service.admitMetrics('a2', batch(2, 3))).toBeNull();
    service.onMetrics(batch(2, 3));
    expect(await service.completeTrial(done('a2', t1.id, { lastMetricSeq: 2, metricPoints: 1, droppedPoints: 0 }))).toBe('finished');
    // Both runs' points count for the one trial: none missing, best of both, rows continued.
    expect(service.trialView(service.getTrial(t1.id))).toMatchObject({ bestValue: 3, points: 2, lastStep: 1, missingPoints: 0 });
    // run_cap 2 counts the trial once: one more trial, then the sweep is finished.
    const t2 = await ask(service, 'a1', sweep.id);
    expect(t2.id).toBe(`${sweep.id}-2`);
    await service.completeTrial(done('a1', t2.id));
    expect(sweep).toMatchObject({ state: 'finished', finishReason: 'run_cap 2 reached' });
    // A restarted controller rebuilds the same trial from the log.
    const replayed = new SweepService({ eventLog: log });
    await replayed.init();
    expect(replayed.getTrial(t1.id)).toMatchObject({ state: 'finished', preemptions: 1, agentId: 'a2', declaredPoints: 2, firstMetricSeq: 2 });
  });

  it('a preempted program that still exits 0 has finished (W&B); a stopped sweep does not continue a preempted trial', async () => {
    const { service } = setup();
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    const t2 = await ask(service, 'a2', sweep.id);
    expect(await service.completeTrial(done('a1', t1.id, { preemptedReason: 'received SIGUSR1' }))).toBe('finished');
    expect(await service.completeTrial(done('a2', t2.id, { exitCode: 143, preemptedReason: 'received SIGUSR1' }))).toBe('preempted');
    await service.stopSweep(sweep.id);
    expect(service.getTrial(t2.id)).toMatchObject({ state: 'stopped', reason: 'sweep stopped by user while the trial was preempted' });
    expect(service.isSettled(sweep)).toBe(true);
  });

  it('refuses configs with too many parameters', async () => {
    const { service } = setup();
    const params = Array.from({ length: 1001 }, (_, i) => `  p${i}: {value: 1}`).join('\n');
    await expect(service.createSweep(`method: random\nparameters:\n${params}\n`)).rejects.toThrow(/parameters: 1001 top-level parameters/);
  });
});

describe('classifyEnd', () => {
  const base = { exitCode: 0 as number | null, signal: '', startError: '', stoppedReason: '', stderrTail: [] as string[] };
  it('maps what the agent reports to a trial state and reason', () => {
    expect(classifyEnd(base)).toEqual({ state: 'finished', reason: '' });
    expect(classifyEnd({ ...base, exitCode: null, signal: 'SIGKILL' })).toEqual({ state: 'failed', reason: 'killed by SIGKILL' });
    expect(classifyEnd({ ...base, startError: 'spawn python3 ENOENT' })).toEqual({ state: 'failed', reason: 'could not start: spawn python3 ENOENT' });
    expect(classifyEnd({ ...base, stoppedReason: 'hyperband', exitCode: null, signal: 'SIGTERM' })).toEqual({ state: 'stopped', reason: 'hyperband' });
    expect(classifyEnd({ ...base, lostReason: 'agent restarted' })).toEqual({ state: 'crashed', reason: 'agent restarted' });
  });
});

describe('ownership', () => {
  const point = (t: number, loss = 1) => ({ step: null, t, values: { loss } });

  it('refuses calls from agents that never registered, or about trials they do not hold, and counts them', async () => {
    const { service } = setup();
    const sweep = await service.createSweep(GRID);
    await expect(service.requestTrial('ghost', sweep.id)).rejects.toThrow("unknown agent 'ghost'");
    const t1 = await ask(service, 'a1', sweep.id);
    register(service, { agentId: 'a2', sweepId: sweep.id, hostname: 'h', pid: 2, slots: 1 });
    await expect(service.completeTrial(done('a2', t1.id, { exitCode: 1 }))).rejects.toThrow(`agent 'a2' does not hold trial '${t1.id}' (agent 'a1' does)`);
    await expect(service.completeTrial(done('ghost', t1.id))).rejects.toThrow("unknown agent 'ghost'");
    expect(service.getTrial(t1.id).state).toBe('running');
  });

  it("admits a metric batch only from the trial's holder, and only for a trial that exists", async () => {
    const { service } = setup();
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    const batch = { sweepId: sweep.id, trialId: t1.id, seq: 1, points: [point(0)] };
    expect(service.admitMetrics('a1', batch)).toBeNull();
    expect(service.admitMetrics('a2', batch)).toBe('not_holder');
    expect(service.admitMetrics('a1', { ...batch, trialId: `${sweep.id}-99` })).toBe('unknown_trial');
    expect(service.admitMetrics('a1', { ...batch, sweepId: 'other' })).toBe('unknown_trial');
  });

  it('holds an ended trial to the points its agent declared, and shows a shortfall until it arrives', async () => {
    const { service } = setup();
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    expect(service.onMetrics({ sweepId: sweep.id, trialId: t1.id, seq: 1, points: [point(1), point(2)] })).toBeUndefined();
    await service.completeTrial(done('a1', t1.id, { metricPoints: 5, droppedPoints: 1 }));
    expect(service.trialView(service.getTrial(t1.id))).toMatchObject({ missingPoints: 2, droppedPoints: 1, points: 2 });
    // The rest of what it sent (from a spool, say) is taken; anything past it is not.
    expect(service.onMetrics({ sweepId: sweep.id, trialId: t1.id, seq: 2, points: [point(3), point(4)] })).toBeUndefined();
    expect(service.onMetrics({ sweepId: sweep.id, trialId: t1.id, seq: 3, points: [point(5, -4321)] })).toBe('after_end');
    expect(service.trialView(service.getTrial(t1.id))).toMatchObject({ missingPoints: 0, points: 4, bestValue: 1 });
  });

  it("takes a crashed trial's points captured before it was declared crashed, and none after", async () => {
    const { service, advance } = setup({ heartbeatTimeoutMs: 1000 });
    const sweep = await service.createSweep(GRID);
    const t1 = await ask(service, 'a1', sweep.id);
    advance(5000);
    expect(await service.reapLostTrials()).toBe(1);
    const endedAt = service.getTrial(t1.id).endedAt;
    expect(service.onMetrics({ sweepId: sweep.id, trialId: t1.id, seq: 1, points: [point(endedAt - 10)] })).toBeUndefined();
    expect(service.onMetrics({ sweepId: sweep.id, trialId: t1.id, seq: 2, points: [point(endedAt + 10)] })).toBe('after_end');
  });
});
