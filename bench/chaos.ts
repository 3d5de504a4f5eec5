/**
 * `npm run bench:chaos`: a sweep of a few hundred short trials while the controller, the agents
 * and nats-server are killed (SIGKILL) and restarted at random, for a bounded time. Then the
 * sweep is left to finish, and the bench prints:
 *   - trials completed, and whether the sweep ended with exactly run_cap of them;
 *   - metric points the finished trials' programs printed versus the points the controller
 *     stored for them (must be equal);
 *   - duplicate trials: one parameter set completed twice, or one trial id started twice
 *     (must be 0);
 *   - orphaned trial processes left alive at the end (must be 0).
 * Points of trials that crashed with their agent are reported apart: what the agent had read is in
 * its spool and is published by the agent restarted in its place; only lines still in the pipe
 * between trial and agent die with it (the trial is run again).
 *
 * `--no-spool` runs the agents without their spool, for comparison.
 *
 * Flags: --seconds N (chaos time, default 60), --trials N (run_cap, default 300), --agents N
 * (default 3), --seed N (default 1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import { SweeperClient, waitForController } from '../common/api-client.js';
import type { ApiSweepDetail } from '../common/api-types.js';
import { createLogger, silentLogger } from '../common/log.js';
import { ensureNatsServer, startNatsServer, type NatsServerHandle } from '../common/nats-server.js';
import { freePort } from '../common/net.js';

const SPOOL = !process.argv.includes('--no-spool');
const args = new Map<string, number>();
const numeric = process.argv.slice(2).filter((a) => a !== '--no-spool');
for (let i = 0; i < numeric.length; i += 2) args.set(numeric[i].replace(/^--/, ''), Number(numeric[i + 1]));
const SECONDS = args.get('seconds') ?? 60;
const TRIALS = args.get('trials') ?? 300;
const AGENTS = args.get('agents') ?? 3;
const rng = seedrandom(String(args.get('seed') ?? 1));

const say = (s: string) => process.stderr.write(`chaos: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLI = fileURLToPath(new URL('../cli/run.js', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../bench/fixtures/', import.meta.url));


function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);

async function main(): Promise<void> {
  await ensureNatsServer({ install: true, log: createLogger('chaos') });
  const dir = mkdtempSync(join(tmpdir(), 'sweeper-chaos-'));
  const chaosDir = join(dir, 'trials');
  await import('node:fs').then((fs) => fs.mkdirSync(chaosDir));
  let nats: NatsServerHandle = await startNatsServer({ storeDir: join(dir, 'nats'), log: silentLogger });
  const natsPort = nats.port;
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const env = { ...process.env, SWEEPER_LOG_LEVEL: 'warn', CHAOS_DIR: chaosDir };
  const spoolArgs = SPOOL ? ['--spool-dir', join(dir, 'spool')] : ['--no-spool'];

  const startController = () =>
    spawn(process.execPath, [CLI, 'server', '--port', String(port), '--nats', nats.url, '--heartbeat-timeout', '4', '--no-dashboard'], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env,
    });
  let sweepId = '';
  const startAgent = (i: number) =>
    spawn(process.execPath, [CLI, 'agent', sweepId, '--controller', address, '--agent-id', `chaos-${i}`, '--grace', '1', '--max-initial-failures', '0', ...spoolArgs], {
      cwd: FIXTURES,
      stdio: ['ignore', 'ignore', 'ignore'],
      env,
    });

  let controller = startController();
  const client = new SweeperClient(address);
  const agents: ChildProcess[] = [];
  const kills = { controller: 0, agent: 0, nats: 0 };
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

    say(`${TRIALS} trials, ${AGENTS} agents, killing something every 1-4 s for ${SECONDS} s`);
    const chaosEnd = Date.now() + SECONDS * 1000;
    while (Date.now() < chaosEnd) {
      await sleep(1000 + rng() * 3000);
      const roll = rng();
      if (roll < 0.3) {
        kills.controller++;
        controller.kill('SIGKILL');
        await exited(controller);
        await sleep(200 + rng() * 1500);
        controller = startController();
      } else if (roll < 0.8) {
        const i = Math.floor(rng() * AGENTS);
        kills.agent++;
        agents[i].kill('SIGKILL');
        await exited(agents[i]);
        await sleep(200 + rng() * 800);
        agents[i] = startAgent(i);
      } else {
        kills.nats++;
        nats.kill();
        await sleep(500 + rng() * 1500);
        nats = await startNatsServer({ storeDir: join(dir, 'nats'), port: natsPort, log: silentLogger });
      }
    }
    say(`chaos over (${kills.controller} controller, ${kills.agent} agent, ${kills.nats} nats-server kills); letting the sweep finish`);
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
    controller.kill('SIGKILL');
    await exited(controller);
    controller = startController();
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

    const rows: Array<[string, string, string]> = [
      ['kills: controller / agent / nats-server', `${kills.controller} / ${kills.agent} / ${kills.nats}`, ''],
      ['trials completed (finished)', `${finished.length} of run_cap ${TRIALS}`, `= ${TRIALS}`],
      ['trials crashed with their agent (each run again)', String(crashed.length), ''],
      ['points: printed by finished trials / stored', `${sentFinished} / ${storedFinished}`, 'equal'],
      ['points: printed by crashed trials / stored', `${sentCrashed} / ${storedCrashed}`, SPOOL ? '(spool on: only lines in the pipe are lost)' : '(--no-spool: what the agent held is lost)'],
      ['duplicate trials (params completed twice, ids started twice)', `${duplicateParams}, ${startedTwice}`, '0, 0'],
      ['orphaned trial processes', String(orphans), '0'],
    ];
    const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
    process.stdout.write(`\n${'measure'.padEnd(w[0])}  ${'value'.padStart(w[1])}  target\n${'-'.repeat(w[0] + w[1] + 22)}\n`);
    for (const r of rows) process.stdout.write(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2]}\n`);
    const ok = finished.length === TRIALS && sentFinished === storedFinished && duplicateParams === 0 && startedTwice === 0 && orphans === 0;
    process.stdout.write(`\n${ok ? 'PASS' : 'FAIL'}: nothing lost, nothing run twice, no orphans\n`);
    if (!ok) process.exitCode = 1;
  } finally {
    client.close();
    for (const a of agents) if (a.exitCode === null) a.kill('SIGKILL');
    controller.kill('SIGTERM');
    await Promise.race([exited(controller), sleep(5000)]);
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
