/**
 * Controller and agents on different hosts, over real addresses: three Linux network namespaces
 * on one bridge (tests/fixtures/netns.ts). Host 1 runs `sweeper server` with its embedded
 * nats-server, bound to host 1's address, with an API token; hosts 2 and 3 each run `sweeper
 * agent` in a working folder of their own, knowing only the controller's address and the token.
 * What loopback tests cannot show: the bind (nothing listens anywhere else), the NATS URL the
 * agents learn at registration (host 1's address, also when the server binds the wildcard and
 * advertises loopback), and the token across hosts. Every command is the real CLI, started with
 * `ip netns exec`; the test process itself cannot reach the hosts (the range is unreachable from
 * the root namespace), so it reads results through `sweeper watch --json` run on a host.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { NatsPidRecord } from '../../common/nats-server.js';
import { isRunning } from '../../common/pid-file.js';
import { CLI_ENTRY, collect, liveOutput, TEST_CONTROLLER_TIMEOUT_S, type CliResult, type LiveOutput } from '../fixtures/cli.js';
import { netnsUnavailable, NetnsUnavailableError, startHosts, type TestHost, type TestHosts } from '../fixtures/netns.js';
import { TrackedProcesses } from '../fixtures/tracked.js';
import { RUN_MARK, TEST_MARK } from '../global-setup.js';

const SWEEPS = new URL('../fixtures/sweeps/', import.meta.url).pathname;
const CONFIG = 'multi-host-grid.yaml';
const PROGRAM = 'multi-host-where.cjs';
const TRIALS = 6;
/** Ports inside host 1's namespace: nothing else listens there. */
const API_PORT = 50051;
const NATS_PORT = 4222;
const TOKEN = randomBytes(24).toString('hex');

const work = mkdtempSync(join(tmpdir(), 'sweeper-multi-host-'));
const tracked = new TrackedProcesses();
let hosts: TestHosts | undefined;
let unavailable: string | undefined = netnsUnavailable();

beforeAll(async () => {
  try {
    if (!unavailable) hosts = await startHosts(3);
  } catch (err) {
    if (!(err instanceof NetnsUnavailableError)) throw err;
    unavailable = err.message;
  }
  if (unavailable) console.warn(`multi-host test skipped: ${unavailable}`);
});

afterAll(async () => {
  // Whatever a failed test left running in the namespaces is stopped there, by PID.
  await hosts?.stop();
  tracked.killAll();
  rmSync(work, { recursive: true, force: true });
});

/** The hosts, or the test is skipped (beforeAll said why). */
function need(ctx: TestContext): TestHosts {
  if (!hosts) ctx.skip(unavailable);
  return hosts!;
}

/**
 * The environment of a CLI process on a test host: none of the Sweeper settings of whoever runs
 * the tests (a token, a controller, a NATS URL would decide what is tested), but the suite's marks.
 */
function hostEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('SWEEPER_') || k === RUN_MARK || k === TEST_MARK);
  return { ...Object.fromEntries(inherited), SWEEPER_LOG_LEVEL: 'info', SWEEPER_CONTROLLER_TIMEOUT: String(TEST_CONTROLLER_TIMEOUT_S), ...extra };
}

