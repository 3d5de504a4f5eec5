/**
 * Replaying the state log trusts nothing it reads: anyone who may publish to `sweeper.state.>`
 * can write the log. Every message that is not JSON, not an event, on another sweep's subject,
 * or impossible given the events before it is skipped and counted; the rest rebuild the state.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { parseConfigText } from '../../controller/config/parse.js';
import { decodeConfig, encodeConfig } from '../../controller/config/codec.js';
import type { RawEventMessage } from '../../controller/sweeps/event-log.js';
import { MemoryEventLog, decodeEvents, stateSubject } from '../../controller/sweeps/event-log.js';
import type { ControllerEvent } from '../../controller/sweeps/state.js';
import { EVENT_LIMITS, emptyState, rebuildState } from '../../controller/sweeps/state.js';
import { SweepService } from '../../controller/sweeps/sweep-service.js';

const CONFIG_TEXT = `
method: grid
metric: { name: loss, goal: minimize }
parameters:
  lr: { values: [0.1, 0.01, 0.001] }
`;
const CONFIG_JSON = encodeConfig(parseConfigText(CONFIG_TEXT).config);
const S = 'sweep0001';

type Of<T extends ControllerEvent['type']> = Extract<ControllerEvent, { type: T }>;

const created = (sweepId = S, configJson = CONFIG_JSON): Of<'sweep_created'> => ({
  type: 'sweep_created',
  sweepId,
  at: 1000,
  configJson,
  configText: CONFIG_TEXT,
  seed: 7,
});
const trial = (n: number, extra: Partial<Of<'trial_created'>> = {}): Of<'trial_created'> => ({
  type: 'trial_created',
  sweepId: S,
  trialId: `${S}-${n}`,
  number: n,
  at: 2000 + n,
  paramsJson: `{"lr":0.${n}}`,
  agentId: 'agent-1',
  ...extra,
});
const ended = (n: number, extra: Partial<Of<'trial_ended'>> = {}): Of<'trial_ended'> => ({
  type: 'trial_ended',
  sweepId: S,
  trialId: `${S}-${n}`,
  at: 3000 + n,
  state: 'finished',
  exitCode: 0,
  signal: '',
  reason: '',
  argv: ['python', 'train.py'],
  stdoutTail: [],
  stderrTail: [],
  ...extra,
});

/** Raw messages numbered from 1, each on its event's own subject unless given one. */
function raw(...items: (ControllerEvent | string | Uint8Array | { subject: string; data: unknown })[]): RawEventMessage[] {
  return items.map((item, i) => {
    const seq = i + 1;
    if (typeof item === 'string' || item instanceof Uint8Array) return { seq, subject: stateSubject(S), data: item };
    if ('data' in item && 'subject' in item) return { seq, subject: item.subject, data: JSON.stringify(item.data) };
    return { seq, subject: stateSubject(item.sweepId), data: JSON.stringify(item) };
  });
}

const reasons = (skipped: { seq: number; reason: string }[]) => skipped.map((s) => [s.seq, s.reason]);

function rebuild(messages: RawEventMessage[]) {
  const state = emptyState();
  const skipped = rebuildState(state, decodeEvents(messages), decodeConfig);
  return { state, skipped };
}

