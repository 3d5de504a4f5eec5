/**
 * Locked down: API tokens, TLS, refusing an open non-loopback bind, parameter values that never
 * reach a shell, and malformed requests and messages counted rather than crashing anything.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, SweeperClient } from '../../common/api-client.js';
import { createLogger } from '../../common/log.js';
import { parseTypedJson } from '../../domain/values.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { collect, runCli, spawnCli } from '../fixtures/cli.js';
import type { TestNats } from '../fixtures/nats.js';
import { startTestNats } from '../fixtures/nats.js';
import { until } from '../fixtures/wait.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'sweeper-sec-'));
const log = createLogger('test', () => {});
let nats: TestNats;

beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(async () => {
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function settled(client: SweeperClient, id: string) {
  for (let i = 0; i < 300; i++) {
    const d = await client.getSweep(id);
    if (d.sweep.state === 'finished' && !d.trials.some((t) => t.state === 'running')) return d;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('sweep did not finish');
}

describe('API token', () => {
  let controller: ControllerHandle;
  beforeAll(async () => {
    controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, token: 's3cret-token', log });
  });
  afterAll(async () => controller?.stop());

  it('refuses calls without the token or with a wrong one, and counts them', async () => {
    for (const token of [undefined, 'wrong-token-']) {
      const client = new SweeperClient(controller.address, { token });
      await expect(client.listSweeps()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      client.close();
    }
    const r = await runCli(['ls', '--controller', controller.address]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing or wrong API token');
    const ok = new SweeperClient(controller.address, { token: 's3cret-token' });
    expect((await ok.getStats()).rejected.unauthenticated).toBeGreaterThanOrEqual(3);
    ok.close();
  });

  it('agents and the CLI work with the token from SWEEPER_TOKEN', async () => {
    const client = new SweeperClient(controller.address, { token: 's3cret-token' });
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}grid.yaml`, 'utf8'), 'grid.yaml');
    const a = await collect(spawnCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS, env: { SWEEPER_TOKEN: 's3cret-token' } }));
    expect(a.code, a.stderr).toBe(0);
    expect((await settled(client, sweep.id)).trials).toHaveLength(6);
    const w = await runCli(['watch', sweep.id, '--once', '--json', '--controller', controller.address], { env: { SWEEPER_TOKEN: 's3cret-token' } });
    expect(w.code, w.stderr).toBe(0);
    client.close();
  });

  it('sweeper server refuses a non-loopback address without a token', async () => {
    const r = await runCli(['server', '--host', '0.0.0.0', '--port', '0', '--nats', nats.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('refusing to serve on 0.0.0.0 without an API token');
  });
});

describe('TLS', () => {
  it('serves TLS from cert/key files; clients trusting the CA connect, plaintext ones do not', async () => {
    const key = join(tmp, 'key.pem');
    const cert = join(tmp, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ], { stdio: 'ignore' });
    const controller = await startController({
      host: '127.0.0.1',
      port: 0,
      natsUrl: nats.url,
      tls: { cert: readFileSync(cert), key: readFileSync(key) },
      log,
    });
    try {
      const secure = new SweeperClient(controller.address, { tlsCa: readFileSync(cert) });
      expect(Array.isArray(await secure.listSweeps())).toBe(true);
      secure.close();
      const plain = new SweeperClient(controller.address, {}, 3000);
      await expect(plain.listSweeps()).rejects.toBeInstanceOf(ApiError);
      plain.close();
      const cli = await runCli(['ls', '--controller', controller.address, '--tls-ca', cert]);
      expect(cli.code, cli.stderr).toBe(0);
    } finally {
      await controller.stop();
    }
  });
});

describe('what reaches the program and the controller', () => {
  let controller: ControllerHandle;
  let client: SweeperClient;
  beforeAll(async () => {
    controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log });
    client = new SweeperClient(controller.address);
  });
  afterAll(async () => {
    client?.close();
    await controller?.stop();
  });

  it('parameter values arrive literally in the child argv, never through a shell', async () => {
    for (let i = 1; i <= 5; i++) rmSync(`/tmp/sweeper-pwned-${i}`, { force: true });
    const sweep = await client.createSweep(readFileSync(`${SWEEPS}danger.yaml`, 'utf8'), 'danger.yaml');
    const a = await collect(spawnCli(['agent', sweep.id, '--controller', controller.address], { cwd: SWEEPS }));
    expect(a.code, a.stderr).toBe(0);
    const d = await settled(client, sweep.id);
    expect(d.trials).toHaveLength(5);
    for (const t of d.trials) {
      const value = (parseTypedJson(t.paramsJson) as { v: string }).v;
      const detail = await client.getTrial(t.id);
      expect(detail.stdoutTail).toEqual([JSON.stringify([`--v=${value}`])]);
    }
    for (let i = 1; i <= 5; i++) expect(existsSync(`/tmp/sweeper-pwned-${i}`)).toBe(false);
  });

  it('malformed requests and metric messages are refused and counted; the controller carries on', async () => {
    await expect(client.getSweep('not a valid id!')).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const nc = await connect({ servers: nats.url });
    nc.publish('sweeper.metrics.abc.abc-1', new TextEncoder().encode('{not json'));
    nc.publish('sweeper.metrics.abc.abc-1', new TextEncoder().encode(JSON.stringify({ sweepId: 'abc', trialId: 'abc-1', seq: -4, points: 'x' })));
    await nc.flush();
    // JetStream stores core publishes on the stream's subjects: the ingest sees both.
    const stats = await until('the ingest to count both', async () => {
      const s = await client.getStats();
      return (s.rejected.bad_json ?? 0) >= 1 && (s.rejected.schema ?? 0) >= 1 ? s : undefined;
    });
    await nc.close();
    expect(stats.rejected.invalid_request).toBeGreaterThanOrEqual(1);
    expect(stats.rejected.bad_json).toBeGreaterThanOrEqual(1);
    expect(stats.rejected.schema).toBeGreaterThanOrEqual(1);
    expect(Array.isArray(await client.listSweeps())).toBe(true);
    const r = await runCli(['stats', '--controller', controller.address]);
    expect(r.stdout).toMatch(/rejected messages: .*bad_json 1/);
  });
});
