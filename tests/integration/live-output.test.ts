/**
 * A trial's live output end to end, on the real stack with Sweeper's NATS auth (each agent held
 * to its own subjects): the agent streams what the program prints to SWEEPER_OUTPUT, the
 * controller holds the last lines, `sweeper logs` shows them while the trial runs and `--follow`
 * tails them until it ends; the lines survive the agent's SIGKILL and a controller restart; and a
 * program that floods its stdout still finishes, with what was not streamed counted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import { watchTrialOutput, type ApiTrialOutput } from '../../common/output-client.js';
import { startController, type ControllerHandle } from '../../controller/controller.js';
import { NatsAuthority } from '../../controller/nats-auth.js';
import { collect, liveOutput, runCli, spawnCli } from '../fixtures/cli.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';
import { SWEEPS, waitSettled } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

const log = createLogger('test', () => {});

let dir: string;
let authority: NatsAuthority;
let nats: TestNats;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sweeper-output-'));
  authority = NatsAuthority.loadOrCreate(join(dir, 'nats-auth'));
  nats = await startTestNats({ operatorConfig: authority.serverConfig() });
});

afterAll(async () => {
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function controllerFor(opts: { port?: number; heartbeatTimeoutMs?: number } = {}): Promise<{ controller: ControllerHandle; client: SweeperClient }> {
  const controller = await startController({ host: '127.0.0.1', port: opts.port ?? 0, natsUrl: nats.url, natsAuthority: authority, heartbeatTimeoutMs: opts.heartbeatTimeoutMs, maxCrashRetries: 0, log });
  return { controller, client: new SweeperClient(controller.address) };
}

/** Everything a WatchTrialOutput stream sends until it completes. */
async function readAll(address: string, trialId: string): Promise<ApiTrialOutput[]> {
  const stream = watchTrialOutput(address, {}, trialId);
  const out: ApiTrialOutput[] = [];
  try {
    for await (const chunk of stream) out.push(chunk);
  } finally {
    stream.close();
  }
  return out;
}

