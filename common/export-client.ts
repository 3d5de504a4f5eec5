/**
 * The client side of ExportSweep, for `sweeper export` and tests: the stream's messages put back
 * together into the header and whole trials (a trial's history may come over many messages), in
 * the shapes common/export-format.ts writes, over SweeperClient's stream.
 */
import { SweeperClient, type ClientSecurity } from './api-client.js';
import type { ExportHeader, ExportSeries, ExportTrial } from './export-format.js';

export interface ExportRequest {
  sweepId: string;
  history: boolean;
  system: boolean;
}

export type ExportItem = { kind: 'header'; header: ExportHeader } | { kind: 'trial'; trial: ExportTrial };

export interface ExportStream extends AsyncIterable<ExportItem> {
  /** Ends the stream early; the iterator then returns. */
  cancel(): void;
  /** Lets go of the connection (after the iterator is done). */
  close(): void;
}

/** The header first, then each trial once all of it has arrived. Rejects with ApiError. */
export function exportSweepStream(address: string, security: ClientSecurity, req: ExportRequest): ExportStream {
  const client = new SweeperClient(address, security);
  const stream = client.exportSweep(req);
  return {
    cancel: () => stream.cancel(),
    close: () => client.close(),
    async *[Symbol.asyncIterator]() {
      let pending: ExportTrial | undefined;
      for await (const chunk of stream) {
        if (chunk.header) {
          yield { kind: 'header', header: { ...chunk.header, exportedAt: Number(chunk.header.exportedAt) } };
        } else if (chunk.trial) {
          if (pending) yield { kind: 'trial', trial: pending };
          const t = chunk.trial;
          pending = {
            id: t.id,
            number: t.number,
            state: t.state,
            agentId: t.agentId,
            paramsJson: t.paramsJson,
            startedAt: Number(t.startedAt),
            endedAt: Number(t.endedAt),
            reason: t.reason,
            value: t.value ?? null,
            rank: t.rank,
            metrics: t.metrics.map(({ name, last, min, max }) => ({ name, last, min, max })),
            series: [],
          };
        } else if (chunk.series && pending) {
          appendSeries(pending.series, chunk.series);
        }
      }
      if (pending) yield { kind: 'trial', trial: pending };
    },
  };
}

/** A piece of a metric's history, after those that came before it. */
function appendSeries(into: ExportSeries[], piece: ExportSeries): void {
  const last = into[into.length - 1];
  if (last?.name === piece.name) {
    for (let i = 0; i < piece.steps.length; i++) {
      last.steps.push(piece.steps[i]);
      last.values.push(piece.values[i]);
    }
  } else {
    into.push({ name: piece.name, steps: [...piece.steps], values: [...piece.values] });
  }
}
