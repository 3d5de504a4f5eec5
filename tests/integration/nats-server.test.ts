import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, StringCodec } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureStream } from '../../common/nats-connect.js';
import { MissingDependencyError } from '../../domain/errors.js';
import { ensureNatsServer, findNatsServer, NATS_PID_FILE, startNatsServer, type NatsPidRecord, type NatsServerHandle } from '../../common/nats-server.js';
import { describeProcess, isRunning, type ProcessRecord } from '../../common/pid-file.js';
import { startTestNats, type TestNats } from '../fixtures/nats.js';
import { until } from '../fixtures/wait.js';

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

  describe('the pid file', () => {
    let storeDir: string;
    const started: NatsServerHandle[] = [];
    const strangers: ChildProcess[] = [];
    /** Servers a test orphaned on purpose; killed only while the record still names them. */
    const orphans: ProcessRecord[] = [];
    afterEach(async () => {
      for (const h of started.splice(0)) await h.stop();
      for (const c of strangers.splice(0)) c.kill('SIGKILL');
      for (const rec of orphans.splice(0)) if (isRunning(rec)) process.kill(rec.pid, 'SIGKILL');
      if (storeDir) await rm(storeDir, { recursive: true, force: true });
    });
    const pidFileOf = (dir: string) => path.join(dir, NATS_PID_FILE);
    const readPidFile = (dir: string) => JSON.parse(readFileSync(pidFileOf(dir), 'utf8')) as NatsPidRecord;
    /** Running, that is: a zombie waiting for a parent that may never reap it counts as gone. */
    const running = (pid: number) => describeProcess(pid) !== null;

    it("records the server, and the next start stops the one an owner killed with its guardian left behind", async () => {
      storeDir = await mkdtemp(path.join(os.tmpdir(), 'sweeper-nats-pid-'));
      const first = await startNatsServer({ storeDir, pidFile: true });
      const rec = readPidFile(storeDir);
      orphans.push(rec);
      expect(rec).toMatchObject({ pid: first.pid, guardian: first.guardianPid, config: path.join(storeDir, 'nats-server.conf') });
      expect(rec.startTime).toBe(describeProcess(first.pid)!.startTime);

      // As `kill -9` of the owner's whole process group would leave it, minus the owner: the
      // guardian is gone and nothing will stop the server.
      process.kill(first.guardianPid!, 'SIGKILL');
      await first.exited;
      expect(running(first.pid)).toBe(true);
      expect(readPidFile(storeDir).pid).toBe(first.pid);

      const second = await startNatsServer({ storeDir, port: first.port, pidFile: true });
      started.push(second);
      expect(running(first.pid)).toBe(false);
      expect(second.pid).not.toBe(first.pid);
      expect(readPidFile(storeDir).pid).toBe(second.pid);
      await second.stop();
      started.length = 0;
      expect(existsSync(pidFileOf(storeDir))).toBe(false);
    });

    it('never stops a process the pid file names that is not provably our server', async () => {
      storeDir = await mkdtemp(path.join(os.tmpdir(), 'sweeper-nats-pid-'));
      const config = path.join(storeDir, 'nats-server.conf');
      const spawnStranger = (cmd: string, args: string[]) => {
        const c = spawn(cmd, args, { stdio: 'ignore' });
        strangers.push(c);
        return c.pid!;
      };
      // A pid now held by an unrelated program (a reused pid): right start time, wrong command line.
      const sleeper = spawnStranger('sleep', ['60']);
      // A program whose command line names our config, but which started at another time than
      // the one recorded: the recorded server is gone and its pid went to this one.
      const lookalike = spawnStranger(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', config]);
      await until('the strangers to run', () => (describeProcess(sleeper) && describeProcess(lookalike) ? true : undefined));
      const cases: NatsPidRecord[] = [
        { ...describeProcess(sleeper)!, config },
        { ...describeProcess(lookalike)!, startTime: '1', config },
      ];
      for (const rec of cases) {
        writeFileSync(pidFileOf(storeDir), JSON.stringify(rec));
        const h = await startNatsServer({ storeDir, pidFile: true });
        expect(running(rec.pid), `pid ${rec.pid} was stopped`).toBe(true);
        expect(readPidFile(storeDir).pid).toBe(h.pid);
        await h.stop();
      }
    });
  });
});
