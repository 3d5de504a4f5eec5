/**
 * The dashboard's server-side pieces without a network: the views, the live feed over a real
 * SweepService (in-memory event log), and the token check.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { parseConfigText } from '../../controller/config/parse.js';
import { connectHostFor, isLoopbackHost } from '../../common/net.js';
import { allowedHostsFor, DashboardAuth } from '../../controller/dashboard/auth.js';
import type { FeedStats } from '../../controller/dashboard/feed.js';
import { SweepFeed } from '../../controller/dashboard/feed.js';
import type { SweepDelta } from '../../controller/dashboard/views.js';
import { ColumnSet, downsample, listSweeps, shellLine, sweepSnapshot, trialDetail } from '../../controller/dashboard/views.js';
import { MemoryEventLog } from '../../controller/sweeps/event-log.js';
import { SweepService } from '../../controller/sweeps/sweep-service.js';
import { TRIAL_STATES } from '../../domain/trial-state.js';

const CONFIG = `
method: random
seed: 3
metric: {name: loss}
parameters:
  lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0}
  batch: {values: [128, 32, 64]}
  opt:
    parameters:
      name: {values: [adam, sgd]}
      beta: {min: 0.8, max: 0.99}
  epochs: {value: 5}
`;

describe('ColumnSet', () => {
  it('lists searched parameters in config order, nested ones dotted, constants last', () => {
    const cols = new ColumnSet(parseConfigText(CONFIG).config.parameters).columns;
    expect(cols).toEqual([
      { name: 'lr', kind: 'numeric', scale: 'log', constant: false },
      { name: 'batch', kind: 'categorical', scale: 'linear', constant: false, categories: ['32', '64', '128'] },
      { name: 'opt.name', kind: 'categorical', scale: 'linear', constant: false, categories: ['adam', 'sgd'] },
      { name: 'opt.beta', kind: 'numeric', scale: 'linear', constant: false },
      { name: 'epochs', kind: 'numeric', scale: 'linear', constant: true },
    ]);
  });

  it('grows at the end for names and categories the config did not list, keeping old cells valid', () => {
    const set = new ColumnSet(parseConfigText(CONFIG).config.parameters);
    const before = set.cells({ lr: 0.01, batch: 64, opt: { name: 'adam', beta: 0.9 }, epochs: 5 });
    expect(before).toEqual([0.01, '64', 'adam', 0.9, 5]);
    expect(set.observe({ lr: 0.01, batch: 64, opt: { name: 'adamw', beta: 0.9 }, extra: true })).toBe(true);
    expect(set.observe({ lr: 0.02, batch: 64, opt: { name: 'adamw', beta: 0.9 }, extra: true })).toBe(false);
    expect(set.columns[2].categories).toEqual(['adam', 'sgd', 'adamw']);
    expect(set.columns[5]).toEqual({ name: 'extra', kind: 'categorical', scale: 'linear', constant: false, categories: ['True'] });
    expect(set.cells({ lr: 'oops', extra: false })).toEqual([null, null, null, null, null, 'False']);
  });
});

describe('downsample', () => {
  it('keeps at most about the asked number of points, every spike, and the last point', () => {
    const steps = Array.from({ length: 10_000 }, (_, i) => i);
    const values = steps.map((i) => (i === 4321 ? 100 : i === 7777 ? -100 : Math.sin(i / 100)));
    const d = downsample(steps, values, 200);
    expect(d.steps.length).toBeLessThanOrEqual(200);
    expect(d.values).toContain(100);
    expect(d.values).toContain(-100);
    expect(d.steps.at(-1)).toBe(9999);
    expect([...d.steps].sort((a, b) => a - b)).toEqual(d.steps);
    expect(downsample([1, 2], [3, 4], 200)).toEqual({ steps: [1, 2], values: [3, 4] });
  });
});

describe('shellLine', () => {
  it('quotes what a shell would split or expand, and nothing else', () => {
    expect(shellLine(['/usr/bin/env', 'python3', 'train.py', '--lr=0.001', "--name=it's", '$(rm -rf ~)', ''])).toBe(
      `/usr/bin/env python3 train.py --lr=0.001 '--name=it'\\''s' '$(rm -rf ~)' ''`,
    );
  });
});

/** A service with one sweep, and helpers to start, feed and end its trials. */
async function setup() {
  const service = new SweepService({ eventLog: new MemoryEventLog(), log: silentLogger });
  const sweep = await service.createSweep(CONFIG);
  const start = async (agentId: string) => {
    service.registerAgent({ agentId, sweepId: sweep.id, hostname: 'h', pid: 1, slots: 1 });
    const r = await service.requestTrial(agentId, sweep.id);
    if (r.kind !== 'trial') throw new Error(r.kind);
    return r.trial.id;
  };
  let seq = 0;
  const log = (trialId: string, loss: number) => service.onMetrics({ sweepId: sweep.id, trialId, seq: ++seq, points: [{ step: null, t: 0, values: { loss } }] });
  const end = (trialId: string, exitCode = 0) =>
    service.completeTrial({ agentId: service.getTrial(trialId).agentId, trialId, exitCode, signal: '', startError: '', stoppedReason: '', stdoutTail: [], stderrTail: [], lastMetricSeq: 0, argv: [] });
  return { service, sweep, start, log, end };
}

