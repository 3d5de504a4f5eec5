/**
 * Where controller events are kept. The JetStream log is the real one: an event is acknowledged
 * by the server (file storage) before the controller acts on it. The in-memory log serves the
 * pure library use and unit tests.
 *
 * Both replay through `decodeEvent`: a stored message is only bytes on a subject that anyone
 * allowed to publish there could have written, so each is parsed, checked against the event
 * schema and against its subject, and skipped (counted by reason) when it fails.
 *
 * When JetStream cannot be reached, append and replay reject with StoreUnavailableError (the
 * NATS error as its cause), which callers retry; any other failure is passed on as it came.
 */
import type { JetStreamClient, JetStreamManager, NatsConnection } from 'nats';
import { AckPolicy, DeliverPolicy, ErrorCode, NatsError } from 'nats';
import { ensureStream } from '../../common/nats-connect.js';
import { coerceError, StoreUnavailableError } from '../../domain/errors.js';
import type { Logger } from '../../common/log.js';
import type { ControllerEvent, EventReplay, LoggedEvent, RefusalReason, SkippedEvent } from './state.js';
import { controllerEventSchema } from './state.js';

export const STATE_STREAM = 'SWEEPER_STATE';
export const STATE_SUBJECT_PREFIX = 'sweeper.state';

/** `sweeper.state.<sweepId>`: the only subject an event of that sweep is written to. */
export function stateSubject(sweepId: string): string {
  return `${STATE_SUBJECT_PREFIX}.${sweepId}`;
}

export interface EventLog {
  /** Make the event durable. Resolves once it is stored; rejects if it could not be. */
  append(event: ControllerEvent, id: string): Promise<void>;
  /** Every message stored so far, in order: the events that decode, and the others skipped. */
  replay(): Promise<EventReplay>;
}

/** One stored message as the stream holds it. */
export interface RawEventMessage {
  seq: number;
  subject: string;
  data: Uint8Array | string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode and check one stored message; never throws. */
export function decodeEvent(m: RawEventMessage): LoggedEvent | SkippedEvent {
  let json: unknown;
  try {
    json = JSON.parse(typeof m.data === 'string' ? m.data : utf8.decode(m.data));
  } catch (err) {
    return skip(m.seq, 'bad_event_json', `not JSON: ${coerceError(err).message}`);
  }
  let parsed: ReturnType<typeof controllerEventSchema.safeParse>;
  try {
    parsed = controllerEventSchema.safeParse(json);
  } catch (err) {
    // A bound that read a field the shape had already refused: still only a bad message.
    return skip(m.seq, 'bad_event_schema', `unreadable event: ${coerceError(err).message}`);
  }
  if (!parsed.success) return skip(m.seq, 'bad_event_schema', schemaProblem(parsed.error.issues));
  const event = parsed.data;
  // The writer publishes an event on its own sweep's subject; one elsewhere was not written by it.
  if (m.subject !== stateSubject(event.sweepId)) {
    return skip(m.seq, 'bad_event_subject', `${event.type} of sweep ${event.sweepId} on subject ${m.subject}`);
  }
  return { seq: m.seq, event };
}

/** Decode a whole log (see `decodeEvent`): what replay does, testable without NATS. */
export function decodeEvents(raw: Iterable<RawEventMessage>): EventReplay {
  const out: EventReplay = { events: [], skipped: [] };
  for (const m of raw) addDecoded(out, m);
  return out;
}

function addDecoded(out: EventReplay, m: RawEventMessage): void {
  const d = decodeEvent(m);
  if ('event' in d) out.events.push(d);
  else out.skipped.push(d);
}

function skip(seq: number, reason: RefusalReason, detail: string): SkippedEvent {
  return { seq, reason, detail: detail.slice(0, 300) };
}

function schemaProblem(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const first = issues[0];
  const where = first?.path.map(String).join('.') || '(event)';
  return `${where}: ${first?.message ?? 'invalid'}${issues.length > 1 ? ` (+${issues.length - 1} more)` : ''}`;
}

/** Skipped messages per reason, only the reasons that occurred. */
export function countRefusals(skipped: readonly SkippedEvent[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of skipped) counts[s.reason] = (counts[s.reason] ?? 0) + 1;
  return counts;
}

/**
 * One warning per reason, however many messages were skipped for it: a log flooded with junk
 * must not flood the controller's output too. The sequences say what to remove from the stream.
 */
export function logRefusals(log: Logger, skipped: readonly SkippedEvent[]): void {
  const byReason = new Map<RefusalReason, SkippedEvent[]>();
  for (const s of skipped) {
    let list = byReason.get(s.reason);
    if (!list) byReason.set(s.reason, (list = []));
    list.push(s);
  }
  const SHOWN = 20;
  for (const [reason, list] of byReason) {
    const seqs = list.slice(0, SHOWN).map((s) => s.seq).join(',') + (list.length > SHOWN ? ',...' : '');
    // Details quote what the message held: no control characters, so it cannot forge log lines.
    const first = list[0].detail.replace(/[\u0000-\u001f\u007f]/g, '?');
    log.warn('skipped messages of the state log', { reason, count: list.length, seqs, first });
  }
}

export class MemoryEventLog implements EventLog {
  /** Kept as the stream keeps them, so replay runs the same checks as with JetStream. */
  private readonly messages: RawEventMessage[] = [];
  private readonly ids = new Set<string>();

