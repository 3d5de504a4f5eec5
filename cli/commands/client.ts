/** Subcommands that talk to a running controller: create, ls, logs, pause/resume/stop. */
import { ApiError, sleep } from '../../common/api-client.js';
import { watchTrialOutput, type ApiTrialOutput, type TrialOutputStream } from '../../common/output-client.js';
import { clientFrom, clientSecurity, type ClientOptions } from '../client-options.js';
import { onShutdownSignals } from '../signals.js';
import { isTerminal, type TrialState } from '../../domain/trial-state.js';
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

export interface LogsOptions extends ClientOptions {
  /** Keep printing new lines until the trial ends (or a signal). */
  follow?: boolean;
}

/**
 * `sweeper logs TRIAL`: the trial's metric summary and the last lines of its output, live while
 * it runs. With --follow, its output as it is printed (the program's stdout on ours, its stderr
 * on ours), until it ends.
 */
export async function runLogs(trialId: string, o: LogsOptions): Promise<void> {
  if (o.follow) return followLogs(trialId, o);
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
    if (d.outputDroppedLines) process.stdout.write(`${droppedText(d.outputDroppedLines)}\n`);
    const live = d.liveOutput ? ', live' : '';
    process.stdout.write(`--- stdout (last ${d.stdoutTail.length} lines${live}) ---\n`);
    for (const l of d.stdoutTail) process.stdout.write(l + '\n');
    process.stdout.write(`--- stderr (last ${d.stderrTail.length} lines${live}) ---\n`);
    for (const l of d.stderrTail) process.stdout.write(l + '\n');
    if (t.state === 'running') process.stdout.write(`(the trial is still running: 'sweeper logs ${t.id} --follow' prints its lines as they come)\n`);
  } finally {
    client.close();
  }
}

function droppedText(n: number): string {
  return `${n} output line${n === 1 ? ' was' : 's were'} not streamed live (over the agent's rate limit, or while NATS was slow)`;
}

/** How long to wait before following again when the controller is away (it restarts: lines resume from the last one seen). */
const FOLLOW_RETRY_MS = 1000;

async function followLogs(trialId: string, o: LogsOptions): Promise<void> {
  const client = clientFrom(o);
  const security = clientSecurity(o);
  const stop = new AbortController();
  let stream: TrialOutputStream | undefined;
  const release = onShutdownSignals(() => {
    stop.abort();
    stream?.cancel();
  });
  try {
    // An unknown trial is a usage error (exit 2), before anything is followed.
    const start = await client.getTrial(trialId);
    process.stderr.write(`trial ${trialId}: ${start.trial.state}; following its output (Ctrl-C to stop)\n`);
    let cursor = 0;
    let last: ApiTrialOutput | undefined;
    let saidUnreachable = false;
    while (!stop.signal.aborted) {
      stream = watchTrialOutput(o.controller, security, trialId, cursor);
      try {
        for await (const chunk of stream) {
          writeLines(chunk);
          if (chunk.lines.length > 0) cursor = chunk.lines[chunk.lines.length - 1].seq;
          last = chunk;
          saidUnreachable = false;
        }
        // The stream completes once the trial has ended; one cut short (a controller going down) is followed again.
        if (last && isTerminal(last.state as TrialState)) break;
        await sleep(FOLLOW_RETRY_MS, stop.signal);
      } catch (err) {
        if (stop.signal.aborted) break;
        if (!(err instanceof ApiError && err.transient)) throw err;
        if (!saidUnreachable) process.stderr.write(`sweeper: the controller is unreachable (${err.details}); following again once it is back\n`);
        saidUnreachable = true;
        await sleep(FOLLOW_RETRY_MS, stop.signal);
      } finally {
        stream.close();
      }
    }
    if (stop.signal.aborted || !last) return;
    const end = await client.getTrial(trialId);
    if (last.droppedLines) process.stderr.write(`${droppedText(last.droppedLines)}; 'sweeper logs ${trialId}' shows the last lines its agent kept\n`);
    process.stderr.write(`--- trial ${trialId} ${end.trial.state}${end.trial.reason ? ` (${end.trial.reason})` : ''} ---\n`);
  } finally {
    release();
    client.close();
  }
}

/** Lines in order, each on the stream the program wrote it to; runs of one stream in one write. */
function writeLines(chunk: ApiTrialOutput): void {
  let i = 0;
  while (i < chunk.lines.length) {
    const stream = chunk.lines[i].stream;
    let text = '';
    for (; i < chunk.lines.length && chunk.lines[i].stream === stream; i++) text += chunk.lines[i].text + '\n';
    (stream === 'stderr' ? process.stderr : process.stdout).write(text);
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
