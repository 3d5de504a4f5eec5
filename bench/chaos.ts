/**
 * `npm run bench:chaos`: a sweep of a few hundred short trials while the controller, the agents
 * and nats-server are killed (SIGKILL) and restarted at random, for a bounded time. Then the
 * sweep is left to finish, and the bench prints:
 *   - trials completed, and whether the sweep ended with exactly run_cap of them;
 *   - metric points the finished trials' programs printed versus the points the controller
 *     stored for them (must be equal);
 *   - duplicate trials: one parameter set completed twice, or one trial id started twice
 *     (must be 0);
 *   - orphaned trial processes left alive at the end (must be 0);
 *   - controller restarts that did not come up, and nats-servers left behind (must be 0).
 * Points of trials that crashed with their agent are reported apart: what the agent had read is in
 * its spool and is published by the agent restarted in its place; only lines still in the pipe
 * between trial and agent die with it (the trial is run again).
 *
 * It runs twice, and prints both in one table:
 *   - embedded: `sweeper server` owns its nats-server, as the README deploys it. Killing the
 *     controller takes its NATS with it: either the controller alone (its guardian stops the
 *     server) or the controller and the guardian together (the server is orphaned, and the
 *     restart must stop it through the pid file). A nats-server killed alone is started again by
 *     its controller.
 *   - external: nats-server is a separate process (`--nats URL`) that the bench kills and
 *     restarts on its own.
 *
 * Flags: --seconds N (chaos time per run, default 60), --trials N (run_cap, default 300),
 * --agents N (default 3), --seed N (default 1), --mode embedded|external|both (default both),
 * --no-spool (agents without their spool, for comparison).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import { SweeperClient, waitForController } from '../common/api-client.js';
import type { ApiSweepDetail } from '../common/api-types.js';
import { createLogger, silentLogger } from '../common/log.js';
import { ensureNatsServer, NATS_PID_FILE, startNatsServer, type NatsPidRecord, type NatsServerHandle } from '../common/nats-server.js';
import { freePort } from '../common/net.js';
import { commandLine, describeProcess, isRunning, readRecord } from '../common/pid-file.js';

type Mode = 'embedded' | 'external';

const SPOOL = !process.argv.includes('--no-spool');
const args = new Map<string, string>();
const pairs = process.argv.slice(2).filter((a) => a !== '--no-spool');
for (let i = 0; i < pairs.length; i += 2) args.set(pairs[i].replace(/^--/, ''), pairs[i + 1]);
const num = (name: string, dflt: number) => (args.has(name) ? Number(args.get(name)) : dflt);
const SECONDS = num('seconds', 60);
const TRIALS = num('trials', 300);
const AGENTS = num('agents', 3);
const SEED = num('seed', 1);
const MODE_ARG = args.get('mode') ?? 'both';
if (!['embedded', 'external', 'both'].includes(MODE_ARG)) throw new Error(`--mode must be embedded, external or both, not '${MODE_ARG}'`);
const MODES: Mode[] = MODE_ARG === 'both' ? ['embedded', 'external'] : [MODE_ARG as Mode];

const say = (s: string) => process.stderr.write(`chaos: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLI = fileURLToPath(new URL('../cli/run.js', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../bench/fixtures/', import.meta.url));

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

function isAlive(pid: number): boolean {
  return describeProcess(pid) !== null;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

/** Live nats-servers started with this config file, found in /proc: what a run leaves behind. */
function natsServersOf(config: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      const argv = commandLine(pid);
      return argv !== null && argv.includes(config) && !argv.some((a) => a.endsWith('nats-guardian.mjs')) && isAlive(pid);
    });
}

interface Outcome {
  /** measure → value, in the table's order. */
  values: Map<string, string>;
  ok: boolean;
}

/** The controller process: restarted by the bench after each kill, and when it exits on its own (a failed start). */
class Controller {
  child!: ChildProcess;
  failedStarts = 0;
  private stderrTail = '';
  private readonly killed = new WeakSet<ChildProcess>();
  private closing = false;

  constructor(private readonly argv: string[], private readonly env: NodeJS.ProcessEnv) {
    this.start();
  }

