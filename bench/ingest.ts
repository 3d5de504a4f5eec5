/**
 * `npm run bench:ingest`: metric points through the real agent publishing path (MetricPublisher
 * over NATS JetStream) into a real controller process, measured end to end.
 *
 * 1. Baseline, same run and machine: one JetStream message per point, acks in flight (what a
 *    naive agent would do).
 * 2. Sustained: 1,000 trials on 4 simulated agents logging at a fixed total rate for a while;
 *    ingest rate and capture-to-controller lag (p50/p99, measured by the controller).
 * 3. Memory: the trials fill up to 1,000 steps each (1M points); controller RSS then.
 * 4. Restart: the controller is killed (SIGKILL) and started again on the same JetStream; time
 *    until it serves requests, and until it has replayed every point.
 *
 * Flags: --rate N (points/s offered in phase 2, default 60000), --seconds N (default 10),
 * --trials N (default 1000), --steps N (default 1000), --spool 0|1 (journal every point to the
 * agents' disk spool as `sweeper agent` does, default 1).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from 'nats';
import { MetricPublisher } from '../agent/publisher.js';
import { MetricSpool } from '../agent/spool.js';
import { SweeperClient, waitForController } from '../common/api-client.js';
import { createLogger, silentLogger } from '../common/log.js';
import { connectNats, ensureStream } from '../common/nats-connect.js';
import { ensureNatsServer, startNatsServer } from '../common/nats-server.js';
import { freePort } from '../common/net.js';

const args = new Map<string, number>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), Number(process.argv[i + 1]));
const RATE = args.get('rate') ?? 60_000;
const SECONDS = args.get('seconds') ?? 10;
const TRIALS = args.get('trials') ?? 1000;
const STEPS = args.get('steps') ?? 1000;
const SPOOL = (args.get('spool') ?? 1) !== 0;
const AGENTS = 4;
const BASELINE_POINTS = 20_000;

const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function main(): Promise<void> {
  await ensureNatsServer({ install: true, log: createLogger('bench') });
  const dir = mkdtempSync(join(tmpdir(), 'sweeper-bench-'));
  const nats = await startNatsServer({ storeDir: join(dir, 'nats'), host: '127.0.0.1', port: -1, log: silentLogger });
  const port = await freePort();
  const cli = fileURLToPath(new URL('../cli/run.js', import.meta.url));
  const startServer = () =>
    spawn(process.execPath, [cli, 'server', '--port', String(port), '--nats', nats.url, '--no-dashboard'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, SWEEPER_LOG_LEVEL: 'warn' },
    });
  let controller = startServer();
  const client = new SweeperClient(`127.0.0.1:${port}`);
  const conns: NatsConnection[] = [];
  try {
    await waitForController(client);
    const rows: Array<[string, string, string]> = [];

    // ---- 1. baseline: a message per point ------------------------------------------------------
    const base = await connectNats(nats.url, { name: 'bench-baseline', log: silentLogger });
    conns.push(base);
    await ensureStream(await base.jetstreamManager(), { name: 'BENCH_BASELINE', subjects: ['bench.baseline.>'] });
    const js = base.jetstream();
    const t0 = performance.now();
    const inflight: Promise<unknown>[] = [];
    for (let i = 0; i < BASELINE_POINTS; i++) {
      inflight.push(js.publish('bench.baseline.x', new TextEncoder().encode(JSON.stringify({ step: i, t: Date.now(), values: { loss: Math.random() } }))));
      if (inflight.length >= 256) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
    const baselineRate = BASELINE_POINTS / ((performance.now() - t0) / 1000);
    rows.push(['baseline: 1 JetStream msg per point, acks in flight', `${fmt(baselineRate)} points/s`, '']);
    say(`baseline ${fmt(baselineRate)} points/s`);

    // ---- set up trials -------------------------------------------------------------------------
    const sweep = await client.createSweep(
      JSON.stringify({ method: 'random', run_cap: TRIALS, metric: { name: 'loss' }, program: 'train.py', parameters: { x: { min: 0.0, max: 1.0 } } }),
      'bench.json',
    );
    const agentTrials: string[][] = Array.from({ length: AGENTS }, () => []);
    for (let a = 0; a < AGENTS; a++) {
      await client.registerAgent({ agentId: `bench-${a}`, sweepId: sweep.id, hostname: 'bench', pid: process.pid, slots: TRIALS });
    }
    for (let i = 0; i < TRIALS; i++) {
      const res = await client.requestTrial(`bench-${i % AGENTS}`, sweep.id);
      agentTrials[i % AGENTS].push(res.trial!.trialId);
    }
    const publishers: MetricPublisher[] = [];
    for (let a = 0; a < AGENTS; a++) {
      const nc = await connectNats(nats.url, { name: `bench-agent-${a}`, log: silentLogger });
      conns.push(nc);
      // Each simulated agent its own spool folder, as separate agent processes would have.
      const journal = SPOOL ? new MetricSpool({ dir: join(dir, 'spool'), sweepId: sweep.id, log: silentLogger, pid: 1_000_000 + a }) : undefined;
      publishers.push(new MetricPublisher({ nc, sweepId: sweep.id, agentId: `bench-${a}`, log: silentLogger, journal }));
    }
    const steps = new Map<string, number>();
    let offered = 0;
    const emit = (count: number) => {
      const now = Date.now();
      for (let k = 0; k < count; k++) {
        const a = offered % AGENTS;
        const list = agentTrials[a];
        const trial = list[Math.floor(offered / AGENTS) % list.length];
        const step = (steps.get(trial) ?? 0) + 1;
        steps.set(trial, step);
        publishers[a].add(trial, { step, t: now, values: { loss: 1 / step + Math.random() * 0.01, acc: 1 - 1 / step } });
        offered++;
      }
    };
    const flushAll = () => Promise.all(publishers.map((p, a) => Promise.all(agentTrials[a].map((id) => p.flushTrial(id)))));
    const waitApplied = async (target: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await client.getStats();
        if (s.points >= target || Date.now() > deadline) return s;
        await sleep(50);
      }
    };

    // ---- 2. sustained rate ---------------------------------------------------------------------
    say(`offering ${fmt(RATE)} points/s for ${SECONDS}s over ${TRIALS} trials`);
    const start = performance.now();
    const tickMs = 10;
    while (performance.now() - start < SECONDS * 1000) {
      const due = Math.floor(((performance.now() - start) / 1000) * RATE);
      if (due > offered) emit(due - offered);
      await sleep(tickMs);
    }
    const offeredPhase2 = offered;
    await flushAll();
    const s2 = await waitApplied(offeredPhase2, 60_000);
    const elapsed2 = (performance.now() - start) / 1000;
    const ingestRate = s2.points / elapsed2;
    rows.push([`Sweeper ingest, ${TRIALS} trials, ${fmt(RATE)} points/s offered, spool ${SPOOL ? 'on' : 'off'}`, `${fmt(ingestRate)} points/s`, '≥ 50,000']);
    rows.push(['  ratio to baseline', `${(ingestRate / baselineRate).toFixed(1)}×`, '']);
    rows.push(['  lag p50 (capture → controller)', `${s2.lagP50Ms.toFixed(0)} ms`, '']);
    rows.push(['  lag p99', `${s2.lagP99Ms.toFixed(0)} ms`, '< 1,000 ms']);
    say(`ingested ${fmt(s2.points)} of ${fmt(offeredPhase2)} points in ${elapsed2.toFixed(1)}s`);

    // ---- 3. fill to STEPS per trial, then memory -----------------------------------------------
    const total = TRIALS * STEPS;
    say(`filling to ${fmt(total)} points`);
    const fillStart = performance.now();
    while (offered < total) {
      emit(Math.min(20_000, total - offered));
      // Keep the publishers' buffers bounded: let them drain between chunks.
      await flushAll();
    }
    await Promise.all(publishers.map((p) => p.close()));
    const s3 = await waitApplied(offered, 120_000);
    const fillRate = (s3.points - s2.points) / ((performance.now() - fillStart) / 1000);
    await sleep(1000);
    const s4 = await client.getStats();
    rows.push([`fill as fast as possible to ${fmt(total)} points`, `${fmt(fillRate)} points/s`, '']);
    rows.push([`controller RSS holding ${TRIALS} trials × ${STEPS} steps`, `${(s4.rssBytes / 1024 / 1024).toFixed(0)} MB`, '< 300 MB']);
    rows.push(['  points applied / sent', `${fmt(s4.points)} / ${fmt(offered)}`, 'equal']);
    rows.push(['  duplicates dropped, rejected', `${s4.duplicates}, ${Object.values(s4.rejected).reduce((a, b) => a + b, 0)}`, '']);

    // ---- 4. restart --------------------------------------------------------------------------
    controller.kill('SIGKILL');
    await new Promise((r) => controller.once('exit', r));
    const restartAt = performance.now();
    controller = startServer();
    let served = 0;
    for (;;) {
      try {
        const d = await client.getSweep(sweep.id, 1);
        if (d.sweep.trialCount === TRIALS) {
          served = performance.now() - restartAt;
          break;
        }
      } catch {
        // Not up yet.
      }
      await sleep(20);
    }
    const s5 = await waitApplied(offered, 120_000);
    const replayed = performance.now() - restartAt;
    rows.push([`restart after SIGKILL: serving ${TRIALS} trials again`, `${(served / 1000).toFixed(2)} s`, '< 5 s']);
    rows.push([`  every point replayed (${fmt(s5.points)})`, `${(replayed / 1000).toFixed(2)} s`, '']);

    const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length)), 10];
    const line = (r: [string, string, string]) => `${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2]}`;
    process.stdout.write('\n' + line(['measure', 'value', 'target']) + '\n' + '-'.repeat(w[0] + w[1] + 14) + '\n');
    for (const r of rows) process.stdout.write(line(r) + '\n');
  } finally {
    client.close();
    for (const c of conns) await c.close().catch(() => undefined);
    controller.kill('SIGTERM');
    await new Promise((r) => controller.once('exit', r));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
