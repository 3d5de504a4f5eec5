/**
 * The contract both event logs keep: the controller appends every change before acting on it and
 * rebuilds itself from `replay` on start, and must not care which log it holds. The same suite
 * runs against the in-memory log and against the JetStream log on a real nats-server. Written
 * against the `EventLog` interface only, plus each log's way of storing a raw message (what
 * anyone allowed to publish on the state subjects could write).
 */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  countRefusals,
  JetStreamEventLog,
  MemoryEventLog,
  STATE_STREAM,
  stateSubject,
  type EventLog,
} from '../../controller/sweeps/event-log.js';
import type { ControllerEvent } from '../../controller/sweeps/state.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';

/** What the suite needs of a log under test. */
interface Subject {
  /** The log, on empty storage at the start of each test. */
  log(): EventLog;
  /** Store bytes as they are on a subject, bypassing `append` (as an intruder could). */
  appendRaw(subject: string, data: string | Uint8Array): Promise<void>;
  /**
   * A new log over the same storage, as a restarted controller opens it; undefined when the
   * storage does not outlive the object (the memory log).
   */
  reopen?: () => Promise<EventLog>;
  /** Empty storage for the next test. */
  reset(): Promise<void>;
}

let counter = 0;
/** A fresh, valid sweep id per use, so tests never read each other's events. */
const newSweepId = () => `sw${(++counter).toString(36).padStart(6, '0')}`;

function sweepCreated(sweepId: string, at = 1_700_000_000_000): ControllerEvent {
  return { type: 'sweep_created', sweepId, at, configJson: '{"method":"random"}', configText: 'method: random\n', seed: 7 };
}

function trialCreated(sweepId: string, number: number): ControllerEvent {
  return {
    type: 'trial_created',
    sweepId,
    trialId: `${sweepId}-${number}`,
    number,
    at: 1_700_000_000_000 + number,
    paramsJson: `{"x":${number}}`,
    agentId: 'agent-a',
  };
}

function trialEnded(sweepId: string, number: number): ControllerEvent {
  return {
    type: 'trial_ended',
    sweepId,
    trialId: `${sweepId}-${number}`,
    at: 1_700_000_001_000 + number,
    state: 'finished',
    exitCode: 0,
    signal: '',
    reason: '',
    argv: ['python', 'train.py', `--x=${number}`],
    stdoutTail: ['done'],
    stderrTail: [],
    metricPoints: 3,
    droppedPoints: 0,
  };
}

/** A sweep's life: created, n trials created and ended, then finished. */
function sweepLife(sweepId: string, n: number): { event: ControllerEvent; id: string }[] {
  const out = [{ event: sweepCreated(sweepId), id: `${sweepId}:created` }];
  for (let i = 1; i <= n; i++) {
    out.push({ event: trialCreated(sweepId, i), id: `${sweepId}-${i}:created` });
    out.push({ event: trialEnded(sweepId, i), id: `${sweepId}-${i}:ended` });
  }
  out.push({ event: { type: 'sweep_state', sweepId, at: 1_700_000_002_000, state: 'finished', reason: 'run_cap 3 reached' }, id: `${sweepId}:finished` });
  return out;
}

async function appendAll(log: EventLog, entries: { event: ControllerEvent; id: string }[]): Promise<void> {
  for (const { event, id } of entries) await log.append(event, id);
}

function memorySubject(): Subject {
  let log = new MemoryEventLog();
  return {
    log: () => log,
    appendRaw: async (subject, data) => log.appendRaw(subject, data),
    // Nothing outlives a MemoryEventLog: there is no storage to reopen.
    reopen: undefined,
    reset: async () => {
      log = new MemoryEventLog();
    },
  };
}

let nats: TestNats | undefined;
const connections: NatsConnection[] = [];

async function natsConnection(): Promise<NatsConnection> {
  const nc = await connect({ servers: nats!.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  connections.push(nc);
  return nc;
}

function jetStreamSubject(): Subject {
  let nc: NatsConnection;
  let log: JetStreamEventLog;
  return {
    log: () => log,
    appendRaw: async (subject, data) => {
      // A plain NATS client, not the log: the bytes go to the stream as they are.
      const raw = await natsConnection();
      await raw.jetstream().publish(subject, data);
      await raw.drain();
    },
    reopen: async () => JetStreamEventLog.open(await natsConnection()),
    reset: async () => {
      nc ??= await natsConnection();
      const jsm = await nc.jetstreamManager();
      await jsm.streams.delete(STATE_STREAM).catch(() => undefined);
      log = await JetStreamEventLog.open(nc);
    },
  };
}

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await nats?.stop();
});

const KINDS = [
  { name: 'MemoryEventLog', make: memorySubject, needsNats: false },
  { name: 'JetStreamEventLog', make: jetStreamSubject, needsNats: true },
];

