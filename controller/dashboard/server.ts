/**
 * The web dashboard: a small HTTP server beside the gRPC API, reading the same `SweepService`.
 * It serves three pages (sweeps, a sweep, a trial) from `static/`, the chart library from
 * node_modules, JSON endpoints, and one server-sent-event stream per watched sweep. Everything
 * comes from the controller itself, so it works with no internet. It only reads: pausing and
 * stopping stay with the CLI and the API.
 *
 *   GET /api/sweeps                              every sweep's summary
 *   GET /api/sweeps/:id                          a snapshot: summary, parameter columns, all trials
 *   GET /api/sweeps/:id/events                   SSE: `snapshot` once, then `delta`s (see feed.ts)
 *   GET /api/sweeps/:id/trials/:tid              a trial: params, argv, history, output tails, curve
 *   GET /api/sweeps/:id/trials/:tid/output?after=SEQ   its output after a line: live while it runs (sweeps/output-log.ts)
 *   GET /api/sweeps/:id/curves?trials=a,b&points=N   metric-vs-step histories, thinned to ~N points
 *   GET /api/sweeps/:id/importance               parameter importance (see importance.ts)
 *   GET /api/sweeps/:id/export?format=csv|jsonl&history=0|1&system=0|1   a download (`sweeper export`)
 *
 * Limits (DashboardLimits, defaults in DASHBOARD_LIMITS): a client has headersTimeoutMs to send
 * its request's headers and requestTimeoutMs for the whole request; neither applies to the
 * response, so an event stream stays open as long as its page does. Requests on connections past
 * maxConnections, and event streams past maxEventStreams (or maxEventStreamsPerSweep for one
 * sweep), are answered 503 with Retry-After; stats().refused counts them.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, RequestListener, Server, ServerOptions, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as zlib, createGzip, gzipSync } from 'node:zlib';
import { AddressInUseError, isAddressInUse, NotFoundError, SweeperError, UsageError } from '../../domain/errors.js';
import type { Logger } from '../../common/log.js';
import { connectHostFor } from '../../common/net.js';
import { isTerminal } from '../../domain/trial-state.js';
import { objectiveOf } from '../../domain/objective.js';
import { outputView, type OutputLog } from '../sweeps/output-log.js';
import { EXPORT_FORMATS, ExportEncoder, exportContentType, exportFileName, type ExportFormat } from '../../common/export-format.js';
import { exportSweep } from '../sweeps/export.js';
import type { SweepRecord } from '../sweeps/state.js';
import type { SweepService } from '../sweeps/sweep-service.js';
import { allowedHostsFor, cookieName, DashboardAuth } from './auth.js';
import type { FeedStats } from './feed.js';
import { SweepFeed } from './feed.js';
import type { ImportanceResult } from './importance.js';
import { IMPORTANCE_METHOD, parameterImportance } from './importance.js';
import { columnsFor, curve, listSweeps, sweepSnapshot, trialDetail } from './views.js';

export interface DashboardOptions {
  service: SweepService;
  /** Trials' live output; without it a trial page shows output once the trial ends. */
  output?: Pick<OutputLog, 'ring'>;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** When set, every request must carry it (see auth.ts). */
  token?: string;
  /** Serve HTTPS with this certificate chain and key (PEM), as the API does. */
  tls?: { cert: Buffer; key: Buffer };
  log: Logger;
  /** Minimum time between two live updates of a sweep (default 250 ms, as WatchSweep). */
  pushIntervalMs?: number;
  /** What the dashboard holds at most and how long it waits for requests; see DASHBOARD_LIMITS. */
  limits?: Partial<DashboardLimits>;
}

export interface DashboardLimits {
  /**
   * Connections open at once. A request on a connection past it is answered 503 with Retry-After
   * and the connection closed; past twice as many, new connections are dropped unanswered.
   */
  maxConnections: number;
  /** Event streams (open sweep pages) at once, over all sweeps; past it a new one gets 503. */
  maxEventStreams: number;
  /** Event streams of one sweep at once, so that one sweep's watchers leave room for the others'. */
  maxEventStreamsPerSweep: number;
  /** Time a client has to send a request's headers, from its connection or its request's first byte (408 past it). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request. It does not cover the response: event streams stay open. */
  requestTimeoutMs: number;
  /** How long a connection with no request in flight is kept for the next one. */
  keepAliveTimeoutMs: number;
}

