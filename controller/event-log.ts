/**
 * Where controller events are kept. The JetStream log is the real one: an event is acknowledged
 * by the server (file storage) before the controller acts on it. The in-memory log serves the
 * pure library use and unit tests.
 */
import type { JetStreamClient, JetStreamManager, NatsConnection } from 'nats';
import { AckPolicy, DeliverPolicy, JSONCodec } from 'nats';
import { ensureStream } from '../common/nats-connect.js';
import type { ControllerEvent } from './state.js';

export const STATE_STREAM = 'SWEEPER_STATE';
export const STATE_SUBJECT_PREFIX = 'sweeper.state';

export interface EventLog {
  /** Make the event durable. Resolves once it is stored; rejects if it could not be. */
  append(event: ControllerEvent, id: string): Promise<void>;
  /** Every event stored so far, in order. */
  replay(): Promise<ControllerEvent[]>;
}

export class MemoryEventLog implements EventLog {
  private readonly events: ControllerEvent[] = [];
  private readonly ids = new Set<string>();
  async append(event: ControllerEvent, id: string): Promise<void> {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.events.push(structuredClone(event));
  }
  async replay(): Promise<ControllerEvent[]> {
    return this.events.map((e) => structuredClone(e));
  }
}

const codec = JSONCodec<ControllerEvent>();

export class JetStreamEventLog implements EventLog {
  private readonly js: JetStreamClient;
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
  ) {
    this.js = nc.jetstream();
  }

  static async open(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<JetStreamEventLog> {
    const jsm = await nc.jetstreamManager();
    await ensureStream(jsm, { name: STATE_STREAM, subjects: [`${STATE_SUBJECT_PREFIX}.>`], replicas: opts.replicas });
    return new JetStreamEventLog(nc, jsm);
  }

  async append(event: ControllerEvent, id: string): Promise<void> {
    // The message id makes a retried append (after a lost ack) a no-op inside the duplicate window.
    await this.js.publish(`${STATE_SUBJECT_PREFIX}.${event.sweepId}`, codec.encode(event), { msgID: id, timeout: 10_000 });
  }

  async replay(): Promise<ControllerEvent[]> {
    const info = await this.jsm.streams.info(STATE_STREAM);
    const last = info.state.last_seq;
    if (info.state.messages === 0) return [];
    // An ephemeral consumer read to the last sequence present at start; events appended later
    // are applied live by this controller, not replayed.
    const ci = await this.jsm.consumers.add(STATE_STREAM, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 30_000_000_000,
    });
    const consumer = await this.js.consumers.get(STATE_STREAM, ci.name);
    const events: ControllerEvent[] = [];
    try {
      let done = false;
      while (!done) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          events.push(codec.decode(m.data));
          if (m.seq >= last) {
            done = true;
            break;
          }
        }
        if (got === 0) break;
      }
    } finally {
      await this.jsm.consumers.delete(STATE_STREAM, ci.name).catch(() => undefined);
    }
    return events;
  }
}
