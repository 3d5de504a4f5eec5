/**
 * Exports and system metrics end to end: a real nats-server and controller (with its dashboard
 * and an API token), agents as CLI child processes, `sweeper export` and `sweeper logs` as a user
 * runs them. The trials report through Keras-style progress lines only, so those are checked on
 * the way too.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiTrial } from '../../common/api-types.js';
import { Float, parseTypedJson, type ParamValue } from '../../domain/values.js';
import { runCli, spawnCli, collect } from '../fixtures/cli.js';
import { SWEEPS, startStack, waitSettled, type TestStack } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

const TOKEN = 'export-test-token';
/** The token reaches the CLI through its environment, never its command line. */
const ENV = { SWEEPER_TOKEN: TOKEN };
let stack: TestStack;
let dir: string;

beforeAll(async () => {
  stack = await startStack({ token: TOKEN, dashboard: { host: '127.0.0.1', port: 0 } });
  dir = mkdtempSync(join(tmpdir(), 'sweeper-export-'));
});
afterAll(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli([...args, '--controller', stack.controller.address], { cwd: SWEEPS, env: { ...ENV, ...env } });

/** RFC 4180: records of fields, quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"' && field === '') {
      for (i++; ; i++) {
        if (text[i] === '"' && text[i + 1] === '"') {
          field += '"';
          i++;
        } else if (text[i] === '"') {
          i++;
          break;
        } else {
          field += text[i];
        }
      }
      continue;
    }
    if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else {
      field += c;
    }
    i++;
  }
  expect(field, 'a CSV ends with CRLF').toBe('');
  return records;
}

/** CSV records as objects keyed by the header row. */
function csvObjects(text: string): Record<string, string>[] {
  const [head, ...rows] = parseCsv(text);
  for (const r of rows) expect(r).toHaveLength(head.length);
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

const jsonlObjects = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => parseTypedJson(l) as Record<string, ParamValue>);

/** What the program printed, four decimals, as a number. */
const printed = (x: number) => Number(x.toFixed(4));
/** Loss and val_loss the Keras-style program printed for each epoch (keras_train.js). */
function curves(params: Record<string, ParamValue>) {
  const width = Number(params.width);
  const lr = Number(params.lr);
  const loss = [1, 2, 3].map((e) => printed(width / 10 + lr * e));
  return { loss, val: [1, 2, 3].map((e) => printed(width / 10 + lr * e + 0.5)) };
}

describe('sweeper export', () => {
  let sweepId: string;
  let trials: ApiTrial[];

  beforeAll(async () => {
    const created = await cli(['create', 'keras-export.yaml']);
    expect(created.code, created.stderr).toBe(0);
    sweepId = /Created sweep (\S+)/.exec(created.stdout)![1];
    const agent = await cli(['agent', sweepId]);
    expect(agent.code, agent.stderr).toBe(0);
    trials = (await waitSettled(stack.client, sweepId)).trials.sort((a, b) => a.number - b.number);
    expect(trials.map((t) => t.state)).toEqual(['finished', 'finished', 'finished', 'finished']);
  });

  /** The per-trial table as CSV writes it, from the trials and what their program printed. */
  function expectedSummary(): Record<string, string>[] {
    return trials.map((t) => {
      const p = parseTypedJson(t.paramsJson) as Record<string, ParamValue>;
      const { loss, val } = curves(p);
      const runtime = (t.endedAt - t.startedAt) / 1000;
      return {
        trial_id: t.id,
        number: String(t.number),
        state: 'finished',
        rank: String(t.rank),
        value: String(val[0]),
        runtime_s: Number.isInteger(runtime) ? `${runtime}.0` : String(runtime),
        reason: '',
        agent_id: t.agentId,
        started_at: new Date(t.startedAt).toISOString(),
        ended_at: new Date(t.endedAt).toISOString(),
        // Config order; the float 3.0 keeps its fraction, the int 4 has none.
        'params.width': p.width instanceof Float ? '3.0' : '4',
        'params.lr': String(p.lr),
        'params.opt.name': 'adam, "fast"',
        'params.epochs': '3',
        'metrics.loss.last': String(loss[2]),
        'metrics.loss.min': String(loss[0]),
        'metrics.loss.max': String(loss[2]),
        'metrics.val_loss.last': String(val[2]),
        'metrics.val_loss.min': String(val[0]),
        'metrics.val_loss.max': String(val[2]),
      };
    });
  }

  it('writes one row per trial as CSV, and the same table as JSON lines, types kept', async () => {
    const csv = await cli(['export', sweepId, '--format', 'csv']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(parseCsv(csv.stdout)[0]).toEqual(Object.keys(expectedSummary()[0]));
    expect(csvObjects(csv.stdout)).toEqual(expectedSummary());
    // Both widths ran: the float and the int.
    expect(csvObjects(csv.stdout).map((r) => r['params.width']).sort()).toEqual(['3.0', '3.0', '4', '4']);

    const jsonl = await cli(['export', sweepId, '--format', 'jsonl']);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const objects = jsonlObjects(jsonl.stdout);
    expect(objects.map((o) => Object.keys(o))).toEqual(trials.map(() => Object.keys(expectedSummary()[0])));
    for (const [i, o] of objects.entries()) {
      const want = expectedSummary()[i];
      const p = parseTypedJson(trials[i].paramsJson) as Record<string, ParamValue>;
      expect(o).toEqual({
        ...want,
        number: trials[i].number,
        rank: trials[i].rank,
        value: Number(want.value),
        runtime_s: expect.anything(),
        reason: null,
        'params.width': p.width,
        'params.lr': p.lr,
        'params.epochs': 3,
        'metrics.loss.last': Number(want['metrics.loss.last']),
        'metrics.loss.min': Number(want['metrics.loss.min']),
        'metrics.loss.max': Number(want['metrics.loss.max']),
        'metrics.val_loss.last': Number(want['metrics.val_loss.last']),
        'metrics.val_loss.min': Number(want['metrics.val_loss.min']),
        'metrics.val_loss.max': Number(want['metrics.val_loss.max']),
      });
      // A runtime is a float, an integral one too; the typed reader says which.
      expect(o.runtime_s instanceof Float || !Number.isInteger(o.runtime_s)).toBe(true);
      expect(Number(o.runtime_s)).toBe(Number(want.runtime_s));
    }
    expect(jsonl.stdout).toContain('"params.width":3.0,');
  });

  it('writes one row per logged point with --history, in both formats, and --out writes the same file', async () => {
    const expected = trials.flatMap((t) => {
      const { loss, val } = curves(parseTypedJson(t.paramsJson) as Record<string, ParamValue>);
      // Keras lines carry no step: rows get their row number, one row per epoch (redraws are none).
      return [0, 1, 2].map((step) => ({ trial_id: t.id, step: String(step), 'metrics.loss': String(loss[step]), 'metrics.val_loss': String(val[step]) }));
    });
    const csv = await cli(['export', sweepId, '--history']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csvObjects(csv.stdout)).toEqual(expected);
    const jsonl = await cli(['export', sweepId, '--history', '--format', 'jsonl']);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    expect(jsonlObjects(jsonl.stdout)).toEqual(
      expected.map((r) => ({ ...r, step: Number(r.step), 'metrics.loss': Number(r['metrics.loss']), 'metrics.val_loss': Number(r['metrics.val_loss']) })),
    );
    const out = join(dir, 'history.csv');
    const toFile = await cli(['export', sweepId, '--history', '--out', out]);
    expect(toFile.code, toFile.stderr).toBe(0);
    expect(toFile.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(csv.stdout);
  });

  it('serves the same CSV as a download on the dashboard', async () => {
    const csv = await cli(['export', sweepId]);
    const base = `${stack.controller.dashboardUrl}api/sweeps/${sweepId}/export`;
    const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };
    const res = await fetch(`${base}?format=csv&history=0`, auth);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${sweepId}.csv"`);
    expect(await res.text()).toBe(csv.stdout);
    const history = await fetch(`${base}?format=jsonl&history=1`, auth);
    expect(history.headers.get('content-disposition')).toBe(`attachment; filename="${sweepId}-history.jsonl"`);
    expect(await history.text()).toBe((await cli(['export', sweepId, '--history', '--format', 'jsonl'])).stdout);
    // The token is needed; a format it does not know is refused.
    expect((await fetch(`${base}?format=csv`)).status).toBe(401);
    expect((await fetch(`${base}?format=xml`, auth)).status).toBe(400);
  });

  it('refuses bad input with exit code 2', async () => {
    const unknown = await cli(['export', 'nosuchsweep']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown sweep|not found|nosuchsweep/i);
    const format = await cli(['export', sweepId, '--format', 'xml']);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("'xml'");
  });
});

describe('system metrics of a trial', () => {
  it("records CPU and memory of the trial's process tree, shows them in sweeper logs and exports them with --system", async () => {
    const created = await cli(['create', 'burn.yaml']);
    const sweepId = /Created sweep (\S+)/.exec(created.stdout)![1];
    const gate = join(dir, 'burn-gate');
    const agent = spawnCli(['agent', sweepId, '--controller', stack.controller.address, '--gpu-sample-interval', '200ms'], { cwd: SWEEPS, env: { ...ENV, BURN_GATE: gate } });
    const done = collect(agent);
    const trialId = `${sweepId}-1`;
    let cpu;
    try {
      // The load is in the child the program waits for: only the whole tree shows it.
      cpu = await until('three CPU samples', async () => {
        const d = await stack.client.getTrial(trialId).catch(() => undefined);
        const m = d?.metrics.find((x) => x.name === 'system/cpu.percent');
        return m && m.count >= 3 ? m : undefined;
      });
    } finally {
      // Opened whatever happened, so that the trial and its agent end.
      writeFileSync(gate, '');
    }
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    await waitSettled(stack.client, sweepId);
    const d = await stack.client.getTrial(trialId);
    const cpuAll = d.metrics.find((x) => x.name === 'system/cpu.percent')!;
    expect(cpuAll.count).toBeGreaterThanOrEqual(cpu.count);
    expect(cpuAll.max).toBeGreaterThan(50);
    const rss = d.metrics.find((x) => x.name === 'system/memory.rss_mb')!;
    expect(rss.min).toBeGreaterThan(0);
    // System samples are no rows of the program: its one row is the loss.
    expect(d.trial.points).toBe(1);

    const logs = await cli(['logs', trialId]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/^metric system\/cpu\.percent: last [\d.]+, min [\d.]+, max [\d.]+ \(\d+ values\)$/m);
    expect(logs.stdout).toMatch(/^metric system\/memory\.rss_mb: last [\d.]+, min [\d.]+, max [\d.]+ \(\d+ values\)$/m);

    // Left out of exports unless asked for.
    const plain = csvObjects((await cli(['export', sweepId, '--history'])).stdout);
    expect(plain).toEqual([{ trial_id: trialId, step: '0', 'metrics.loss': '1' }]);
    const withSystem = csvObjects((await cli(['export', sweepId, '--history', '--system'])).stdout);
    expect(withSystem[0]).toEqual({ trial_id: trialId, step: '0', time: '', 'metrics.loss': '1', 'metrics.system/cpu.percent': '', 'metrics.system/memory.rss_mb': '' });
    const samples = withSystem.slice(1);
    expect(samples.length).toBeGreaterThanOrEqual(3);
    for (const s of samples) {
      expect(s.step).toBe('');
      expect(Date.parse(s.time)).toBeGreaterThanOrEqual(d.trial.startedAt);
    }
    expect(samples.filter((s) => s['metrics.system/cpu.percent'] !== '').map((s) => Number(s['metrics.system/cpu.percent']))).toHaveLength(cpuAll.count);
    const summary = csvObjects((await cli(['export', sweepId, '--system'])).stdout)[0];
    expect(Number(summary['metrics.system/cpu.percent.max'])).toBe(cpuAll.max);
    expect(Number(summary['metrics.system/memory.rss_mb.min'])).toBe(rss.min);
  });
});
