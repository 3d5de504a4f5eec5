/**
 * The dashboard's limits against a real controller (real nats-server): event streams past the cap
 * get 503 with Retry-After while the others stay open, and a slot freed is a slot taken again;
 * requests on connections past the cap get 503; a client that sends its headers slowly is cut
 * off; an event stream outlives the request timeout. Each test starts its own dashboard with
 * small limits. Nothing waits on a clock: every wait is for something the client or stats() sees.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { get } from 'node:http';
import { get as getHttps } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import type { DashboardHandle, DashboardLimits } from '../../controller/dashboard/server.js';
import { startDashboard } from '../../controller/dashboard/server.js';
import type { TestNats } from '../fixtures/nats.js';
import { startTestNats } from '../fixtures/nats.js';
import { SWEEPS } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

let nats: TestNats;
let controller: ControllerHandle;
const config = readFileSync(join(SWEEPS, 'dash-random.yaml'), 'utf8');
/** Everything a test opened, closed after it whatever happened. */
const open: Array<{ destroy(): void }> = [];
const dashboards: DashboardHandle[] = [];

beforeAll(async () => {
  nats = await startTestNats();
  controller = await startController({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: createLogger('test-controller', () => {}) });
});

afterEach(async () => {
  for (const o of open.splice(0)) o.destroy();
  for (const d of dashboards.splice(0)) await d.stop();
});

afterAll(async () => {
  await controller?.stop();
  await nats?.stop();
});

async function dashboard(limits: Partial<DashboardLimits>, tls?: { cert: Buffer; key: Buffer }): Promise<DashboardHandle> {
  const d = await startDashboard({ service: controller.service, host: '127.0.0.1', port: 0, limits, tls, log: createLogger('test-dashboard', () => {}) });
  dashboards.push(d);
  return d;
}

/** A sweep with no agent: it stays running, with no trials, for as long as the test needs. */
const newSweep = () => controller.service.createSweep(config, 'dash-random.yaml');

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  /** The whole body of a refusal; what has arrived so far of a stream. */
  body: () => string;
  /** Resolves once the stream's text holds `text`. */
  saw: (text: string) => Promise<void>;
  closed: () => boolean;
  req: ClientRequest;
}

/** A GET on a connection of its own; resolves with the headers for a 200, with the whole body otherwise. */
function request(url: string, ca?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = ca ? getHttps(url, { agent: false, ca }) : get(url, { agent: false });
    open.push(req);
    req.on('error', reject);
    req.on('response', (res) => {
      res.setEncoding('utf8');
      let text = '';
      let ended = false;
      const waiters: Array<{ text: string; resolve: () => void }> = [];
      res.on('data', (chunk: string) => {
        text += chunk;
        for (const w of waiters.splice(0)) if (text.includes(w.text)) w.resolve();
        else waiters.push(w);
      });
      res.on('close', () => (ended = true));
      const reply: Reply = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: () => text,
        saw: (t) => (text.includes(t) ? Promise.resolve() : new Promise((r) => waiters.push({ text: t, resolve: r }))),
        closed: () => ended || req.destroyed,
        req,
      };
      if (res.statusCode === 200) resolve(reply);
      else res.on('end', () => resolve(reply));
    });
  });
}

const events = (d: DashboardHandle, sweepId: string) => request(`${d.url}api/sweeps/${sweepId}/events`);

/** A raw TCP connection to the dashboard, with what it has received and a promise of its end. */
async function rawConnection(d: DashboardHandle): Promise<{ socket: Socket; data: () => string; ended: Promise<void> }> {
  const socket = connect(d.port, '127.0.0.1');
  open.push(socket);
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (data += chunk));
  // Writing to a connection the server has just cut fails with EPIPE or ECONNRESET: expected here.
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, data: () => data, ended };
}

