/**
 * Test harness: several {@link SyncEngine}s in one process sharing one MemoryKv, each with its
 * own folder and data directory under os.tmpdir(), fetching objects from each other through a
 * {@link LocalBlobNetwork}. Real folders, real chokidar, real worker threads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../common/logger';
import type { ActivityEntry } from '../../control/api';
import { MemoryKv } from '../../kv/memory-kv';
import { SyncEngine, type SyncEngineOptions } from '../engine';
import { Hasher } from '../hasher';
import { GatedKv } from './gated-kv';
import { LocalBlobNetwork } from './local-fetcher';

/** A console logger for debugging tests: set `SYNC_TEST_LOG=1` (add `debug` for plan lines). */
function consoleLogger(bindings: Record<string, unknown>): Logger {
  const out = (lvl: string) => (o: unknown, m?: string) => console.log(`${lvl} ${String(bindings.node ?? '')} ${typeof o === 'string' ? o : `${m ?? ''} ${JSON.stringify(o)}`}`);
  return { debug: process.env.SYNC_TEST_LOG === 'debug' ? out('DBG') : () => {}, info: out('INF'), warn: out('WRN'), error: out('ERR'), child: (b) => consoleLogger({ ...bindings, ...b }) };
}

export interface TestNode {
  id: string;
  folder: string;
  dataDir: string;
  engine: SyncEngine;
  /** This node's view of the shared KV (hold its watch events, cut it off). */
  kv: GatedKv;
  activity: ActivityEntry[];
}

/** A little cluster of sync engines for tests. Call {@link SyncTestCluster.dispose} in afterEach. */
export class SyncTestCluster {
  readonly kv = new MemoryKv();
  readonly net = new LocalBlobNetwork();
  readonly hasher = new Hasher({ threads: 2 });
  readonly nodes = new Map<string, TestNode>();

  private constructor(readonly root: string) {}

  /** Creates the temp root; add nodes with {@link addNode}. */
  static async create(): Promise<SyncTestCluster> {
    return new SyncTestCluster(await mkdtemp(join(tmpdir(), 'cd-sync-')));
  }

  /** Creates (or re-creates, reusing its folder and data dir) node `id`'s engine; does not start it. */
  addNode(id: string, extra: Partial<SyncEngineOptions> = {}): TestNode {
    const folder = join(this.root, id, 'folder');
    const dataDir = join(this.root, id, 'data');
    const activity: ActivityEntry[] = this.nodes.get(id)?.activity ?? [];
    const kv = this.nodes.get(id)?.kv ?? new GatedKv(this.kv);
    const engine = new SyncEngine({
      nodeId: id,
      host: `host-${id}`,
      folder,
      dataDir,
      kv,
      fetcher: this.net.fetcher(),
      hasher: this.hasher,
      stabilityMs: 100,
      peers: () => [...this.nodes.keys()],
      onActivity: (e) => activity.push(e),
      ...(process.env.SYNC_TEST_LOG ? { logger: consoleLogger({ node: id }) } : {}),
      ...extra,
    });
    this.net.register(id, engine.objects, engine);
    const node = { id, folder, dataDir, engine, kv, activity };
    this.nodes.set(id, node);
    return node;
  }

  /** Node `id` (throws if unknown). */
  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Stops every engine, closes the KV and the hasher, deletes the temp root. */
  async dispose(): Promise<void> {
    for (const n of this.nodes.values()) await n.engine.stop();
    this.kv.close();
    await this.hasher.destroy();
    await rm(this.root, { recursive: true, force: true });
  }
}

/** Polls `cond` every 50 ms until it returns truthy; rejects with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
