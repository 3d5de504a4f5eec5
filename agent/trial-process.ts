/**
 * Runs one trial as a child process and turns its output into metric points.
 *
 * The child gets its own process group so that a stop reaches everything it started (data
 * loaders, shells, `torchrun` workers). Metrics come from two places: `name=value` lines on
 * stdout, and JSON records the `sweeper` helpers write to fd 3. The trial is over when the main
 * process exits; a grandchild that still holds the pipes open is killed with the group, and the
 * output already buffered is drained for a short while, never waited on indefinitely.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Logger } from '../common/log.js';
import { silentLogger } from '../common/log.js';
import type { MetricPoint } from '../common/metrics-wire.js';
import { DEFAULT_GRACE_MS } from '../domain/defaults.js';
import { IllegalStateError } from '../domain/errors.js';
import { type BuiltCommand, CommandError, removeCommandFiles, writeCommandFiles } from './command.js';
import { type MetricLine, parseHelperRecord, parseMetricLine } from './metric-lines.js';
import { OutputTail, type OutputTailOptions } from './output-tail.js';
import { sourceScript } from '../common/source-script.js';
import { asStopReason, stopText, type StopReason } from './stop-reason.js';

export type { StopReason } from './stop-reason.js';

/** How long output is still read after the main process exits, when TrialOptions.drainMs is not given. */
const DEFAULT_DRAIN_MS = 500;

export interface TrialResult {
  /** Exit status when the process exited on its own, else null. */
  exitCode: number | null;
  /** The signal that ended the process (`SIGTERM`, `SIGKILL`), else null. */
  signal: string | null;
  /** Set when the process never ran (ENOENT, EACCES, a bad cwd); exitCode and signal are null. */
  startError?: string;
  /** Set when the trial was stopped (`stop()`, or its signal aborted) before the process exited. */
  stoppedBy?: StopReason;
  stdoutTail: string[];
  stderrTail: string[];
  durationMs: number;
  /** Lines that looked like metrics but could not be read. */
  malformedLines: number;
}

export interface TrialOptions {
  command: BuiltCommand;
  cwd: string;
  /** Called synchronously for every point read; keep it cheap (queue, don't publish inline). */
  onPoint?: (point: MetricPoint) => void;
  onMalformed?: (source: 'stdout' | 'metrics-fd', line: string) => void;
  /** The program marked itself preempting (a helper record): if it exits non-zero, it is continued later. */
  onPreempting?: () => void;
  /** Every stdout and stderr line, for forwarding to a log. */
  onOutput?: (stream: 'stdout' | 'stderr', line: string) => void;
  /**
   * Aborting stops the trial with `graceMs`: a StopReason as the abort reason becomes `stoppedBy`,
   * anything else `cancelled`. A stop already under way (`stop()`) keeps its own grace.
   */
  signal?: AbortSignal;
  /** Grace between SIGTERM and SIGKILL when stopped through `signal`. Default DEFAULT_GRACE_MS (10 s). */
  graceMs?: number;
  /** Grace between SIGTERM and SIGKILL when this agent dies and the reaper stops the trial. Default DEFAULT_GRACE_MS. */
  orphanGraceMs?: number;
  /** How long to keep reading output after the main process exits. Default 500 ms. */
  drainMs?: number;
  tail?: OutputTailOptions;
  logger?: Logger;
}

export type TrialState = 'starting' | 'running' | 'stopping' | 'draining' | 'finished';

const NEXT_STATES: Record<TrialState, readonly TrialState[]> = {
  starting: ['running', 'finished'],
  running: ['stopping', 'draining'],
  stopping: ['draining'],
  draining: ['finished'],
  finished: [],
};

/** Longest line read from any stream; the rest of a longer line is dropped. */
export const MAX_LINE_BYTES = 64 * 1024;
export const METRICS_FD = 3;
const REAPER_STATUS_FD = 4;

/** agent/reaper.mjs is plain JavaScript read from the source tree, also when running from dist/. */
const REAPER: string = sourceScript(import.meta.url, 'agent', 'reaper.mjs');

export function startTrial(opts: TrialOptions): TrialProcess {
  return new TrialProcess(opts);
}