describe('decodeEvents', () => {
  it('keeps well-formed events on their own subject, in order, with their sequence', () => {
    const r = decodeEvents(raw(created(), trial(1), ended(1)));
    expect(r.skipped).toEqual([]);
    expect(r.events.map((e) => [e.seq, e.event.type])).toEqual([
      [1, 'sweep_created'],
      [2, 'trial_created'],
      [3, 'trial_ended'],
    ]);
    expect(r.events[1].event).toEqual(trial(1));
  });

  it('skips what is not JSON, including bytes that are not UTF-8', () => {
    const r = decodeEvents(raw('not json{', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), '', created()));
    expect(reasons(r.skipped)).toEqual([
      [1, 'bad_event_json'],
      [2, 'bad_event_json'],
      [3, 'bad_event_json'],
    ]);
    expect(r.skipped[0].detail).toMatch(/^not JSON: /);
    expect(r.events.map((e) => e.seq)).toEqual([4]);
  });

  it('skips JSON that is not an event of a known kind with every field in bounds', () => {
    const long = 'x'.repeat(EVENT_LIMITS.maxLineChars + 1);
    const bad: unknown[] = [
      42,
      null,
      [created()],
      { ...created(), type: 'sweep_deleted' },
      { ...created(), seed: undefined },
      { ...created(), sweepId: 'has.dot' },
      { ...created(), sweepId: 'x'.repeat(101) },
      { ...created(), sweepId: '' },
      { ...created(), at: 'yesterday' },
      { ...created(), configText: 'x'.repeat(EVENT_LIMITS.maxConfigTextChars + 1) },
      { ...trial(1), number: 1.5 },
      { ...trial(1), number: 0 },
      { ...trial(1), agentId: 'agent 1' },
      { ...trial(1), retryOf: '../x' },
      { ...ended(1), state: 'exploded' },
      { ...ended(1), exitCode: '0' },
      { ...ended(1), argv: Array(EVENT_LIMITS.maxArgv + 1).fill('a') },
      { ...ended(1), stdoutTail: Array(EVENT_LIMITS.maxTailLines + 1).fill('a') },
      { ...ended(1), stderrTail: [long] },
      { ...ended(1), reason: long },
      { type: 'sweep_state', sweepId: S, at: 1, state: 'exploded', reason: '' },
      // A field missing whose bound would read it: the shape refuses it first.
      { ...ended(1), argv: undefined, stdoutTail: 'a', sweepId: 5 },
      { ...ended(1), metricPoints: -1 },
      { ...ended(1), droppedPoints: 1.5 },
    ];
    const r = decodeEvents(bad.map((data, i) => ({ seq: i + 1, subject: stateSubject(S), data: JSON.stringify(data) })));
    expect(r.events).toEqual([]);
    expect(r.skipped.map((s) => s.reason)).toEqual(bad.map(() => 'bad_event_schema'));
    expect(r.skipped[5].detail).toBe("sweepId: 1-100 letters, digits, '-' or '_'");
    expect(r.skipped[4].detail).toMatch(/^seed: Invalid input/);
  });

  it('accepts the bounds the writer cuts to, and drops keys it does not know', () => {
    const atBounds = ended(1, {
      argv: Array(EVENT_LIMITS.maxArgv).fill('a'),
      stdoutTail: Array(EVENT_LIMITS.maxTailLines).fill('o'),
      stderrTail: ['e'.repeat(EVENT_LIMITS.maxLineChars)],
    });
    const tallied = ended(2, { metricPoints: 1200, droppedPoints: 3 });
    const r = decodeEvents(raw(atBounds, { subject: stateSubject(S), data: { ...trial(1), extra: 'from a newer writer' } }, tallied));
    expect(r.skipped).toEqual([]);
    expect(r.events[0].event).toEqual(atBounds);
    expect(r.events[1].event).toEqual(trial(1));
    expect(r.events[2].event).toEqual(tallied);
  });

  it("skips an event published on another sweep's subject", () => {
    const r = decodeEvents(raw({ subject: stateSubject('other'), data: created() }, { subject: 'sweeper.state', data: created() }, created()));
    expect(reasons(r.skipped)).toEqual([
      [1, 'bad_event_subject'],
      [2, 'bad_event_subject'],
    ]);
    expect(r.skipped[0].detail).toBe(`sweep_created of sweep ${S} on subject sweeper.state.other`);
    expect(r.events.map((e) => e.seq)).toEqual([3]);
  });
});

