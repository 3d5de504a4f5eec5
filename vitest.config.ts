import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    // Integration tests start real nats-server and child processes; two cores are shared.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
    // Every process the suite starts is marked; one still alive at the end fails the run (and is killed).
    globalSetup: ['tests/global-setup.ts'],
    setupFiles: ['tests/setup-mark.ts'],
  },
});