export class TrialProcess {
  readonly result: Promise<TrialResult>;
  private resolveResult!: (r: TrialResult) => void;
  private currentState: TrialState = 'starting';
  private child?: ChildProcess;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private readonly stdoutTail: OutputTail;
  private readonly stderrTail: OutputTail;
  private malformedLines = 0;
  private stoppedBy?: StopReason;
  private killTimer?: NodeJS.Timeout;
  private killAt = Infinity;
  /** Set when the reaper reports that the program itself could not be started. */
  private startError?: string;
  private callbackFailed = false;
  private readonly graceMs: number;
  private readonly orphanGraceMs: number;
  private readonly drainMs: number;
  private readonly onAbort = () => {
    if (this.currentState !== 'running') return;
    void this.stop(asStopReason(this.opts.signal?.reason), this.graceMs);
  };

  constructor(private readonly opts: TrialOptions) {
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    this.orphanGraceMs = opts.orphanGraceMs ?? DEFAULT_GRACE_MS;
    this.drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
    this.log = (opts.logger ?? silentLogger).child('trial');
    this.stdoutTail = new OutputTail(opts.tail);
    this.stderrTail = new OutputTail(opts.tail);
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
    this.start();
  }

  get state(): TrialState {
    return this.currentState;
  }

  /** The process id, which is also its process group id; undefined if it never started. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * SIGTERM to the whole group, then SIGKILL after `graceMs` if the main process is still
   * running. Resolves once the trial has finished. Calling again is safe; a shorter grace
   * brings the SIGKILL forward, so a second Ctrl-C can force what the first one asked for.
   */
  stop(reason: StopReason, graceMs = this.graceMs): Promise<void> {
    const done = this.result.then(() => undefined);
    if (this.currentState !== 'running' && this.currentState !== 'stopping') return done;
    if (this.currentState === 'running') {
      this.stoppedBy = reason;
      this.setState('stopping');
      this.log.info('stopping trial', { reason: stopText(reason), kind: reason.kind, pid: this.pid, graceMs });
      this.signalGroup('SIGTERM');
    }
    this.scheduleKill(Date.now() + Math.max(0, graceMs));
    return done;
  }

  tails(): { stdout: string[]; stderr: string[] } {
    return { stdout: this.stdoutTail.lines(), stderr: this.stderrTail.lines() };
  }