/**
 * The defaults. The dashboard serves a team, not the internet: 64 event streams is 64 open sweep
 * pages, and each one costs a socket, a gzip context (about 256 KiB) and up to MAX_BUFFERED_BYTES
 * of backlog, with a full snapshot (megabytes for a 10,000-trial sweep) built when it opens. A
 * browser opens up to six connections per host, so 256 connections serve about forty browsers at
 * full fan-out, and stay well under the usual limit of 1,024 open files, which the gRPC API, NATS
 * and trial processes share. Pages send a handful of small GETs, so ten seconds for headers and
 * thirty for a request are generous even on a slow link, and an idle connection is kept 5 s
 * (node's default), long enough for a page's next request, short enough not to hold slots.
 */
export const DASHBOARD_LIMITS: Readonly<DashboardLimits> = Object.freeze({
  maxConnections: 256,
  maxEventStreams: 64,
  maxEventStreamsPerSweep: 32,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
});

/** What the dashboard refused, by reason. */
export interface DashboardRefusals {
  /** Requests answered 503 on connections past maxConnections, and connections dropped past twice that. */
  connections: number;
  /** Event streams answered 503 past maxEventStreams or maxEventStreamsPerSweep. */
  eventStreams: number;
  /** Requests cut off (408) by the header or request timeout. */
  timeouts: number;
}

export interface DashboardHandle {
  /** `http://host:port/`. */
  url: string;
  port: number;
  /** The limits in force: the options over DASHBOARD_LIMITS. */
  limits: Readonly<DashboardLimits>;
  /** clients: open event streams; connections: open connections. */
  stats(): FeedStats & { feeds: number; clients: number; connections: number; refused: DashboardRefusals };
  stop(): Promise<void>;
}

/**
 * The static files stay in the source folder (tsc does not copy them): beside this file when it
 * runs from source (tests), three levels up and back down when it runs from dist/.
 */
const STATIC_DIR = [new URL('./static/', import.meta.url), new URL('../../../controller/dashboard/static/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((dir) => existsSync(join(dir, 'index.html')))!;
const UPLOT_DIR = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
/** Files served under /static/vendor/: a fixed list, never a path into node_modules. */
const VENDOR: Record<string, string> = {
  'uPlot.iife.min.js': join(UPLOT_DIR, 'uPlot.iife.min.js'),
  'uPlot.min.css': join(UPLOT_DIR, 'uPlot.min.css'),
};
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  // uPlot sizes its elements through style properties, hence 'unsafe-inline' for styles only.
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};
const PING_MS = 15_000;

/** A path the dashboard has nothing at. */
class NoSuchPage extends SweeperError {
  constructor(path: string) {
    super(`nothing at ${path}`);
  }
}
const CURVE_TRIALS_MAX = 50;
/** Characters of output in one answer of the output endpoint; a page asks again for the rest. */
const OUTPUT_RESPONSE_CHARS = 256 * 1024;
/** What a live stream may have waiting to be sent before its page counts as gone. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/**
 * Seconds a refused client is told to wait. Connections free up as soon as other requests end;
 * an event stream's slot only when a page closes, so that wait is longer. (EventSource ignores
 * Retry-After and gives up on a 503; the header is for other clients and for people.)
 */
const RETRY_CONNECTION_S = 2;
const RETRY_EVENT_STREAM_S = 10;
/**
 * Headers kept of one request (node's default is 2000; a browser sends about 20). Past it node
 * drops headers without refusing the request. maxRequestsPerSocket stays unlimited (node's
 * default): a connection is already bounded by the timeouts and the cap, and recycling it would
 * only add reconnects.
 */
const MAX_HEADERS_COUNT = 100;
/** What node answers itself, without a 'clientError' listener, to a request it cannot parse or that ran out of time. */
const CLIENT_ERROR_REPLIES: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
};
const BAD_REQUEST_REPLY = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

/** The options over the defaults, checked once at start. */
export function dashboardLimits(given: Partial<DashboardLimits> = {}): Readonly<DashboardLimits> {
  const limits = { ...DASHBOARD_LIMITS };
  for (const key of Object.keys(DASHBOARD_LIMITS) as Array<keyof DashboardLimits>) {
    const v = given[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1) throw new UsageError(`dashboard limit ${key} must be a whole number of at least 1, not ${v}`);
    limits[key] = v;
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new UsageError(`dashboard headersTimeoutMs (${limits.headersTimeoutMs}) must not exceed requestTimeoutMs (${limits.requestTimeoutMs})`);
  }
  return Object.freeze(limits);
}

