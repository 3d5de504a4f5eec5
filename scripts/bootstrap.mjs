#!/usr/bin/env node
/**
 * Gets a checkout ready to run: dependencies, compiled `dist/`, and (with --nats) nats-server.
 * Plain Node with no dependencies, because it runs before node_modules exists. Each step is
 * skipped when its output is already up to date, so `npm test` can call it every time.
 *
 *   node scripts/bootstrap.mjs [--nats]
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['index.ts', 'domain', 'common', 'controller', 'agent', 'cli', 'bench'];
/** Written after a build that succeeded: tsc emits even when it reports errors, so dist's own age proves nothing. */
const STAMP = path.join(root, 'dist', '.bootstrap-stamp');

const say = (msg) => process.stderr.write(`bootstrap: ${msg}\n`);

function fail(msg) {
  say(`error: ${msg}`);
  process.exit(1);
}

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** Newest mtime of the files under `p` that `keep` accepts (0 if none). */
function newest(p, keep) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return keep(p) ? st.mtimeMs : 0;
  let best = 0;
  for (const entry of readdirSync(p)) {
    if (entry === 'node_modules') continue;
    best = Math.max(best, newest(path.join(p, entry), keep));
  }
  return best;
}

function run(cmd, args, what) {
  say(`${what}: ${[cmd, ...args].join(' ')}`);
  // stdout goes to stderr too: callers may parse our stdout.
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 2, 2], env: process.env });
  if (r.error) fail(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal})`);
}

function ensureDependencies() {
  const lock = path.join(root, 'package-lock.json');
  const modules = path.join(root, 'node_modules');
  // npm rewrites node_modules/.package-lock.json on every install, so its age is the install's age.
  const installed = mtime(path.join(modules, '.package-lock.json'));
  if (existsSync(lock)) {
    if (installed > 0 && installed >= mtime(lock)) return;
    run('npm', ['ci', '--no-audit', '--no-fund'], 'installing dependencies');
  } else {
    if (installed > 0 && installed >= mtime(path.join(root, 'package.json'))) return;
    run('npm', ['install', '--no-audit', '--no-fund'], 'installing dependencies');
  }
}

function ensureBuild() {
  const isSource = (f) => f.endsWith('.ts') && !f.endsWith('.d.ts');
  const sources = Math.max(
    ...SOURCES.map((s) => newest(path.join(root, s), isSource)),
    mtime(path.join(root, 'tsconfig.json')),
    mtime(path.join(root, 'package-lock.json')),
  );
  const built = mtime(STAMP);
  if (built > 0 && built >= sources) return;
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) fail('node_modules/typescript is missing; run `npm ci`');
  run(process.execPath, [tsc, '-p', 'tsconfig.json'], 'compiling');
  // No assets to copy: proto/ and agent/helpers/python are read from the source tree at run time.
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

function findNatsServer() {
  const override = process.env.SWEEPER_NATS_SERVER;
  const candidates = override
    ? [override]
    : [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/bin', '/usr/local/bin'].map((d) =>
        path.join(d, 'nats-server'),
      );
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // Try the next one.
    }
  }
  return null;
}

function ensureNats() {
  if (findNatsServer()) return;
  if (process.env.SWEEPER_NATS_SERVER) fail(`SWEEPER_NATS_SERVER=${process.env.SWEEPER_NATS_SERVER} is not an executable file`);
  if (process.getuid?.() !== 0) {
    fail(
      'nats-server is not installed. Install it with:\n' +
        '    sudo apt-get update && sudo apt-get install -y nats-server\n' +
        '  or set SWEEPER_NATS_SERVER to the path of a nats-server binary.',
    );
  }
  process.env.DEBIAN_FRONTEND = 'noninteractive';
  run('apt-get', ['update'], 'refreshing package lists');
  run('apt-get', ['install', '-y', '--no-install-recommends', 'nats-server'], 'installing nats-server');
  if (!findNatsServer()) fail('apt-get reported success but nats-server is still not found');
}

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--nats');
if (unknown.length) fail(`unknown argument(s): ${unknown.join(' ')} (usage: node scripts/bootstrap.mjs [--nats])`);
ensureDependencies();
ensureBuild();
if (args.includes('--nats')) ensureNats();