describe.each(KINDS)('event log $name', ({ make, needsNats }) => {
  const s = make();

  beforeAll(async () => {
    if (needsNats) nats ??= await startTestNats();
  });
  beforeEach(async () => {
    await s.reset();
  });

  it('replays nothing when nothing was appended', async () => {
    expect(await s.log().replay()).toEqual({ events: [], skipped: [] });
  });

  it('replays what was appended, in order, with increasing sequences; replay reads and does not consume', async () => {
    const a = sweepLife(newSweepId(), 3);
    const b = sweepLife(newSweepId(), 2);
    // Two sweeps interleaved, as concurrent sweeps write.
    const mixed = a.flatMap((e, i) => (b[i] ? [e, b[i]] : [e]));
    await appendAll(s.log(), mixed);
    const replay = await s.log().replay();
    expect(replay.skipped).toEqual([]);
    expect(replay.events.map((e) => e.event)).toEqual(mixed.map((e) => e.event));
    const seqs = replay.events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(await s.log().replay()).toEqual(replay);
  });

  it('replays a log longer than one read batch, in order', async () => {
    const sweepId = newSweepId();
    const entries = [{ event: sweepCreated(sweepId), id: `${sweepId}:created` }];
    for (let i = 1; i <= 2100; i++) entries.push({ event: trialCreated(sweepId, i), id: `${sweepId}-${i}:created` });
    await appendAll(s.log(), entries);
    const replay = await s.log().replay();
    expect(replay.skipped).toEqual([]);
    expect(replay.events).toHaveLength(entries.length);
    expect(replay.events.map((e) => (e.event.type === 'trial_created' ? e.event.number : 0))).toEqual(entries.map((_, i) => i));
  });

  it('stores one event when the same message id is appended twice (a retried append), and tells different ids apart', async () => {
    const sweepId = newSweepId();
    const created = sweepCreated(sweepId);
    await s.log().append(created, `${sweepId}:created`);
    await s.log().append(created, `${sweepId}:created`);
    const first = trialCreated(sweepId, 1);
    await s.log().append(first, `${sweepId}-1:created`);
    // A retry after a lost ack may carry a later `at`; the id alone says it is the same append.
    await s.log().append({ ...first, at: first.at + 5 }, `${sweepId}-1:created`);
    // The same content under another id is another event.
    await s.log().append(first, `${sweepId}-1:created-again`);
    const replay = await s.log().replay();
    expect(replay.events.map((e) => e.event)).toEqual([created, first, first]);
  });

  it('skips what is not an event, counts it by reason, and never throws', async () => {
    const sweepId = newSweepId();
    const other = newSweepId();
    const good = sweepLife(sweepId, 1);
    await s.log().append(good[0].event, good[0].id);
    await s.appendRaw(stateSubject(sweepId), 'this is not JSON {');
    await s.appendRaw(stateSubject(sweepId), new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
    await s.appendRaw(stateSubject(sweepId), JSON.stringify({ type: 'trial_created', sweepId }));
    await s.appendRaw(stateSubject(sweepId), JSON.stringify({ ...trialCreated(sweepId, 9), trialId: 'has a space' }));
    await s.appendRaw(stateSubject(sweepId), JSON.stringify({ type: 'no_such_event', sweepId, at: 1 }));
    // Well-formed, but on another sweep's subject: not written by the controller.
    await s.appendRaw(stateSubject(other), JSON.stringify(good[1].event));
    for (const e of good.slice(1)) await s.log().append(e.event, e.id);

    const replay = await s.log().replay();
    expect(replay.events.map((e) => e.event)).toEqual(good.map((e) => e.event));
    expect(replay.skipped.map((k) => k.reason)).toEqual([
      'bad_event_json',
      'bad_event_json',
      'bad_event_schema',
      'bad_event_schema',
      'bad_event_schema',
      'bad_event_subject',
    ]);
    expect(countRefusals(replay.skipped)).toEqual({ bad_event_json: 2, bad_event_schema: 3, bad_event_subject: 1 });
    // Each skipped message keeps its place in the stream, between the events around it.
    const seqs = [...replay.events.map((e) => e.seq), ...replay.skipped.map((k) => k.seq)].sort((x, y) => x - y);
    expect(new Set(seqs).size).toBe(good.length + 6);
    expect(replay.skipped.every((k) => k.seq > replay.events[0].seq && k.seq < replay.events[1].seq)).toBe(true);
    for (const k of replay.skipped) expect(k.detail.length).toBeGreaterThan(0);
  });

  it.skipIf(!s.reopen)('replays, when reopened (a restarted controller), what was appended before, and still drops a retried id', async () => {
    const sweepId = newSweepId();
    const life = sweepLife(sweepId, 2);
    await appendAll(s.log(), life.slice(0, 3));
    const before = await s.log().replay();

    const reopened = await s.reopen!();
    expect(await reopened.replay()).toEqual(before);
    // The restarted controller retries the append it may have lost, then carries on.
    await reopened.append(life[2].event, life[2].id);
    await appendAll(reopened, life.slice(3));
    expect((await reopened.replay()).events.map((e) => e.event)).toEqual(life.map((e) => e.event));
  });

  it.skipIf(!needsNats)('replays after the nats-server itself restarts (file storage)', async () => {
    const sweepId = newSweepId();
    const life = sweepLife(sweepId, 2);
    await appendAll(s.log(), life);
    const before = await s.log().replay();
    await nats!.restart();
    const reopened = await s.reopen!();
    expect(await reopened.replay()).toEqual(before);
  });
});
