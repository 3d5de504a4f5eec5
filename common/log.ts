/**
 * A small leveled logger writing one line per event to stderr, so stdout stays clean for
 * machine-readable output (`--json`). Level from SWEEPER_LOG_LEVEL (debug, info, warn, error).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(scope: string): Logger;
}

function threshold(): number {
  const env = (process.env.SWEEPER_LOG_LEVEL ?? 'info').toLowerCase() as LogLevel;
  return ORDER[env] ?? ORDER.info;
}

export function createLogger(scope: string, sink: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const min = threshold();
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const time = new Date().toISOString().slice(11, 23);
    const extra = fields
      ? ' ' +
        Object.entries(fields)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ')
      : '';
    sink(`${time} ${level.padEnd(5)} [${scope}] ${msg}${extra}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (s) => createLogger(`${scope}/${s}`, sink),
  };
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/**
 * Warns at most once per `intervalMs` per kind, and says how many similar warnings it held back,
 * so a flood of bad messages cannot flood the log.
 */
export class ThrottledWarner {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 5000,
  ) {}

  warn(kind: string, msg: string, fields: Record<string, unknown> = {}): void {
    this.write('warn', kind, msg, fields);
  }

  /** As `warn`, for what loses data. */
  error(kind: string, msg: string, fields: Record<string, unknown> = {}): void {
    this.write('error', kind, msg, fields);
  }

  private write(level: 'warn' | 'error', kind: string, msg: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    const last = this.last.get(kind);
    if (last && now - last.at < this.intervalMs) {
      last.suppressed++;
      return;
    }
    this.log[level](msg, { ...fields, ...(last?.suppressed ? { similarSuppressed: last.suppressed } : {}) });
    this.last.set(kind, { at: now, suppressed: 0 });
  }
}
