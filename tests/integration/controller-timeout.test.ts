/**
 * `sweeper agent --controller-timeout`: an agent whose controller stays unreachable that long stops
 * its trials and exits with an error, rather than retry (and keep a GPU busy) forever. Real
 * nats-server, real controller, real agent and trial processes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import { freePort } from '../../common/net.js';
import { startController } from '../../controller/controller.js';
import { collect, liveOutput, spawnCli } from '../fixtures/cli.js';
import type { TestNats } from '../fixtures/nats.js';
import { startTestNats } from '../fixtures/nats.js';
import { SWEEPS } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

let nats: TestNats;
const pidDir = mkdtempSync(join(tmpdir(), 'sweeper-ctl-timeout-'));

beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(async () => {
  await nats?.stop();
  rmSync(pidDir, { recursive: true, force: true });
});

/** Running, that is: a zombie counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const pidOf = (trialId: string) => {
  try {
    return Number(readFileSync(join(pidDir, `${trialId}.pid`), 'utf8')) || undefined;
  } catch {
    return undefined;
  }
};

const MESSAGE = /sweeper: the controller at \S+ has been unreachable for \d+ s \(--controller-timeout 3\): stopped this agent's trials and gave up/;

describe('--controller-timeout', () => {
  it('an agent whose controller is stopped for good stops its trial and exits 1, saying why', async () => {
    const controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: createLogger('test', () => {}) });
    const client = new SweeperClient(controller.address);
    let stopped = false;
    try {
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}long.yaml`, 'utf8'), 'long.yaml');
      const agent = spawnCli(['agent', sweep.id, '--controller', controller.address, '--grace', '1', '--controller-timeout', '3'], {
        cwd: SWEEPS,
        env: { SWEEPER_TEST_PIDDIR: pidDir },
      });
      const output = liveOutput(agent);
      const done = collect(agent);
      // 100 points 50 ms apart: the trial has run past the timeout while the controller answered
      // (its heartbeats, 5 s apart, are all the agent says meanwhile) and the agent kept at it.
      const running = await until('a trial running past the timeout', async () =>
        (await client.getSweep(sweep.id)).trials.find((t) => t.state === 'running' && t.points >= 100),
      );
      const pid = await until('the trial to write its pid', () => pidOf(running.id));
      expect(alive(pid)).toBe(true);

      await controller.stop();
      stopped = true;
      // Still working while it retries: it says so, and gives up only past the timeout.
      await output.waitFor(/controller unreachable/);
      const r = await done;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(MESSAGE);
      expect(r.stderr).toContain('controller unreachable for');
      // The agent stopped its trial before it exited.
      expect(alive(pid)).toBe(false);
      expect(r.stderr).toMatch(/trial ended outcome=stopped \(agent shutting down\)/);
    } finally {
      client.close();
      if (!stopped) await controller.stop();
    }
  });

  it('an agent that never reaches a controller gives up after the timeout', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const r = await collect(spawnCli(['agent', 'no-such-sweep', '--controller', address, '--controller-timeout', '3'], { cwd: SWEEPS }));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('controller unreachable, retrying');
    expect(r.stderr).toMatch(MESSAGE);
  });
});
