/**
 * Least privilege on NATS, with Sweeper's own operator keys (controller/nats-auth.ts): each
 * forged message an agent could send with the credentials it is given is refused, by NATS
 * (subject permissions) or by the controller (ownership), and counted; the sweep is untouched.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtAuthenticator, nkeys, connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { controlSubject } from '../../common/control-wire.js';
import { createLogger } from '../../common/log.js';
import { metricsSubject } from '../../common/metrics-wire.js';
import { outputSubject } from '../../common/output-wire.js';
import { decodeJwtClaims } from '../../common/nats-jwt.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { STATE_STREAM } from '../../controller/sweeps/event-log.js';
import { NatsAuthority } from '../../controller/nats-auth.js';
import { collect, spawnCli } from '../fixtures/cli.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';
import { until } from '../fixtures/wait.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const log = createLogger('test', () => {});
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

let dir: string;
let authority: NatsAuthority;
let nats: TestNats;
let controller: ControllerHandle;
let client: SweeperClient;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sweeper-lp-'));
  authority = NatsAuthority.loadOrCreate(join(dir, 'nats-auth'));
  nats = await startTestNats({ operatorConfig: authority.serverConfig() });
  controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, natsAuthority: authority, log });
  client = new SweeperClient(controller.address);
});

afterAll(async () => {
  for (const nc of conns) await nc.close().catch(() => undefined);
  client?.close();
  await controller?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Registers like an agent does (its own nkey) and connects to NATS with the JWT it is given. */
async function fakeAgent(agentId: string, sweepId: string) {
  const key = nkeys.createUser();
  const reg = await client.registerAgent({ agentId, sweepId, hostname: 'test', pid: process.pid, slots: 1, natsPublicKey: key.getPublicKey() });
  const errors: string[] = [];
  const nc = await connect({ servers: nats.url, authenticator: jwtAuthenticator(reg.natsJwt, key.getSeed()), inboxPrefix: reg.natsInboxPrefix });
  conns.push(nc);
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.data));
  })();
  return { nc, reg, errors, js: nc.jetstream() };
}

/** Whether NATS refuses the publish (a permissions violation) rather than storing it. */
async function refusedByNats(nc: NatsConnection, subject: string, data: Uint8Array): Promise<string> {
  try {
    await nc.jetstream().publish(subject, data, { timeout: 3000 });
  } catch (err) {
    return String((err as Error).message);
  }
  return 'stored';
}

