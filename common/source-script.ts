import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A plain JavaScript file that ships in the source tree (`agent/reaper.mjs`,
 * `common/nats-guardian.mjs`), found from a module beside it or from its compiled copy in dist/.
 */
export function sourceScript(fromModuleUrl: string, folder: string, file: string): string {
  for (const rel of [`./${file}`, `../../${folder}/${file}`]) {
    const p = fileURLToPath(new URL(rel, fromModuleUrl));
    if (existsSync(p)) return p;
  }
  throw new Error(`cannot find ${folder}/${file} next to the sweeper sources`);
}
