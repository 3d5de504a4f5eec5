/**
 * One way to connect to NATS for the controller, the agent and the tools: reconnect forever and
 * log connection changes, so a NATS restart is an event in the log rather than a crash.
 */
import {
  connect,
  DebugEvents,
  Events,
  jwtAuthenticator,
  nanos,
  NatsError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type NatsConnection,
  type StreamConfig,
  type StreamInfo,
} from 'nats';
import { silentLogger, type Logger } from './log.js';

export interface ConnectNatsOptions {
  /** Shown by the server's monitoring (`connz`), so name the process: `sweeper-agent-<id>`. */
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
  /**
   * A user JWT and its nkey seed (decentralized auth). The JWT may be a function: it is asked
   * again at every reconnect, so a refreshed one is used without a new connection.
   */
  jwt?: { jwt: string | (() => string); seed: Uint8Array };
  /** Replies come to `<prefix>.<...>`: an agent may subscribe only to its own. */
  inboxPrefix?: string;
  log?: Logger;
  /** Keep retrying the first connect too, instead of failing when the server is not up yet. */
  waitOnFirstConnect?: boolean;
}

export async function connectNats(url: string | string[], opts: ConnectNatsOptions = {}): Promise<NatsConnection> {
  const log = opts.log ?? silentLogger;
  const nc = await connect({
    // `a:4222,b:4222` names the servers of a cluster, as agents get it from the controller.
    servers: typeof url === 'string' ? url.split(',').map((u) => u.trim()) : url,
    name: opts.name,
    user: opts.user,
    pass: opts.pass,
    token: opts.token,
    ...(opts.jwt ? { authenticator: jwtAuthenticator(opts.jwt.jwt, opts.jwt.seed) } : {}),
    ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
    // An authorization error is not the end: credentials can be renewed (the agent registers
    // again) and the server can come back with its keys; keep trying, as for any other outage.
    ignoreAuthErrorAbort: true,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 100,
    // The default (2 min) would leave a half-open connection unnoticed for minutes.
    pingInterval: 10_000,
    maxPingOut: 3,
  });
  log.info('connected to NATS', { server: nc.getServer(), name: opts.name });
  void watchStatus(nc, log);
  nc.closed().then(
    (err) => (err ? log.error('NATS connection closed with an error', { error: String(err) }) : log.debug('NATS connection closed')),
    () => undefined,
  );
  return nc;
}

async function watchStatus(nc: NatsConnection, log: Logger): Promise<void> {
  let attempts = 0;
  try {
    for await (const s of nc.status()) {
      switch (s.type) {
        case Events.Disconnect:
          attempts = 0;
          log.warn('disconnected from NATS; reconnecting', { server: String(s.data) });
          break;
        case Events.Reconnect:
          log.info('reconnected to NATS', { server: String(s.data), attempts });
          break;
        case Events.LDM:
          log.warn('NATS server is shutting down (lame duck mode)', { server: String(s.data) });
          break;
        case Events.Error:
          log.warn('NATS error', { error: String(s.data) });
          break;
        case DebugEvents.Reconnecting:
          attempts++;
          // One line per attempt would flood the log during a long outage.
          if (attempts === 1 || attempts % 20 === 0) log.debug('reconnecting to NATS', { attempts });
          break;
        default:
          break;
      }
    }
  } catch (err) {
    log.debug('NATS status watcher ended', { error: String(err) });
  }
}

export interface EnsureStreamOptions {
  name: string;
  subjects: string[];
  /** Drop messages older than this; unlimited when absent. */
  maxAgeMs?: number;
  /** How long JetStream remembers message ids to drop resends; 2 minutes unless given. */
  duplicateWindowMs?: number;
  /** Copies kept on a NATS cluster (1, 3 or 5); applied when the stream is created. */
  replicas?: number;
}

const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;

function apiErrorCode(err: unknown): number | undefined {
  return err instanceof NatsError ? err.api_error?.err_code : undefined;
}

function sameSubjects(a: string[] = [], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

/**
 * Create the stream, or bring an existing one's subjects, max age and duplicate window to what is
 * asked. File storage; an existing stream's storage is left as it is (JetStream cannot change it).
 */
export async function ensureStream(jsm: JetStreamManager, opts: EnsureStreamOptions): Promise<StreamInfo> {
  const maxAge = opts.maxAgeMs && opts.maxAgeMs > 0 ? nanos(opts.maxAgeMs) : 0;
  let dupWindowMs = opts.duplicateWindowMs ?? 120_000;
  // JetStream refuses a duplicate window longer than the max age.
  if (opts.maxAgeMs && opts.maxAgeMs > 0) dupWindowMs = Math.min(dupWindowMs, opts.maxAgeMs);
  const duplicateWindow = nanos(dupWindowMs);

  const existing = await streamInfo(jsm, opts.name);
  if (!existing) {
    const config: Partial<StreamConfig> = {
      name: opts.name,
      subjects: opts.subjects,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      max_age: maxAge,
      duplicate_window: duplicateWindow,
      num_replicas: opts.replicas ?? 1,
    };
    try {
      return await jsm.streams.add(config);
    } catch (err) {
      // Another process created it between our lookup and our add: fall through to the update.
      if (apiErrorCode(err) !== STREAM_NAME_IN_USE) throw err;
    }
  }
  const info = existing ?? (await jsm.streams.info(opts.name));
  const c = info.config;
  if (sameSubjects(c.subjects, opts.subjects) && c.max_age === maxAge && c.duplicate_window === duplicateWindow) return info;
  return jsm.streams.update(opts.name, {
    ...c,
    subjects: opts.subjects,
    max_age: maxAge,
    duplicate_window: duplicateWindow,
  });
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (apiErrorCode(err) === STREAM_NOT_FOUND) return null;
    throw err;
  }
}
