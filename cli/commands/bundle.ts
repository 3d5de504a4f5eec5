/**
 * `sweeper bundle [--out DIR]`: everything Sweeper needs on a host that has no Node.js and no
 * internet (a GPU host with only Python), made on any machine that has them. DIR (default
 * `.gpu-bundle`) gets three xz files, the layout scripts/gpu-check.sh unpacks:
 *
 *   node.xz         this machine's node binary (so: the same OS and CPU architecture)
 *   nats-server.xz  the nats-server binary `sweeper local` / `sweeper server` would run
 *   app.tar.xz      the package as installed: package.json, bin/, dist/, proto/, the Python
 *                   helpers, the dashboard's files, the guardian scripts and the production
 *                   dependencies, so `node bin/sweeper.js ...` runs wherever it is unpacked
 *
 * Works the same from a checkout and from an installed package. Uses `tar` and `xz`.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { coerceError, MissingDependencyError, SweeperError, UsageError } from '../../domain/errors.js';
import { ensureNatsServer } from '../../common/nats-server.js';

/** The package's root: this file runs as dist/cli/commands/bundle.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** What the package itself contributes (package.json `files`, less the docs), as paths under ROOT. */
const APP_FILES = ['package.json', 'bin/sweeper.js', 'dist', 'proto', 'agent/helpers/python', 'agent/reaper.mjs', 'common/nats-guardian.mjs', 'controller/dashboard/static'];

/**
 * Written beside the xz files: unpacks them with Python's lzma and tarfile (xz itself may be
 * missing on the host) and adds a `sweeper` launcher that runs the bundle's node and nats-server.
 */
const UNPACK_PY = `#!/usr/bin/env python3
# Unpacks this Sweeper bundle into DEST (default: ./sweeper), then run DEST/sweeper --help.
import lzma, os, shutil, sys, tarfile
here = os.path.dirname(os.path.abspath(__file__))
dest = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "sweeper")
os.makedirs(dest, exist_ok=True)
for name in ("node", "nats-server"):
    with lzma.open(os.path.join(here, name + ".xz")) as src, open(os.path.join(dest, name), "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.chmod(os.path.join(dest, name), 0o755)
with lzma.open(os.path.join(here, "app.tar.xz")) as src, tarfile.open(fileobj=src) as tar:
    tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
launcher = os.path.join(dest, "sweeper")
with open(launcher, "w") as f:
    f.write('#!/bin/sh\\nhere=$(cd "$(dirname "$0")" && pwd)\\n'
            'SWEEPER_NATS_SERVER="\${SWEEPER_NATS_SERVER:-$here/nats-server}" exec "$here/node" "$here/bin/sweeper.js" "$@"\\n')
os.chmod(launcher, 0o755)
print("unpacked into " + dest + ": run " + launcher + " --help")
`;

