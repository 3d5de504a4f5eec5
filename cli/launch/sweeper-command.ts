/**
 * The `sweeper` command a launcher writes for the agents' hosts, as argv. Clusters share their
 * filesystem, so by default it is this very installation: the absolute path of the node running
 * now and of this package's bin/sweeper.js. A self-contained bundle (`sweeper bundle`, unpacked
 * at a shared path) is run through its own launcher instead, for nodes without Node.js.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../domain/errors.js';
import { conflictingFlags } from '../flags.js';

/** This package's root: the nearest folder above this module with bin/sweeper.js (it runs from dist/cli/launch/ or, in tests, cli/launch/). */
export function packageRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'bin', 'sweeper.js')) && existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new UsageError(`cannot find this package's bin/sweeper.js above ${from}: give --sweeper or --bundle`);
  }
}

/** `node …/bin/sweeper.js` of this installation, both absolute. */
export function localSweeperCommand(): string[] {
  return [process.execPath, path.join(packageRoot(), 'bin', 'sweeper.js')];
}

/** The launcher `unpack.py` adds to an unpacked bundle (`DIR/sweeper`), absolute. */
export function bundleSweeperCommand(bundleDir: string, cwd = process.cwd()): string[] {
  return [path.join(path.resolve(cwd, bundleDir), 'sweeper')];
}

/** --sweeper PATH, --bundle DIR, or this installation. */
export function sweeperCommand(o: { sweeper?: string; bundle?: string }, cwd = process.cwd()): string[] {
  if (o.sweeper !== undefined && o.bundle !== undefined) throw conflictingFlags('--sweeper', '--bundle', 'the bundle brings its own launcher, DIR/sweeper');
  if (o.sweeper !== undefined) return [o.sweeper];
  if (o.bundle !== undefined) return bundleSweeperCommand(o.bundle, cwd);
  return localSweeperCommand();
}
