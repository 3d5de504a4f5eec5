/**
 * Sweeper as a library: the pure core (config parsing, strategies, next_run) plus the pieces
 * the CLI is built from, for embedding a controller or an agent in another program.
 */
export { Float, parseTypedJson, stringifyTyped, pyRepr, pyStr } from './domain/values.js';
export type { Params, ParamValue } from './domain/values.js';
export { parseConfig, parseConfigText, parseConfigFile } from './controller/config/parse.js';
export { ConfigError } from './controller/config/errors.js';
export type { SweepConfig, ParamSpec, LeafParam, NestedParam, ConfigIssue, ParsedConfig, Distribution } from './domain/sweep-config.js';
export { createStrategy } from './controller/strategies/index.js';
export type { Strategy, Suggestion, TrialObservation, TrialState } from './controller/strategies/types.js';
export { nextRun } from './controller/optimizer/next-run.js';
export { createStoppingRule, type StopDecision, type StoppingRule, type StoppingConfig } from './controller/stopping/index.js';
export { stopRuns, stopDecisions, type RunForStopping } from './controller/optimizer/stop-runs.js';
export type { RunSoFar } from './controller/optimizer/next-run.js';
export { createOptimizer, TellError } from './controller/optimizer/ask-tell.js';
export type { Optimizer, OptimizerOptions, AskedTrial, TellResult } from './controller/optimizer/ask-tell.js';
export { startController } from './controller/controller.js';
export type { ControllerOptions, ControllerHandle } from './controller/controller.js';
export { Agent } from './agent/agent.js';
export type { AgentOptions } from './agent/agent.js';
export { SweeperClient } from './common/api-client.js';
