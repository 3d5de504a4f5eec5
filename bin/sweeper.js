#!/usr/bin/env node
// The `sweeper` command. In a checkout (the TypeScript sources and tsconfig.json beside bin/),
// scripts/bootstrap.mjs first installs dependencies and rebuilds dist/ when the sources changed
// (a quick check when nothing did). An installed package (npm install -g, npx, the GPU bundle)
// ships a built dist/ and no sources: it runs dist/ as it is, with no build step. Either way the
// compiled CLI then runs in this same process, so signals reach it directly.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const at = (rel) => fileURLToPath(new URL(rel, import.meta.url));
const checkout = existsSync(at('../tsconfig.json')) && existsSync(at('../scripts/bootstrap.mjs'));
if (checkout) {
  const r = spawnSync(process.execPath, [at('../scripts/bootstrap.mjs')], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) process.exit(r.status ?? 1);
} else if (!existsSync(at('../dist/cli/run.js'))) {
  process.stderr.write(`sweeper: ${at('../dist/cli/run.js')} is missing: this installation is incomplete; install the package again\n`);
  process.exit(1);
}
await import(new URL('../dist/cli/run.js', import.meta.url).href);