  start(): void {
    const child = spawn(process.execPath, [CLI, 'server', ...this.argv], { stdio: ['ignore', 'ignore', 'pipe'], env: this.env });
    child.stderr!.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-2000)));
    child.once('exit', (code, signal) => {
      if (this.killed.has(child) || this.closing) return;
      // Nothing but the bench stops it: this is a restart that did not come up, or a crash.
      this.failedStarts++;
      say(`controller exited by itself (${code ?? signal}):\n${this.stderrTail}`);
      setTimeout(() => !this.closing && this.start(), 500);
    });
    this.child = child;
    this.stderrTail = '';
  }

  /** SIGKILL, as a crash would; resolves once it is gone. */
  async kill(): Promise<void> {
    this.killed.add(this.child);
    this.child.kill('SIGKILL');
    await exited(this.child);
  }

  /** Stopped first, so that it cannot act on what is done to it before the SIGKILL. */
  freeze(): void {
    this.child.kill('SIGSTOP');
  }

  async close(): Promise<void> {
    this.closing = true;
    this.child.kill('SIGTERM');
    await Promise.race([exited(this.child), sleep(10_000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) await this.kill();
  }
}

async function runChaos(mode: Mode): Promise<Outcome> {
  const rng = seedrandom(String(SEED));
  const dir = mkdtempSync(join(tmpdir(), `sweeper-chaos-${mode}-`));
  const chaosDir = join(dir, 'trials');
  mkdirSync(chaosDir);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const env = { ...process.env, SWEEPER_LOG_LEVEL: 'warn', CHAOS_DIR: chaosDir };
  const spoolArgs = SPOOL ? ['--spool-dir', join(dir, 'spool')] : ['--no-spool'];

  // external: the bench's own nats-server. embedded: the controller's, in its data folder.
  const storeDir = mode === 'external' ? join(dir, 'nats') : join(dir, 'server', 'nats');
  const natsConfig = join(storeDir, 'nats-server.conf');
  let nats: NatsServerHandle | undefined = mode === 'external' ? await startNatsServer({ storeDir, log: silentLogger }) : undefined;
  const natsPort = nats?.port ?? (await freePort());
  const serverArgs =
    mode === 'external'
      ? ['--port', String(port), '--nats', nats!.url, '--heartbeat-timeout', '4', '--no-dashboard']
      : ['--port', String(port), '--data', join(dir, 'server'), '--nats-port', String(natsPort), '--heartbeat-timeout', '4', '--no-dashboard'];
  const embeddedRecord = () => readRecord<NatsPidRecord>(join(storeDir, NATS_PID_FILE));

  let sweepId = '';
  const startAgent = (i: number) =>
    spawn(process.execPath, [CLI, 'agent', sweepId, '--controller', address, '--agent-id', `chaos-${i}`, '--grace', '1', '--max-initial-failures', '0', ...spoolArgs], {
      cwd: FIXTURES,
      stdio: ['ignore', 'ignore', 'ignore'],
      env,
    });

  const controller = new Controller(serverArgs, env);
  const client = new SweeperClient(address);
  const agents: ChildProcess[] = [];
  const kills = { controller: 0, withGuardian: 0, agent: 0, nats: 0 };
  try {
    await waitForController(client);
    const sweep = await client.createSweep(
      JSON.stringify({
        method: 'random',
        seed: 5,
        run_cap: TRIALS,
        metric: { name: 'loss' },
        program: 'chaos-trial.cjs',
        // JSON.stringify writes 0.0 as 0, which would make x an int_uniform: bounds that are plainly floats.
        parameters: { x: { min: 0.001, max: 0.999 }, steps: { value: 5 }, interval: { value: 40 } },
      }),
      'chaos.json',
    );
    sweepId = sweep.id;
    for (let i = 0; i < AGENTS; i++) agents.push(startAgent(i));

    say(`${mode}: ${TRIALS} trials, ${AGENTS} agents, killing something every 1-4 s for ${SECONDS} s`);
    const chaosEnd = Date.now() + SECONDS * 1000;
    while (Date.now() < chaosEnd) {
      await sleep(1000 + rng() * 3000);
      const roll = rng();
      if (roll < 0.3) {
        kills.controller++;
        const guardian = mode === 'embedded' && rng() < 0.5 ? embeddedRecord()?.guardian : undefined;
        // The record may be a dead generation's while the controller is starting: prove the pid.
        const gArgv = guardian === undefined ? null : commandLine(guardian);
        const isGuardian = gArgv !== null && gArgv.some((a) => a.endsWith('nats-guardian.mjs')) && gArgv.includes(natsConfig);
        if (isGuardian) {
          // As `kill -9` of everything it runs, or the OOM killer, would: its nats-server is
          // orphaned, and only the pid file names it.
          kills.withGuardian++;
          controller.freeze();
          try {
            process.kill(guardian!, 'SIGKILL');
          } catch {
            // Gone since.
          }
        }
        await controller.kill();
        await sleep(200 + rng() * 1500);
        controller.start();
      } else if (roll < 0.8) {
        const i = Math.floor(rng() * AGENTS);
        kills.agent++;
        agents[i].kill('SIGKILL');
        await exited(agents[i]);
        await sleep(200 + rng() * 800);
        agents[i] = startAgent(i);
      } else if (nats) {
        kills.nats++;
        nats.kill();
        await sleep(500 + rng() * 1500);
        nats = await startNatsServer({ storeDir, port: natsPort, log: silentLogger });
      } else {
        // Embedded: its controller starts it again.
        const rec = embeddedRecord();
        if (rec && isRunning(rec) && commandLine(rec.pid)?.includes(natsConfig)) {
          kills.nats++;
          process.kill(rec.pid, 'SIGKILL');
        }
      }
    }
    say(`${mode}: chaos over (${kills.controller} controller, ${kills.agent} agent, ${kills.nats} nats-server kills); letting the sweep finish`);
    // Agents that exited (sweep over) are not restarted; one that died is.
    let detail: ApiSweepDetail | undefined;
    const deadline = Date.now() + 180_000;
    for (;;) {
      try {
        detail = await client.getSweep(sweepId);
        if (detail.sweep.state === 'finished' && !detail.trials.some((t) => t.state === 'running')) break;
      } catch {
        // The controller may still be starting.
      }
      if (Date.now() > deadline) throw new Error(`sweep did not finish: ${JSON.stringify(detail?.sweep)}`);
      await sleep(500);
    }
    await Promise.all(agents.map((a) => Promise.race([exited(a), sleep(20_000)])));
    // Every point the controller holds, replayed by a fresh controller from JetStream alone.
    await controller.kill();
    controller.start();
    let final: ApiSweepDetail | undefined;
    for (let i = 0; i < 300; i++) {
      try {
        final = await client.getSweep(sweepId);
        const stats = await client.getStats();
        const stored = final.trials.reduce((n, t) => n + t.points, 0);
        if (stats.points >= stored && stored > 0) break;
      } catch {
        // Starting.
      }
      await sleep(200);
    }
    if (!final) throw new Error('no final state');

    const finished = final.trials.filter((t) => t.state === 'finished');
    const crashed = final.trials.filter((t) => t.state === 'crashed');
    let sentFinished = 0;
    let storedFinished = 0;
    let sentCrashed = 0;
    let storedCrashed = 0;
    let startedTwice = 0;
    for (const t of final.trials) {
      const sent = lines(join(chaosDir, `${t.id}.points`));
      if (t.state === 'finished') {
        sentFinished += sent;
        storedFinished += t.points;
      } else if (t.state === 'crashed') {
        sentCrashed += sent;
        storedCrashed += t.points;
      }
      if (lines(join(chaosDir, `${t.id}.starts`)) > 1) startedTwice++;
    }
    const completedParams = new Map<string, number>();
    for (const t of final.trials) if (t.state !== 'crashed') completedParams.set(t.paramsJson, (completedParams.get(t.paramsJson) ?? 0) + 1);
    const duplicateParams = [...completedParams.values()].filter((n) => n > 1).length;
    for (const [params, n] of completedParams) {
      if (n < 2) continue;
      for (const t of final.trials.filter((x) => x.paramsJson === params)) {
        const d = await client.getTrial(t.id);
        say(`duplicate ${t.id} ${t.state} ${t.reason} :: ${d.history.map((h) => `${h.state}(${h.reason})`).join(' → ')}`);
      }
    }
    await Promise.all(agents.map((a) => (a.exitCode === null ? (a.kill('SIGKILL'), exited(a)) : undefined)));
    await sleep(1500);
    const orphans = readdirSync(chaosDir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(join(chaosDir, f), 'utf8')))
      .filter(isAlive).length;
    // While it runs: the one current server, no stale one beside it. After a graceful stop: none.
    const natsWhileUp = natsServersOf(natsConfig).length;
    await controller.close();
    await nats?.stop();
    nats = undefined;
    await sleep(500);
    const natsLeft = natsServersOf(natsConfig).length;

    const values = new Map<string, string>([
      ['kills: controller / agent / nats-server', `${kills.controller} / ${kills.agent} / ${kills.nats}`],
      ['controller kills that took its guardian too (server orphaned)', mode === 'embedded' ? String(kills.withGuardian) : '-'],
      ['controller restarts that did not come up', String(controller.failedStarts)],
      ['trials completed (finished)', `${finished.length} of ${TRIALS}`],
      ['trials crashed with their agent (each run again)', String(crashed.length)],
      ['points: printed by finished trials / stored', `${sentFinished} / ${storedFinished}`],
      ['points: printed by crashed trials / stored', `${sentCrashed} / ${storedCrashed}`],
      ['duplicate trials (params completed twice, ids started twice)', `${duplicateParams}, ${startedTwice}`],
      ['orphaned trial processes', String(orphans)],
      ['nats-servers of the store: at the end / after stopping', `${natsWhileUp} / ${natsLeft}`],
    ]);
    const ok =
      finished.length === TRIALS &&
      sentFinished === storedFinished &&
      duplicateParams === 0 &&
      startedTwice === 0 &&
      orphans === 0 &&
      controller.failedStarts === 0 &&
      natsWhileUp === 1 &&
      natsLeft === 0;
    return { values, ok };
  } finally {
    client.close();
    for (const a of agents) if (a.exitCode === null) a.kill('SIGKILL');
    await controller.close();
    await nats?.stop();
    // Whatever a failed run left: only a process the pid file still proves to be this store's server.
    const rec = embeddedRecord();
    if (rec && isRunning(rec) && commandLine(rec.pid)?.includes(natsConfig)) process.kill(rec.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const TARGETS = new Map<string, string>([
  ['controller restarts that did not come up', '0'],
  ['trials completed (finished)', `= ${TRIALS}`],
  ['points: printed by finished trials / stored', 'equal'],
  ['points: printed by crashed trials / stored', SPOOL ? '(spool on: only lines in the pipe are lost)' : '(--no-spool: what the agent held is lost)'],
  ['duplicate trials (params completed twice, ids started twice)', '0, 0'],
  ['orphaned trial processes', '0'],
  ['nats-servers of the store: at the end / after stopping', '1 / 0'],
]);

function printTable(results: Map<Mode, Outcome>): void {
  const measures = [...[...results.values()][0].values.keys()];
  const modes = [...results.keys()];
  const w0 = Math.max('measure'.length, ...measures.map((m) => m.length));
  const widths = modes.map((m) => Math.max(m.length, ...measures.map((x) => results.get(m)!.values.get(x)!.length)));
  const row = (cells: string[], target: string) =>
    `${cells[0].padEnd(w0)}  ${cells
      .slice(1)
      .map((c, i) => c.padStart(widths[i]))
      .join('  ')}  ${target}\n`;
  let out = `\n${row(['measure', ...modes], 'target')}${'-'.repeat(w0 + widths.reduce((a, b) => a + b + 2, 0) + 10)}\n`;
  for (const m of measures) out += row([m, ...modes.map((x) => results.get(x)!.values.get(m)!)], TARGETS.get(m) ?? '');
  out += '\n';
  for (const m of modes) out += `${results.get(m)!.ok ? 'PASS' : 'FAIL'} (${m}): nothing lost, nothing run twice, no orphans, every restart up\n`;
  process.stdout.write(out);
}

async function main(): Promise<void> {
  await ensureNatsServer({ install: true, log: createLogger('chaos') });
  const results = new Map<Mode, Outcome>();
  for (const mode of MODES) results.set(mode, await runChaos(mode));
  printTable(results);
  if ([...results.values()].some((r) => !r.ok)) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