describe('dashboard limits', () => {
  it('answers event streams past the caps with 503 and Retry-After, and takes one again once a slot is free', async () => {
    const d = await dashboard({ maxEventStreams: 3, maxEventStreamsPerSweep: 2 });
    const a = await newSweep();
    const b = await newSweep();

    const held = [await events(d, a.id), await events(d, a.id)];
    for (const s of held) expect(s.status).toBe(200);
    await Promise.all(held.map((s) => s.saw('event: snapshot')));

    // The per-sweep cap: a third stream of sweep a.
    const perSweep = await events(d, a.id);
    expect(perSweep.status).toBe(503);
    expect(perSweep.headers['retry-after']).toMatch(/^\d+$/);
    expect(perSweep.headers['content-type']).toContain('application/json');
    expect(JSON.parse(perSweep.body()).error).toContain(`sweep ${a.id}`);

    // Sweep b still has room, until the total cap.
    held.push(await events(d, b.id));
    expect(held[2].status).toBe(200);
    const total = await events(d, b.id);
    expect(total.status).toBe(503);
    expect(total.headers['retry-after']).toMatch(/^\d+$/);
    expect(JSON.parse(total.body()).error).toContain('3 live streams');

    // The N held open stay open through the refusals.
    expect(held.map((s) => s.closed())).toEqual([false, false, false]);
    expect(d.stats()).toMatchObject({ clients: 3, refused: { eventStreams: 2, connections: 0 } });

    // One page closes: its slot is free again once the server has seen it go.
    held[0].req.destroy();
    await until('the server to see the stream close', () => (d.stats().clients === 2 ? true : undefined));
    const again = await events(d, a.id);
    expect(again.status).toBe(200);
    await again.saw('event: snapshot');
    expect(d.stats()).toMatchObject({ clients: 3, refused: { eventStreams: 2 } });
  });

  it('answers requests on connections past the cap with 503, Retry-After and Connection: close', async () => {
    // Long timeouts: the held connections send nothing and must not be cut while the test runs.
    const d = await dashboard({ maxConnections: 2, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    const first = await rawConnection(d);
    const second = await rawConnection(d);
    await until('two open connections', () => (d.stats().connections === 2 ? true : undefined));

    const over = await request(`${d.url}api/sweeps`);
    expect(over.status).toBe(503);
    expect(over.headers['retry-after']).toMatch(/^\d+$/);
    expect(over.headers.connection).toBe('close');
    expect(JSON.parse(over.body()).error).toContain('2 connections');
    expect(d.stats().refused.connections).toBe(1);

    // The connections within the cap are served as usual.
    first.socket.write('GET /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await first.ended;
    expect(first.data()).toMatch(/^HTTP\/1\.1 200 /);

    // Both gone (and the refused one closed by the server): a new connection is served.
    second.socket.destroy();
    await until('the connections to close', () => (d.stats().connections === 0 ? true : undefined));
    const ok = await request(`${d.url}api/sweeps`);
    expect(ok.status).toBe(200);
    expect(d.stats().refused.connections).toBe(1);
  });

  it('counts connections once their TLS handshake is done, under TLS', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sweeper-dash-tls-'));
    let tls: { cert: Buffer; key: Buffer };
    try {
      const key = join(tmp, 'key.pem');
      const cert = join(tmp, 'cert.pem');
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ], { stdio: 'ignore' });
      tls = { cert: readFileSync(cert), key: readFileSync(key) };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const d = await dashboard({ maxConnections: 1, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 }, tls);
    expect(d.url).toMatch(/^https:/);
    const held = connectTls({ host: '127.0.0.1', port: d.port, ca: tls.cert });
    open.push(held);
    held.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      held.once('secureConnect', resolve);
      held.once('error', reject);
    });
    await until('one open connection', () => (d.stats().connections === 1 ? true : undefined));
    const over = await request(`${d.url}api/sweeps`, tls.cert);
    expect(over.status).toBe(503);
    expect(over.headers['retry-after']).toMatch(/^\d+$/);
    expect(d.stats().refused.connections).toBe(1);
    held.destroy();
    await until('the connections to close', () => (d.stats().connections === 0 ? true : undefined));
    expect((await request(`${d.url}api/sweeps`, tls.cert)).status).toBe(200);
  });

  it('drops connections past twice the cap without an answer', async () => {
    const d = await dashboard({ maxConnections: 1, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 });
    await rawConnection(d);
    await rawConnection(d);
    await until('two open connections', () => (d.stats().connections === 2 ? true : undefined));
    const dropped = await rawConnection(d);
    dropped.socket.write('GET /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await dropped.ended;
    expect(dropped.data()).toBe('');
    expect(d.stats()).toMatchObject({ connections: 2, refused: { connections: 1 } });
  });

  it('cuts off a client that sends its headers slowly', async () => {
    const d = await dashboard({ headersTimeoutMs: 200, requestTimeoutMs: 200 });
    const slow = await rawConnection(d);
    slow.socket.write('GET /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // A header line now and then keeps the connection busy, but never ends the headers.
    let n = 0;
    const drip = setInterval(() => {
      if (!slow.socket.destroyed) slow.socket.write(`X-Slow-${n++}: 1\r\n`);
    }, 20);
    open.push({ destroy: () => clearInterval(drip) });
    await slow.ended;
    clearInterval(drip);
    expect(slow.data()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(d.stats().refused.timeouts).toBe(1);
    // A client that sends its request at once is served.
    expect((await request(`${d.url}api/sweeps`)).status).toBe(200);
  });

  it('keeps an event stream open past the request timeout', async () => {
    const d = await dashboard({ headersTimeoutMs: 200, requestTimeoutMs: 200 });
    const sweep = await newSweep();
    const stream = await events(d, sweep.id);
    expect(stream.status).toBe(200);
    await stream.saw('event: snapshot');

    // A request opened after the stream's, whose body never ends: only the request timeout can
    // end it. Once it has, the stream's request is older than the timeout too.
    const canary = await rawConnection(d);
    canary.socket.write('POST /api/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{');
    await canary.ended;
    expect(canary.data()).toContain('HTTP/1.1 408 Request Timeout');
    expect(d.stats().refused.timeouts).toBe(1);

    // The stream is still open, and still live.
    expect(stream.closed()).toBe(false);
    expect(d.stats().clients).toBe(1);
    await controller.service.pauseSweep(sweep.id);
    await stream.saw('event: delta');
    expect(stream.closed()).toBe(false);
  });
});
