/**
 * Agent publisher → real JetStream → controller ingest, with a real nats-server per test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from 'nats';
import { StringCodec } from 'nats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { MetricPublisher } from '../../agent/publisher.js';
import { MetricSpool } from '../../agent/spool.js';
import { MetricIngest, type MetricIngestOptions } from '../../controller/sweeps/ingest.js';
import { createLogger, silentLogger } from '../../common/log.js';
import { type MetricBatch, type MetricPoint, metricsMsgId, metricsSubject } from '../../common/metrics-wire.js';
import { connectNats } from '../../common/nats-connect.js';
import { startNatsServer } from '../../common/nats-server.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';

const log = process.env.SWEEPER_TEST_LOG ? createLogger('test') : silentLogger;
const sc = StringCodec();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `cond` holds; the bound only keeps a broken test from hanging. */
async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

function point(step: number): MetricPoint {
  return { step, t: Date.now(), values: { loss: 1 / (step + 1), acc: step / 10_000 } };
}

/** What onBatch saw, per trial, in the order it saw it. */
class Collector {
  readonly trials = new Map<string, { seqs: number[]; steps: number[] }>();
  points = 0;

  constructor(private readonly sweepId: string) {}

  readonly onBatch = (b: MetricBatch) => {
    if (b.sweepId !== this.sweepId) return;
    let t = this.trials.get(b.trialId);
    if (!t) this.trials.set(b.trialId, (t = { seqs: [], steps: [] }));
    t.seqs.push(b.seq);
    for (const p of b.points) t.steps.push(p.step!);
    this.points += b.points.length;
  };

  /** Every trial got steps 0..n-1 exactly once, in order, from batches 1..k in order. */
  expectComplete(trialIds: string[], stepsPerTrial: number): void {
    for (const id of trialIds) {
      const t = this.trials.get(id);
      expect(t, id).toBeDefined();
      expect(t!.steps).toEqual(Array.from({ length: stepsPerTrial }, (_, i) => i));
      expect(t!.seqs).toEqual(Array.from({ length: t!.seqs.length }, (_, i) => i + 1));
    }
  }
}