describe('live output of a running trial', () => {
  it('sweeper logs shows it while the trial runs, and --follow tails it until the trial ends', { timeout: 120_000 }, async () => {
    const { controller, client } = await controllerFor();
    const gates = mkdtempSync(join(dir, 'gates-'));
    try {
      const sweep = await client.createSweep(readFileSync(join(SWEEPS, 'output-gate.yaml'), 'utf8'), 'output-gate.yaml');
      const trialId = `${sweep.id}-1`;
      const agent = collect(spawnCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS, env: { OUTPUT_GATE_DIR: gates } }), 90_000);
      await until('the trial running', async () => ((await client.getSweep(sweep.id)).trials[0]?.state === 'running' ? true : undefined));

      const follow = spawnCli(['logs', trialId, '--follow', '--controller', controller.address]);
      const followed = liveOutput(follow);
      const exited = collect(follow, 90_000);
      // The gate is shut: these lines can only have come while the trial still runs.
      await followed.waitFor(/before the gate/);
      await followed.waitFor(/waiting on stderr/);
      expect(followed.stdout).not.toMatch(/waiting on stderr/);
      expect((await client.getTrial(trialId)).trial.state).toBe('running');

      // Without --follow: the live tail, said to be live.
      const snapshot = await runCli(['logs', trialId, '--controller', controller.address]);
      expect(snapshot.code, snapshot.stderr).toBe(0);
      expect(snapshot.stdout).toContain('--- stdout (last 1 lines, live) ---\nbefore the gate\n');
      expect(snapshot.stdout).toContain('--- stderr (last 1 lines, live) ---\nwaiting on stderr\n');
      expect(snapshot.stdout).toContain('--follow');
      const detail = await client.getTrial(trialId);
      expect(detail).toMatchObject({ stdoutTail: ['before the gate'], stderrTail: ['waiting on stderr'], liveOutput: true, outputDroppedLines: 0 });

      // Ctrl-C ends a follower, the trial untouched.
      const quitter = spawnCli(['logs', trialId, '-f', '--controller', controller.address]);
      const quitterOut = liveOutput(quitter);
      const quit = collect(quitter, 90_000);
      await quitterOut.waitFor(/before the gate/);
      quitter.kill('SIGINT');
      expect(await quit).toMatchObject({ code: 0, signal: null });
      expect((await client.getTrial(trialId)).trial.state).toBe('running');

      writeFileSync(join(gates, `${trialId}.go`), '');
      const f = await exited;
      expect(f.code, f.stderr).toBe(0);
      expect(f.stdout).toBe('before the gate\nafter the gate\nloss=0.5\n');
      expect(f.stderr).toContain(`--- trial ${trialId} finished ---`);
      const a = await agent;
      expect(a.code, a.stderr).toBe(0);

      // Ended: the tails its agent reported, and the watch sends them at once and completes.
      const ended = await client.getTrial(trialId);
      expect(ended).toMatchObject({ stdoutTail: ['before the gate', 'after the gate', 'loss=0.5'], stderrTail: ['waiting on stderr'], liveOutput: false });
      const all = await readAll(controller.address, trialId);
      expect(all.flatMap((c) => c.lines.map((l) => `${l.stream}: ${l.text}`))).toEqual([
        'stdout: before the gate',
        'stdout: after the gate',
        'stdout: loss=0.5',
        'stderr: waiting on stderr',
      ]);
      expect(all[all.length - 1].state).toBe('finished');
      expect((await client.getStats()).rejected).toEqual({});
    } finally {
      client.close();
      await controller.stop();
    }
  });

  it("an agent SIGKILLed mid-trial: the lines it streamed stay in GetTrial, also after a controller restart", { timeout: 120_000 }, async () => {
    let { controller, client } = await controllerFor({ heartbeatTimeoutMs: 3000 });
    const gates = mkdtempSync(join(dir, 'gates-'));
    try {
      const sweep = await client.createSweep(readFileSync(join(SWEEPS, 'output-gate.yaml'), 'utf8'), 'output-gate.yaml');
      const trialId = `${sweep.id}-1`;
      const agent = spawnCli(['agent', sweep.id, '--controller', controller.address, '--grace', '1'], { cwd: SWEEPS, env: { OUTPUT_GATE_DIR: gates } });
      const agentDone = collect(agent, 90_000);
      await until('the lines streamed', async () => ((await client.getTrial(trialId).catch(() => undefined))?.stderrTail.length ? true : undefined));
      agent.kill('SIGKILL');
      await agentDone;
      const crashed = await until('the trial declared crashed', async () => {
        const d = await client.getTrial(trialId);
        return d.trial.state === 'crashed' ? d : undefined;
      });
      expect(crashed).toMatchObject({ stdoutTail: ['before the gate'], stderrTail: ['waiting on stderr'], liveOutput: true });

      // A new controller reads the stream again from its start.
      const port = controller.grpc.port;
      client.close();
      await controller.stop();
      ({ controller, client } = await controllerFor({ port, heartbeatTimeoutMs: 3000 }));
      const again = await until('the lines back after the restart', async () => {
        const d = await client.getTrial(trialId);
        return d.stderrTail.length > 0 ? d : undefined;
      });
      expect(again).toMatchObject({ trial: { state: 'crashed' }, stdoutTail: ['before the gate'], stderrTail: ['waiting on stderr'], liveOutput: true });
      const all = await readAll(controller.address, trialId);
      expect(all.flatMap((c) => c.lines.map((l) => l.text))).toEqual(['before the gate', 'waiting on stderr']);
      expect(all[all.length - 1]).toMatchObject({ state: 'crashed', live: true });
      const logs = await runCli(['logs', trialId, '--follow', '--controller', controller.address]);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toBe('before the gate\n');
      expect(logs.stderr).toContain('waiting on stderr\n');
      expect(logs.stderr).toContain(`--- trial ${trialId} crashed`);
    } finally {
      client.close();
      await controller.stop();
    }
  });

  it('a trial flooding its stdout (100,000 lines at once) finishes, and what was not streamed is counted', { timeout: 120_000 }, async () => {
    const { controller, client } = await controllerFor();
    try {
      const sweep = await client.createSweep(readFileSync(join(SWEEPS, 'chatty.yaml'), 'utf8'), 'chatty.yaml');
      const trialId = `${sweep.id}-1`;
      const a = await runCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS, timeoutMs: 90_000 });
      expect(a.code, a.stderr).toBe(0);
      expect(a.stderr).toMatch(/not streamed live/);
      const d = await waitSettled(client, sweep.id);
      expect(d.trials[0]).toMatchObject({ state: 'finished', bestValue: 1, points: 1 });
      const detail = await client.getTrial(trialId);
      expect(detail.outputDroppedLines).toBeGreaterThan(0);
      // Every line the program printed was streamed or counted as dropped: nothing lost unsaid.
      const ring = controller.output.ring(trialId)!;
      expect(ring.received + ring.droppedLines).toBe(100_001);
      // The end report still has the last lines, whatever the rate limit let through.
      expect(detail.stdoutTail.slice(-2)).toEqual(['chatty line 100000', 'loss=1']);
      const logs = await runCli(['logs', trialId, '--controller', controller.address]);
      expect(logs.stdout).toContain(`${detail.outputDroppedLines} output lines were not streamed live`);
    } finally {
      client.close();
      await controller.stop();
    }
  });
});
