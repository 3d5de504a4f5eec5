/**
 * The `sweeper` command line: a thin layer over the library. Each subcommand parses its flags,
 * calls the same functions the package exports, and maps typed errors to exit codes:
 * 0 success, 1 runtime failure, 2 bad input (config, flags, unknown sweep), 3 `local` finished no
 * trial, 130 interrupted.
 */
import { Command, Option } from 'commander';
import { DEFAULT_GPU_SAMPLE_MS, DEFAULT_GRACE_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS, DEFAULT_MAX_CRASH_RETRIES, DEFAULT_MAX_INITIAL_FAILURES, DEFAULT_PREEMPT_GRACE_MS } from '../domain/defaults.js';
import { runAgentCommand } from './commands/agent.js';
import { runBundle } from './commands/bundle.js';
import { runExport } from './commands/export.js';
import { runCreate, runLogs, runLs, runStats, runSweepControl } from './commands/client.js';
import { addLaunchCommands } from './commands/launch.js';
import { runLocal } from './commands/local.js';
import { runNatsAuth } from './commands/nats-auth.js';
import { runOpen } from './commands/open.js';
import { runPythonPath } from './commands/python-path.js';
import { runServer } from './commands/server.js';
import { runSuggest } from './commands/suggest.js';
import { runValidate } from './commands/validate.js';
import { runWatch } from './commands/watch.js';
import { addClientOptions } from './client-options.js';
import { exitCodeFor, reportError } from './exit.js';
import { durationOption, natsPort, nonNegativeInt, port, positiveInt } from './flags.js';

