/**
 * The documented promise (README, docs/architecture.md "State and recovery"): strategies are
 * deterministic functions of (config, seed, trials so far), so a replayed controller proposes
 * exactly what the old one would have. For a model-based method "trials so far" includes their
 * values, which a restarted controller only has once it has replayed the metric stream; a
 * `RequestTrial` served before that sees finished trials without values and proposes something
 * else.
 *
 * Real nats-server, real controllers (the second on the same NATS), the gRPC API driven as an
 * agent would, metric batches published to JetStream as an agent's publisher does. The metric
 * stream is made long (thousands of messages) so that replaying it takes a while; the first
 * request goes out as soon as the restarted controller accepts connections. The assertion does
 * not depend on timing: the answer must equal `nextRun` over what the old controller reported.
 */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import { metricsMsgId, metricsSubject, type MetricBatch } from '../../common/metrics-wire.js';
import { parseConfigText } from '../../controller/config/parse.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { nextRun, type RunSoFar } from '../../controller/optimizer/next-run.js';
import type { TrialState } from '../../domain/trial-state.js';
import { parseTypedJson, stringifyTyped, type Params } from '../../domain/values.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';

const SEED = 1234;
const CONFIG_TEXT = `
method: bayes
seed: ${SEED}
run_cap: 40
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -2.0, max: 3.0}
  y: {min: 0, max: 3}
  kind: {values: [a, b, c]}
  opt:
    parameters:
      lr: {distribution: log_uniform_values, min: 1.0e-4, max: 0.1}
`;
const CONFIG = parseConfigText(CONFIG_TEXT).config;

/** Past bayes's initial design (8 points for 4 parameters), so the 13th suggestion comes from the model. */
const FINISHED_TRIALS = 12;
/** Per trial: many small batches, as an agent sends for a program that logs steadily. */
const BATCHES_PER_TRIAL = 400;
const POINTS_PER_BATCH = 4;

const log = createLogger('test', () => {});
let nats: TestNats;
let metricsConnection: NatsConnection;
const controllers: ControllerHandle[] = [];
const clients: SweeperClient[] = [];

beforeAll(async () => {
  nats = await startTestNats();
  metricsConnection = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const c of controllers) await c.stop();
  await metricsConnection?.close();
  await nats?.stop();
});

async function startControllerOnNats(): Promise<{ controller: ControllerHandle; client: SweeperClient }> {
  const controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log });
  controllers.push(controller);
  const client = new SweeperClient(controller.address);
  clients.push(client);
  return { controller, client };
}

/** What the program would log: a curve settling on a value that depends on every parameter. */
function lossCurve(p: Params, step: number): number {
  const opt = p.opt as Params;
  const target = (Number(p.x) - 0.7) ** 2 + 0.3 * Number(p.y) + (p.kind === 'b' ? 0 : 0.5) + (Math.log10(Number(opt.lr)) + 2.5) ** 2 / 4;
  return target + 2 * Math.exp(-step / 200) + 0.01 * Math.sin(step * 1.3);
}

/** Publish a trial's metrics as the agent's publisher does: numbered batches, each acknowledged. */
async function publishMetrics(sweepId: string, agentId: string, trialId: string, params: Params): Promise<number> {
  const js = metricsConnection.jetstream();
  const acks: Promise<unknown>[] = [];
  for (let seq = 1; seq <= BATCHES_PER_TRIAL; seq++) {
    const points = Array.from({ length: POINTS_PER_BATCH }, (_, i) => {
      const step = (seq - 1) * POINTS_PER_BATCH + i;
      return { step, t: Date.now(), values: { loss: lossCurve(params, step) } };
    });
    const batch: MetricBatch = { sweepId, trialId, seq, points };
    acks.push(js.publish(metricsSubject(sweepId, agentId, trialId), JSON.stringify(batch), { msgID: metricsMsgId(trialId, seq) }));
  }
  await Promise.all(acks);
  return BATCHES_PER_TRIAL * POINTS_PER_BATCH;
}

const typed = (json: string) => parseTypedJson(json) as Params;

describe('a controller restarted mid-sweep', () => {
  it('proposes for a bayes sweep exactly what the uninterrupted controller would have', async () => {
    const first = await startControllerOnNats();
    const sweep = await first.client.createSweep(CONFIG_TEXT, 'restart-determinism.yaml');
    const agentId = 'agent-before';
    await first.client.registerAgent({ agentId, sweepId: sweep.id, hostname: 'test', pid: process.pid, slots: 1 });

    // One trial at a time, each finished with its metrics before the next is asked for, so
    // every suggestion is a function of the finished trials alone.
    const runs: RunSoFar[] = [];
    for (let i = 0; i < FINISHED_TRIALS; i++) {
      const answer = await first.client.requestTrial(agentId, sweep.id);
      const trial = answer.trial;
      if (!trial) throw new Error(`no trial ${i + 1}: ${JSON.stringify(answer)}`);
      // The reference below is built with nextRun: check it models this controller's ask.
      expect(stringifyTyped(typed(trial.paramsJson)), `trial ${i + 1}`).toBe(stringifyTyped(nextRun(CONFIG, runs, { seed: SEED })!));
      const points = await publishMetrics(sweep.id, agentId, trial.trialId, typed(trial.paramsJson));
      await first.client.completeTrial({
        agentId,
        trialId: trial.trialId,
        exitCode: 0,
        signal: '',
        startError: '',
        stoppedReason: '',
        stdoutTail: [],
        stderrTail: [],
        lastMetricSeq: BATCHES_PER_TRIAL,
        argv: [],
        metricPoints: points,
        droppedPoints: 0,
      });
      const reported = (await first.client.getTrial(trial.trialId)).trial;
      runs.push({ params: typed(reported.paramsJson), state: reported.state as TrialState, value: reported.bestValue ?? null });
    }

    // What the old controller reported, in creation order: the uninterrupted controller's next
    // suggestion is nextRun over exactly this.
    const before = await first.client.getSweep(sweep.id);
    const reported: RunSoFar[] = [...before.trials]
      .sort((a, b) => a.number - b.number)
      .map((t) => ({ params: typed(t.paramsJson), state: t.state as TrialState, value: t.bestValue ?? null }));
    expect(reported.map((r) => r.state)).toEqual(Array(FINISHED_TRIALS).fill('finished'));
    expect(reported.every((r) => typeof r.value === 'number')).toBe(true);
    expect(reported).toEqual(runs);
    const expected = nextRun(CONFIG, reported, { seed: SEED });
    expect(expected).not.toBeNull();
    // The test can tell: without the values (a replay not caught up) bayes proposes something else.
    const withoutValues = nextRun(CONFIG, reported.map((r) => ({ ...r, value: null })), { seed: SEED });
    expect(stringifyTyped(withoutValues!)).not.toBe(stringifyTyped(expected!));

    await first.controller.stop();

    // A new controller on the same NATS, asked at once: no wait for anything it does not itself
    // await before accepting connections.
    const second = await startControllerOnNats();
    await second.client.registerAgent({ agentId: 'agent-after', sweepId: sweep.id, hostname: 'test', pid: process.pid, slots: 1 });
    const answer = await second.client.requestTrial('agent-after', sweep.id);
    expect(answer.trial, JSON.stringify(answer)).toBeDefined();
    expect(answer.trial!.trialId).toBe(`${sweep.id}-${FINISHED_TRIALS + 1}`);
    expect(stringifyTyped(typed(answer.trial!.paramsJson))).toBe(stringifyTyped(expected!));
  });
});