  private start(): void {
    const { command, cwd } = this.opts;
    try {
      writeCommandFiles(command);
    } catch (err) {
      this.finishWithoutProcess(`cannot write the command's files: ${describe(err)}`);
      return;
    }

    let child: ChildProcess;
    try {
      // The program runs under the reaper (agent/reaper.mjs), which leads the trial's process
      // group and stops the group if this agent dies, so no trial outlives its agent.
      const remove = [command.filesDir, command.wandbDir].filter((d): d is string => d !== undefined).flatMap((d) => ['--remove', d]);
      child = spawn(process.execPath, [REAPER, String(this.orphanGraceMs), ...remove, '--', ...command.argv], {
        cwd,
        env: { ...command.env, SWEEPER_METRICS_FD: String(METRICS_FD) },
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      for (const arg of command.argv) if (arg.includes('\0')) throw new CommandError('an argument contains a NUL byte');
    } catch (err) {
      // Arguments Node refuses outright (a NUL byte in argv, say) throw instead of emitting.
      this.finishWithoutProcess(describe(err));
      return;
    }
    this.child = child;
    // Never written: it closes when this process dies, which is the reaper's cue.
    child.stdin!.on('error', () => undefined);
    const reaperStatus = child.stdio[REAPER_STATUS_FD] as Readable;
    const statusLines = new LineSplitter(MAX_LINE_BYTES, (line) => {
      try {
        const ev = JSON.parse(line) as { event: string; message?: string };
        if (ev.event === 'error') this.startError = ev.message ?? 'could not start';
      } catch {
        // Not ours to worry about: the exit status still tells how the trial went.
      }
    });
    reaperStatus.on('data', (chunk: Buffer) => statusLines.push(chunk));
    reaperStatus.on('error', () => undefined);
    const statusClosed = new Promise<void>((resolve) => reaperStatus.once('close', resolve));

    const streams = [child.stdout, child.stderr, child.stdio[METRICS_FD]] as Readable[];
    const closed = streams.map((s) => new Promise<void>((resolve) => s.once('close', resolve)));
    const stdout = new LineSplitter(MAX_LINE_BYTES, (line, truncated) => this.onStdoutLine(line, truncated));
    const stderr = new LineSplitter(MAX_LINE_BYTES, (line) => this.onStderrLine(line));
    const records = new LineSplitter(MAX_LINE_BYTES, (line, truncated) => this.onRecordLine(line, truncated));
    const splitters = [stdout, stderr, records];
    streams.forEach((s, i) => {
      s.on('data', (chunk: Buffer) => splitters[i].push(chunk));
      // A read error just ends that stream; the exit status still tells how the trial went.
      s.on('error', (err) => this.log.debug('trial output stream error', { error: describe(err) }));
    });

    child.once('error', (err) => {
      // After a successful spawn, 'error' only comes from child.kill(), which we never use.
      if (this.currentState !== 'starting') return;
      for (const s of streams) s.destroy();
      this.finishWithoutProcess(describe(err));
    });

    // A pid now means the process exists, so a stop() from here on must reach it; waiting for the
    // 'spawn' event would let an early stop slip through.
    if (child.pid !== undefined) {
      this.setState('running');
      this.log.debug('trial started', { pid: child.pid, argv: command.argv });
      const signal = this.opts.signal;
      if (signal?.aborted) this.onAbort();
      else signal?.addEventListener('abort', this.onAbort, { once: true });
    }

    child.once('exit', (code, sig) => {
      // A failed spawn is finished by the 'error' handler, whatever else Node reports for it.
      if (this.currentState !== 'running' && this.currentState !== 'stopping') return;
      const exitedAt = Date.now();
      clearTimeout(this.killTimer);
      this.setState('draining');
      // Whatever the program left behind in its group dies with it. The group id cannot have
      // been reused yet: a group lives as long as any member does.
      this.signalGroup('SIGKILL');
      void this.drain([...closed, statusClosed], [...streams, reaperStatus], [...splitters, statusLines]).then(() => {
        if (this.startError !== undefined) {
          this.finish({ exitCode: null, signal: null, startError: this.startError, durationMs: exitedAt - this.startedAt });
        } else {
          this.finish({ exitCode: code, signal: sig, durationMs: exitedAt - this.startedAt });
        }
      });
    });
  }

  /** Read what is already buffered, but never wait on a pipe that a stray process keeps open. */
  private async drain(closed: Promise<void>[], streams: Readable[], splitters: LineSplitter[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.drainMs)));
    await Promise.race([Promise.all(closed), timeout]);
    clearTimeout(timer);
    for (const s of streams) s.destroy();
    for (const s of splitters) s.end();
  }

  private finishWithoutProcess(startError: string): void {
    this.log.warn('trial could not start', { error: startError });
    this.finish({ exitCode: null, signal: null, startError, durationMs: Date.now() - this.startedAt });
  }

  private finish(r: Pick<TrialResult, 'exitCode' | 'signal' | 'startError' | 'durationMs'>): void {
    this.setState('finished');
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    removeCommandFiles(this.opts.command);
    const result: TrialResult = {
      ...r,
      ...(this.stoppedBy !== undefined ? { stoppedBy: this.stoppedBy } : {}),
      stdoutTail: this.stdoutTail.lines(),
      stderrTail: this.stderrTail.lines(),
      malformedLines: this.malformedLines,
    };
    this.log.debug('trial finished', { exitCode: r.exitCode, signal: r.signal, stoppedBy: this.stoppedBy && stopText(this.stoppedBy) });
    this.resolveResult(result);
  }