/** `sweeper ARGS` run on `host`, as a user logged into it would. */
function cliOn(host: TestHost, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): ChildProcess {
  const [cmd, ...argv] = hosts!.exec(host.ns, [process.execPath, CLI_ENTRY, ...args]);
  return tracked.child(spawn(cmd, argv, { cwd: opts.cwd, env: hostEnv(opts.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A host's working folder: its own checkout of the sweep's program and config, and its own spool. */
function checkout(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const f of [CONFIG, PROGRAM]) copyFileSync(join(SWEEPS, f), join(dir, f));
  return dir;
}

/** Listening TCP sockets in a host's namespace, as `address:port`. */
function listening(host: TestHost): string[] {
  const [cmd, ...argv] = hosts!.exec(host.ns, ['ss', '-ltnH']);
  return execFileSync(cmd, argv, { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/)[3])
    .sort();
}

interface RunningServer {
  child: ChildProcess;
  out: LiveOutput;
  /** From its `controller ready on HOST:PORT` line. */
  address: string;
  /** Its embedded nats-server, from the pid file in its data folder. */
  nats: NatsPidRecord;
}

async function startServer(host: TestHost, bindHost: string, name: string): Promise<RunningServer> {
  const dir = checkout(name);
  const data = join(dir, 'data');
  // The token reaches the server through its environment, never its argv (ps shows argv).
  const child = cliOn(host, ['server', '--host', bindHost, '--port', String(API_PORT), '--nats-port', String(NATS_PORT), '--data', data, '--no-dashboard'], {
    cwd: dir,
    env: { SWEEPER_TOKEN: TOKEN },
  });
  const out = liveOutput(child);
  const [, address] = await out.waitFor(/controller ready on (\S+?);/);
  return { child, out, address, nats: tracked.natsRecord(data) };
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** SIGTERM, as Ctrl-C or a service manager would: the server stops its nats-server too. Its exit code. */
async function stopServer(server: RunningServer): Promise<number | null> {
  if (!running(server.child)) return server.child.exitCode;
  const done = collect(server.child, 30_000);
  server.child.kill('SIGTERM');
  return (await done).code;
}

async function createSweep(host: TestHost, cwd: string, controller: string): Promise<string> {
  const r = await collect(cliOn(host, ['create', CONFIG, '--controller', controller], { cwd, env: { SWEEPER_TOKEN: TOKEN } }));
  expect(r.code, r.stderr).toBe(0);
  return /Created sweep (\S+)/.exec(r.stdout)![1];
}

/** Agent ids allow no dots: `agent-10-200-X-2`. */
const agentIdOf = (host: TestHost) => `agent-${host.ip.replaceAll('.', '-')}`;

function startAgent(host: TestHost, sweepId: string, controller: string, cwd: string, rendezvous: string): { child: ChildProcess; done: Promise<CliResult> } {
  const child = cliOn(host, ['agent', sweepId, '--controller', controller, '--controller-timeout', '120', '--agent-id', agentIdOf(host)], {
    cwd,
    env: { SWEEPER_TOKEN: TOKEN, SWEEPER_SPOOL_DIR: join(cwd, 'spool'), MULTI_HOST_RENDEZVOUS: rendezvous },
  });
  return { child, done: collect(child, 120_000) };
}

interface TrialJson {
  id: string;
  state: string;
  agentId: string;
  points: number;
  lastValue: number | null;
}

async function watchOnce(host: TestHost, cwd: string, controller: string, sweepId: string): Promise<{ sweep: { state: string }; trials: TrialJson[] }> {
  const r = await collect(cliOn(host, ['watch', sweepId, '--once', '--json', '--controller', controller], { cwd, env: { SWEEPER_TOKEN: TOKEN } }));
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { sweep: { state: string }; trials: TrialJson[] };
}

/** Trial id → the address its program saw, from the `<trial>.where` files in a host's folder. */
function whereTrialsRan(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.where'))
      .map((f) => [f.slice(0, -'.where'.length), readFileSync(join(dir, f), 'utf8')]),
  );
}

/**
 * A whole sweep with one agent on host 2 and one on host 3: every trial finishes with its metric,
 * both hosts ran trials, each under its own agent, and each agent dialled NATS at host 1.
 */
async function runSweepAcrossHosts(h: TestHosts, server: RunningServer, name: string): Promise<void> {
  const [h1, h2, h3] = h.hosts;
  const rendezvous = join(work, `${name}-rendezvous`);
  mkdirSync(rendezvous);
  const dirs = [checkout(`${name}-h2`), checkout(`${name}-h3`)];
  const sweepId = await createSweep(h2, dirs[0], server.address);
  const agents = [startAgent(h2, sweepId, server.address, dirs[0], rendezvous), startAgent(h3, sweepId, server.address, dirs[1], rendezvous)];
  const results = await Promise.all(agents.map((a) => a.done));
  for (const r of results) expect(r.code, r.stderr).toBe(0);

  // The NATS URL each agent learnt from the controller, as it connected.
  for (const r of results) expect(/connected to NATS server=(\S+)/.exec(r.stderr)?.[1], r.stderr).toBe(`${h1.ip}:${NATS_PORT}`);

  const detail = await watchOnce(h2, dirs[0], server.address, sweepId);
  expect(detail.sweep.state).toBe('finished');
  expect(detail.trials).toHaveLength(TRIALS);
  for (const t of detail.trials) {
    expect(t.state, t.id).toBe('finished');
    expect(t.points, t.id).toBe(2);
    expect(typeof t.lastValue, t.id).toBe('number');
  }

  const ranOn = [whereTrialsRan(dirs[0]), whereTrialsRan(dirs[1])];
  const hostIps = [h2.ip, h3.ip];
  ranOn.forEach((trials, i) => {
    expect(trials.size, `trials on ${hostIps[i]}`).toBeGreaterThan(0);
    for (const [trial, ip] of trials) {
      expect(ip, trial).toBe(hostIps[i]);
      expect(detail.trials.find((t) => t.id === trial)?.agentId, trial).toBe(agentIdOf(h.hosts[i + 1]));
    }
  });
  expect([...ranOn[0].keys(), ...ranOn[1].keys()].sort()).toEqual(detail.trials.map((t) => t.id).sort());
}

describe('controller and NATS on one network namespace, agents on two others', () => {
  describe('server bound to host 1 with a token', () => {
    let server: RunningServer | undefined;
    beforeAll(async () => {
      if (hosts) server = await startServer(hosts.hosts[0], hosts.hosts[0].ip, 'bound');
    });
    afterAll(async () => {
      if (server) await stopServer(server);
    });

    it('listens only on host 1 address: the API and the embedded nats-server', (ctx) => {
      const h = need(ctx);
      const h1 = h.hosts[0];
      expect(server!.address).toBe(`${h1.ip}:${API_PORT}`);
      expect(listening(h1)).toEqual([`${h1.ip}:${NATS_PORT}`, `${h1.ip}:${API_PORT}`].sort());
      // The URL the controller uses itself, and advertises to agents.
      expect(server!.out.stderr).toContain(`url=nats://${h1.ip}:${NATS_PORT}`);
      // The token came through the environment: no command line on host 1 shows it.
      const pids = execFileSync('ip', ['netns', 'pids', h1.ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
      expect(pids.length).toBeGreaterThanOrEqual(2);
      for (const pid of pids) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), `pid ${pid}`).not.toContain(TOKEN);
    });

    it('refuses an agent on another host without the token, or with a wrong one', async (ctx) => {
      const h = need(ctx);
      const [, , h3] = h.hosts;
      const dir = checkout('refused');
      for (const env of [{}, { SWEEPER_TOKEN: 'not-the-token' }]) {
        const r = await collect(cliOn(h3, ['agent', 'nosuchsweep', '--controller', server!.address, '--controller-timeout', '120'], { cwd: dir, env }));
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain('missing or wrong API token');
      }
    });

    it('runs every trial of a sweep on agents of hosts 2 and 3, which reach NATS at host 1', { timeout: 60_000 }, async (ctx) => {
      await runSweepAcrossHosts(need(ctx), server!, 'bound');
    });

    it('stops on SIGTERM, and its nats-server with it', async (ctx) => {
      need(ctx);
      expect(await stopServer(server!), server!.out.stderr).toBe(0);
      expect(isRunning(server!.nats), `nats-server ${server!.nats.pid} outlived its server`).toBe(false);
    });
  });

  describe('server bound to the wildcard address', () => {
    let server: RunningServer | undefined;
    beforeAll(async () => {
      if (hosts) server = await startServer(hosts.hosts[0], '0.0.0.0', 'wildcard');
    });
    afterAll(async () => {
      if (server) await stopServer(server);
    });

    it('advertises loopback for NATS, which agents on other hosts rewrite to host 1', { timeout: 60_000 }, async (ctx) => {
      const h = need(ctx);
      // What the controller hands out: its own, loopback, URL.
      expect(server!.out.stderr).toContain(`url=nats://127.0.0.1:${NATS_PORT}`);
      await runSweepAcrossHosts(h, { ...server!, address: `${h.hosts[0].ip}:${API_PORT}` }, 'wildcard');
      expect(await stopServer(server!), server!.out.stderr).toBe(0);
      expect(isRunning(server!.nats), `nats-server ${server!.nats.pid} outlived its server`).toBe(false);
    });
  });

  it("cannot reach the root namespace's loopback from a host, nor the hosts from the root namespace", async (ctx) => {
    const h = need(ctx);
    const probe: NetServer = createServer((s) => s.destroy());
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    try {
      const { port } = probe.address() as { port: number };
      const [cmd, ...argv] = h.exec(h.hosts[1].ns, ['bash', '-c', 'exec 3<>"/dev/tcp/127.0.0.1/$1"', 'probe', String(port)]);
      const r = await collect(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] }), 10_000);
      expect(r.code, 'a client in host 2 reached a port on the root namespace loopback').not.toBe(0);
      expect(r.stderr).toMatch(/Connection refused/);
      // The guard route: from here the range is unreachable, never sent off the machine.
      expect(() => execFileSync('ip', ['route', 'get', h.hosts[0].ip], { stdio: ['ignore', 'pipe', 'pipe'] })).toThrow(/No route to host|unreachable/i);
    } finally {
      await new Promise((r) => probe.close(r));
    }
  });
});