describe('SweepFeed', () => {
  function watch(service: SweepService, sweep: Awaited<ReturnType<typeof setup>>['sweep']) {
    const stats: FeedStats = { deltas: 0, rows: 0, bytes: 0, buildMs: 0 };
    const feed = new SweepFeed(service, sweep, 5, stats, silentLogger);
    const waiting: Array<(d: SweepDelta) => void> = [];
    feed.add((event, data) => {
      expect(event).toBe('delta');
      waiting.shift()?.(JSON.parse(data));
    });
    const next = () => new Promise<SweepDelta>((resolve) => waiting.push(resolve));
    return { feed, stats, next };
  }

  it('sends only the trials that changed, each change once, many changes folded into one delta', async () => {
    const { service, sweep, start, log, end } = await setup();
    const a = await start('a1');
    const b = await start('a2');
    log(a, 0.5);
    await end(a);
    const { feed, stats, next } = watch(service, sweep);

    let delta = next();
    for (let i = 0; i < 5; i++) log(b, 1 - i / 10);
    let d = await delta;
    expect(d.trials.map((t) => [t.id, t.points, t.bestValue])).toEqual([[b, 5, 0.6]]);
    expect(d.sweep.bestValue).toBe(0.5);
    expect(d.sweep.bestTrialId).toBe(a);
    expect(d.params).toBeUndefined();

    delta = next();
    const c = await start('a3');
    d = await delta;
    expect(d.trials.map((t) => [t.id, t.state])).toEqual([[c, 'running']]);
    expect(d.trials[0].params).toHaveLength(5);

    delta = next();
    log(b, 0.1);
    await end(b);
    d = await delta;
    expect(d.trials.map((t) => [t.id, t.state, t.bestValue])).toEqual([[b, 'finished', 0.1]]);
    expect(d.sweep.bestTrialId).toBe(b);
    expect(d.sweep.stateCounts).toEqual({ finished: 2, running: 1 });

    // An ended trial is never looked at again: only c's change goes out.
    delta = next();
    log(c, 0.9);
    d = await delta;
    expect(d.trials.map((t) => t.id)).toEqual([c]);
    expect(stats.deltas).toBe(4);
    expect(stats.rows).toBe(4);
    feed.close();
  });

  it('agrees with a fresh snapshot after the deltas are applied', async () => {
    const { service, sweep, start, log, end } = await setup();
    const first = await start('a1');
    const snapshotBefore = sweepSnapshot(service, sweep, 0);
    const { feed, next } = watch(service, sweep);
    const rows = new Map(snapshotBefore.trials.map((t) => [t.id, t]));
    const delta = next();
    log(first, 0.3);
    await end(first);
    const second = await start('a2');
    log(second, 0.2);
    for (const t of (await delta).trials) rows.set(t.id, t);
    const fresh = sweepSnapshot(service, sweep, 0);
    expect([...rows.values()].sort((x, y) => x.number - y.number)).toEqual([...fresh.trials].sort((x, y) => x.number - y.number));
    feed.close();
  });
});

