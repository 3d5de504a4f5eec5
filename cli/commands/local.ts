/**
 * `sweeper local FILE`: the whole system on one machine. Starts nats-server (installing Debian's
 * package if it is missing and we may), the controller in this process and N agents as child
 * processes in the config file's folder, shows the live leaderboard until the sweep is over,
 * then prints the best trials, where the data lives and the `sweeper open DIR` that serves it
 * again. Exits 3 (EXIT.noTrialFinished) when no trial finished.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../common/log.js';
import { ensureNatsServer } from '../../common/nats-server.js';
import type { ParamValue } from '../../domain/values.js';
import { parseTypedJson, stringifyTyped } from '../../domain/values.js';
import { readConfigText } from '../../controller/config/load.js';
import { parseConfigText } from '../../controller/config/parse.js';
import type { ControllerHandle } from '../../controller/controller.js';
import { startController } from '../../controller/controller.js';
import { toApiSweep, toApiTrial } from '../../controller/grpc-server.js';
import type { SweepRecord } from '../../controller/sweeps/state.js';
import type { TrialView } from '../../controller/sweeps/sweep-service.js';
import { EXIT } from '../exit.js';
import { onShutdownSignals } from '../signals.js';
import { renderLeaderboard, renderSummary } from '../table.js';
import { apiTokenFor, reopenCommand, startDataFolderNats, type DataFolderNats } from './open.js';
import { LiveScreen, useColor } from './watch.js';

/** `sweeper local`'s flags as commander parsed them (cli/main.ts), defaults filled in. */
export interface LocalOptions {
  agents: number;
  /** One agent driving these GPUs instead of `agents` plain ones. */
  gpus?: string;
  perGpu: number;
  json?: boolean;
  data?: string;
}

/** The CLI's own entry file, for starting agents as child processes. */
function cliEntry(): string {
  return fileURLToPath(new URL('../run.js', import.meta.url));
}

