/**
 * How this program starts more of itself: node processes spawned by `clusterdesk up` (and by the
 * Electron main process for the demo's other nodes) run the same CLI with `node …`.
 * - From sources (this file is `.ts`): `node --import tsx core/cli/main.ts`.
 * - From the Electron bundle: Electron's own binary with ELECTRON_RUN_AS_NODE=1 and `out/main/cli.js`.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SelfCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export function selfCommand(cliArgs: string[]): SelfCommand {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx');
    return { command: process.execPath, args: ['--import', tsx, join(here, '..', 'main.ts'), ...cliArgs], env: { ...process.env } };
  }
  // Bundled: runtime.ts is inlined into out/main/{index,cli}.js; cli.js sits beside it.
  const cli = join(here, '..', 'cli.js');
  if (!existsSync(cli)) throw new Error(`cannot find the CLI bundle at ${cli}; run npm run build`);
  return { command: process.execPath, args: [cli, ...cliArgs], env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } };
}

/** Default data directory of the demo cluster: $CLUSTERDESK_DATA or ~/.clusterdesk/demo. */
export function defaultDataDir(): string {
  return process.env.CLUSTERDESK_DATA || join(homedir(), '.clusterdesk', 'demo');
}
