/**
 * The agent's live output publisher (agent/output-publisher.ts) into a real nats-server's
 * SWEEPER_OUTPUT stream and the controller's output log (controller/sweeps/output-log.ts): lines
 * arrive whole and in order, one batch of a trial on the wire at a time, the last one marked
 * final; and with NATS gone, adding lines never waits and what waits stays bounded.
 */
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutputPublisher } from '../../agent/output-publisher.js';
import { createLogger } from '../../common/log.js';
import { connectNats } from '../../common/nats-connect.js';
import { OUTPUT_STREAM } from '../../common/output-wire.js';
import { OutputLog, type OutputTrial } from '../../controller/sweeps/output-log.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';
import { until } from '../fixtures/wait.js';

const log = createLogger('test', () => {});
let nats: TestNats;
let nc: NatsConnection;
let outputLog: OutputLog;
const trial: OutputTrial = { sweepId: 'sw', agentId: 'agent-a', state: 'running', endedAt: 0, stdoutTail: [], stderrTail: [] };

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connectNats(nats.url, { log });
  outputLog = new OutputLog({ nc, log, trialOf: (id) => (id.startsWith('sw-') ? trial : undefined), linesPerStream: 5000 });
  await outputLog.start();
});

afterAll(async () => {
  await outputLog?.stop();
  await nc?.close();
  await nats?.stop();
});

describe('OutputPublisher', () => {
  it('sends every line in order, in full batches, one on the wire at a time, the last marked final', async () => {
    const publisher = new OutputPublisher({ nc, sweepId: 'sw', agentId: 'agent-a', log, limits: { linesPerSecond: 1e6, bytesPerSecond: 1e9, maxPendingBytes: 1e9 } });
    const before = (await (await nc.jetstreamManager()).streams.info(OUTPUT_STREAM)).state.messages;
    for (let i = 1; i <= 3000; i++) publisher.add('sw-1', i % 10 === 0 ? 'stderr' : 'stdout', `line ${i}`);
    const summary = await publisher.finishTrial('sw-1', { timeoutMs: 30_000 });
    expect(summary).toEqual({ sent: 3000, dropped: { rate: 0, backlog: 0, bytes: 0 }, complete: true });
    await until('the final batch in the ring', () => (outputLog.ring('sw-1')?.finalSeen ? true : undefined));
    const ring = outputLog.ring('sw-1')!;
    expect(ring.after(0).map((l) => l.text)).toEqual(Array.from({ length: 3000 }, (_, i) => `line ${i + 1}`));
    expect(ring.stderr.size).toBe(300);
    // Cut at maxBatchLines (1,000) each: the first when it filled, the rest as each ack came back.
    expect((await (await nc.jetstreamManager()).streams.info(OUTPUT_STREAM)).state.messages - before).toBe(3);
    publisher.close();
  });

  it('a trial that printed nothing still sends its final batch', async () => {
    const publisher = new OutputPublisher({ nc, sweepId: 'sw', agentId: 'agent-a', log });
    expect(await publisher.finishTrial('sw-2', { timeoutMs: 30_000 })).toMatchObject({ sent: 0, complete: true });
    await until('the final batch', () => (outputLog.ring('sw-2')?.finalSeen ? true : undefined));
    expect(outputLog.ring('sw-2')!.size).toBe(0);
    publisher.close();
  });

  it('with NATS gone, lines are taken without waiting, what waits is bounded, and finishing gives up', async () => {
    const agentNc = await connectNats(nats.url, { log });
    const publisher = new OutputPublisher({ nc: agentNc, sweepId: 'sw', agentId: 'agent-a', log, publishTimeoutMs: 500, limits: { maxPendingBytes: 4096, linesPerSecond: 1e6, bytesPerSecond: 1e9 } });
    try {
      nats.kill();
      await nats.exited;
      for (let i = 0; i < 20_000; i++) publisher.add('sw-3', 'stdout', `line ${i}`);
      const summary = await publisher.finishTrial('sw-3', { timeoutMs: 1000 });
      expect(summary.complete).toBe(false);
      // Each line is 'line N' and its newline: about 4 KiB of them may wait, the rest are counted.
      expect(summary.dropped.backlog).toBeGreaterThan(19_000);
      expect(summary.dropped.rate).toBe(0);
    } finally {
      publisher.close();
      await nats.restart();
      await agentNc.close();
    }
  });
});
