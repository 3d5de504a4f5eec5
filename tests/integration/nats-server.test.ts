import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, StringCodec } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureStream } from '../../common/nats-connect.js';
import { MissingDependencyError } from '../../common/errors.js';
import { ensureNatsServer, findNatsServer, startNatsServer } from '../../common/nats-server.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';

const sc = StringCodec();

/** Every listening TCP socket on `port`, as `address` strings from /proc (Linux). */
function listenersOn(port: number): string[] {
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue;
      const [addr, portHex] = cols[1].split(':');
      if (parseInt(portHex, 16) === port) found.push(addr);
    }
  }
  return found;
}

describe('nats-server', () => {
  let server: TestNats | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('finds the binary, or says how to install it', async () => {
    const found = findNatsServer();
    expect(found).toBeTruthy();
    await expect(ensureNatsServer({ install: false })).resolves.toBe(found);
    const saved = process.env.SWEEPER_NATS_SERVER;
    process.env.SWEEPER_NATS_SERVER = '/nonexistent/nats-server';
    try {
      expect(findNatsServer()).toBeNull();
      await expect(ensureNatsServer({ install: true })).rejects.toBeInstanceOf(MissingDependencyError);
    } finally {
      if (saved === undefined) delete process.env.SWEEPER_NATS_SERVER;
      else process.env.SWEEPER_NATS_SERVER = saved;
    }
  });

  it('starts on a free port, accepts a client and stops', async () => {
    server = await startTestNats();
    expect(server.port).toBeGreaterThan(0);
    const nc = await connect({ servers: server.url });
    const sub = nc.subscribe('hello', { max: 1 });
    nc.publish('hello', sc.encode('world'));
    for await (const m of sub) expect(sc.decode(m.data)).toBe('world');
    await nc.close();
    const { pid } = server;
    await server.stop();
    server = undefined;
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('listens on 127.0.0.1 only', async () => {
    server = await startTestNats();
    const listeners = listenersOn(server.port);
    expect(listeners.length).toBeGreaterThan(0);
    // /proc/net/tcp writes 127.0.0.1 as little-endian hex.
    expect(listeners.every((a) => a === '0100007F')).toBe(true);
  });

  it('keeps JetStream messages across a crash and a restart on the same port and store', async () => {
    server = await startTestNats();
    const nc = await connect({ servers: server.url });
    const jsm = await nc.jetstreamManager();
    await ensureStream(jsm, { name: 'KEEP', subjects: ['keep.>'] });
    await nc.jetstream().publish('keep.one', sc.encode('survives'), { msgID: 'm1' });
    await nc.close();

    server.kill();
    await server.restart();

    const nc2 = await connect({ servers: server.url });
    const msg = await (await nc2.jetstreamManager()).streams.getMessage('KEEP', { seq: 1 });
    expect(sc.decode(msg.data)).toBe('survives');
    // The duplicate window is rebuilt from the store, so a resend is still recognised.
    const ack = await nc2.jetstream().publish('keep.one', sc.encode('again'), { msgID: 'm1' });
    expect(ack.duplicate).toBe(true);
    await nc2.close();
  });

  it('requires the credentials it was started with', async () => {
    const storeDir = await mkdtemp(path.join(os.tmpdir(), 'sweeper-nats-auth-'));
    const handle = await startNatsServer({ storeDir, user: 'sweeper', password: 's3cret' });
    try {
      await expect(connect({ servers: handle.url, reconnect: false })).rejects.toThrow();
      const nc = await connect({ servers: handle.url, user: 'sweeper', pass: 's3cret' });
      await nc.close();
    } finally {
      await handle.stop();
      await rm(storeDir, { recursive: true, force: true });
    }
  });
});
