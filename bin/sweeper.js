#!/usr/bin/env node
// `sweeper` in a checkout: scripts/bootstrap.mjs installs dependencies and rebuilds dist/ when
// the sources changed (a quick check when nothing did), then the compiled CLI runs in this same
// process, so signals reach it directly.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bootstrap = fileURLToPath(new URL('../scripts/bootstrap.mjs', import.meta.url));
const r = spawnSync(process.execPath, [bootstrap], { stdio: ['ignore', 2, 2] });
if (r.status !== 0) process.exit(r.status ?? 1);
await import(new URL('../dist/cli/run.js', import.meta.url).href);
