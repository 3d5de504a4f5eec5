/**
 * Bayesian search end to end: a real nats-server, the controller's gRPC server and agents as
 * CLI child processes running `quad.js`; and `sweeper suggest` driven over its stdin and stdout.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import type { ApiSweepDetail } from '../../common/api-types.js';
import { createLogger } from '../../common/log.js';
import type { NatsServerHandle } from '../../common/nats-server.js';
import { parseTypedJson } from '../../domain/values.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { CLI_ENTRY, collect, spawnCli } from '../fixtures/cli.js';
import { startTestNats } from '../fixtures/nats.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;

let nats: NatsServerHandle;
let controller: ControllerHandle;
let client: SweeperClient;

beforeAll(async () => {
  nats = await startTestNats();
  controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: createLogger('test-controller', () => {}) });
  client = new SweeperClient(controller.address);
});

afterAll(async () => {
  client?.close();
  await controller?.stop();
  await nats?.stop();
});

async function createSweep(file: string): Promise<string> {
  return (await client.createSweep(readFileSync(`${SWEEPS}${file}`, 'utf8'), file)).id;
}

function agent(sweepId: string) {
  return spawnCli(['agent', sweepId, '--controller', controller.address], { cwd: SWEEPS });
}

async function settled(sweepId: string, timeoutMs = 60_000): Promise<ApiSweepDetail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await client.getSweep(sweepId);
    if ((d.sweep.state === 'finished' || d.sweep.state === 'stopped') && !d.trials.some((t) => t.state === 'running')) return d;
    if (Date.now() > deadline) throw new Error(`sweep ${sweepId} did not settle: ${JSON.stringify(d.sweep)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const inOrder = (d: ApiSweepDetail) => [...d.trials].sort((a, b) => a.number - b.number);
const paramsOf = (t: { paramsJson: string }) => parseTypedJson(t.paramsJson) as Record<string, unknown>;

describe('a bayes sweep', () => {
  it('runs to run_cap with distinct points, the same ones again for the same seed', async () => {
    const id = await createSweep('bayes-quad.yaml');
    const r = await collect(agent(id));
    expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.sweep.finishReason).toBe('run_cap 8 reached');
    expect(d.trials.map((t) => t.state)).toEqual(Array(8).fill('finished'));
    const params = inOrder(d).map((t) => t.paramsJson);
    expect(new Set(params).size).toBe(8);
    for (const p of params.map((j) => parseTypedJson(j) as Record<string, number>)) {
      expect(Number(p.x)).toBeGreaterThanOrEqual(-2);
      expect(Number(p.x)).toBeLessThanOrEqual(3);
      expect([0, 1, 2, 3]).toContain(p.y);
      expect(p.epochs).toBe(2);
    }
    // One agent asks after each result, so the sequence is a function of the seed alone.
    const id2 = await createSweep('bayes-quad.yaml');
    expect((await collect(agent(id2))).code).toBe(0);
    expect(inOrder(await settled(id2)).map((t) => t.paramsJson)).toEqual(params);
  });

  it('gives parallel agents different points', async () => {
    const id = await createSweep('bayes-quad.yaml');
    const results = await Promise.all([collect(agent(id)), collect(agent(id)), collect(agent(id))]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const d = await settled(id);
    expect(d.trials).toHaveLength(8);
    expect(new Set(d.trials.map((t) => t.paramsJson)).size).toBe(8);
  });

  it('imputes failed trials with the worst value and steers away from what fails', async () => {
    const id = await createSweep('bayes-fail.yaml');
    expect((await collect(agent(id))).code).toBe(0);
    const d = await settled(id);
    expect(d.trials).toHaveLength(10);
    const trials = inOrder(d);
    for (const t of trials) expect(t.state).toBe(paramsOf(t).fail === true ? 'failed' : 'finished');
    // After the initial design (5 trials), the model has seen that fail=True never pays.
    const later = trials.slice(5).map((t) => paramsOf(t).fail);
    expect(later.filter((f) => f === false).length).toBeGreaterThan(later.filter((f) => f === true).length);
  });
});

describe('sweeper suggest', () => {
  it('speaks JSON lines: a suggestion first, then one per result, several on ask', async () => {
    const child = spawn(process.execPath, [CLI_ENTRY, 'suggest', '--config', `${SWEEPS}bayes-quad.yaml`, '--seed', '1'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () => parseTypedJson(((await lines.next()).value as string) ?? 'null') as Record<string, unknown>;
    const loss = (p: Record<string, unknown>) => (Number(p.x) - 1) ** 2 + Number(p.y);

    const first = await next();
    expect(first.id).toBe('1');
    child.stdin!.write(JSON.stringify({ id: '1', value: loss(first.params as Record<string, unknown>), ask: 3 }) + '\n');
    const asked = [await next(), await next(), await next()];
    expect(asked.map((s) => s.id)).toEqual(['2', '3', '4']);
    child.stdin!.write('{"id":"2","state":"failed"}\n{"id":"2","value":1}\n');
    expect((await next()).id).toBe('5');
    expect(String((await next()).error)).toMatch(/already has its result/);
    for (const s of [asked[1], asked[2]]) child.stdin!.write(JSON.stringify({ id: s.id, value: loss(s.params as Record<string, unknown>), ask: 0 }) + '\n');
    child.stdin!.write('{"ask":4}\n');
    const rest = [await next(), await next(), await next(), await next()];
    expect(rest.map((s) => s.id ?? 'done')).toEqual(['6', '7', '8', 'done']);
    expect(rest[3]).toEqual({ done: true, reason: 'run_cap 8 reached' });
    child.stdin!.end();
    const r = await collect(child);
    expect(r.code, r.stderr).toBe(0);
  });
});
