/**
 * Report metrics to a Sweeper agent from a Node program; the counterpart of the Python
 * `sweeper` package, writing the same records.
 *
 *   import { log, params } from 'sweeper-hpo/log';
 *   log({ loss: 0.25, acc: 0.9 }, 3);
 *
 * Under an agent each call writes one JSON line to the fd named by SWEEPER_METRICS_FD, with a
 * synchronous write so a row is never lost to a crash right after it. Run by hand, it prints
 * `loss=0.25 acc=0.9 step=3` to stdout, which an agent would also read.
 */
import { writeSync } from 'node:fs';

export type MetricValues = Record<string, number>;

export function log(values: MetricValues, step?: number | null): void {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new TypeError('log expects an object of metric values');
  }
  if (step !== undefined && step !== null && !(Number.isSafeInteger(step) && step >= 0)) {
    throw new TypeError(`step must be a non-negative integer, got ${String(step)}`);
  }
  const entries = Object.entries(values);
  for (const [name, v] of entries) {
    if (name === '') throw new TypeError('metric names must be non-empty');
    if (typeof v !== 'number') throw new TypeError(`metric '${name}' must be a number, got ${typeof v}`);
  }

  const fdText = process.env.SWEEPER_METRICS_FD;
  if (fdText) {
    // JSON has no NaN or Infinity; the agent reads these strings back as invalid values.
    const json: Record<string, number | string> = {};
    for (const [name, v] of entries) json[name] = Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    writeFully(Number(fdText), JSON.stringify({ step: step ?? null, values: json }) + '\n');
  } else {
    const parts = entries.map(([name, v]) => `${name}=${String(v)}`);
    if (step !== undefined && step !== null) parts.push(`step=${step}`);
    process.stdout.write(parts.join(' ') + '\n');
  }
}

/** The trial's parameters (SWEEPER_PARAMS); `{}` outside an agent. */
export function params(): Record<string, unknown> {
  const raw = process.env.SWEEPER_PARAMS;
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
}

export function trialId(): string | undefined {
  return process.env.SWEEPER_TRIAL_ID;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeFully(fd: number, text: string): void {
  let buf = Buffer.from(text, 'utf8');
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (err) {
      // Only if the program made the fd non-blocking: wait for the agent to read rather than drop the row.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(sleeper, 0, 0, 5);
    }
  }
}
