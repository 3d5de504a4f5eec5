/**
 * The agent's options in two layers: `AgentOptions`, what a caller gives (the CLI, a program
 * embedding an agent), mostly optional with the defaults of domain/defaults.ts; and `AgentConfig`,
 * the same compiled once in the agent's constructor: complete, frozen, durations in milliseconds.
 * The agent reads only the config, so no default is restated where an option is used.
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClientSecurity } from '../common/api-client.js';
import type { Logger } from '../common/log.js';
import { DEFAULT_GPU_SAMPLE_MS, DEFAULT_GRACE_MS, DEFAULT_MAX_INITIAL_FAILURES, DEFAULT_PREEMPT_GRACE_MS } from '../domain/defaults.js';
import type { Slot } from './gpus.js';

export interface AgentOptions {
  sweepId: string;
  /** `host:port` of the controller's gRPC API. */
  controller: string;
  /** API token and TLS settings for the controller. */
  security?: ClientSecurity;
  /** Overrides the NATS URL the controller advertises. */
  natsUrl?: string;
  natsUser?: string;
  natsPass?: string;
  natsToken?: string;
  /** Exit after this many trials. Default: run until the sweep is over. */
  count?: number;
  /** Stable identity; a restarted agent under the same id is never handed a duplicate. Default: host-pid-random. */
  agentId?: string;
  /** Directory trials run in; `program` is resolved against it. */
  cwd: string;
  /** SIGTERM-to-SIGKILL grace when a trial is stopped. Default DEFAULT_GRACE_MS (10 s). */
  graceMs?: number;
  /** Where trials run, one at a time each: GPUs (with --gpus) or plain slots (--parallel). Default: one plain slot. */
  slots?: Slot[];
  /**
   * How often system metrics are sampled while trials run: each trial's CPU and memory
   * (proc-sampler.ts) and, with GPUs, its GPU's. Default DEFAULT_GPU_SAMPLE_MS (5 s).
   */
  gpuSampleMs?: number;
  /**
   * Flapping protection, as W&B's agent has: this many failed trials in a row within the agent's
   * first minute stop the agent (a broken program or environment). Default
   * DEFAULT_MAX_INITIAL_FAILURES (5); 0 disables it.
   */
  maxInitialFailures?: number;
  /**
   * The host's metric spool folder (spool.ts): points read from trials are journaled there until
   * JetStream has them, and journals left by dead agents of the sweep are published. None: memory only.
   */
  spoolDir?: string;
  /**
   * Give up when the controller has not answered for this long (--controller-timeout): stop the
   * trials as on a shutdown and fail with ControllerUnreachableError. Undefined or 0: retry forever.
   */
  controllerTimeoutMs?: number;
  /** On a preemption, SIGUSR1-to-SIGTERM time for a trial to checkpoint. Default DEFAULT_PREEMPT_GRACE_MS (30 s). */
  preemptGraceMs?: number;
  /**
   * Root of the trials' checkpoint folders: each trial gets `<root>/<sweep>/<trial>` as
   * SWEEPER_CHECKPOINT_DIR, the same on every run of it, so put it on storage every host sees.
   * Default `<cwd>/.sweeper/checkpoints`.
   */
  checkpointDir?: string;
  log: Logger;
}

/** AgentOptions with every default filled in. */
export interface AgentConfig {
  readonly sweepId: string;
  readonly controller: string;
  readonly security: ClientSecurity | undefined;
  readonly natsUrl: string | undefined;
  readonly natsUser: string | undefined;
  readonly natsPass: string | undefined;
  readonly natsToken: string | undefined;
  /** Undefined: until the sweep is over. */
  readonly count: number | undefined;
  readonly agentId: string;
  readonly cwd: string;
  readonly graceMs: number;
  /** At least one. */
  readonly slots: readonly Slot[];
  readonly gpuSampleMs: number;
  /** 0: never stop for failures. */
  readonly maxInitialFailures: number;
  /** Undefined: points wait in memory only. */
  readonly spoolDir: string | undefined;
  /** 0: retry the controller forever. */
  readonly controllerTimeoutMs: number;
  readonly preemptGraceMs: number;
  readonly checkpointDir: string;
  readonly log: Logger;
}

export function compileAgentOptions(o: AgentOptions): AgentConfig {
  return Object.freeze({
    sweepId: o.sweepId,
    controller: o.controller,
    security: o.security,
    natsUrl: o.natsUrl,
    natsUser: o.natsUser,
    natsPass: o.natsPass,
    natsToken: o.natsToken,
    count: o.count,
    agentId: o.agentId ?? defaultAgentId(),
    cwd: o.cwd,
    graceMs: o.graceMs ?? DEFAULT_GRACE_MS,
    slots: Object.freeze(o.slots && o.slots.length > 0 ? [...o.slots] : [{}]),
    gpuSampleMs: o.gpuSampleMs ?? DEFAULT_GPU_SAMPLE_MS,
    maxInitialFailures: o.maxInitialFailures ?? DEFAULT_MAX_INITIAL_FAILURES,
    spoolDir: o.spoolDir,
    controllerTimeoutMs: o.controllerTimeoutMs ?? 0,
    preemptGraceMs: o.preemptGraceMs ?? DEFAULT_PREEMPT_GRACE_MS,
    checkpointDir: resolve(o.cwd, o.checkpointDir ?? join('.sweeper', 'checkpoints')),
    log: o.log,
  });
}

/** `<host>-<pid>-<random>`, the host name cut to what an id may hold. */
function defaultAgentId(): string {
  return `${osHostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`;
}
