/**
 * The gRPC messages as JavaScript sees them (proto-loader with camelCase names, int64 as numbers,
 * defaults filled). Kept by hand beside `proto/sweeper/v1/sweeper.proto`: change both together.
 */
export interface ApiSweep {
  id: string;
  name: string;
  method: string;
  state: string;
  configJson: string;
  seed: number;
  metricName: string;
  metricGoal: string;
  trialLimit: number;
  trialCount: number;
  stateCounts: Record<string, number>;
  bestValue?: number;
  bestTrialId: string;
  createdAt: number;
  finishedAt: number;
  finishReason: string;
  activeAgents: number;
}

export interface ApiTrial {
  id: string;
  sweepId: string;
  number: number;
  state: string;
  paramsJson: string;
  agentId: string;
  createdAt: number;
  startedAt: number;
  endedAt: number;
  bestValue?: number;
  lastValue?: number;
  lastStep: number;
  points: number;
  exitCode?: number;
  signal: string;
  reason: string;
  rank: number;
  gpu: string;
  gpuUtil?: number;
  gpuMemoryMb?: number;
  /** Points the agent reported capturing that have not arrived; points it dropped before sending. */
  missingPoints?: number;
  droppedPoints?: number;
}

export interface ApiSweepDetail {
  sweep: ApiSweep;
  trials: ApiTrial[];
}

export interface ApiAssignment {
  trialId: string;
  paramsJson: string;
  command: string[];
  program: string;
}

export interface ApiRequestTrialResponse {
  outcome?: 'trial' | 'retryAfterMs' | 'done';
  trial?: ApiAssignment;
  retryAfterMs?: number;
  done?: string;
}

export interface ApiRegisterAgentResponse {
  natsUrl: string;
  heartbeatIntervalMs: number;
  heldTrials: ApiTrial[];
  command: string[];
  program: string;
  sweepState: string;
  natsUser: string;
  natsPassword: string;
  natsToken: string;
  heartbeatTimeoutMs: number;
  natsJwt: string;
  natsInboxPrefix: string;
}

export interface ApiHeartbeatResponse {
  sweepState: string;
  stop: Array<{ trialId: string; reason: string; graceMs: number }>;
  unknownAgent: boolean;
}

export interface ApiCompleteTrialRequest {
  agentId: string;
  trialId: string;
  exitCode?: number;
  signal: string;
  startError: string;
  stoppedReason: string;
  stdoutTail: string[];
  stderrTail: string[];
  lastMetricSeq: number;
  durationMs: number;
  argv: string[];
  lostReason?: string;
  metricPoints?: number;
  droppedPoints?: number;
  reportError?: string;
}

export interface ApiTrialDetail {
  trial: ApiTrial;
  argv: string[];
  history: Array<{ state: string; at: number; reason: string }>;
  metrics: Array<{ name: string; last: number; min: number; max: number; count: number; invalid: number }>;
  stdoutTail: string[];
  stderrTail: string[];
  metricSteps: number[];
  metricValues: number[];
  malformedLines: number;
}

export interface ApiControllerStats {
  batches: number;
  points: number;
  duplicates: number;
  rejected: Record<string, number>;
  lagP50Ms: number;
  lagP99Ms: number;
  lagSamples: number;
  rssBytes: number;
  heapUsedBytes: number;
  uptimeMs: number;
  sweeps: number;
  trials: number;
}