interface PackageJson {
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const readPackage = (dir: string): PackageJson => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
const inside = (dir: string, parent: string) => dir === parent || dir.startsWith(parent + path.sep);

/** Node's lookup for `name` required from a package in `fromDir`: node_modules here, then in each parent. */
function findPackage(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

/**
 * Every production dependency's folder, with where it goes in the bundle: its own path when it
 * lies under ROOT (a checkout, or a global install's nested node_modules), else `node_modules/NAME`
 * (a package installed as another project's dependency, whose dependencies are hoisted above it).
 */
export function productionDependencies(root: string = ROOT): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (fromDir: string) => {
    const pkg = readPackage(fromDir);
    const optional = new Set(Object.keys(pkg.optionalDependencies ?? {}));
    for (const name of [...Object.keys(pkg.dependencies ?? {}), ...optional]) {
      const dir = findPackage(name, fromDir);
      if (!dir) {
        if (optional.has(name)) continue;
        throw new MissingDependencyError(`cannot find the dependency '${name}' of ${pkg.name ?? fromDir}: run \`npm ci\` (or install the package again)`);
      }
      if (found.has(dir)) continue;
      found.set(dir, inside(dir, root) ? path.relative(root, dir) : path.join('node_modules', name));
      visit(dir);
    }
  };
  visit(root);
  return found;
}

function run(cmd: string, args: string[], io: { stdin?: number; stdout?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [io.stdin ?? 'ignore', io.stdout ?? 'inherit', 'inherit'] });
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new MissingDependencyError(`'${cmd}' is needed to make the bundle: install it (Debian: apt-get install -y ${cmd === 'xz' ? 'xz-utils' : cmd})`)
          : coerceError(err),
      ),
    );
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new SweeperError(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`))));
  });
}

/** `xz -T0 -6` of `src` into `dest`. */
async function xz(src: string, dest: string): Promise<void> {
  const input = openSync(src, 'r');
  const output = openSync(dest, 'w');
  try {
    await run('xz', ['-T0', '-6', '-c'], { stdin: input, stdout: output });
  } finally {
    closeSync(input);
    closeSync(output);
  }
}

const mb = (file: string) => `${(statSync(file).size / 1e6).toFixed(1)} MB`;

export async function runBundle(o: { out: string }): Promise<void> {
  if (!existsSync(path.join(ROOT, 'dist', 'cli', 'run.js'))) throw new UsageError(`no compiled CLI in ${ROOT}dist: run \`sweeper bundle\` from the built package`);
  const out = path.resolve(o.out);
  const say = (msg: string) => process.stderr.write(`bundle: ${msg}\n`);
  const natsServer = await ensureNatsServer({ install: true });
  const node = process.execPath;
  // Debian's own nodejs is a small launcher around a shared libnode, which the GPU host lacks.
  if (statSync(node).size < 20e6) say(`warning: ${node} is small (${mb(node)}): it may need a shared libnode the GPU host lacks; a release build from nodejs.org is self-contained`);
  say(`node ${process.version} (${process.platform}-${process.arch}) from ${node}, nats-server from ${natsServer}`);

  const stage = mkdtempSync(path.join(tmpdir(), 'sweeper-bundle-'));
  try {
    const bench = path.join(ROOT, 'dist', 'bench');
    const skip = (src: string) => src !== bench && !/(^|[\\/])(__pycache__|\.bootstrap-stamp)$/.test(src) && !src.endsWith('.map');
    for (const rel of APP_FILES) {
      const src = path.join(ROOT, rel);
      if (!existsSync(src)) throw new UsageError(`${src} is missing: the package is incomplete`);
      cpSync(src, path.join(stage, rel), { recursive: true, filter: skip });
    }
    const deps = productionDependencies();
    for (const [src, rel] of deps) cpSync(src, path.join(stage, rel), { recursive: true, dereference: true });
    say(`${deps.size} production dependencies`);

    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'unpack.py'), UNPACK_PY, { mode: 0o755 });
    await xz(node, path.join(out, 'node.xz'));
    await xz(natsServer, path.join(out, 'nats-server.xz'));
    // tar, then xz of its output: a pipe between the two would need a shell.
    const tarFile = `${stage}.tar`;
    const tarFd = openSync(tarFile, 'w');
    try {
      const tops = new Set([...APP_FILES, ...deps.values()].map((p) => p.split(path.sep)[0]!));
      await run('tar', ['-C', stage, '-cf', '-', ...tops], { stdout: tarFd });
    } finally {
      closeSync(tarFd);
    }
    await xz(tarFile, path.join(out, 'app.tar.xz'));
    for (const name of ['node.xz', 'nats-server.xz', 'app.tar.xz']) say(`${path.join(o.out, name)}  ${mb(path.join(out, name))}`);
    process.stdout.write(
      [
        `bundle in ${out}: copy the folder to the host, then there (Python 3 is all it needs):`,
        `  python3 ${path.join(o.out, 'unpack.py')} ~/sweeper     # node, nats-server and the app, unpacked`,
        '  ~/sweeper/sweeper agent SWEEP_ID                # or local / server: its own node and nats-server',
        'In a checkout, scripts/gpu-check.sh unpacks it by itself.',
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(stage, { recursive: true, force: true });
    rmSync(`${stage}.tar`, { force: true });
  }
}