  async append(event: ControllerEvent, id: string): Promise<void> {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.appendRaw(stateSubject(event.sweepId), JSON.stringify(event));
  }

  /** Store a message as is, as anyone who may publish to the state subjects could (for tests). */
  appendRaw(subject: string, data: Uint8Array | string): void {
    this.messages.push({ seq: this.messages.length + 1, subject, data });
  }

  async replay(): Promise<EventReplay> {
    return decodeEvents(this.messages);
  }
}

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
    try {
      // The message id makes a retried append (after a lost ack) a no-op inside the duplicate window.
      await this.js.publish(stateSubject(event.sweepId), JSON.stringify(event), { msgID: id, timeout: 10_000 });
    } catch (err) {
      throw storeFailure(err);
    }
  }

  async replay(): Promise<EventReplay> {
    try {
      return await this.readAll();
    } catch (err) {
      throw storeFailure(err);
    }
  }

  private async readAll(): Promise<EventReplay> {
    const out: EventReplay = { events: [], skipped: [] };
    const info = await this.jsm.streams.info(STATE_STREAM);
    const last = info.state.last_seq;
    if (info.state.messages === 0) return out;
    // An ephemeral consumer read to the last sequence present at start; events appended later
    // are applied live by this controller, not replayed.
    const ci = await this.jsm.consumers.add(STATE_STREAM, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 30_000_000_000,
    });
    const consumer = await this.js.consumers.get(STATE_STREAM, ci.name);
    try {
      let done = false;
      while (!done) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          // Decoded as it arrives: the raw bytes of a big log are never all held at once.
          addDecoded(out, { seq: m.seq, subject: m.subject, data: m.data });
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
    return out;
  }
}

/**
 * The nats.js error codes that mean JetStream was not reached or did not answer in time, rather
 * than that it refused the request: a timeout, a connection lost, closed, draining or refused, no
 * responders (503: no JetStream, or a cluster without a leader for the moment).
 */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.Timeout,
  ErrorCode.JetStream408RequestTimeout,
  ErrorCode.ConnectionTimeout,
  ErrorCode.Disconnect,
  ErrorCode.ConnectionClosed,
  ErrorCode.ConnectionDraining,
  ErrorCode.ConnectionRefused,
  ErrorCode.NoResponders,
]);

/** A JetStream failure as callers should see it: StoreUnavailableError when it was one of reach. */
export function storeFailure(err: unknown): unknown {
  return err instanceof NatsError && UNREACHABLE_CODES.has(err.code) ? new StoreUnavailableError(err) : err;
}