interface Asset {
  body: Buffer;
  gzip: Buffer;
  etag: string;
  type: string;
}

export async function startDashboard(opts: DashboardOptions): Promise<DashboardHandle> {
  const { service, log } = opts;
  const limits = dashboardLimits(opts.limits);
  const refused: DashboardRefusals = { connections: 0, eventStreams: 0, timeouts: 0 };
  /** Set once the port is known, since the cookie's name carries it. */
  let auth: DashboardAuth | undefined;
  const interval = opts.pushIntervalMs ?? 250;
  const stats: FeedStats = { deltas: 0, rows: 0, bytes: 0, buildMs: 0 };
  const feeds = new Map<string, SweepFeed>();
  const streams = new Set<ServerResponse>();
  const streamsPerSweep = new Map<string, number>();
  let openConnections = 0;
  /** Connections that were past maxConnections when they opened: their requests get 503. */
  const overCap = new WeakSet<object>();
  /** The response in flight on a connection, so that a client error does not cut into one already sent. */
  const inFlight = new WeakMap<object, ServerResponse>();
  const assets = new Map<string, Promise<Asset>>();
  const importanceCache = new Map<string, { key: string; result: ImportanceResult }>();

  const asset = (file: string): Promise<Asset> => {
    let a = assets.get(file);
    if (!a) {
      a = readFile(file).then((body) => ({
        body,
        gzip: gzipSync(body),
        etag: `"${createHash('sha1').update(body).digest('base64url')}"`,
        type: TYPES[extname(file)] ?? 'application/octet-stream',
      }));
      // A failed read is not remembered: the next request tries again.
      a.catch(() => assets.delete(file));
      assets.set(file, a);
    }
    return a;
  };

  const sendAsset = async (req: IncomingMessage, res: ServerResponse, file: string): Promise<void> => {
    const a = await asset(file);
    // Revalidated on every load: a controller upgrade must not leave old scripts in browsers.
    const headers: Record<string, string> = { 'Content-Type': a.type, 'Cache-Control': 'no-cache', ETag: a.etag, Vary: 'Accept-Encoding' };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers).end();
      return;
    }
    const gz = acceptsGzip(req);
    if (gz) headers['Content-Encoding'] = 'gzip';
    res.writeHead(200, headers).end(gz ? a.gzip : a.body);
  };

  const importance = (sweep: SweepRecord): ImportanceResult & { method: string; metric: string | null } => {
    const objective = objectiveOf(sweep.config.metric);
    if (!objective) return { method: IMPORTANCE_METHOD, metric: null, trials: 0, params: [], note: 'the sweep has no metric' };
    // Running trials' values are still moving: the estimate uses trials that have ended.
    const ended = sweep.trials.filter((t) => isTerminal(t.state));
    const key = `${ended.length}/${sweep.trials.length}`;
    let cached = importanceCache.get(sweep.id);
    if (!cached || cached.key !== key) {
      const columns = columnsFor(sweep);
      const searched = columns.columns.map((c, i) => ({ c, i })).filter(({ c }) => !c.constant);
      const rows = [];
      for (const t of ended) {
        const value = service.metrics.best(t.id, objective);
        if (value === null) continue;
        const cells = columns.cells(t.params);
        rows.push({ value, cells: searched.map(({ i }) => cells[i]) });
      }
      const result = parameterImportance(
        searched.map(({ c }) => ({ name: c.name, kind: c.kind })),
        rows,
      );
      cached = { key, result };
      importanceCache.set(sweep.id, cached);
    }
    return { method: IMPORTANCE_METHOD, metric: objective.metric, ...cached.result };
  };

  /** 503 with Retry-After and a short message. */
  const refuse = (req: IncomingMessage, res: ServerResponse, message: string, retryAfterS: number, close = false): void => {
    res.setHeader('Retry-After', String(retryAfterS));
    if (close) res.setHeader('Connection', 'close');
    if ((req.url ?? '').startsWith('/api/')) sendJson(req, res, { error: message }, 503);
    else res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).end(message + '\n');
  };

  const openStream = (req: IncomingMessage, res: ServerResponse, sweep: SweepRecord): void => {
    const ofSweep = streamsPerSweep.get(sweep.id) ?? 0;
    if (streams.size >= limits.maxEventStreams || ofSweep >= limits.maxEventStreamsPerSweep) {
      refused.eventStreams++;
      const message =
        streams.size >= limits.maxEventStreams
          ? `the dashboard has its ${limits.maxEventStreams} live streams open: close a sweep page or try again later`
          : `sweep ${sweep.id} has its ${limits.maxEventStreamsPerSweep} live streams open: close one of its pages or try again later`;
      return refuse(req, res, message, RETRY_EVENT_STREAM_S);
    }
    // The snapshot of a big sweep is megabytes of repetitive JSON, and deltas repeat the same
    // keys: one gzip stream for the whole connection, flushed after every event, shrinks both.
    const gz = acceptsGzip(req) ? createGzip({ level: 4, flush: zlib.Z_SYNC_FLUSH }) : undefined;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // Proxies that buffer would hold the stream back.
      'X-Accel-Buffering': 'no',
      ...(gz ? { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' } : {}),
    });
    gz?.pipe(res);
    const out = gz ?? res;
    const send = (text: string) => {
      // A page that stopped reading would make us buffer without end: cut it off instead. Its
      // EventSource reconnects, and a fresh snapshot replaces everything it missed.
      if (res.writableLength + (gz?.writableLength ?? 0) > MAX_BUFFERED_BYTES) {
        log.warn('dropping a dashboard stream that is not reading', { sweep: sweep.id });
        res.destroy();
        return;
      }
      out.write(text);
    };
    const write = (event: string, data: string) => send(`event: ${event}\ndata: ${data}\n\n`);
    send('retry: 2000\n\n');
    write('snapshot', JSON.stringify(sweepSnapshot(service, sweep, Date.now())));
    let feed = feeds.get(sweep.id);
    if (!feed) {
      feed = new SweepFeed(service, sweep, interval, stats, log);
      feeds.set(sweep.id, feed);
    }
    feed.add(write);
    streams.add(res);
    streamsPerSweep.set(sweep.id, ofSweep + 1);
    const ping = setInterval(() => {
      send(': ping\n\n');
      feeds.get(sweep.id)?.touch();
    }, PING_MS);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(ping);
      gz?.destroy();
      streams.delete(res);
      const left = (streamsPerSweep.get(sweep.id) ?? 1) - 1;
      if (left > 0) streamsPerSweep.set(sweep.id, left);
      else streamsPerSweep.delete(sweep.id);
      const f = feeds.get(sweep.id);
      if (f?.remove(write)) feeds.delete(sweep.id);
    };
    req.on('close', close);
    res.on('close', close);
    res.on('error', close);
  };

  /**
   * The sweep as `sweeper export` writes it, as a download: streamed trial by trial (gzipped when
   * the browser takes it), waiting for the client to read, so a big sweep is never one string.
   */
  const sendExport = async (req: IncomingMessage, res: ServerResponse, sweep: SweepRecord, url: URL): Promise<void> => {
    const format = url.searchParams.get('format') ?? 'csv';
    if (!(EXPORT_FORMATS as readonly string[]).includes(format)) return sendJson(req, res, { error: `format must be ${EXPORT_FORMATS.join(' or ')}` }, 400);
    const history = url.searchParams.get('history') === '1';
    const parts = exportSweep(service, sweep.id, { history, system: url.searchParams.get('system') === '1' });
    const first = parts.next().value;
    if (first?.kind !== 'header') throw new Error('an export starts with its header');
    const encoder = new ExportEncoder(format as ExportFormat, first.header, history);
    const gz = acceptsGzip(req) ? createGzip({ level: 4 }) : undefined;
    res.writeHead(200, {
      'Content-Type': exportContentType(encoder.format),
      'Content-Disposition': `attachment; filename="${exportFileName(sweep.id, encoder.format, history)}"`,
      'Cache-Control': 'no-store',
      ...(gz ? { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    gz?.pipe(res);
    const out = gz ?? res;
    let gone = false;
    res.once('close', () => {
      gone = true;
      gz?.destroy();
    });
    const write = async (text: string) => {
      if (text && !out.write(text) && !gone) await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          res.off('close', done);
          resolve();
        };
        out.on('drain', done);
        res.on('close', done);
      });
    };
    await write(encoder.head());
    for (const part of parts) {
      if (gone) return;
      if (part.kind === 'trial') await write(encoder.trial(part.trial));
    }
    out.end();
  };

  const api = (req: IncomingMessage, res: ServerResponse, parts: string[], url: URL): void => {
    // parts: ['api', 'sweeps', id?, sub?, tid?]
    if (parts[1] !== 'sweeps') throw new NoSuchPage(url.pathname);
    if (parts.length === 2) return sendJson(req, res, { sweeps: listSweeps(service) });
    const sweep = service.getSweep(parts[2]);
    if (parts.length === 3) return sendJson(req, res, sweepSnapshot(service, sweep, Date.now()));
    const sub = parts[3];
    if (sub === 'events' && parts.length === 4) return openStream(req, res, sweep);
    if (sub === 'importance' && parts.length === 4) return sendJson(req, res, importance(sweep));
    if (sub === 'export' && parts.length === 4) {
      sendExport(req, res, sweep, url).catch((err) => {
        log.warn('dashboard export failed', { sweep: sweep.id, error: err instanceof Error ? err.message : String(err) });
        res.destroy();
      });
      return;
    }
    if (sub === 'curves' && parts.length === 4) {
      const metric = url.searchParams.get('metric') || sweep.config.metric?.name || '';
      const points = clampInt(url.searchParams.get('points'), 10, 5000, 500);
      const asked = (url.searchParams.get('trials') ?? '').split(',').filter(Boolean).slice(0, CURVE_TRIALS_MAX);
      const ids = asked.length > 0 ? asked : service.leaderboard(sweep).slice(0, 10).map((v) => v.id);
      const series = ids.flatMap((id) => {
        const t = sweep.trials[trialIndex(sweep.id, id)];
        return t?.id === id ? [curve(service, t, metric, points)] : [];
      });
      return sendJson(req, res, { metric, goal: sweep.config.metric?.goal ?? 'minimize', series });
    }
    if (sub === 'trials' && parts.length === 6 && parts[5] === 'output') {
      const trial = service.getTrial(parts[4]);
      if (trial.sweepId !== sweep.id) throw new NotFoundError('trial', parts[4]);
      const after = clampInt(url.searchParams.get('after'), 0, Number.MAX_SAFE_INTEGER, 0);
      const ring = opts.output?.ring(trial.id);
      const view = outputView(trial, ring, after, OUTPUT_RESPONSE_CHARS);
      const last = view.lines.length > 0 ? view.lines[view.lines.length - 1].seq : after;
      // Whether a page that asks again right away gets more: the answer was cut at its size.
      const more = view.lines.length > 0 && outputView(trial, ring, last, 0).lines.length > 0;
      return sendJson(req, res, { ...view, ended: isTerminal(trial.state), more });
    }
    if (sub === 'trials' && parts.length === 5) {
      const trial = service.getTrial(parts[4]);
      if (trial.sweepId !== sweep.id) throw new NotFoundError('trial', parts[4]);
      return sendJson(req, res, trialDetail(service, trial, Date.now()));
    }
    throw new NoSuchPage(url.pathname);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('the dashboard only reads\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const parts = url.pathname.split('/').filter(Boolean).map(safeDecode);
    const isApi = parts[0] === 'api';

    if (!auth) {
      res.writeHead(503, { 'Retry-After': '1' }).end();
      return;
    }
    const outcome = auth.check(req, url);
    if (outcome.kind === 'denied') {
      if (isApi) sendJson(req, res, { error: outcome.message }, outcome.status);
      else res.writeHead(outcome.status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(outcome.message + '\n');
      return;
    }
    if (outcome.kind === 'login' && !isApi) {
      res.writeHead(303, { 'Set-Cookie': outcome.cookie, Location: outcome.location, 'Cache-Control': 'no-store' }).end();
      return;
    }

    if (isApi) return api(req, res, parts, url);
    if (parts[0] === 'static') {
      if (parts[1] === 'vendor' && parts.length === 3 && VENDOR[parts[2]]) return sendAsset(req, res, VENDOR[parts[2]]);
      // Plain names only: no folders, no dot files, so nothing outside static/ can be named.
      if (parts.length === 2 && /^[a-z0-9-]+\.(js|css|svg)$/.test(parts[1])) return sendAsset(req, res, join(STATIC_DIR, parts[1]));
      throw new NoSuchPage(url.pathname);
    }
    // Every page is the same shell; static/app.js routes on the path.
    const page =
      parts.length === 0 ||
      (parts[0] === 'sweeps' && parts.length === 2) ||
      (parts[0] === 'sweeps' && parts[2] === 'trials' && parts.length === 4);
    if (page) return sendAsset(req, res, join(STATIC_DIR, 'index.html'));
    if (parts.length === 1 && parts[0] === 'favicon.ico') return sendAsset(req, res, join(STATIC_DIR, 'favicon.svg'));
    throw new NoSuchPage(url.pathname);
  };

  const listener: RequestListener = (req, res) => {
    inFlight.set(req.socket, res);
    res.once('finish', () => {
      if (inFlight.get(req.socket) === res) inFlight.delete(req.socket);
    });
    if (overCap.has(req.socket)) {
      refused.connections++;
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
      refuse(req, res, `the dashboard has its ${limits.maxConnections} connections open: try again later`, RETRY_CONNECTION_S, true);
      return;
    }
    handle(req, res).catch((err) => {
      const notFound = err instanceof NotFoundError || err instanceof NoSuchPage;
      if (!notFound) log.warn('dashboard request failed', { url: req.url, error: err instanceof Error ? err.message : String(err) });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = notFound ? 404 : 500;
      const message = notFound ? err.message : 'internal error';
      if ((req.url ?? '').startsWith('/api/')) sendJson(req, res, { error: message }, status);
      else res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(message + '\n');
    });
  };
  const httpOptions: ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    // Node's requestTimeout ends when the request has been received (for a GET, with its
    // headers): it never cuts a response, so a long event stream is safe from it.
    requestTimeout: limits.requestTimeoutMs,
    // Node checks both timeouts every connectionsCheckingInterval (30 s by default, which would
    // let a 10 s header timeout run to 40 s): check a few times per timeout, at most every second.
    connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(limits.headersTimeoutMs / 4))),
  };
  const server: Server = opts.tls
    ? createHttpsServer({ ...httpOptions, cert: opts.tls.cert, key: opts.tls.key, handshakeTimeout: limits.headersTimeoutMs }, listener)
    : createServer(httpOptions, listener);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxHeadersCount = MAX_HEADERS_COUNT;
  // Past maxConnections requests are still answered (503), which costs little; past twice that,
  // a flood of connections is dropped unanswered, so that it cannot hold file descriptors.
  server.maxConnections = limits.maxConnections * 2;
  server.on('drop', () => refused.connections++);
  // The HTTP layer gets its connections on 'secureConnection' under TLS; a handshake still under
  // way counts only against the drop limit above, and handshakeTimeout ends it.
  server.on(opts.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    openConnections++;
    if (openConnections > limits.maxConnections) overCap.add(socket);
    socket.once('close', () => openConnections--);
  });
  // Node answers client errors itself unless there is a listener; this one counts the timeouts
  // and answers as node does.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') refused.timeouts++;
    const res = inFlight.get(socket);
    if (err.code !== 'ECONNRESET' && socket.writable && !res?.headersSent) {
      socket.write(CLIENT_ERROR_REPLIES[err.code ?? ''] ?? BAD_REQUEST_REPLY);
    }
    socket.destroy();
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) => reject(isAddressInUse(err) ? new AddressInUseError('dashboard', opts.host, opts.port, { cause: err }) : err));
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
  auth = new DashboardAuth(opts.token, allowedHostsFor(opts.host), cookieName(port), Boolean(opts.tls));
  // The address a browser on this machine opens: a wildcard bind is reached on loopback.
  const connectHost = connectHostFor(opts.host);
  const hostPart = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
  const url = `${opts.tls ? 'https' : 'http'}://${hostPart}:${port}/`;
  log.info('dashboard listening', { url });

  let stopped = false;
  return {
    url,
    port,
    limits,
    stats: () => ({ ...stats, feeds: feeds.size, clients: streams.size, connections: openConnections, refused: { ...refused } }),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const f of feeds.values()) f.close();
      feeds.clear();
      for (const s of streams) s.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function sendJson(req: IncomingMessage, res: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', Vary: 'Accept-Encoding' };
  // A 10,000-trial snapshot is megabytes of repetitive JSON: worth a few milliseconds of gzip.
  if (text.length > 2048 && acceptsGzip(req)) {
    headers['Content-Encoding'] = 'gzip';
    res.writeHead(status, headers).end(req.method === 'HEAD' ? undefined : gzipSync(text, { level: 4 }));
    return;
  }
  res.writeHead(status, headers).end(req.method === 'HEAD' ? undefined : text);
}

/** Trial ids are `<sweep>-<n>` and a sweep's trials are in number order. */
function trialIndex(sweepId: string, trialId: string): number {
  return trialId.startsWith(`${sweepId}-`) ? Number(trialId.slice(sweepId.length + 1)) - 1 : -1;
}

function acceptsGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
}

function clampInt(text: string | null, min: number, max: number, fallback: number): number {
  const n = Number(text);
  return text !== null && Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
