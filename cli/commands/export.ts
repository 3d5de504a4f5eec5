/**
 * `sweeper export SWEEP_ID`: the sweep's trials as CSV or JSON lines (common/export-format.ts),
 * streamed from the controller's ExportSweep, to stdout or to `--out FILE`. A file is written
 * under a temporary name beside it and renamed at the end, so an export that fails or is
 * interrupted never leaves a half-written FILE.
 */
import { createWriteStream, renameSync, rmSync, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { exportSweepStream, type ExportStream } from '../../common/export-client.js';
import { EXPORT_FORMATS, ExportEncoder, type ExportFormat } from '../../common/export-format.js';
import { SweeperError, UsageError } from '../../domain/errors.js';
import { clientSecurity, type ClientOptions } from '../client-options.js';
import { EXIT } from '../exit.js';
import { onShutdownSignals } from '../signals.js';

export interface ExportOptions extends ClientOptions {
  format: string;
  history?: boolean;
  system?: boolean;
  out?: string;
}

export async function runExport(sweepId: string, o: ExportOptions): Promise<void> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new UsageError(`--format must be ${EXPORT_FORMATS.join(' or ')}, not '${o.format}'`);
  }
  const format = o.format as ExportFormat;
  const history = Boolean(o.history);
  const stream = exportSweepStream(o.controller, clientSecurity(o), { sweepId, history, system: Boolean(o.system) });
  const target = o.out ? openTarget(o.out) : { out: process.stdout as Writable, commit: async () => undefined, abandon: () => undefined };
  let interrupted = false;
  const release = onShutdownSignals(() => {
    interrupted = true;
    stream.cancel();
  });
  try {
    await writeExport(stream, target.out, format, history);
    if (interrupted) {
      // Ctrl-C: exit 130, and no half-written --out.
      target.abandon();
      process.stderr.write(`sweeper: export of ${sweepId} interrupted${o.out ? `; ${o.out} was not written` : ''}\n`);
      process.exitCode = EXIT.interrupted;
      return;
    }
    await target.commit();
  } catch (err) {
    target.abandon();
    throw err;
  } finally {
    release();
    stream.close();
  }
}

/** Encodes the stream onto `out` as it arrives, waiting for `out` to drain. */
async function writeExport(stream: ExportStream, out: Writable, format: ExportFormat, history: boolean): Promise<void> {
  let encoder: ExportEncoder | undefined;
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
    stream.cancel();
  };
  out.on('error', onError);
  try {
    for await (const item of stream) {
      const text = item.kind === 'header' ? (encoder = new ExportEncoder(format, item.header, history)).head() : encoder!.trial(item.trial);
      if (text && !out.write(text)) await drained(out);
      if (failed) break;
    }
  } finally {
    out.off('error', onError);
  }
  // Reading stopped by `sweeper export … | head`: what was asked for is written; nothing to report.
  if (failed && (failed as NodeJS.ErrnoException).code !== 'EPIPE') throw new SweeperError(`cannot write the export: ${failed.message}`, { cause: failed });
}

function drained(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

/** `file`, written as `.<name>.partial-<pid>` beside it until the export is complete. */
function openTarget(file: string): { out: WriteStream; commit: () => Promise<void>; abandon: () => void } {
  const partial = join(dirname(file), `.${basename(file)}.partial-${process.pid}`);
  const out = createWriteStream(partial);
  return {
    out,
    commit: () =>
      new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.end(() => {
          try {
            renameSync(partial, file);
            resolve();
          } catch (err) {
            reject(new SweeperError(`cannot write ${file}: ${(err as Error).message}`, { cause: err }));
          }
        });
      }),
    abandon: () => {
      out.destroy();
      rmSync(partial, { force: true });
    },
  };
}