describe('least privilege on NATS', () => {
  it('a real agent runs a sweep with its own identity: every point stored, nothing refused', async () => {
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}grid.yaml`, 'utf8'), 'grid.yaml');
    const a = await collect(spawnCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS }));
    expect(a.code, a.stderr).toBe(0);
    const d = await client.getSweep(sweep.id);
    expect(d.trials.map((t) => t.state)).toEqual(Array(6).fill('finished'));
    expect(d.trials.every((t) => t.points === 3 && (t.missingPoints ?? 0) === 0)).toBe(true);
    const stats = await client.getStats();
    expect(stats.rejected).not.toHaveProperty('not_holder');
    expect(stats.rejected).not.toHaveProperty('unknown_trial');
    // Its live output went out under its own identity too.
    expect(Object.keys(stats.rejected).filter((k) => k.startsWith('output_'))).toEqual([]);
    expect(controller.output.stats().batches).toBeGreaterThanOrEqual(6);
  });

  it("an agent's JWT allows only its own metric and output subjects, its own orders and its own inbox", async () => {
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}grid.yaml`, 'utf8'), 'grid.yaml');
    const { reg } = await fakeAgent('perm-a', sweep.id);
    const claims = decodeJwtClaims(reg.natsJwt) as { nats: { pub: { allow: string[] }; sub: { allow: string[] } } };
    expect(claims.nats.pub).toEqual({ allow: [`sweeper.metrics.${sweep.id}.perm-a.*`, `sweeper.output.${sweep.id}.perm-a.*`] });
    expect(claims.nats.sub).toEqual({ allow: ['sweeper.control.perm-a', '_INBOX.perm-a.>'] });
    expect(reg).toMatchObject({ natsToken: '', natsUser: '', natsPassword: '', natsInboxPrefix: '_INBOX.perm-a' });
  });

  it('refuses every forged message kind and leaves the sweep as it was', async () => {
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}grid.yaml`, 'utf8'), 'grid.yaml');
    const a = await fakeAgent('forger', sweep.id);
    const b = await fakeAgent('victim', sweep.id);
    const mine = await client.requestTrial('forger', sweep.id);
    const theirs = await client.requestTrial('victim', sweep.id);
    const myTrial = mine.trial!.trialId;
    const theirTrial = theirs.trial!.trialId;
    const jsm = await controller.nc.jetstreamManager();
    const stateBefore = (await jsm.streams.info(STATE_STREAM)).state.messages;
    const batch = (trialId: string, seq: number, loss: number) => ({ sweepId: sweep.id, trialId, seq, points: [{ step: 1, t: Date.now(), values: { loss } }] });
    const output = (trialId: string) => ({ sweepId: sweep.id, trialId, run: 'forged', seq: 1, lines: [{ s: 'o', t: Date.now(), x: 'forged line' }] });

    // 1. The state stream: no agent may write it, well-formed or not.
    const forgedState = { type: 'sweep_state', sweepId: sweep.id, at: Date.now(), state: 'cancelled', reason: 'forged' };
    expect(await refusedByNats(a.nc, `sweeper.state.${sweep.id}`, enc(forgedState))).toMatch(/Permissions Violation/);
    expect(await refusedByNats(a.nc, `sweeper.state.${sweep.id}`, enc('not json'))).toMatch(/Permissions Violation/);
    // 2. The JetStream API: no listing, purging or deleting.
    await expect(a.nc.jetstreamManager()).rejects.toThrow(/Permissions Violation/);
    a.nc.publish(`$JS.API.STREAM.PURGE.${STATE_STREAM}`, enc({}));
    a.nc.publish(`$JS.API.STREAM.DELETE.${STATE_STREAM}`, enc({}));
    // 3. Metrics under another agent's name: NATS refuses the subject.
    expect(await refusedByNats(a.nc, metricsSubject(sweep.id, 'victim', theirTrial), enc(batch(theirTrial, 1, -1)))).toMatch(/Permissions Violation/);
    // ... and live output under another agent's name, likewise.
    expect(await refusedByNats(a.nc, outputSubject(sweep.id, 'victim', theirTrial), enc(output(theirTrial)))).toMatch(/Permissions Violation/);
    // 4. Another agent's orders: neither read nor sent.
    const sub = a.nc.subscribe(controlSubject('victim'));
    a.nc.publish(controlSubject('victim'), enc({ type: 'stop', trialId: theirTrial, reason: 'forged', graceMs: 0 }));
    await a.nc.flush();
    await until('the violations reported', () => (a.errors.filter((e) => /PERMISSIONS_VIOLATION/.test(e)).length >= 5 ? true : undefined));
    expect(sub.isClosed() || sub.getProcessed() === 0).toBe(true);

    // 5-7. Allowed subjects, refused by the controller: another's trial under our name, a
    // made-up trial, and points past what we declared for our own finished trial.
    await a.js.publish(metricsSubject(sweep.id, 'forger', theirTrial), enc(batch(theirTrial, 1, -4321)));
    await a.js.publish(outputSubject(sweep.id, 'forger', theirTrial), enc(output(theirTrial)));
    for (let i = 0; i < 50; i++) await a.js.publish(metricsSubject(sweep.id, 'forger', `${sweep.id}-${1000 + i}`), enc(batch(`${sweep.id}-${1000 + i}`, 1, -1)));
    await a.js.publish(metricsSubject(sweep.id, 'forger', myTrial), enc(batch(myTrial, 1, 0.5)));
    await until('our own point', async () => ((await client.getTrial(myTrial)).trial.points === 1 ? true : undefined));
    await client.completeTrial({
      agentId: 'forger', trialId: myTrial, exitCode: 0, signal: '', startError: '', stoppedReason: '',
      stdoutTail: [], stderrTail: [], lastMetricSeq: 1, argv: [], metricPoints: 1, droppedPoints: 0,
    });
    await a.js.publish(metricsSubject(sweep.id, 'forger', myTrial), enc(batch(myTrial, 2, -4321)));
    // The API too: a report about a trial it does not hold.
    await expect(
      client.completeTrial({
        agentId: 'forger', trialId: theirTrial, exitCode: 1, signal: '', startError: '', stoppedReason: '',
        stdoutTail: [], stderrTail: [], lastMetricSeq: 0, argv: [],
      }),
    ).rejects.toThrow(/does not hold/);

    const stats = await until('the refusals counted', async () => {
      const s = await client.getStats();
      const counted = (s.rejected.not_holder ?? 0) >= 2 && (s.rejected.unknown_trial ?? 0) >= 50 && (s.rejected.after_end ?? 0) >= 1;
      return counted && (s.rejected.output_not_holder ?? 0) >= 1 ? s : undefined;
    });
    expect(stats.rejected).toMatchObject({ after_end: 1, unknown_trial: 50, output_not_holder: 1 });
    expect((await client.getTrial(theirTrial)).stdoutTail).toEqual([]);
    expect(b.errors).toEqual([]);
    const d = await client.getSweep(sweep.id);
    expect(d.sweep.state).toBe('running');
    expect(d.trials.find((t) => t.id === theirTrial)).toMatchObject({ state: 'running', points: 0 });
    expect(d.trials.find((t) => t.id === myTrial)).toMatchObject({ state: 'finished', points: 1, bestValue: 0.5 });
    expect((await jsm.streams.info(STATE_STREAM)).state.messages).toBe(stateBefore + 1); // our trial's end, nothing else
  });

  it('a restarted controller keeps the keys: agent JWTs stay valid', async () => {
    const again = NatsAuthority.load(join(dir, 'nats-auth'));
    expect(again.accountPublicKey).toBe(authority.accountPublicKey);
    expect(again.serverConfig()).toContain(authority.accountPublicKey);
  });
});

describe('credentials rotated under a running agent', () => {
  it('the agent registers again for a new identity and every point still arrives exactly once', async () => {
    const rotDir = mkdtempSync(join(tmpdir(), 'sweeper-rot-'));
    const first = NatsAuthority.loadOrCreate(join(rotDir, 'nats-auth'));
    const server = await startTestNats({ operatorConfig: first.serverConfig() });
    let ctl = await startController({ host: '127.0.0.1', port: 0, natsUrl: server.url, natsAuthority: first, log });
    const port = ctl.grpc.port;
    const api = new SweeperClient(ctl.address);
    try {
      const config = readFileSync(`${SWEEPS}steady.yaml`, 'utf8').replace('run_cap: 8', 'run_cap: 3').replace('value: 10', 'value: 30');
      const sweep = await api.createSweep(config, 'steady.yaml');
      const agent = collect(spawnCli(['agent', sweep.id, '--controller', ctl.address], { cwd: SWEEPS }), 120_000);
      await until('points flowing', async () => ((await api.getSweep(sweep.id)).trials.some((t) => t.points >= 5) ? true : undefined));
      // Everything restarts with rotated keys: the agent's JWT is no longer trusted anywhere,
      // while the account (and so the data in JetStream) stays.
      await ctl.stop();
      const second = NatsAuthority.rotate(join(rotDir, 'nats-auth'));
      expect(second.accountPublicKey).toBe(first.accountPublicKey);
      await server.restart({ operatorConfig: second.serverConfig() });
      ctl = await startController({ host: '127.0.0.1', port, natsUrl: server.url, natsAuthority: second, log });
      const a = await agent;
      expect(a.code, a.stderr).toBe(0);
      expect(a.stderr).toMatch(/registering again/);
      const d = await api.getSweep(sweep.id);
      expect(d.trials.filter((t) => t.state === 'finished')).toHaveLength(3);
      for (const t of d.trials) expect({ id: t.id, points: t.points, missing: t.missingPoints ?? 0 }).toEqual({ id: t.id, points: 30, missing: 0 });
    } finally {
      api.close();
      await ctl.stop();
      await server.stop();
      rmSync(rotDir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe("a trial's zombie", () => {
  it('an agent frozen past the heartbeat timeout: what it sends after its trial was declared crashed is refused and counted', async () => {
    const truth = mkdtempSync(join(tmpdir(), 'sweeper-zombie-'));
    // The agent is frozen until this timeout expires; 10 s is still far more than a live agent on
    // a loaded machine could go without a heartbeat before the freeze.
    const ctl = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, natsAuthority: authority, heartbeatTimeoutMs: 10_000, maxCrashRetries: 0, log });
    const api = new SweeperClient(ctl.address);
    try {
      const config = readFileSync(`${SWEEPS}ground-truth.yaml`, 'utf8').replace('run_cap: 8', 'run_cap: 1').replace('value: 60', 'value: 600');
      const sweep = await api.createSweep(config, 'ground-truth.yaml');
      const agent = spawnCli(['agent', sweep.id, '--controller', ctl.address, '--grace', '1'], { cwd: SWEEPS, env: { SWEEPER_TEST_TRUTH: truth } });
      const done = collect(agent, 120_000);
      const trialId = `${sweep.id}-1`;
      const printed = () => {
        try {
          return readFileSync(join(truth, `${trialId}.points`), 'utf8').split('\n').filter(Boolean).length;
        } catch {
          return 0;
        }
      };
      await until('points stored', async () => ((await api.getTrial(trialId).catch(() => undefined))?.trial.points ?? 0) >= 3 || undefined);
      process.kill(agent.pid!, 'SIGSTOP');
      await until('the trial declared crashed', async () => ((await api.getTrial(trialId)).trial.state === 'crashed' ? true : undefined));
      const stored = (await api.getTrial(trialId)).trial.points;
      // The program kept printing into the frozen agent's pipe: those lines are read after its end.
      await until('more printed', () => (printed() >= stored + 5 ? true : undefined));
      process.kill(agent.pid!, 'SIGCONT');
      const stats = await until('the zombie points refused', async () => {
        const s = await api.getStats();
        return (s.rejected.after_end ?? 0) >= 1 ? s : undefined;
      });
      expect(stats.rejected.after_end).toBeGreaterThanOrEqual(1);
      // The agent learns from its heartbeat that the trial is no longer its own and stops it; a
      // cancelled sweep then sends it home (the crashed trial is not counted: it would run another).
      await api.cancelSweep(sweep.id);
      const a = await done;
      expect(a.code, a.stderr.slice(-2000)).toBe(0);
      const t = (await api.getTrial(trialId)).trial;
      expect(t.state).toBe('crashed');
      // Nothing captured after the end was stored (a batch read before the freeze may still land).
      expect(t.points).toBeLessThan(printed());
      const history = await api.getTrial(trialId);
      expect(history.metricSteps.length).toBe(t.points);
    } finally {
      api.close();
      await ctl.stop();
      rmSync(truth, { recursive: true, force: true });
    }
  }, 150_000);
});
