/**
 * Runs in each worker before each test file (vitest `setupFiles`): names the file, then the test,
 * that is running in SWEEPER_TEST_NAME, which every process started meanwhile inherits. When a
 * process is left behind, tests/global-setup.ts says which test started it.
 */
import { relative } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { TEST_MARK } from './global-setup.js';

const file = relative(process.cwd(), expect.getState().testPath ?? '') || 'a test file';
process.env[TEST_MARK] = `${file} (loading)`;
beforeAll(() => {
  process.env[TEST_MARK] = `${file} (beforeAll)`;
});
beforeEach((ctx) => {
  process.env[TEST_MARK] = ctx.task.fullName;
});
afterAll(() => {
  process.env[TEST_MARK] = `${file} (afterAll)`;
});
