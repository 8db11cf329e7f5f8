/**
 * Loads a cluster config file from disk (adapter; see `schema.ts` for the rules).
 * @throws ConfigError when the file is missing, larger than 1 MiB, not JSON, or invalid.
 */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../common/errors';
import { parseClusterConfig, type Topology } from './schema';

/** Path of the demo config (the two-host topology on 127.0.0.1). */
export const DEMO_CONFIG = fileURLToPath(new URL('../../resources/clusters/two-hosts-local.json', import.meta.url));

const MAX_CONFIG_BYTES = 1 << 20;

export function loadClusterConfig(path: string): Topology {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_CONFIG_BYTES) throw new ConfigError(`${path}: config file is ${size} bytes; the limit is ${MAX_CONFIG_BYTES}`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${path}: cannot read config file (${(err as Error).message})`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return parseClusterConfig(json, path);
}