export async function runLocal(file: string, o: LocalOptions): Promise<void> {
  const configPath = resolve(file);
  const text = await readConfigText(configPath);
  const { warnings } = parseConfigText(text, file);
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);

  const workDir = dirname(configPath);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const dataDir = resolve(o.data ?? join(workDir, '.sweeper', `local-${stamp}`));
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dataDir, 'sweeper.log');
  const logStream = createWriteStream(logFile, { flags: 'a' });
  // The live table owns the terminal: everything else goes to the log file.
  const log = createLogger('local', (line) => logStream.write(line + '\n'));
  const say = (msg: string) => process.stderr.write(`sweeper: ${msg}\n`);

  // Installing nats-server is worth telling the user about: that logger writes to stderr.
  await ensureNatsServer({ install: true, log: createLogger('setup') });
  let nats: DataFolderNats | undefined;
  let controller: ControllerHandle | undefined;
  const agents: ChildProcess[] = [];
  try {
    // Locked down even on loopback: other users of this machine get neither NATS nor the API.
    // Agents get a NATS identity of their own when they register and the API token in their environment.
    // The embedded server is `sweeper server`'s: the data folder is locked (one owner at a time,
    // so `sweeper open` of it waits until this is over) and the server recorded in its pid file.
    // The NATS keys and the API token stay in the data folder for `sweeper open DIR`.
    nats = await startDataFolderNats(
      dataDir,
      log.child('nats'),
      () => `stop it first, or give this run another --data (leave --data out for a new folder)`,
    );
    const apiToken = apiTokenFor(dataDir);
    controller = await startController({
      host: '127.0.0.1',
      port: 0,
      natsUrl: nats.url,
      natsAuthority: nats.authority,
      token: apiToken,
      dashboard: { host: '127.0.0.1', port: 0 },
      log: log.child('controller'),
    });
    const service = controller.service;
    const sweep = await service.createSweep(text, file);
    const who = o.gpus !== undefined ? `1 agent on GPUs ${o.gpus}` : `${o.agents} agent${o.agents > 1 ? 's' : ''}`;
    say(`sweep ${sweep.id}: ${sweep.config.method}, ${who}, data in ${dataDir}`);
    say(`dashboard: ${controller.dashboardUrl}sweeps/${sweep.id}?token=${apiToken}`);

    // With --gpus, one agent drives every GPU of this host (a trial per GPU slot).
    const agentCount = o.gpus !== undefined ? 1 : o.agents;
    const gpuArgs = o.gpus !== undefined ? ['--gpus', o.gpus, '--per-gpu', String(o.perGpu)] : [];
    for (let i = 1; i <= agentCount; i++) {
      const out = createWriteStream(join(dataDir, `agent-${i}.log`), { flags: 'a' });
      const child = spawn(
        process.execPath,
        [
          cliEntry(),
          'agent',
          sweep.id,
          '--controller',
          controller.address,
          '--agent-id',
          `local-${sweep.id}-${i}`,
          '--spool-dir',
          join(dataDir, 'spool'),
          ...gpuArgs,
        ],
        { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWEEPER_TOKEN: apiToken } },
      );
      child.stdout!.pipe(out);
      child.stderr!.pipe(out);
      agents.push(child);
    }

    let interrupted = 0;
    const screen = o.json ? undefined : new LiveScreen(process.stdout);
    const release = onShutdownSignals((signal, n) => {
      interrupted = n;
      if (n === 1) {
        const msg = `received ${signal}: stopping the sweep (running trials get their grace period; again to force)`;
        if (screen && process.stdout.isTTY) screen.note(`\nsweeper: ${msg}`);
        else say(msg);
        void service.stopSweep(sweep.id).catch((err) => log.error('could not stop the sweep', { error: String(err) }));
      } else {
        for (const a of agents) if (a.exitCode === null) a.kill('SIGKILL');
      }
    });
    let natsFailure: unknown;
    const natsFailed = nats.failed.catch((err: unknown) => {
      natsFailure = err;
    });
    try {
      await Promise.race([followSweep(controller, sweep, agents, screen), natsFailed]);
    } finally {
      release();
    }
    // Agents exit on their own once the sweep is over; give them a moment, then make sure.
    await Promise.all(agents.map((a) => waitExit(a, 15_000)));

    if (natsFailure) throw natsFailure;

    const board = service.leaderboard(sweep);
    const detail = { sweep: toApiSweep(service.sweepView(sweep, board)), trials: board.map(toApiTrial) };
    const finished = board.filter((t) => t.state === 'finished').length;
    const reopen = reopenCommand(dataDir);
    if (o.json) {
      // Only trials that ran to the end (or were stopped on purpose) rank; failed ones follow, unranked.
      const ranked = board.filter((t) => t.rank > 0);
      const rest = board.filter((t) => !ranked.includes(t));
      const doc: ParamValue = {
        sweep: {
          id: sweep.id,
          state: sweep.state,
          method: sweep.config.method,
          metric: sweep.config.metric ? { name: sweep.config.metric.name, goal: sweep.config.metric.goal } : null,
          finish_reason: sweep.finishReason,
          data_dir: dataDir,
          finished_trials: finished,
          reopen_command: reopen,
        },
        best: ranked.length ? jsonTrial(ranked[0], 1) : null,
        trials: [...ranked.map((t, i) => jsonTrial(t, i + 1)), ...rest.map((t) => jsonTrial(t, null))],
      };
      process.stdout.write(stringifyTyped(doc, 2) + '\n');
      say(`reopen the results with: ${reopen}`);
    } else {
      process.stdout.write('\n' + renderSummary(detail, { width: process.stdout.columns || 120, color: useColor(process.stdout) }) + '\n');
      process.stdout.write(`\nData: ${dataDir} (NATS store, logs: sweeper.log, agent-N.log)\n`);
      process.stdout.write(`Reopen it (dashboard, sweeper watch/logs) with: ${reopen}\n`);
    }
    const agentFailed = agents.some((a) => a.exitCode !== 0);
    if (agentFailed && !interrupted) say(`an agent exited with an error; see ${dataDir}/agent-*.log`);
    if (interrupted) process.exitCode = EXIT.interrupted;
    else if (finished === 0) {
      const failed = board.filter((t) => t.state !== 'finished');
      const example = failed.find((t) => t.state === 'failed') ?? failed[0];
      say(
        `no trial finished (${board.length} trial${board.length === 1 ? '' : 's'}, none ran to the end)` +
          (example ? `; see why with '${reopen}', then 'sweeper logs ${example.id}'` : ''),
      );
      process.exitCode = EXIT.noTrialFinished;
    } else if (agentFailed) process.exitCode = EXIT.failure;
  } finally {
    for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
    await controller?.stop();
    await nats?.stop();
    logStream.end();
  }
}

/** One trial of the `--json` document; `rank` is null for a trial that did not run to the end. */
function jsonTrial(t: TrialView, rank: number | null): ParamValue {
  return {
    id: t.id,
    state: t.state,
    rank,
    params: parseTypedJson(t.paramsJson),
    value: t.bestValue,
    ...(t.reason ? { reason: t.reason } : {}),
  };
}

/** Draw the leaderboard as it changes until the sweep settles or every agent has exited. */
async function followSweep(controller: ControllerHandle, sweep: SweepRecord, agents: ChildProcess[], screen?: LiveScreen): Promise<void> {
  const service = controller.service;
  const draw = () => {
    if (!screen) return;
    const board = service.leaderboard(sweep);
    const detail = { sweep: toApiSweep(service.sweepView(sweep, board)), trials: board.map(toApiTrial) };
    screen.draw(
      renderLeaderboard(detail, {
        width: process.stdout.columns || 120,
        color: useColor(process.stdout),
        maxRows: Math.max(5, (process.stdout.rows || 40) - 12),
      }),
    );
  };
  await new Promise<void>((done) => {
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      timer = undefined;
      draw();
      const agentsGone = agents.every((a) => a.exitCode !== null || a.signalCode !== null);
      if (service.isSettled(sweep) || agentsGone) {
        unsubscribe();
        clearInterval(tick);
        done();
      }
    };
    const schedule = () => {
      if (!timer) timer = setTimeout(check, 250);
    };
    const unsubscribe = service.subscribe(sweep.id, schedule);
    // Runtimes tick and agents may exit without any sweep event: look once a second regardless.
    const tick = setInterval(schedule, 1000);
    check();
  });
  screen?.done();
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
