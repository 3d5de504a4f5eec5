/**
 * The controller's state lives in JetStream: a controller restarted on the same NATS rebuilds
 * every sweep, trial and metric history, and agents that could not reach it meanwhile retry and
 * carry on. Real nats-server, real gRPC, real agent processes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import type { NatsServerHandle } from '../../common/nats-server.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { collect, liveOutput, spawnCli } from '../fixtures/cli.js';
import { startTestNats } from '../fixtures/nats.js';
import { freePort } from '../../common/net.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
let nats: NatsServerHandle;

beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(async () => {
  await nats?.stop();
});


const start = (port: number) =>
  startController({ host: '127.0.0.1', port, natsUrl: nats.url, log: createLogger('test', () => {}) });

describe('controller restart', () => {
  it('rebuilds sweeps, trials and metrics from JetStream, and a waiting agent finishes the sweep', async () => {
    const port = await freePort();
    let controller: ControllerHandle = await start(port);
    const client = new SweeperClient(`127.0.0.1:${port}`);
    try {
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}grid.yaml`, 'utf8'), 'grid.yaml');
      // Run two trials, then take the controller away.
      const first = await collect(spawnCli(['agent', sweep.id, '--count', '2', '--controller', `127.0.0.1:${port}`], { cwd: SWEEPS }));
      expect(first.code, first.stderr).toBe(0);
      const before = await client.getSweep(sweep.id);
      expect(before.trials).toHaveLength(2);
      await controller.stop();

      // An agent started while the controller is down keeps retrying: it says so, and waits.
      const agent = spawnCli(['agent', sweep.id, '--controller', `127.0.0.1:${port}`], { cwd: SWEEPS });
      const output = liveOutput(agent);
      const done = collect(agent);
      await output.waitFor(/controller unreachable, retrying/);
      expect(agent.exitCode).toBeNull();

      controller = await start(port);
      const r = await done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('controller unreachable, retrying');

      const after = await client.getSweep(sweep.id);
      expect(after.sweep.state).toBe('finished');
      expect(after.trials).toHaveLength(6);
      // No trial number reused, no grid point run twice.
      expect(new Set(after.trials.map((t) => t.number))).toEqual(new Set([1, 2, 3, 4, 5, 6]));
      expect(new Set(after.trials.map((t) => t.paramsJson)).size).toBe(6);
      // The metrics of the trials run before the restart were replayed.
      for (const t of before.trials) {
        const again = after.trials.find((x) => x.id === t.id)!;
        expect(again.state).toBe('finished');
        expect(again.points).toBe(t.points);
        expect(again.bestValue).toBe(t.bestValue);
      }
    } finally {
      client.close();
      await controller.stop();
    }
  });
});