describe('metric publisher → JetStream → ingest', () => {
  let server: TestNats;
  let pubNc: NatsConnection;
  let ingNc: NatsConnection;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    // Above the 1 MiB default so the oversized-message case can reach the ingest at all.
    server = await startTestNats({ maxPayloadBytes: 2 * 1024 * 1024 });
    pubNc = await connectNats(server.url, { name: 'test-agent', log: log.child('agent-nats') });
    ingNc = await connectNats(server.url, { name: 'test-controller', log: log.child('ctl-nats') });
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    await pubNc.close();
    await ingNc.close();
    await server.stop();
  });

  async function startIngest(opts: Partial<MetricIngestOptions> & Pick<MetricIngestOptions, 'onBatch'>): Promise<MetricIngest> {
    const ingest = new MetricIngest({ nc: ingNc, log: log.child('ingest'), ...opts });
    await ingest.start();
    cleanups.push(() => ingest.stop());
    return ingest;
  }

  function newPublisher(sweepId: string, extra: Partial<ConstructorParameters<typeof MetricPublisher>[0]> = {}): MetricPublisher {
    const pub = new MetricPublisher({ nc: pubNc, sweepId, agentId: 'a1', log: log.child('publisher'), ...extra });
    cleanups.push(() => pub.close({ signal: AbortSignal.timeout(5000) }));
    return pub;
  }

  it('delivers 50 trials × 2000 points exactly once, in order per trial', async () => {
    const got = new Collector('sw-bulk');
    const ingest = await startIngest({ onBatch: got.onBatch });
    const pub = newPublisher('sw-bulk', { maxPointsPerBatch: 200 });
    const trials = Array.from({ length: 50 }, (_, i) => `t${i}`);
    for (let step = 0; step < 2000; step += 100) {
      for (const id of trials) for (let k = 0; k < 100; k++) pub.add(id, point(step + k));
      await new Promise((r) => setImmediate(r));
    }
    const flushed = await Promise.all(trials.map((id) => pub.flushTrial(id)));
    await waitFor('all points', () => got.points >= 100_000);

    got.expectComplete(trials, 2000);
    trials.forEach((id, i) => expect(flushed[i].lastSeq).toBe(got.trials.get(id)!.seqs.length));
    const s = pub.stats();
    expect(s).toMatchObject({ publishedPoints: 100_000, dropped: 0, buffered: 0 });
    expect(s.acked).toBe(s.batches);
    expect(ingest.stats()).toMatchObject({ points: 100_000, batches: s.batches, rejected: {} });
  });

  it('ignores a resent batch with a seq it has already applied', async () => {
    const got = new Collector('sw-dup');
    const ingest = await startIngest({ onBatch: got.onBatch });
    const pub = newPublisher('sw-dup');
    for (let i = 0; i < 10; i++) pub.add('t1', point(i));
    const { lastSeq } = await pub.flushTrial('t1');
    await waitFor('first batch', () => got.points === 10);

    const js = pubNc.jetstream();
    const subject = metricsSubject('sw-dup', 'a1', 't1');
    const copy = sc.encode(JSON.stringify({ sweepId: 'sw-dup', trialId: 't1', seq: lastSeq, points: [point(0)] }));
    // Same message id: JetStream itself drops it.
    const sameId = await js.publish(subject, copy, { msgID: metricsMsgId('t1', lastSeq) });
    expect(sameId.duplicate).toBe(true);
    // A new id, as after the duplicate window has passed: the ingest must catch it.
    await js.publish(subject, copy, { msgID: `${metricsMsgId('t1', lastSeq)}:late` });
    await waitFor('duplicate counted', () => ingest.stats().duplicates === 1);

    for (let i = 10; i < 20; i++) pub.add('t1', point(i));
    await pub.flushTrial('t1');
    await waitFor('second batch', () => got.points === 20);
    got.expectComplete(['t1'], 20);
    expect(ingest.stats().duplicates).toBe(1);
  });

  it("adopts a dead agent's journal: its last batch, which had arrived, is not stored twice, and the rest follows", async () => {
    const got = new Collector('sw-adopt');
    const ingest = await startIngest({ onBatch: got.onBatch });
    const js = pubNc.jetstream();
    const subject = metricsSubject('sw-adopt', 'a1', 't1');
    const batch = (seq: number, from: number, to: number) => ({ sweepId: 'sw-adopt', trialId: 't1', seq, points: range(from, to).map(point) });
    // The dead agent had sent batches 1 and 2; only the first ack reached its journal.
    await js.publish(subject, sc.encode(JSON.stringify(batch(1, 0, 30))), { msgID: metricsMsgId('t1', 1) });
    await js.publish(subject, sc.encode(JSON.stringify(batch(2, 30, 50))), { msgID: metricsMsgId('t1', 2) });
    await waitFor("the dead agent's batches", () => got.points === 50);

    const spoolDir = await mkdtemp(path.join(os.tmpdir(), 'sweeper-adopt-'));
    cleanups.push(() => rm(spoolDir, { recursive: true, force: true }));
    const dead = new MetricSpool({ dir: spoolDir, sweepId: 'sw-adopt', log, pid: 101, isAlive: () => false });
    dead.opened('t1', 1);
    for (const p of batch(1, 0, 30).points) dead.point('t1', p);
    dead.cut('t1', 1, 30, 0);
    dead.acked('t1', 1);
    for (const p of batch(2, 30, 50).points) dead.point('t1', p);
    dead.cut('t1', 2, 20, 0);
    for (const p of range(50, 60).map(point)) dead.point('t1', p);
    await new Promise((r) => setImmediate(r));

    const spool = new MetricSpool({ dir: spoolDir, sweepId: 'sw-adopt', log, pid: 202, isAlive: () => false });
    const pub = newPublisher('sw-adopt', { journal: spool });
    const [recovered] = spool.adoptOrphans();
    pub.adopt(recovered);
    const { lastSeq } = await pub.flushTrial('t1');
    pub.release('t1');
    await waitFor('every point', () => got.points === 60);
    got.expectComplete(['t1'], 60);
    expect(lastSeq).toBe(3);
    expect(pub.stats()).toMatchObject({ publishedPoints: 30, duplicateAcks: 1, buffered: 0 });
    expect(ingest.stats().points).toBe(60);
    expect(readdirSync(spool.dir)).toEqual([]);
  });

  it('rejects and counts malformed messages while good ones still flow', async () => {
    const got = new Collector('sw-bad');
    const ingest = await startIngest({ onBatch: got.onBatch });
    const pub = newPublisher('sw-bad');
    const js = pubNc.jetstream();
    const subject = metricsSubject('sw-bad', 'a1', 'evil');
    const good = (seq: number) => ({ sweepId: 'sw-bad', trialId: 'evil', seq, points: [point(seq)] });

    for (let i = 0; i < 500; i++) pub.add('t1', point(i));
    await js.publish(subject, sc.encode('{"not json'));
    await js.publish(subject, sc.encode(JSON.stringify({ ...good(1), seq: 0 })));
    await js.publish(subject, sc.encode(JSON.stringify({ ...good(1), points: [{ step: 1, t: 1, values: { x: 'NaN' } }] })));
    const wide = { ['a'.repeat(190)]: 1, ['b'.repeat(190)]: 2 };
    const big = { ...good(1), points: Array.from({ length: 4000 }, (_, i) => ({ step: i, t: 0, values: wide })) };
    const bigData = sc.encode(JSON.stringify(big));
    expect(bigData.length).toBeGreaterThan(1024 * 1024);
    await js.publish(subject, bigData);
    await js.publish(metricsSubject('sw-bad', 'a1', 'other'), sc.encode(JSON.stringify(good(1))));
    for (let i = 500; i < 1000; i++) pub.add('t1', point(i));
    await pub.flushTrial('t1');

    await waitFor('good points', () => got.points === 1000);
    await waitFor('rejections', () => {
      const r = ingest.stats().rejected;
      return r.bad_json === 1 && r.schema === 2 && r.oversized === 1 && r.subject_mismatch === 1;
    });
    got.expectComplete(['t1'], 1000);
    expect(got.trials.has('evil')).toBe(false);
  });

  it('buffers through a NATS crash and restart, then delivers everything exactly once', async () => {
    const got = new Collector('sw-chaos');
    const ingest = await startIngest({ onBatch: got.onBatch, ackWaitMs: 3000 });
    const pub = newPublisher('sw-chaos', { flushIntervalMs: 50, maxPointsPerBatch: 100 });
    const trials = Array.from({ length: 20 }, (_, i) => `t${i}`);
    let step = 0;
    const addRound = () => {
      for (const id of trials) for (let k = 0; k < 25; k++) pub.add(id, point(step + k));
      step += 25;
    };
    const sent = () => pub.stats().batches + pub.stats().resends;
    /** A round, then wait until the publisher has sent something since it began. */
    const addRoundAndSend = async () => {
      const before = sent();
      addRound();
      await waitFor('the publisher to send', () => sent() > before);
    };

    for (let r = 0; r < 20; r++) await addRoundAndSend();
    await waitFor('acknowledgements before the freeze', () => pub.stats().acked > 0);
    // Frozen first, so the batches sent now are certainly unacknowledged when it dies.
    process.kill(server.pid, 'SIGSTOP');
    for (let r = 0; r < 4; r++) await addRoundAndSend();
    server.kill();
    await server.exited;
    // Points added while NATS is away wait in the buffer.
    for (let r = 0; r < 20; r++) {
      addRound();
      await new Promise((r) => setImmediate(r));
    }
    expect(pub.stats().buffered).toBeGreaterThan(0);
    await server.restart();
    for (let r = 0; r < 20; r++) await addRoundAndSend();

    await Promise.all(trials.map((id) => pub.flushTrial(id)));
    const total = trials.length * step;
    await waitFor('all points after the restart', () => got.points >= total);
    got.expectComplete(trials, step);
    expect(pub.stats()).toMatchObject({ publishedPoints: total, dropped: 0, buffered: 0 });
    expect(pub.stats().resends).toBeGreaterThan(0);
    expect(ingest.stats().points).toBe(total);
  });

  it('recreates the stream and consumer when NATS comes back without its store', async () => {
    const got = new Collector('sw-lost');
    await startIngest({ onBatch: got.onBatch });
    const pub = newPublisher('sw-lost');
    for (let i = 0; i < 100; i++) pub.add('t1', point(i));
    await pub.flushTrial('t1');
    await waitFor('before', () => got.points === 100);

    await server.stop();
    const blank = await mkdtemp(path.join(os.tmpdir(), 'sweeper-nats-blank-'));
    const fresh = await startNatsServer({ storeDir: blank, port: server.port });
    cleanups.push(async () => {
      await fresh.stop();
      await rm(blank, { recursive: true, force: true });
    });
    for (let i = 100; i < 200; i++) pub.add('t1', point(i));
    await pub.flushTrial('t1');
    await waitFor('after', () => got.points === 200);
    got.expectComplete(['t1'], 200);
  });

  it('drops the oldest points when the buffer overflows during an outage', async () => {
    const got = new Collector('sw-full');
    await startIngest({ onBatch: got.onBatch });
    const pub = newPublisher('sw-full', { maxPointsPerBatch: 100, maxBufferedPoints: 1000 });
    server.kill();
    await server.exited;
    for (let i = 0; i < 3000; i++) pub.add('t1', point(i));
    const { dropped } = pub.stats();
    expect(dropped).toBeGreaterThan(1000);
    await server.restart();
    await pub.flushTrial('t1');
    await waitFor('what was kept', () => got.points === 3000 - dropped);
    const steps = got.trials.get('t1')!.steps;
    expect(steps.at(-1)).toBe(2999);
    expect(steps.every((s, i) => i === 0 || s > steps[i - 1])).toBe(true);
  });

  it('applies a trial\'s batches in seq order, holding early ones until the gap fills or times out', async () => {
    const order: number[] = [];
    const ingest = await startIngest({ onBatch: (b) => void order.push(b.seq), gapTimeoutMs: 1000 });
    const js = pubNc.jetstream();
    const send = (seq: number) =>
      js.publish(metricsSubject('sw-order', 'a1', 't1'), sc.encode(JSON.stringify({ sweepId: 'sw-order', trialId: 't1', seq, points: [point(seq)] })));

    await send(1);
    // Pipelined, so all three are in well before the gap timeout.
    await Promise.all([send(3), send(4), send(2)]);
    await waitFor('1..4', () => order.length === 4);
    expect(order).toEqual([1, 2, 3, 4]);

    // 5 never comes: 6 is applied once the gap times out, and 5 still counts when it turns up.
    await send(6);
    await waitFor('6 after the gap timeout', () => order.length === 5);
    await send(5);
    await waitFor('late 5', () => order.length === 6);
    expect(order).toEqual([1, 2, 3, 4, 6, 5]);
    expect(ingest.stats()).toMatchObject({ batches: 6, gapsSkipped: 1, late: 1, held: 0, duplicates: 0 });
  });

  it('rebuilds every trial from the stream with replayAll', async () => {
    const first = new Collector('sw-replay');
    const a = new MetricIngest({ nc: ingNc, log, onBatch: first.onBatch, consumerName: 'ctl' });
    await a.start();
    const pub = newPublisher('sw-replay', { maxPointsPerBatch: 50 });
    const trials = Array.from({ length: 10 }, (_, i) => `t${i}`);
    for (const id of trials) for (let i = 0; i < 300; i++) pub.add(id, point(i));
    await Promise.all(trials.map((id) => pub.flushTrial(id)));
    await waitFor('first pass', () => first.points === 3000);
    await a.stop();

    const again = new Collector('sw-replay');
    const b = await startIngest({ onBatch: again.onBatch, consumerName: 'ctl', replayAll: true });
    await waitFor('replay', () => again.points === 3000);
    again.expectComplete(trials, 300);
    expect(again.trials).toEqual(first.trials);
    expect(b.stats()).toMatchObject({ duplicates: 0, late: 0, gapsSkipped: 0 });
  });
});