describe('the views rank as the API does', () => {
  it('send the state vocabulary, and never rank a failed trial, in the snapshot, the sweeps list and a trial page', async () => {
    const { service, sweep, start, log, end } = await setup();
    const failed = await start('a1');
    log(failed, 0.01);
    await end(failed, 1);
    const good = await start('a2');
    log(good, 0.5);
    await end(good);
    const snapshot = sweepSnapshot(service, sweep, 0);
    expect(snapshot.trialStates).toEqual(TRIAL_STATES);
    expect(snapshot.rankableStates).toEqual(['running', 'preempted', 'finished', 'stopped']);
    expect(snapshot.sweep).toMatchObject({ bestValue: 0.5, bestTrialId: good });
    expect(Object.keys(snapshot.trials[0])).toEqual([
      'id', 'number', 'state', 'bestValue', 'lastValue', 'lastStep', 'points', 'createdAt', 'startedAt', 'endedAt', 'agentId', 'gpu', 'gpuUtil', 'gpuMemoryMb', 'reason', 'params',
    ]);
    expect(listSweeps(service).find((s) => s.id === sweep.id)).toMatchObject({ bestValue: 0.5, bestTrialId: good });
    expect(trialDetail(service, service.getTrial(good), 0).trial.rank).toBe(1);
    expect(trialDetail(service, service.getTrial(failed), 0)).toMatchObject({ trial: { rank: 0, bestValue: 0.01 }, sweep: { bestTrialId: good } });
  });
});

describe('loopback hosts (common/net.ts)', () => {
  it('knows loopback names and addresses, bracketed or not, and where a wildcard bind is reached', () => {
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', 'gpu-box', '10.0.0.1', '128.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
    expect([connectHostFor('0.0.0.0'), connectHostFor('::'), connectHostFor('10.0.0.1')]).toEqual(['127.0.0.1', '::1', '10.0.0.1']);
  });
});

describe('DashboardAuth', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  const url = (path: string) => new URL(path, 'http://x');

  it('without a token, lets in loopback names only, against DNS rebinding', () => {
    const auth = new DashboardAuth(undefined, allowedHostsFor('127.0.0.1'), 'c');
    expect(auth.check(req({ host: '127.0.0.1:8080' }), url('/')).kind).toBe('ok');
    expect(auth.check(req({ host: 'localhost:8080' }), url('/')).kind).toBe('ok');
    expect(auth.check(req({ host: 'evil.example:8080' }), url('/'))).toMatchObject({ kind: 'denied', status: 403 });
    const open = new DashboardAuth(undefined, allowedHostsFor('0.0.0.0'), 'c');
    expect(open.check(req({ host: 'gpu-box:8080' }), url('/')).kind).toBe('ok');
  });

  it('with a token: a bearer header, or ?token= once then a cookie that is not the token', () => {
    const auth = new DashboardAuth('s3cret', allowedHostsFor('127.0.0.1'), 'sweeper_dashboard_8080', true);
    expect(auth.check(req({ host: '127.0.0.1' }), url('/'))).toMatchObject({ kind: 'denied', status: 401 });
    expect(auth.check(req({ authorization: 'Bearer s3cret' }), url('/api/sweeps')).kind).toBe('ok');
    expect(auth.check(req({ authorization: 'Bearer nope' }), url('/api/sweeps')).kind).toBe('denied');
    expect(auth.check(req({}), url('/?token=nope')).kind).toBe('denied');

    const login = auth.check(req({}), url('/sweeps/abc?token=s3cret&x=1'));
    if (login.kind !== 'login') throw new Error(login.kind);
    expect(login.location).toBe('/sweeps/abc?x=1');
    expect(login.cookie).toMatch(/^sweeper_dashboard_8080=[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
    expect(login.cookie).not.toContain('s3cret');
    const cookie = login.cookie.split(';')[0];
    expect(auth.check(req({ cookie: `other=1; ${cookie}` }), url('/')).kind).toBe('ok');
    expect(auth.check(req({ cookie: 'sweeper_dashboard_8080=forged' }), url('/')).kind).toBe('denied');
  });
});
