import { resolve } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { buildSlots, discoverGpus, selectGpus, type Slot } from '../../agent/gpus.js';
import { UsageError } from '../../domain/errors.js';
import { createLogger } from '../../common/log.js';
import { clientSecurity, type ClientOptions } from '../client-options.js';
import { onShutdownSignals } from '../signals.js';

export interface AgentCommandOptions extends ClientOptions {
  count?: number;
  nats?: string;
  agentId?: string;
  grace: number;
  /** Seconds without an answer from the controller before the agent gives up; undefined: never. */
  controllerTimeout?: number;
  maxInitialFailures: number;
  gpus?: string;
  perGpu: number;
  parallel: number;
  gpuSampleInterval: number;
  spoolDir: string;
  /** False with --no-spool. */
  spool: boolean;
}

/** `sweeper agent SWEEP_ID`: run trials in the current directory until the sweep is over. */
export async function runAgentCommand(sweepId: string, o: AgentCommandOptions): Promise<void> {
  const log = createLogger('agent');
  if (o.gpus !== undefined && o.parallel > 1) throw new UsageError('--parallel is for hosts without GPUs; with --gpus use --per-gpu');
  let slots: Slot[];
  if (o.gpus !== undefined) {
    const gpus = selectGpus(o.gpus, await discoverGpus());
    log.info(`using ${gpus.length} GPU${gpus.length > 1 ? 's' : ''}, ${o.perGpu} trial${o.perGpu > 1 ? 's' : ''} each`, {
      gpus: gpus.map((g) => `${g.index}:${g.name}`).join(', '),
    });
    slots = buildSlots({ gpus, perGpu: o.perGpu });
  } else {
    slots = buildSlots({ parallel: o.parallel });
  }
  const agent = new Agent({
    slots,
    gpuSampleMs: o.gpuSampleInterval * 1000,
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
    graceMs: o.grace * 1000,
    controllerTimeoutMs: o.controllerTimeout !== undefined ? o.controllerTimeout * 1000 : undefined,
    maxInitialFailures: o.maxInitialFailures,
    spoolDir: o.spool ? resolve(o.spoolDir) : undefined,
    log,
  });
  const release = onShutdownSignals((signal, n) => agent.shutdown(n === 1 ? `received ${signal}` : `received ${signal} again`));
  try {
    const summary = await agent.run();
    log.info(`agent done: ${summary.reason}`, { trials: summary.trialsRun });
  } finally {
    release();
  }
}