describe('rebuildState', () => {
  it('rebuilds a real log with a crash and its retry, refusing nothing', () => {
    const { state, skipped } = rebuild(
      raw(
        created(),
        trial(1),
        trial(2),
        ended(1),
        ended(2, { state: 'crashed', exitCode: null, reason: 'agent agent-1 sent no heartbeat for 31s', argv: [] }),
        trial(3, { paramsJson: '{"lr":0.2}', retryOf: `${S}-2`, agentId: 'agent-2' }),
        { type: 'sweep_state', sweepId: S, at: 4000, state: 'paused', reason: 'paused by user' },
        // A duplicate, as a retried append past the duplicate window leaves: no refusal, no change.
        trial(1),
        ended(1, { state: 'failed' }),
      ),
    );
    expect(skipped).toEqual([]);
    const sweep = state.sweeps.get(S)!;
    expect(sweep.state).toBe('paused');
    expect(sweep.config).toEqual(decodeConfig(CONFIG_JSON));
    expect(sweep.trials.map((t) => [t.id, t.number, t.state, t.retryOf])).toEqual([
      [`${S}-1`, 1, 'finished', ''],
      [`${S}-2`, 2, 'crashed', ''],
      [`${S}-3`, 3, 'running', `${S}-2`],
    ]);
  });

  it('skips events that no controller could have written, and keeps the rest', () => {
    const { state, skipped } = rebuild(
      raw(
        /* 1 */ { type: 'sweep_state', sweepId: 'ghost', at: 1, state: 'cancelled', reason: 'forged' },
        /* 2 */ { ...trial(1), sweepId: 'ghost', trialId: 'ghost-1' },
        /* 3 */ created(S, '{"method":'),
        /* 4 */ created(S, '{"method":"nope","parameters":{}}'),
        /* 5 */ created(S, '{"method":"grid","parameters":[]}'),
        /* 6 */ created(S, '[1]'),
        /* 7 */ created(),
        /* 8 */ created(S, CONFIG_JSON.replace('0.1', '0.5')),
        /* 9 */ trial(2),
        /* 10 */ trial(1, { trialId: `${S}-9` }),
        /* 11 */ trial(1, { paramsJson: '{"lr":' }),
        /* 12 */ trial(1, { paramsJson: '[0.1]' }),
        /* 13 */ trial(1, { paramsJson: '{"__proto__":{"lr":1}}' }),
        /* 14 */ trial(1, { retryOf: `${S}-7` }),
        /* 15 */ ended(1),
        /* 16 */ trial(1),
        /* 17 */ trial(1, { paramsJson: '{"lr":0.9}' }),
        /* 18 */ trial(2, { retryOf: `${S}-1` }),
        /* 19 */ ended(1, { state: 'running' }),
        /* 20 */ ended(1, { sweepId: 'other' }),
        /* 21 */ trial(2),
        /* 22 */ ended(1),
      ),
    );
    expect(reasons(skipped)).toEqual(
      [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20].map((seq) => [seq, 'bad_event_invalid']),
    );
    expect(skipped.find((s) => s.seq === 1)!.detail).toBe('sweep_state for unknown sweep ghost');
    expect(skipped.find((s) => s.seq === 9)!.detail).toBe(`trial ${S}-2 has number 2; the next of sweep ${S} is 1`);
    expect(skipped.find((s) => s.seq === 10)!.detail).toBe(`trial id ${S}-9 is not ${S}-1`);
    expect(state.sweeps.size).toBe(1);
    const sweep = state.sweeps.get(S)!;
    expect(sweep.state).toBe('running');
    expect(sweep.configJson).toBe(CONFIG_JSON);
    expect(sweep.trials.map((t) => [t.id, t.state, t.paramsJson])).toEqual([
      [`${S}-1`, 'finished', '{"lr":0.1}'],
      [`${S}-2`, 'running', '{"lr":0.2}'],
    ]);
    expect([...state.trials.keys()]).toEqual([`${S}-1`, `${S}-2`]);
  });

  it('refuses only the sweep whose config the decoder throws on, whatever it throws', () => {
    const state = emptyState();
    let calls = 0;
    const skipped = rebuildState(state, decodeEvents(raw(created('a'), created('b'))), (json) => {
      if (calls++ === 0) throw new RangeError('decoder bug');
      return decodeConfig(json);
    });
    expect(reasons(skipped)).toEqual([[1, 'bad_event_invalid']]);
    expect(skipped[0].detail).toBe('config of sweep a does not decode: decoder bug');
    expect([...state.sweeps.keys()]).toEqual(['b']);
  });

  it('rebuilds a log of 20k events', () => {
    const messages: RawEventMessage[] = [{ seq: 1, subject: stateSubject(S), data: JSON.stringify(created()) }];
    for (let n = 1; n <= 10_000; n++) {
      messages.push({ seq: messages.length + 1, subject: stateSubject(S), data: JSON.stringify(trial(n)) });
      messages.push({ seq: messages.length + 1, subject: stateSubject(S), data: JSON.stringify(ended(n)) });
    }
    const { state, skipped } = rebuild(messages);
    expect(skipped).toEqual([]);
    expect(state.trials.size).toBe(10_000);
  });
});

describe('SweepService.init over a log with forged and corrupt messages', () => {
  it('starts, keeps the real sweep, counts each refusal by reason and logs one line per reason', async () => {
    const log = new MemoryEventLog();
    const first = new SweepService({ eventLog: log });
    const sweep = await first.createSweep(CONFIG_TEXT, 'grid.yaml');
    for (let i = 0; i < 50; i++) log.appendRaw(stateSubject(sweep.id), `garbage ${i}`);
    log.appendRaw(stateSubject(sweep.id), JSON.stringify({ type: 'sweep_state', sweepId: sweep.id }));
    log.appendRaw(stateSubject('elsewhere'), JSON.stringify({ type: 'sweep_state', sweepId: sweep.id, at: 1, state: 'cancelled', reason: 'x' }));
    log.appendRaw(stateSubject('ghost'), JSON.stringify({ type: 'sweep_state', sweepId: 'ghost', at: 1, state: 'cancelled', reason: 'x' }));
    log.appendRaw(stateSubject(sweep.id), JSON.stringify({ ...trial(5), sweepId: sweep.id, trialId: `${sweep.id}-5` }));

    const lines: string[] = [];
    const second = new SweepService({ eventLog: log, log: createLogger('test', (l) => lines.push(l)) });
    await second.init();

    expect(second.refusals()).toEqual({ bad_event_json: 50, bad_event_schema: 1, bad_event_subject: 1, bad_event_invalid: 2 });
    const again = second.getSweep(sweep.id);
    expect(again.state).toBe('running');
    expect(again.configJson).toBe(sweep.configJson);
    expect(again.trials).toEqual([]);
    expect(second.counts()).toEqual({ sweeps: 1, trials: 0 });

    const warnings = lines.filter((l) => l.includes('skipped messages of the state log'));
    expect(warnings).toHaveLength(4);
    const json = warnings.find((l) => l.includes('reason=bad_event_json'))!;
    expect(json).toContain('count=50');
    expect(json).toContain('seqs=2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,...');
    expect(warnings.find((l) => l.includes('reason=bad_event_invalid'))).toContain('seqs=54,55');
  });

  it('refuses nothing on a clean log', async () => {
    const log = new MemoryEventLog();
    await new SweepService({ eventLog: log }).createSweep(CONFIG_TEXT, 'grid.yaml');
    const service = new SweepService({ eventLog: log });
    await service.init();
    expect(service.refusals()).toEqual({});
    expect(service.counts()).toEqual({ sweeps: 1, trials: 0 });
  });
});
