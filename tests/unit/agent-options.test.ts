/** The agent's options compiled once (agent/agent-options.ts): every default named, the result frozen. */
import { describe, expect, it } from 'vitest';
import { compileAgentOptions } from '../../agent/agent-options.js';
import { silentLogger } from '../../common/log.js';
import { DEFAULT_GPU_SAMPLE_MS, DEFAULT_GRACE_MS, DEFAULT_MAX_INITIAL_FAILURES } from '../../domain/defaults.js';

const minimal = { sweepId: 'sw', controller: '127.0.0.1:50051', cwd: '/tmp', log: silentLogger };

describe('compileAgentOptions', () => {
  it('fills in every default', () => {
    const c = compileAgentOptions(minimal);
    expect(c).toMatchObject({
      graceMs: DEFAULT_GRACE_MS,
      gpuSampleMs: DEFAULT_GPU_SAMPLE_MS,
      maxInitialFailures: DEFAULT_MAX_INITIAL_FAILURES,
      controllerTimeoutMs: 0,
      slots: [{}],
      count: undefined,
      spoolDir: undefined,
    });
    expect([DEFAULT_GRACE_MS, DEFAULT_GPU_SAMPLE_MS, DEFAULT_MAX_INITIAL_FAILURES]).toEqual([10_000, 5_000, 5]);
    expect(c.agentId).toMatch(/^[A-Za-z0-9_-]{1,40}-\d+-[0-9a-f]{6}$/);
  });

  it('keeps what was given, 0 included', () => {
    const gpu = { index: '0', uuid: 'GPU-1', name: 'A', memoryTotalMb: 1 };
    const c = compileAgentOptions({ ...minimal, graceMs: 0, maxInitialFailures: 0, gpuSampleMs: 200, controllerTimeoutMs: 3000, agentId: 'a-1', count: 2, slots: [{ gpu }, { gpu }] });
    expect(c).toMatchObject({ graceMs: 0, maxInitialFailures: 0, gpuSampleMs: 200, controllerTimeoutMs: 3000, agentId: 'a-1', count: 2, slots: [{ gpu }, { gpu }] });
    expect(compileAgentOptions({ ...minimal, slots: [] }).slots).toEqual([{}]);
  });

  it('is frozen, and does not share the caller’s slot list', () => {
    const slots = [{}];
    const c = compileAgentOptions({ ...minimal, slots });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.slots)).toBe(true);
    slots.push({});
    expect(c.slots).toHaveLength(1);
  });
});
