/**
 * `clusterdesk node`: runs one node of a config in this process, with its browser console, until
 * SIGINT/SIGTERM. When started by `clusterdesk up` (an IPC channel exists), it reports
 * `{ type: 'status', leaderId, role, term }` to the supervisor whenever Raft's view changes.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { loadClusterConfig } from '../config/load';
import { addressOf } from '../config/schema';
import { ClusterNode } from '../node/node';
import { startConsoleServer } from '../node/console-server';
import { createNodeLogger } from '../node/log';

export interface RunNodeOptions {
  config: string;
  id: string;
  data: string;
  folder?: string;
  tokenFile?: string;
  console: boolean;
  tickMs?: number;
  /** Compact the Raft log every this many applied entries (EmbeddedKv default when absent). */
  snapshotEntries?: number;
  /** Entries kept in memory below a snapshot for lagging followers (EmbeddedKv default when absent). */
  snapshotCatchUp?: number;
  /** How the Raft leader confirms reads ('safe' ReadIndex or 'lease-based'); default: the config's `raft.readOnly`. */
  readOnly?: 'safe' | 'lease-based';
  /** Join a running cluster (boot as a Raft learner until added; see `clusterdesk member add`). */
  join?: boolean;
}

/** Reads the console token from `file`, creating a random one (0600) when the file is missing. */
export function ensureToken(file: string): string {
  if (existsSync(file)) {
    const t = readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return t;
  }
  const t = randomBytes(16).toString('hex');
  writeFileSync(file, t + '\n', { mode: 0o600 });
  return t;
}

export async function runNode(o: RunNodeOptions): Promise<void> {
  const topology = loadClusterConfig(o.config);
  const dataDir = resolve(o.data);
  mkdirSync(dataDir, { recursive: true });
  const { logger, flush } = createNodeLogger(join(dataDir, 'node.log'), { node: o.id });
  const node = new ClusterNode({ topology, id: o.id, dataDir, logger, ...(o.folder ? { folder: o.folder } : {}), ...(o.tickMs ? { tickMs: o.tickMs } : {}), ...(o.snapshotEntries ? { snapshotEntries: o.snapshotEntries } : {}), ...(o.join ? { join: true } : {}), ...(o.readOnly ? { readOnly: o.readOnly } : {}), ...(o.snapshotCatchUp !== undefined ? { snapshotCatchUpEntries: o.snapshotCatchUp } : {}) });
  await node.start();
  let consoleUrl: string | null = null;
  let closeConsole: (() => Promise<void>) | null = null;
  if (o.console) {
    const token = ensureToken(o.tokenFile ?? join(dataDir, 'token'));
    const a = addressOf(topology, o.id);
    const c = await startConsoleServer({ node, host: a.host, port: a.consolePort, token, logger });
    consoleUrl = c.url;
    closeConsole = c.close;
  }
  const report = (): void => {
    const s = node.kv.status();
    process.send?.({ type: 'status', id: o.id, leaderId: s.leaderId, role: s.role, term: s.term, pid: process.pid, folder: node.folder, consoleUrl });
  };
  node.kv.onStatus(report);
  report();
  if (!process.send) {
    console.log(`node ${o.id} of ${topology.config.name} running (pid ${process.pid})`);
    console.log(`synchronized folder: ${node.folder}`);
    console.log(`log: ${join(dataDir, 'node.log')}`);
    if (consoleUrl) console.log(`console: ${consoleUrl}`);
  }
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await closeConsole?.();
    await node.stop();
    flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
}
