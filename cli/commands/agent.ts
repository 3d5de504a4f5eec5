import { resolve } from 'node:path';
import { Agent, type AgentOptions } from '../../agent/agent.js';
import { buildSlots, discoverGpus, selectGpus, type Slot } from '../../agent/gpus.js';
import { createLogger, type Logger } from '../../common/log.js';
import { clientSecurity, type ClientOptions } from '../client-options.js';
import { conflictingFlags } from '../flags.js';
import { onShutdownSignals } from '../signals.js';

/** `sweeper agent`'s flags as commander parsed them (cli/main.ts): checked, defaults filled in, durations in milliseconds. */
export interface AgentCommandOptions extends ClientOptions {
  count?: number;
  nats?: string;
  agentId?: string;
  /** --grace, in ms. */
  grace: number;
  /** --controller-timeout, in ms; undefined: retry the controller forever. */
  controllerTimeout?: number;
  maxInitialFailures: number;
  gpus?: string;
  perGpu: number;
  parallel: number;
  /** --gpu-sample-interval, in ms. */
  gpuSampleInterval: number;
  spoolDir: string;
  /** False with --no-spool. */
  spool: boolean;
  /** --preempt-grace, in ms. */
  preemptGrace: number;
  checkpointDir: string;
}

/** `sweeper agent SWEEP_ID`: run trials in the current directory until the sweep is over. */
export async function runAgentCommand(sweepId: string, o: AgentCommandOptions): Promise<void> {
  const log = createLogger('agent');
  if (o.gpus !== undefined && o.parallel > 1) throw conflictingFlags('--parallel', '--gpus', 'it is for hosts without GPUs; with --gpus use --per-gpu');
  const agent = new Agent(agentOptions(sweepId, o, await slotsFor(o, log), log));
  const release = onShutdownSignals((signal, n) => agent.shutdown(n === 1 ? `received ${signal}` : `received ${signal} again`));
  // Slurm's warning before a time limit or a preemption (`--signal B:USR1@S`; `sweeper launch
  // slurm` execs this agent as the job's shell, so the signal lands here).
  const onPreempt = () => agent.preempt('received SIGUSR1: the host is taking this machine back');
  process.on('SIGUSR1', onPreempt);
  try {
    const summary = await agent.run();
    log.info(`agent done: ${summary.reason}`, { trials: summary.trialsRun });
  } finally {
    release();
    process.off('SIGUSR1', onPreempt);
  }
}

/** The slots --gpus/--per-gpu or --parallel ask for. */
async function slotsFor(o: AgentCommandOptions, log: Logger): Promise<Slot[]> {
  if (o.gpus === undefined) return buildSlots({ parallel: o.parallel });
  const gpus = selectGpus(o.gpus, await discoverGpus());
  log.info(`using ${gpus.length} GPU${gpus.length > 1 ? 's' : ''}, ${o.perGpu} trial${o.perGpu > 1 ? 's' : ''} each`, {
    gpus: gpus.map((g) => `${g.index}:${g.name}`).join(', '),
  });
  return buildSlots({ gpus, perGpu: o.perGpu });
}

/** The flags, with the NATS credentials of the environment (SWEEPER_NATS_*), as the agent's options. */
export function agentOptions(sweepId: string, o: AgentCommandOptions, slots: Slot[], log: Logger): AgentOptions {
  return {
    slots,
    gpuSampleMs: o.gpuSampleInterval,
    sweepId,
    controller: o.controller,
    security: clientSecurity(o),
    natsUrl: o.nats,
    natsUser: process.env.SWEEPER_NATS_USER,
    natsPass: process.env.SWEEPER_NATS_PASSWORD,
    natsToken: process.env.SWEEPER_NATS_TOKEN,
    count: o.count,
    agentId: o.agentId,
    cwd: process.cwd(),
    graceMs: o.grace,
    controllerTimeoutMs: o.controllerTimeout,
    maxInitialFailures: o.maxInitialFailures,
    spoolDir: o.spool ? resolve(o.spoolDir) : undefined,
    preemptGraceMs: o.preemptGrace,
    checkpointDir: resolve(o.checkpointDir),
    log,
  };
}
