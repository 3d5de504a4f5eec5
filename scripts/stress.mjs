#!/usr/bin/env node
// `npm run test:stress`: the integration suite on a loaded machine. Starts one CPU hog per core
// (`node -e 'for(;;){}'`), runs `vitest run tests/integration` (extra arguments are passed on),
// and stops the hogs by pid when vitest exits, on SIGINT/SIGTERM, and on any error. Exits with
// vitest's status. SWEEPER_STRESS_HOGS=N changes the number of hogs.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
const count = Number(process.env.SWEEPER_STRESS_HOGS ?? availableParallelism());

const hogs = [];
function stopHogs() {
  for (const hog of hogs.splice(0)) {
    try {
      process.kill(hog.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
// Whatever ends this process, the hogs go with it.
process.on('exit', stopHogs);

let child;
const onSignal = (signal) => {
  stopHogs();
  // vitest kills what the suite started and exits; we follow once it has.
  if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
  else process.exit(130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

try {
  for (let i = 0; i < count; i++) {
    const hog = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
    hog.on('error', (err) => console.error(`stress: a CPU hog failed: ${err.message}`));
    hogs.push(hog);
  }
  console.error(`stress: ${hogs.length} CPU hog(s) running (pids ${hogs.map((h) => h.pid).join(', ')}); vitest run tests/integration`);
  child = spawn(process.execPath, [vitest, 'run', 'tests/integration', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
  const [code, signal] = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  });
  stopHogs();
  console.error(`stress: vitest ${signal ? `killed by ${signal}` : `exited ${code}`}; CPU hogs stopped`);
  process.exitCode = code ?? 1;
} catch (err) {
  console.error(`stress: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  stopHogs();
}
