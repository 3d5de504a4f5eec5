/**
 * Sweeper on a 3-node NATS cluster with JetStream replicas 3: one node is SIGKILLed mid-sweep
 * and nothing is lost. Real nats-server nodes on loopback, real controller and agents.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { collect, spawnCli } from '../fixtures/cli.js';
import type { TestCluster } from '../fixtures/nats-cluster.js';
import { startTestCluster } from '../fixtures/nats-cluster.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('a 3-node NATS cluster, replicas 3', () => {
  it('keeps every trial and metric point when a node is killed mid-sweep', async () => {
    let controller: ControllerHandle | undefined;
    // Stream creation needs the cluster's JetStream leaders; retry briefly while they settle.
    for (let i = 0; !controller; i++) {
      try {
        controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: cluster.url, natsReplicas: 3, log: createLogger('test', () => {}) });
      } catch (err) {
        if (i > 20) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const client = new SweeperClient(controller.address);
    try {
      const nc = await connect({ servers: cluster.urls[0] });
      const jsm = await nc.jetstreamManager();
      expect((await jsm.streams.info('SWEEPER_METRICS')).config.num_replicas).toBe(3);
      expect((await jsm.streams.info('SWEEPER_STATE')).config.num_replicas).toBe(3);
      await nc.close();
      const sweep = await client.createSweep(readFileSync(`${SWEEPS}steady.yaml`, 'utf8'), 'steady.yaml');
      const agents = [1, 2].map(() => collect(spawnCli(['agent', sweep.id, '--controller', controller!.address], { cwd: SWEEPS })));
      for (let i = 0; i < 300; i++) {
        const d = await client.getSweep(sweep.id);
        if (d.trials.filter((t) => t.points > 2).length >= 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      cluster.kill(1);
      for (const r of await Promise.all(agents)) expect(r.code, r.stderr).toBe(0);
      let d = await client.getSweep(sweep.id);
      for (let i = 0; i < 300 && (d.sweep.state !== 'finished' || d.trials.some((t) => t.state === 'running')); i++) {
        await new Promise((r) => setTimeout(r, 100));
        d = await client.getSweep(sweep.id);
      }
      expect(d.sweep.state).toBe('finished');
      expect(d.trials).toHaveLength(8);
      for (const t of d.trials) {
        expect(t.state, t.reason).toBe('finished');
        expect(t.points, `points of ${t.id}`).toBe(10);
      }
    } finally {
      client.close();
      await controller.stop();
    }
  });
});
