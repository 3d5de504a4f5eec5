/**
 * Named error classes shared by the controller, the agent and the CLI. Each carries context and,
 * where one exists, its cause. Every error of ours is a SweeperError; the CLI maps them to exit
 * codes (cli/exit.ts) and the gRPC adapter to status codes (`toStatus` in controller/grpc-server.ts),
 * both by class, never by message text.
 */
export class SweeperError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad user input (a config, a flag): exit code 2. */
export class UsageError extends SweeperError {}

/** A sweep or trial id that the controller does not know. */
export class NotFoundError extends SweeperError {
  constructor(
    readonly kind: 'sweep' | 'trial' | 'agent',
    readonly id: string,
  ) {
    super(`unknown ${kind} '${id}'`);
  }
}

/** A port something of ours was asked to listen on is taken: the CLI names the flag that moves it. */
export class AddressInUseError extends UsageError {
  constructor(
    readonly service: 'gRPC API' | 'dashboard' | 'nats-server',
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`${service}: ${host}:${port} is already in use`, options);
  }
}

/** The bind error of node:net and of grpc-js (which wraps it in its own message). */
export function isAddressInUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE' || /EADDRINUSE/.test(String((err as Error | undefined)?.message));
}

/** An external program we need (nats-server) is missing and could not be installed. */
export class MissingDependencyError extends SweeperError {}

/** An agent asked about a trial that is not its own (another agent's, or one it never held). */
export class NotHolderError extends SweeperError {
  constructor(
    readonly agentId: string,
    readonly trialId: string,
    holder: string,
  ) {
    super(`agent '${agentId}' does not hold trial '${trialId}'${holder ? ` (agent '${holder}' does)` : ''}`);
  }
}

/** The call is valid but the thing it acts on is not in a state that allows it (resume a finished sweep). */
export class IllegalStateError extends SweeperError {}

/** An agent called about a sweep other than the one it registered for. */
export class WrongSweepError extends SweeperError {}

/**
 * The controller's store (JetStream) could not be reached or did not answer in time: a timeout,
 * a lost or closed connection, no responders. Transient: the gRPC adapter answers UNAVAILABLE,
 * which clients retry. The NATS error is the cause.
 */
export class StoreUnavailableError extends SweeperError {
  constructor(cause: unknown) {
    super(`controller store unavailable: ${messageOf(cause)}`, { cause });
  }
}

/**
 * `err` as an error of ours: a SweeperError as it is, anything else (a library's error, a string
 * thrown) wrapped in one with the same message and the original as its cause.
 */
export function coerceError(err: unknown): SweeperError {
  return err instanceof SweeperError ? err : new SweeperError(messageOf(err), { cause: err });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
