/**
 * Whoever may publish to `sweeper.state.>` can write the controller's state log. A restarted
 * controller must still start when that log holds junk or forged events: it skips them, counts
 * them by reason, and the real sweeps come back as they were. Real nats-server, real gRPC.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { stateSubject } from '../../controller/sweeps/event-log.js';
import type { TestNats } from '../fixtures/nats.js';
import { startTestNats } from '../fixtures/nats.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
let nats: TestNats;

beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(async () => {
  await nats?.stop();
});

function start(lines: string[] = []): Promise<ControllerHandle> {
  return startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: createLogger('test', (l) => lines.push(l)) });
}

/** Publish as an intruder with publish rights would; resolves once JetStream has stored each message. */
async function publishRaw(messages: { subject: string; data: string }[]): Promise<void> {
  const nc = await connect({ servers: nats.url });
  try {
    const js = nc.jetstream();
    for (const m of messages) await js.publish(m.subject, m.data);
  } finally {
    await nc.drain();
  }
}

describe('controller restart over a state log with junk and forged events', () => {
  it('starts, keeps the real sweep as it was, and counts what it skipped by reason', async () => {
    let controller = await start();
    let client = new SweeperClient(controller.address);
    let sweepId: string;
    try {
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}grid.yaml`, 'utf8'), 'grid.yaml');
      sweepId = sweep.id;
      await client.registerAgent({ agentId: 'agent-a', sweepId, hostname: 'h', pid: 1, slots: 1 });
      const first = await client.requestTrial('agent-a', sweepId);
      expect(first.trial?.trialId).toBe(`${sweepId}-1`);
      expect(controller.service.refusals()).toEqual({});
    } finally {
      client.close();
      await controller.stop();
    }

    const ghost = 'ghost0001';
    await publishRaw([
      { subject: stateSubject(sweepId), data: 'this is not JSON {' },
      { subject: stateSubject(sweepId), data: JSON.stringify({ type: 'trial_created', sweepId }) },
      // Well-formed, but on another sweep's subject: not written by the controller.
      {
        subject: stateSubject(ghost),
        data: JSON.stringify({ type: 'sweep_state', sweepId, at: Date.now(), state: 'cancelled', reason: 'forged' }),
      },
      // Well-formed, but for a sweep that does not exist.
      {
        subject: stateSubject(ghost),
        data: JSON.stringify({ type: 'sweep_state', sweepId: ghost, at: Date.now(), state: 'cancelled', reason: 'forged' }),
      },
      // Well-formed, but trial 5 of a sweep with one trial.
      {
        subject: stateSubject(sweepId),
        data: JSON.stringify({
          type: 'trial_created',
          sweepId,
          trialId: `${sweepId}-5`,
          number: 5,
          at: Date.now(),
          paramsJson: '{"x":0,"y":0.5,"epochs":3}',
          agentId: 'intruder',
        }),
      },
    ]);

    const lines: string[] = [];
    controller = await start(lines);
    client = new SweeperClient(controller.address);
    try {
      expect(controller.service.refusals()).toEqual({ bad_event_json: 1, bad_event_schema: 1, bad_event_subject: 1, bad_event_invalid: 2 });
      // One line per reason, naming the stream sequences to remove (the sweep's two events are 1 and 2).
      const skippedLines = lines.filter((l) => l.includes('skipped messages of the state log'));
      expect(skippedLines).toHaveLength(4);
      expect(skippedLines.find((l) => l.includes('reason=bad_event_json'))).toContain('seqs=3');
      expect(skippedLines.find((l) => l.includes('reason=bad_event_invalid'))).toContain('seqs=6,7');

      const sweeps = await client.listSweeps();
      expect(sweeps.map((s) => s.id)).toEqual([sweepId]);
      const detail = await client.getSweep(sweepId);
      expect(detail.sweep.state).toBe('running');
      expect(detail.trials.map((t) => [t.id, t.number, t.state, t.agentId])).toEqual([[`${sweepId}-1`, 1, 'running', 'agent-a']]);

      // The forged trial 5 took no number: the next trial is 2.
      await client.registerAgent({ agentId: 'agent-b', sweepId, hostname: 'h', pid: 2, slots: 1 });
      const next = await client.requestTrial('agent-b', sweepId);
      expect(next.trial?.trialId).toBe(`${sweepId}-2`);
    } finally {
      client.close();
      await controller.stop();
    }
  });
});
