import { Agent } from '../../agent/agent.js';
import { createLogger } from '../../common/log.js';
import { clientSecurity, type ClientOptions } from '../client-options.js';
import { onShutdownSignals } from '../signals.js';

export interface AgentCommandOptions extends ClientOptions {
  count?: number;
  nats?: string;
  agentId?: string;
  grace: number;
  maxInitialFailures: number;
}

/** `sweeper agent SWEEP_ID`: run trials in the current directory until the sweep is over. */
export async function runAgentCommand(sweepId: string, o: AgentCommandOptions): Promise<void> {
  const log = createLogger('agent');
  const agent = new Agent({
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
    maxInitialFailures: o.maxInitialFailures,
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
