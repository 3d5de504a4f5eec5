// The embedded nats-server's guardian: a tiny process between its owner (`sweeper server`,
// `sweeper local`, a test) and nats-server, so that the server never outlives its owner. A
// SIGKILLed owner cannot stop its children, and an orphaned nats-server keeps the port (and the
// JetStream store) that the owner's restart needs: every restart then fails. agent/reaper.mjs
// does the same for trial programs.
//
//   node nats-guardian.mjs GRACE_MS -- NATS_SERVER [ARGS...]
//
// fd 0   a pipe from the owner that is never written: end-of-file means the owner is gone, and
//        the server is stopped: SIGTERM, then SIGKILL after GRACE_MS.
// fd 1-2 the server's log, handed to it as they are.
// fd 3   status for the owner, one JSON line: {"event":"started","pid":N} or {"event":"error",...}.
//
// SIGTERM, SIGINT and SIGHUP ask for the same stop as end-of-file; SIGUSR1 SIGKILLs the server at
// once (a crash, for chaos tests). The owner signals this process, never the server's pid: this
// process is the server's parent, so the pid cannot have been reused while it is here to signal.
// Exits with the server's code, or dies of its signal. If this guardian is SIGKILLed too, the
// owner's pid file (common/nats-server.ts) still lets the next start stop the server. Plain
// JavaScript, so it runs from the source tree and from dist/ alike.
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';

const graceMs = Number(process.argv[2]);
const argv = process.argv.slice(process.argv.indexOf('--') + 1);
const STATUS_FD = 3;
const report = (event) => {
  try {
    writeSync(STATUS_FD, JSON.stringify(event) + '\n');
  } catch {
    // The owner stopped listening: nothing to tell.
  }
};

let child;
try {
  child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 1, 2] });
} catch (err) {
  report({ event: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(127);
}
child.once('error', (err) => {
  report({ event: 'error', message: err.message });
  process.exit(127);
});
if (child.pid !== undefined) report({ event: 'started', pid: child.pid });

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  child.kill('SIGTERM');
  setTimeout(() => child.kill('SIGKILL'), Number.isFinite(graceMs) ? graceMs : 5000).unref();
};
const POLITE = ['SIGTERM', 'SIGINT', 'SIGHUP'];
for (const sig of POLITE) process.on(sig, stop);
process.on('SIGUSR1', () => child.kill('SIGKILL'));

child.once('exit', (code, signal) => {
  if (code !== null) process.exit(code);
  // Die of the same signal, so the owner sees what ended the server.
  for (const sig of [...POLITE, 'SIGUSR1']) process.removeAllListeners(sig);
  process.kill(process.pid, signal);
  setTimeout(() => process.exit(128), 1000).unref();
});

process.stdin.on('error', () => {});
process.stdin.resume();
process.stdin.once('close', stop);
