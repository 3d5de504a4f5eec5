#!/usr/bin/env node
// `sweeper` in a checkout: builds the TypeScript sources on first use (node_modules and dist/
// are bootstrapped by scripts/bootstrap.mjs), then runs the compiled CLI in this same process,
// so signals reach it directly.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = new URL('../dist/cli/run.js', import.meta.url);
if (!existsSync(fileURLToPath(entry)) || !existsSync(`${root}/node_modules`)) {
  const r = spawnSync(process.execPath, [`${root}/scripts/bootstrap.mjs`], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
await import(entry.href);
