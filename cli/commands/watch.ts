import { clientFrom, type ClientOptions } from '../client-options.js';
import type { ApiSweepDetail } from '../../common/api-types.js';
import { renderLeaderboard } from '../table.js';
import { onShutdownSignals } from '../signals.js';

export interface WatchOptions extends ClientOptions {
  once?: boolean;
  json?: boolean;
}

export function useColor(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
}

/** `sweeper watch SWEEP_ID`: a table redrawn in place (on a terminal) until the sweep settles. */
export async function runWatch(sweepId: string, o: WatchOptions): Promise<void> {
  const client = clientFrom(o);
  try {
    if (o.once) {
      const detail = await client.getSweep(sweepId);
      process.stdout.write(o.json ? JSON.stringify(detailJson(detail), null, 2) + '\n' : render(detail) + '\n');
      return;
    }
    const stream = client.watchSweep(sweepId);
    const release = onShutdownSignals(() => stream.cancel());
    const screen = new LiveScreen(process.stdout);
    try {
      for await (const detail of stream) {
        if (o.json) process.stdout.write(JSON.stringify(detailJson(detail)) + '\n');
        else screen.draw(render(detail));
      }
    } finally {
      release();
      screen.done();
    }
  } finally {
    client.close();
  }
}

function render(detail: ApiSweepDetail): string {
  return renderLeaderboard(detail, { width: process.stdout.columns || 120, color: useColor(process.stdout), maxRows: Math.max(5, (process.stdout.rows || 40) - 12) });
}

/**
 * The one mapping of a snapshot off the wire onto `--json`: the proto's fields under their names,
 * params and config decoded, optional values as numbers or null.
 */
export function detailJson(detail: ApiSweepDetail): unknown {
  return {
    sweep: { ...fields(detail.sweep), bestValue: detail.sweep.bestValue ?? null, config: JSON.parse(detail.sweep.configJson), configJson: undefined },
    trials: detail.trials.map((t) => ({
      ...fields(t),
      params: JSON.parse(t.paramsJson),
      paramsJson: undefined,
      bestValue: t.bestValue ?? null,
      lastValue: t.lastValue ?? null,
      exitCode: t.exitCode ?? null,
      gpuUtil: t.gpuUtil ?? null,
      gpuMemoryMb: t.gpuMemoryMb ?? null,
    })),
  };
}

/**
 * A message's fields without the markers proto-loader adds for each `optional` field that is set
 * (`_bestValue: 'bestValue'`, its `oneofs` option): they name no field of the proto.
 */
function fields<T extends object>(message: T): T {
  return Object.fromEntries(Object.entries(message).filter(([key]) => !key.startsWith('_'))) as T;
}

/**
 * Redraws a block of text in place on a terminal (cursor up, clear to end). Elsewhere (a pipe, a
 * CI log) it prints only the header block when it changes, one progress update per change, and
 * the whole table once at the end, so a log of a long sweep stays readable.
 */
export class LiveScreen {
  private lines = 0;
  private last = '';
  private lastFull = '';
  constructor(private readonly out: NodeJS.WriteStream) {}
  draw(text: string): void {
    this.lastFull = text;
    const shown = this.out.isTTY ? text : text.split('\n\n')[0];
    if (shown === this.last) return;
    this.last = shown;
    if (this.out.isTTY) {
      if (this.lines > 0) this.out.write(`\x1b[${this.lines}F\x1b[J`);
      this.out.write(text + '\n');
      this.lines = text.split('\n').length;
    } else {
      this.out.write(shown + '\n');
    }
  }
  /** A message between frames: the next frame is drawn below it instead of over it. */
  note(text: string): void {
    this.out.write(text + '\n');
    this.lines = 0;
    this.last = '';
  }

  /** The last frame stays on screen; off a terminal, print it whole once. */
  done(): void {
    if (!this.out.isTTY && this.lastFull && this.lastFull !== this.last) this.out.write('\n' + this.lastFull + '\n');
    this.lines = 0;
    this.lastFull = '';
  }
}