  private scheduleKill(at: number): void {
    if (at >= this.killAt) return;
    this.killAt = at;
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => {
      this.log.warn('trial ignored SIGTERM, killing it', { pid: this.pid });
      this.signalGroup('SIGKILL');
    }, at - Date.now());
  }

  /** Sends `sig` to the trial's whole process group (a preemption's SIGUSR1: time to checkpoint). */
  signal(sig: NodeJS.Signals): void {
    this.signalGroup(sig);
  }

  private signalGroup(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch (err) {
      // ESRCH: everyone in the group is already gone.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') this.log.warn('could not signal trial', { sig, error: describe(err) });
    }
  }

  private setState(to: TrialState): void {
    if (!NEXT_STATES[this.currentState].includes(to)) {
      throw new IllegalStateError(`trial cannot go from ${this.currentState} to ${to}`);
    }
    this.log.debug('trial state', { from: this.currentState, to });
    this.currentState = to;
  }

  private onStdoutLine(line: string, truncated: boolean): void {
    this.stdoutTail.push(line);
    this.callback(() => this.opts.onOutput?.('stdout', line));
    // The start of a cut line could read as a shorter, wrong row of metrics.
    if (!truncated) this.take(parseMetricLine(line), 'stdout', line);
  }

  private onStderrLine(line: string): void {
    this.stderrTail.push(line);
    this.callback(() => this.opts.onOutput?.('stderr', line));
  }

  private onRecordLine(line: string, truncated: boolean): void {
    this.take(truncated ? { kind: 'malformed' } : parseHelperRecord(line), 'metrics-fd', line);
  }

  private take(parsed: MetricLine, source: 'stdout' | 'metrics-fd', line: string): void {
    if (parsed.kind === 'none') return;
    if (parsed.kind === 'preempting') {
      this.callback(() => this.opts.onPreempting?.());
      return;
    }
    if (parsed.kind === 'malformed') {
      this.malformedLines++;
      this.callback(() => this.opts.onMalformed?.(source, line));
      return;
    }
    const hasInvalid = Object.keys(parsed.invalid).length > 0;
    if (!hasInvalid && Object.keys(parsed.values).length === 0) return;
    const point: MetricPoint = {
      step: parsed.step,
      t: Date.now(),
      values: parsed.values,
      ...(hasInvalid ? { invalid: parsed.invalid } : {}),
    };
    this.callback(() => this.opts.onPoint?.(point));
  }

  /** A throwing callback must not stop us reading the trial's output. */
  private callback(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!this.callbackFailed) this.log.error('trial output callback threw', { error: describe(err) });
      this.callbackFailed = true;
    }
  }
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines at `\n`, `\r\n` or a lone `\r` (progress bars redraw with it).
 * Works on bytes so a UTF-8 character split across chunks is decoded whole. A line longer than
 * `maxBytes` is delivered once, cut and flagged, and the rest of it is skipped, so a program that
 * never prints a newline cannot make the buffer grow.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skippingRest = false;
  private afterCR = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: string, truncated: boolean) => void,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let pos = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (chunk[0] === LF) pos = 1;
    }
    // Each search result is reused until passed, so a chunk is scanned once per byte value.
    let nextLF = chunk.indexOf(LF, pos);
    let nextCR = chunk.indexOf(CR, pos);
    while (pos < chunk.length) {
      if (nextLF !== -1 && nextLF < pos) nextLF = chunk.indexOf(LF, pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = chunk.indexOf(CR, pos);
      const brk = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
      if (brk === -1) {
        this.append(chunk.subarray(pos));
        return;
      }
      this.append(chunk.subarray(pos, brk));
      this.endLine();
      pos = brk + 1;
      if (chunk[brk] === CR) {
        if (pos === chunk.length) this.afterCR = true;
        else if (chunk[pos] === LF) pos++;
      }
    }
  }

  /** Deliver a last line that had no newline. */
  end(): void {
    if (!this.skippingRest && this.size > 0) this.emit(false);
    this.parts = [];
    this.size = 0;
    this.skippingRest = false;
    this.afterCR = false;
  }

  private append(part: Buffer): void {
    if (this.skippingRest || part.length === 0) return;
    const room = this.maxBytes - this.size;
    if (part.length <= room) {
      this.parts.push(part);
      this.size += part.length;
      return;
    }
    this.parts.push(part.subarray(0, room));
    this.size += room;
    this.emit(true);
    this.skippingRest = true;
  }

  private endLine(): void {
    if (this.skippingRest) this.skippingRest = false;
    else this.emit(false);
  }

  private emit(truncated: boolean): void {
    const buf = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    this.onLine(buf.toString('utf8'), truncated);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
