/**
 * An agent killed (SIGKILL) or stopped while NATS is down loses no metric point: what it had read
 * from its trial is in its spool, and another agent of the sweep on this host publishes it.
 * Real nats-server (killed and restarted), real controller, real agent and trial processes.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, spawnCli } from '../fixtures/cli.js';
import { startStack, SWEEPS, type TestStack } from '../fixtures/stack.js';
import { until } from '../fixtures/wait.js';

const POINTS = 7;

/** Every journal under the spool folder, with its text. */
function journals(dir: string): Array<{ path: string; text: string }> {
  if (!existsSync(dir)) return [];
  const out: Array<{ path: string; text: string }> = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.jsonl')) out.push({ path: p, text: readFileSync(p, 'utf8') });
    }
  };
  walk(dir);
  return out;
}

describe('metric spool', () => {
  let stack: TestStack | undefined;
  const temp: string[] = [];
  afterEach(async () => {
    await stack?.stop();
    for (const d of temp.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /**
   * A trial prints its points while NATS is down; the first agent is then ended by `signal`;
   * NATS comes back and a second agent (started after, or already running with `secondEarly`)
   * must publish every point the first one journaled.
   */
  async function survives(signal: 'SIGKILL' | 'SIGTERM', secondEarly = false, natsAuth = false): Promise<void> {
    stack = await startStack({ natsAuth });
    const work = mkdtempSync(join(tmpdir(), 'sweeper-spool-it-'));
    temp.push(work);
    const spoolDir = join(work, 'spool');
    const env = { HOLD_DIR: work, SWEEPER_SPOOL_DIR: spoolDir };
    // With secondEarly, a second grid point keeps the second agent busy (and alive) meanwhile.
    const copies = secondEarly ? [1, 2] : [1];
    const config = { method: 'grid', metric: { name: 'loss' }, program: 'hold.cjs', parameters: { points: { value: POINTS }, copy: { values: copies } } };
    const sweep = await stack.client.createSweep(JSON.stringify(config), 'spool.json');
    const address = stack.controller.address;

    const first = spawnCli(['agent', sweep.id, '--controller', address, '--agent-id', 'spool-a', '--grace', '1'], { cwd: SWEEPS, env });
    const firstDone = collect(first, 90_000);
    const trialId = await until('the trial to start', () => readdirSync(work).find((f) => f.endsWith('.pid'))?.replace(/\.pid$/, ''));
    const startSecond = () => spawnCli(['agent', sweep.id, '--controller', address, '--agent-id', 'spool-b'], { cwd: SWEEPS, env });
    // Already running (with a trial of its own), it must find the journal when the first agent dies.
    const early = secondEarly ? startSecond() : undefined;
    const earlyDone = early && collect(early);
    let earlyLog = '';
    early?.stderr!.on('data', (d) => (earlyLog += d));
    if (early) await until('the second agent to start its trial', () => (earlyLog.includes('trial starting') ? true : undefined));

    // NATS goes away, then the trial prints: the agent can only keep the points (memory, spool).
    stack.nats.kill();
    await stack.nats.exited;
    writeFileSync(join(work, 'go'), '');
    await until('the trial to print', () => (existsSync(join(work, `${trialId}.printed`)) ? true : undefined));
    await until('the agent to journal every point', () => {
      const j = journals(spoolDir).find((x) => x.text.includes(`"trial":"${trialId}"`));
      return j && j.text.split('\n').filter((l) => l.startsWith('{"p":')).length === POINTS ? true : undefined;
    });
    first.kill(signal);
    const ended = await firstDone;
    if (signal === 'SIGTERM') {
      // It gave up on NATS after its patience and exited on its own, leaving the points spooled.
      expect(ended.code, ended.stderr).toBe(0);
      expect(ended.stderr).toContain('metric points not yet published; they wait in the spool for the next agent');
    }

    await stack.nats.restart();
    const second = early ?? startSecond();
    const secondDone = earlyDone ?? collect(second);
    try {
      const stored = await until('the spooled points to be stored', async () => {
        const d = await stack!.client.getSweep(sweep.id);
        const t = d.trials.find((x) => x.id === trialId);
        return t && t.points >= POINTS ? t.points : undefined;
      });
      expect(stored).toBe(POINTS);
      const history = await stack.client.getTrial(trialId);
      expect(history.trial.bestValue).toBeCloseTo(1 / POINTS, 12);
      expect(history.metricValues).toEqual(Array.from({ length: POINTS }, (_, i) => 1 / (i + 1)));
      // Published and acknowledged: the journal is gone.
      await until('the journal to be removed', () => (journals(spoolDir).some((x) => x.text.includes(`"trial":"${trialId}"`)) ? undefined : true));
    } finally {
      await stack.client.cancelSweep(sweep.id).catch(() => undefined);
      second.kill('SIGTERM');
      await secondDone;
    }
  }

  it("publishes what a SIGKILLed agent read but could not send, from the next agent's start", async () => {
    await survives('SIGKILL');
  });

  it('lets an agent told to stop while NATS is down exit after its patience, and the next agent publishes its points', async () => {
    await survives('SIGTERM');
  }, 120_000);

  it('has an agent that was already running find and publish the journal of one that died', async () => {
    await survives('SIGKILL', true);
  });

  it("with per-agent NATS identities, the next agent publishes a dead agent's points as that agent", async () => {
    await survives('SIGKILL', false, true);
    expect((await stack!.client.getStats()).rejected).toEqual({});
  });
});
