// The trial's guardian: a tiny process between the agent and the training program, so that a
// trial never outlives its agent. An orphaned job that keeps a GPU busy is the costliest failure
// a sweep can have, and a SIGKILLed agent cannot clean up after itself.
//
//   node reaper.mjs GRACE_MS [--remove DIR]... -- PROGRAM [ARGS...]
//
// --remove DIR  the trial's private temp folders (its args file, W&B's parameter file): removed
//               once the program has exited, so they go also when the agent was SIGKILLed.
//
// fd 0   a pipe from the agent that is never written: end-of-file means the agent is gone, and
//        the whole process group (the program and everything it started) is stopped: SIGTERM,
//        then SIGKILL after GRACE_MS.
// fd 1-3 handed to the program as they are (stdout, stderr, the metrics pipe), so its output
//        never passes through here.
// fd 4   status for the agent, JSON lines: {"event":"started","pid":N} or {"event":"error",...}.
//
// The agent starts this process as the leader of a new process group and the program joins that
// group, so a stop from the agent (a signal to the group) reaches the program and its children.
// This process ignores the polite signals and stays to report the program's exit: it exits with
// the program's code, or dies of the program's signal. Plain JavaScript, so it runs from the
// source tree and from dist/ alike.
import { spawn } from 'node:child_process';
import { closeSync, rmSync, writeSync } from 'node:fs';

const graceMs = Number(process.argv[2]);
const split = process.argv.indexOf('--');
const argv = process.argv.slice(split + 1);
const removeAfter = [];
for (let i = 3; i < split; i++) if (process.argv[i] === '--remove' && process.argv[i + 1]) removeAfter.push(process.argv[++i]);
const STATUS_FD = 4;
// Written synchronously: the process may exit right after.
const report = (event) => {
  try {
    writeSync(STATUS_FD, JSON.stringify(event) + '\n');
  } catch {
    // Nobody is listening (run by hand): nothing to tell.
  }
};

// SIGUSR1 too: it is a preemption's checkpoint signal for the program (sent to the whole group),
// and Node's default for it would open a debugger port in this process.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1']) process.on(sig, () => {});

let child;
try {
  child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 1, 2, 3], windowsHide: true });
} catch (err) {
  report({ event: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(127);
}

child.once('error', (err) => {
  report({ event: 'error', message: err.message });
  process.exit(127);
});
if (child.pid !== undefined) report({ event: 'started', pid: child.pid });

child.once('exit', (code, signal) => {
  try {
    closeSync(STATUS_FD);
  } catch {
    // Already closed.
  }
  for (const dir of removeAfter) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A leftover temp folder is not worth a wrong exit status.
    }
  }
  if (code !== null) process.exit(code);
  // Die of the same signal, so the agent sees what killed the program.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1']) process.removeAllListeners(sig);
  process.kill(process.pid, signal);
  setTimeout(() => process.exit(128), 1000).unref();
});

// The agent died (or closed our pipe): stop the whole group, politely first.
process.stdin.on('error', () => {});
process.stdin.resume();
process.stdin.once('close', () => {
  const group = -process.pid;
  try {
    process.kill(group, 'SIGTERM');
  } catch {
    process.exit(0);
  }
  setTimeout(() => {
    try {
      process.kill(group, 'SIGKILL');
    } catch {
      process.exit(0);
    }
  }, Number.isFinite(graceMs) ? graceMs : 10_000).unref();
});
