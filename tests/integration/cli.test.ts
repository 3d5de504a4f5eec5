/**
 * The CLI as a user runs it: real processes, a real nats-server started by `sweeper local`
 * itself, real trials.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { healthClientCtor } from '../../common/proto.js';
import { collect, runCli, spawnCli } from '../fixtures/cli.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'sweeper-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('sweeper validate', () => {
  it('exits 0 for a valid config and describes it', async () => {
    const r = await runCli(['validate', `${SWEEPS}grid.yaml`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('valid grid sweep, 6 trials');
  });

  it('exits 2 with one problem per line, each naming its path', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, 'method: grid\nmetirc: {name: loss}\nparameters:\n  lr: {min: 0.1, max: 0.01}\n');
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('metirc');
    expect(r.stderr).toContain("did you mean 'metric'");
    expect(r.stderr).toContain('parameters.lr.max');
  });

  it('exits 2 for malformed YAML and for a missing file', async () => {
    const file = join(tmp, 'broken.yaml');
    writeFileSync(file, 'method: grid\nparameters: [unclosed\n');
    expect((await runCli(['validate', file])).code).toBe(2);
    expect((await runCli(['validate', join(tmp, 'nope.yaml')])).code).toBe(2);
  });

  it('accepts a bayes config', async () => {
    const file = join(tmp, 'bayes.yaml');
    writeFileSync(file, 'method: bayes\nmetric: {name: loss}\nparameters:\n  lr: {min: 0.1, max: 1.0}\n');
    const r = await runCli(['validate', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('valid bayes sweep');
  });
});

describe('sweeper local', () => {
  it('--json runs the whole sweep and prints its trials best first', async () => {
    const data = join(tmp, 'local-data');
    const r = await runCli(['local', `${SWEEPS}grid.yaml`, '--agents', '2', '--json', '--data', data], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.sweep.state).toBe('finished');
    expect(doc.sweep.data_dir).toBe(data);
    expect(doc.trials).toHaveLength(6);
    expect(doc.trials[0]).toMatchObject({ state: 'finished', params: { x: 1, y: 0.5, epochs: 3 } });
    expect(doc.trials[0].value).toBeCloseTo(0.5 + 1 / 3, 12);
    const values = doc.trials.map((t: { value: number }) => t.value);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
  });
});

describe('sweeper server and create', () => {
  it('serves the API and the gRPC health check, creates a sweep and stops cleanly on SIGTERM', async () => {
    const data = join(tmp, 'server-data');
    const port = 20000 + Math.floor(Math.random() * 20000);
    const server = spawnCli(['server', '--port', String(port), '--nats-port', '-1', '--data', data, '--dashboard-port', '0']);
    const done = collect(server);
    const address = `127.0.0.1:${port}`;
    // Wait until the health check answers.
    const Health = healthClientCtor();
    const health = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: Function };
    const status = await new Promise<string>((resolve, reject) => {
      const deadline = Date.now() + 30_000;
      const attempt = () =>
        health.Check({ service: '' }, { deadline: Date.now() + 2000 }, (err: grpc.ServiceError | null, res: { status: string }) => {
          if (!err) return resolve(res.status);
          if (Date.now() > deadline) return reject(err);
          setTimeout(attempt, 200);
        });
      attempt();
    });
    health.close();
    expect(status).toBe('SERVING');

    const created = await runCli(['create', `${SWEEPS}grid.yaml`, '--controller', address]);
    expect(created.code, created.stderr).toBe(0);
    const id = /Created sweep (\w+)/.exec(created.stdout)?.[1];
    expect(id).toBeTruthy();
    expect(created.stdout).toContain(`sweeper agent ${id}`);
    const ls = await runCli(['ls', '--json', '--controller', address]);
    expect(JSON.parse(ls.stdout).map((s: { id: string }) => s.id)).toContain(id);

    server.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
  });

  it('names the flag that moves a busy port, and moves a busy default dashboard port by itself', async () => {
    const hold = async (port: number) => {
      const srv = createServer();
      await new Promise<void>((resolve) => {
        srv.once('error', () => resolve()); // held by someone else already: just as busy
        srv.listen(port, '127.0.0.1', () => resolve());
      });
      return srv;
    };
    const busy = await hold(0);
    const port = (busy.address() as AddressInfo).port;
    const dashboardDefault = await hold(8080);
    try {
      const api = await runCli(['server', '--port', String(port), '--nats-port', '-1', '--no-dashboard', '--data', join(tmp, 'busy-api')]);
      expect(api.code).toBe(2);
      expect(api.stderr).toContain(`gRPC API: 127.0.0.1:${port} is already in use: choose another with --port`);
      const dash = await runCli(['server', '--port', '0', '--nats-port', '-1', '--dashboard-port', String(port), '--data', join(tmp, 'busy-dash')]);
      expect(dash.code).toBe(2);
      expect(dash.stderr).toContain(`dashboard: 127.0.0.1:${port} is already in use: choose another with --dashboard-port`);

      const server = spawnCli(['server', '--port', '0', '--nats-port', '-1', '--data', join(tmp, 'busy-default')]);
      let err = '';
      server.stderr!.on('data', (d) => (err += d));
      const done = collect(server);
      const deadline = Date.now() + 30_000;
      while (!/dashboard at http:\/\/127\.0\.0\.1:\d+\//.test(err) && server.exitCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(err).toContain('dashboard port 8080 is in use; serving the dashboard on a free port instead');
      const url = /dashboard at (http:\/\/127\.0\.0\.1:(\d+)\/)/.exec(err);
      expect(url?.[2]).not.toBe('8080');
      server.kill('SIGTERM');
      expect((await done).code).toBe(0);
    } finally {
      busy.close();
      dashboardDefault.close();
    }
  });

  it('create against no controller fails with a clear message', async () => {
    const r = await runCli(['create', `${SWEEPS}grid.yaml`, '--controller', '127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach the controller');
  });
});
