import { parseConfigFile } from '../../controller/config/parse.js';
import { createStrategy } from '../../controller/strategies/index.js';

/** `sweeper validate FILE`: exit 0 when valid (warnings on stderr), 2 with every problem. */
export async function runValidate(file: string): Promise<void> {
  const { config, warnings } = await parseConfigFile(file);
  for (const w of warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
  const strategy = createStrategy(config, { seed: config.seed ?? 0 });
  const size = strategy.size();
  const cap = config.run_cap;
  const trials = size !== undefined ? `${cap !== undefined ? Math.min(cap, size) : size} trials (grid of ${size})` : cap !== undefined ? `${cap} trials (run_cap)` : 'unbounded (no run_cap)';
  process.stdout.write(`${file}: valid ${config.method} sweep, ${trials}\n`);
}