export function buildProgram(): Command {
  const program = new Command('sweeper')
    .description('Self-hosted hyperparameter sweeps: W&B-compatible configs, agents on GPU hosts, a live leaderboard.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('local')
    .description('run a whole sweep on this machine: NATS, controller and agents, with a live leaderboard; exit 3 when no trial finished')
    .argument('<file>', 'sweep config (YAML or JSON)')
    .option('--agents <n>', 'number of local agents', positiveInt, 2)
    .option('--json', 'print one JSON document with the result at the end instead of the live table')
    .option('--data <dir>', 'where NATS keeps the sweep data (default: a new folder under .sweeper/ next to the config)')
    .option('--gpus <spec>', 'one agent driving these GPUs, a trial per GPU: all, a count, or indices such as 0,2')
    .option('--per-gpu <k>', 'trials per GPU at once (with --gpus)', positiveInt, 1)
    .action(async (file: string, o) => runLocal(file, o));

  program
    .command('open')
    .description("serve a finished 'sweeper local' data folder again (no agents): dashboard, watch, ls and logs, until Ctrl-C")
    .argument('<dir>', "the data folder 'sweeper local' printed")
    .option('--port <port>', 'gRPC port (0: any free port)', port, 0)
    .option('--dashboard-port <port>', 'dashboard port (0: any free port)', port, 0)
    .action(async (dir: string, o) => runOpen(dir, o));

  program
    .command('bundle')
    .description('pack node, nats-server and Sweeper into a folder for hosts without Node.js or internet (GPU hosts with only Python)')
    .option('--out <dir>', 'folder to write node.xz, nats-server.xz, app.tar.xz and unpack.py to', '.gpu-bundle')
    .action(async (o) => runBundle(o));

  program
    .command('nats-auth')
    .description("create Sweeper's NATS operator keys for an external nats-server (per-agent least-privilege identities) and print how to use them")
    .option('--data <dir>', 'data folder the controller will run with', '.sweeper/server')
    .option('--rotate', 'replace the signing and controller keys: credentials issued so far stop working, data stays')
    .action(async (o) => runNatsAuth(o));

  program
    .command('python-path')
    .description("print the folder holding Sweeper's Python modules, for PYTHONPATH=$(sweeper python-path) python script.py")
    .action(() => runPythonPath());

  program
    .command('validate')
    .description('check a sweep config; exit 0 when valid (warnings on stderr), 2 with one problem per line when not')
    .argument('<file>', 'sweep config (YAML or JSON)')
    .action(async (file: string) => runValidate(file));

  program
    .command('suggest')
    .description('drive a strategy without servers: results in and parameters out as JSON lines on stdin/stdout')
    .requiredOption('--config <file>', 'sweep config (YAML or JSON)')
    .option('--seed <n>', "seed (default: the config's seed, else 0)")
    .action(async (o) => runSuggest(o));

  program
    .command('server')
    .description('run the controller (gRPC API); starts its own nats-server unless --nats is given')
    .option('--host <host>', 'address the API (and an embedded nats-server) bind to', '127.0.0.1')
    .option('--port <port>', 'gRPC port', port, 50051)
    .addOption(new Option('--token <token>', 'require this bearer token on every API call').env('SWEEPER_TOKEN'))
    .option('--tls-cert <file>', 'serve TLS with this certificate chain (PEM)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--insecure-bind', 'allow binding a non-loopback address without --token')
    .addOption(new Option('--nats <url>', 'use this NATS server (JetStream enabled) instead of starting one').env('SWEEPER_NATS_URL'))
    .option('--nats-port <port>', 'port of the embedded nats-server (-1: any free port)', natsPort, 4222)
    .option('--nats-replicas <n>', "copies of Sweeper's streams on a NATS cluster (1, 3 or 5)", positiveInt, 1)
    .option('--data <dir>', 'data folder of the embedded nats-server', '.sweeper/server')
    .option('--dashboard-port <port>', 'port of the web dashboard (0: any free port; the default moves to a free one when taken)', port, 8080)
    .option('--dashboard-host <host>', 'address the web dashboard binds to', '127.0.0.1')
    .option('--no-dashboard', 'do not serve the web dashboard')
    .addOption(durationOption('heartbeat-timeout', "a trial whose agent is silent this long becomes 'crashed'", { defaultMs: DEFAULT_HEARTBEAT_TIMEOUT_MS }))
    .option('--max-crash-retries <n>', "times a crashed trial's parameters are run again", nonNegativeInt, DEFAULT_MAX_CRASH_RETRIES)
    .action(async (o, cmd: Command) => runServer({ ...o, dashboardPortGiven: cmd.getOptionValueSource('dashboardPort') === 'cli' }));

  addClientOptions(
    program
      .command('create')
      .description('validate a config and create a sweep on a running controller; prints its id and the agent command')
      .argument('<file>', 'sweep config (YAML or JSON)'),
  ).action(async (file: string, o) => runCreate(file, o));

  addClientOptions(
    program
      .command('agent')
      .description('run trials of a sweep in this directory until it is over')
      .argument('<sweep_id>', 'the sweep to work on')
      .option('--count <n>', 'exit after this many trials', positiveInt)
      .addOption(new Option('--nats <url>', 'NATS URL (default: the one the controller advertises)').env('SWEEPER_NATS_URL'))
      .addOption(new Option('--agent-id <id>', 'stable agent id (default: host-pid-random)').env('SWEEPER_AGENT_ID'))
      .addOption(durationOption('grace', 'time between SIGTERM and SIGKILL when a trial is stopped', { defaultMs: DEFAULT_GRACE_MS }))
      .addOption(
        durationOption('controller-timeout', 'give up (stop the trials, exit 1) when the controller has been unreachable this long; without it, retry forever', {
          env: 'SWEEPER_CONTROLLER_TIMEOUT',
        }),
      )
      .option('--max-initial-failures <n>', 'stop when this many trials in a row fail in the first minute (0: never)', nonNegativeInt, DEFAULT_MAX_INITIAL_FAILURES)
      .option('--gpus <spec>', 'run one trial per GPU at once: all, a count N, or indices such as 0,2,5 (honours CUDA_VISIBLE_DEVICES)')
      .option('--per-gpu <k>', 'trials per GPU at once (with --gpus)', positiveInt, 1)
      .option('--parallel <n>', 'trials at once on a host without GPUs', positiveInt, 1)
      .addOption(durationOption('gpu-sample-interval', "how often each trial's CPU and memory use, and its GPU's utilisation, memory, temperature and power, are recorded", { defaultMs: DEFAULT_GPU_SAMPLE_MS }))
      .addOption(
        new Option('--spool-dir <dir>', "where metric points wait on disk until NATS has them; a dead agent's are sent by the sweep's other agents on this host")
          .env('SWEEPER_SPOOL_DIR')
          .default('.sweeper/spool'),
      )
      .option('--no-spool', 'keep unsent metric points in memory only (lost if the agent is killed)')
      .addOption(
        durationOption('preempt-grace', 'on SIGUSR1 (the host is taking the machine back), time a trial gets to checkpoint before SIGTERM', {
          defaultMs: DEFAULT_PREEMPT_GRACE_MS,
        }),
      )
      .addOption(
        new Option('--checkpoint-dir <dir>', "root of the trials' checkpoint folders (SWEEPER_CHECKPOINT_DIR=<dir>/<sweep>/<trial>); put it on storage every host sees")
          .env('SWEEPER_CHECKPOINT_ROOT')
          .default('.sweeper/checkpoints'),
      ),
  ).action(async (sweepId: string, o) => runAgentCommand(sweepId, o));

  addClientOptions(
    program
      .command('watch')
      .description('live leaderboard of a sweep')
      .argument('<sweep_id>', 'the sweep to watch')
      .option('--once', 'print the leaderboard once and exit')
      .option('--json', 'machine-readable output (one JSON document per update; with --once, just one)'),
  ).action(async (sweepId: string, o) => runWatch(sweepId, o));

  addClientOptions(program.command('ls').description('list the sweeps on the controller').option('--json', 'machine-readable output')).action(
    async (o) => runLs(o),
  );

  addClientOptions(
    program
      .command('logs')
      .description("show a trial's metric summary and the last lines of its stdout and stderr, live while it runs")
      .argument('<trial_id>', 'the trial (as shown by watch)')
      .option('-f, --follow', "print the trial's output as it comes (its stdout on stdout, its stderr on stderr) until it ends, or Ctrl-C"),
  ).action(async (trialId: string, o) => runLogs(trialId, o));

  addClientOptions(
    program
      .command('export')
      .description("write a sweep's trials as CSV or JSON lines: one row per trial (parameters, each metric's last, min and max), or with --history one per logged point")
      .argument('<sweep_id>', 'the sweep to export')
      .addOption(new Option('--format <format>', 'csv or jsonl').choices(['csv', 'jsonl']).default('csv'))
      .option('--history', 'one row per logged point (trial, step, each metric) instead of one per trial')
      .option('--system', "include the agent's system samples (system/cpu.percent, system/memory.rss_mb, system/gpu.*)")
      .option('--out <file>', 'write to this file (complete or not at all) instead of stdout'),
  ).action(async (sweepId: string, o) => runExport(sweepId, o));

  addClientOptions(
    program
      .command('stats')
      .description('controller health: metric ingest counts, rejected messages, metric lag, memory')
      .option('--json', 'machine-readable output'),
  ).action(async (o) => runStats(o));

  for (const [name, description] of [
    ['pause', 'hand out no new trials; running ones continue'],
    ['resume', 'resume a paused sweep'],
    ['stop', 'no new trials; running trials get SIGTERM, then SIGKILL after their grace period'],
    ['cancel', 'no new trials; running trials are killed at once (SIGKILL)'],
  ] as const) {
    addClientOptions(program.command(name).description(description).argument('<sweep_id>', 'the sweep')).action(async (sweepId: string, o) =>
      runSweepControl(name, sweepId, o),
    );
  }
  addLaunchCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    const code = exitCodeFor(err);
    if (code !== 0) reportError(err);
    return code;
  }
}
