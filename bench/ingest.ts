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
 * 5. Live output: on that controller, a second sweep's trials log as in phase 2, first alone,
 *    then while one of them prints --output-rate lines/s (default 10,000) through the agent's
 *    live output publisher (agent/output-publisher.ts), with its default limits (most lines
 *    dropped and counted) and with the limits lifted (every line streamed): what live output
 *    costs the metric path, each run against the same baseline.
 *
 * Flags: --rate N (points/s offered in phase 2, default 60000), --seconds N (default 10),
 * --trials N (default 1000), --steps N (default 1000), --spool 0|1 (journal every point to the
 * agents' disk spool as `sweeper agent` does, default 1), --output-rate N (0 skips phase 5).
 * A quick run: --seconds 3 --trials 100 --steps 100.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from 'nats';
import type { OutputLimits } from '../agent/output-limits.js';
import { OutputPublisher } from '../agent/output-publisher.js';
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
const OUTPUT_RATE = args.get('output-rate') ?? 10_000;
/** What phase 5's chatty trial prints: a typical training log line. */
const OUTPUT_LINE = 'epoch 3 step 1234/5000: loss 0.4321 - acc 0.8765 - lr 0.001 - grad_norm 1.23';
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

    const waitApplied = async (target: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await client.getStats();
        if (s.points >= target || Date.now() > deadline) return s;
        await sleep(50);
      }
    };
    /** TRIALS trials of a new sweep on AGENTS simulated agents, each with its publisher. */
    const startLoad = async (tag: string) => {
      const sweep = await client.createSweep(
        JSON.stringify({ method: 'random', run_cap: TRIALS, metric: { name: 'loss' }, program: 'train.py', parameters: { x: { min: 0.0, max: 1.0 } } }),
        'bench.json',
      );
      const agentTrials: string[][] = Array.from({ length: AGENTS }, () => []);
      for (let a = 0; a < AGENTS; a++) {
        await client.registerAgent({ agentId: `${tag}-${a}`, sweepId: sweep.id, hostname: 'bench', pid: process.pid, slots: TRIALS });
      }
      for (let i = 0; i < TRIALS; i++) {
        const res = await client.requestTrial(`${tag}-${i % AGENTS}`, sweep.id);
        agentTrials[i % AGENTS].push(res.trial!.trialId);
      }
      const publishers: MetricPublisher[] = [];
      const agentConns: NatsConnection[] = [];
      for (let a = 0; a < AGENTS; a++) {
        const nc = await connectNats(nats.url, { name: `${tag}-agent-${a}`, log: silentLogger });
        conns.push(nc);
        agentConns.push(nc);
        // Each simulated agent its own spool folder, as separate agent processes would have.
        const journal = SPOOL ? new MetricSpool({ dir: join(dir, `spool-${tag}`), sweepId: sweep.id, log: silentLogger, pid: 1_000_000 + a }) : undefined;
        publishers.push(new MetricPublisher({ nc, sweepId: sweep.id, agentId: `${tag}-${a}`, log: silentLogger, journal }));
      }
      const steps = new Map<string, number>();
      const load = {
        sweep,
        agentTrials,
        agentConns,
        offered: 0,
        emit(count: number) {
          const now = Date.now();
          for (let k = 0; k < count; k++) {
            const a = load.offered % AGENTS;
            const list = agentTrials[a];
            const trial = list[Math.floor(load.offered / AGENTS) % list.length];
            const step = (steps.get(trial) ?? 0) + 1;
            steps.set(trial, step);
            publishers[a].add(trial, { step, t: now, values: { loss: 1 / step + Math.random() * 0.01, acc: 1 - 1 / step } });
            load.offered++;
          }
        },
        flushAll: () => Promise.all(publishers.map((p, a) => Promise.all(agentTrials[a].map((id) => p.flushTrial(id))))),
        close: () => Promise.all(publishers.map((p) => p.close())),
        /**
         * RATE points/s for SECONDS, calling `onTick` on each tick; the points the controller
         * applied per second over the phase, once everything offered has been applied.
         */
        async sustain(onTick?: (elapsedS: number) => void) {
          const applied = (await client.getStats()).points;
          const offeredBefore = load.offered;
          const start = performance.now();
          while (performance.now() - start < SECONDS * 1000) {
            const elapsedS = (performance.now() - start) / 1000;
            const due = offeredBefore + Math.floor(elapsedS * RATE);
            if (due > load.offered) load.emit(due - load.offered);
            onTick?.(elapsedS);
            await sleep(10);
          }
          await load.flushAll();
          const stats = await waitApplied(applied + load.offered - offeredBefore, 60_000);
          const elapsed = (performance.now() - start) / 1000;
          say(`ingested ${fmt(stats.points - applied)} of ${fmt(load.offered - offeredBefore)} points in ${elapsed.toFixed(1)}s`);
          return { stats, rate: (stats.points - applied) / elapsed };
        },
      };
      return load;
    };

    // ---- 2. sustained rate ---------------------------------------------------------------------
    const first = await startLoad('bench');
    const { sweep, emit, flushAll } = first;
    say(`offering ${fmt(RATE)} points/s for ${SECONDS}s over ${TRIALS} trials`);
    const { stats: s2, rate: ingestRate } = await first.sustain();
    rows.push([`Sweeper ingest, ${TRIALS} trials, ${fmt(RATE)} points/s offered, spool ${SPOOL ? 'on' : 'off'}`, `${fmt(ingestRate)} points/s`, '≥ 50,000']);
    rows.push(['  ratio to baseline', `${(ingestRate / baselineRate).toFixed(1)}×`, '']);
    rows.push(['  lag p50 (capture → controller)', `${s2.lagP50Ms.toFixed(0)} ms`, '']);
    rows.push(['  lag p99', `${s2.lagP99Ms.toFixed(0)} ms`, '< 1,000 ms']);

    // ---- 3. fill to STEPS per trial, then memory -----------------------------------------------
    const total = TRIALS * STEPS;
    say(`filling to ${fmt(total)} points`);
    const fillStart = performance.now();
    while (first.offered < total) {
      emit(Math.min(20_000, total - first.offered));
      // Keep the publishers' buffers bounded: let them drain between chunks.
      await flushAll();
    }
    await first.close();
    const offered = first.offered;
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

    // ---- 5. live output ----------------------------------------------------------------------
    if (OUTPUT_RATE > 0) {
      const second = await startLoad('output');
      const chatty = second.agentTrials[0][0];
      say(`second sweep: ${fmt(RATE)} points/s for ${SECONDS}s, no output`);
      const alone = await second.sustain();
      rows.push([`live output: ${TRIALS} more trials, ${fmt(RATE)} points/s offered, no output`, `${fmt(alone.rate)} points/s`, '']);
      const withOutput = async (label: string, limits: Partial<OutputLimits>) => {
        const output = new OutputPublisher({ nc: second.agentConns[0], sweepId: second.sweep.id, agentId: 'output-0', log: silentLogger, limits });
        let printed = 0;
        say(`again, with ${chatty} printing ${fmt(OUTPUT_RATE)} lines/s (${label})`);
        const { rate } = await second.sustain((elapsedS) => {
          for (const due = Math.floor(elapsedS * OUTPUT_RATE); printed < due; printed++) output.add(chatty, printed % 10 === 9 ? 'stderr' : 'stdout', OUTPUT_LINE);
        });
        const done = await output.finishTrial(chatty, { timeoutMs: 30_000 });
        output.close();
        rows.push([`  with one trial printing ${fmt(OUTPUT_RATE)} lines/s, ${label}`, `${fmt(rate)} points/s`, '']);
        rows.push(['    its lines streamed / dropped', `${fmt(done.sent)} / ${fmt(done.dropped.rate + done.dropped.backlog)}`, '']);
      };
      await withOutput('default limits (1,000 lines/s)', {});
      await withOutput('limits lifted', { linesPerSecond: 1e9, bytesPerSecond: 1e12, maxPendingBytes: 256 * 1024 * 1024 });
      await second.close();
      const s6 = await client.getStats();
      rows.push(['  controller RSS after', `${(s6.rssBytes / 1024 / 1024).toFixed(0)} MB`, '']);
    }

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
