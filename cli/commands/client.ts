/** Subcommands that talk to a running controller: create, ls, logs, pause/resume/stop. */
import { clientFrom, type ClientOptions } from '../client-options.js';
import { parseConfigText } from '../../controller/config/parse.js';
import { readConfigText } from '../../controller/config/load.js';


export async function runCreate(file: string, o: ClientOptions): Promise<void> {
  const text = await readConfigText(file);
  // Validate locally first: the same errors, without a round trip, and warnings shown here.
  const { warnings } = parseConfigText(text, file);
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  const client = clientFrom(o);
  try {
    const sweep = await client.createSweep(text, file);
    const ctrl = o.controller === '127.0.0.1:50051' ? '' : ` --controller ${o.controller}`;
    process.stdout.write(
      `Created sweep ${sweep.id} (${sweep.method}${sweep.trialLimit ? `, ${sweep.trialLimit} trials` : ''})\n` +
        `Run agents with:  sweeper agent ${sweep.id}${ctrl}\n` +
        `Watch it with:    sweeper watch ${sweep.id}${ctrl}\n`,
    );
  } finally {
    client.close();
  }
}

export async function runLs(o: ClientOptions & { json?: boolean }): Promise<void> {
  const client = clientFrom(o);
  try {
    const sweeps = await client.listSweeps();
    if (o.json) {
      process.stdout.write(JSON.stringify(sweeps, null, 2) + '\n');
      return;
    }
    if (sweeps.length === 0) {
      process.stdout.write('no sweeps\n');
      return;
    }
    const rows = [['SWEEP', 'NAME', 'METHOD', 'STATE', 'TRIALS', 'BEST', 'CREATED']];
    for (const s of sweeps) {
      rows.push([
        s.id,
        s.name || '-',
        s.method,
        s.state,
        s.trialLimit ? `${s.trialCount}/${s.trialLimit}` : String(s.trialCount),
        s.bestValue !== undefined && s.bestValue !== null ? `${s.metricName}=${Number(s.bestValue.toPrecision(6))}` : '-',
        new Date(s.createdAt).toISOString().replace('T', ' ').slice(0, 19),
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd() + '\n');
  } finally {
    client.close();
  }
}

export async function runLogs(trialId: string, o: ClientOptions): Promise<void> {
  const client = clientFrom(o);
  try {
    const d = await client.getTrial(trialId);
    const t = d.trial;
    process.stdout.write(`trial ${t.id}: ${t.state}${t.reason ? ` (${t.reason})` : ''}\n`);
    if (d.argv.length) process.stdout.write(`command: ${JSON.stringify(d.argv)}\n`);
    for (const m of d.metrics) {
      const invalid = m.invalid ? `, ${m.invalid} invalid (NaN/Inf)` : '';
      process.stdout.write(`metric ${m.name}: last ${m.last}, min ${m.min}, max ${m.max} (${m.count} values${invalid})\n`);
    }
    if (d.malformedLines) process.stdout.write(`${d.malformedLines} output lines looked like metrics but could not be read\n`);
    if (t.missingPoints) process.stdout.write(`${t.missingPoints} metric points the agent reported sending have not arrived\n`);
    if (t.droppedPoints) process.stdout.write(`${t.droppedPoints} metric points were dropped by the agent before sending (buffer full or too large)\n`);
    process.stdout.write(`--- stdout (last ${d.stdoutTail.length} lines) ---\n`);
    for (const l of d.stdoutTail) process.stdout.write(l + '\n');
    process.stdout.write(`--- stderr (last ${d.stderrTail.length} lines) ---\n`);
    for (const l of d.stderrTail) process.stdout.write(l + '\n');
    if (t.state === 'running') process.stdout.write('(the trial is still running: its output is kept when it ends)\n');
  } finally {
    client.close();
  }
}

export async function runSweepControl(action: 'pause' | 'resume' | 'stop' | 'cancel', sweepId: string, o: ClientOptions): Promise<void> {
  const client = clientFrom(o);
  try {
    const calls = {
      pause: () => client.pauseSweep(sweepId),
      resume: () => client.resumeSweep(sweepId),
      stop: () => client.stopSweep(sweepId),
      cancel: () => client.cancelSweep(sweepId),
    };
    const sweep = await calls[action]();
    process.stdout.write(`sweep ${sweep.id} is ${sweep.state}\n`);
  } finally {
    client.close();
  }
}

export async function runStats(o: ClientOptions & { json?: boolean }): Promise<void> {
  const client = clientFrom(o);
  try {
    const s = await client.getStats();
    if (o.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      return;
    }
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
    const rejected = Object.entries(s.rejected)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    process.stdout.write(
      [
        `controller up ${Math.round(s.uptimeMs / 1000)}s · ${s.sweeps} sweeps · ${s.trials} trials`,
        `metrics: ${s.points} points in ${s.batches} batches · ${s.duplicates} duplicate batches dropped`,
        `rejected messages: ${rejected || 'none'}`,
        `metric lag: p50 ${s.lagP50Ms.toFixed(1)} ms · p99 ${s.lagP99Ms.toFixed(1)} ms (${s.lagSamples} live points)`,
        `memory: rss ${mb(s.rssBytes)} · heap ${mb(s.heapUsedBytes)}`,
      ].join('\n') + '\n',
    );
  } finally {
    client.close();
  }
}
