/**
 * Test helpers for `core/sync`: a {@link BlobFetcher} that copies objects straight from other
 * in-process engines' object stores and serves blocks from their folders (standing in for the
 * node's gRPC `GetObject(s)` / `GetBlocks` streams), counting what it moves.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, UnavailableError } from '../../common/errors';
import type { BlobFetcher } from '../engine';
import type { ObjectStore } from '../object-store';

/** Where a node's blocks come from (the engine's `readBlock`). */
export interface BlockSource {
  readBlock(hash: string): Promise<Uint8Array | null>;
  /** The engine's kept version of `path` with content `sha256` (for `fetchKept`). */
  keptVersionFile?(path: string, sha256: string): Promise<string | null>;
}

/** Registry of in-process object stores by node id; `fetcher()` gives each engine its BlobFetcher. */
export class LocalBlobNetwork {
  private readonly stores = new Map<string, ObjectStore>();
  private readonly blockSources = new Map<string, BlockSource>();
  /** Every object fetch made, for assertions (`{ sha256, from }`). */
  readonly fetches: { sha256: string; from: string }[] = [];
  /** Every block delivered by `getBlocks` (`{ hash, from, bytes }`), for assertions. */
  readonly blockFetches: { hash: string; from: string; bytes: number }[] = [];
  /** `GetBlocks` calls made (`{ to, from, count }`: asking node, serving node, blocks asked). */
  readonly blockCalls: { from: string; count: number }[] = [];
  /**
   * Blocks handed back through `release`. Each delivered block sits in a SharedArrayBuffer of its
   * own (as a pooled GetBlocks reply does) and is scribbled over (0xff) when handed back, so an
   * engine that read a block after handing it back would write the scribble.
   */
  released = 0;
  /** Blocks handed back twice (must stay 0). */
  releasedTwice = 0;
  private readonly handedBack = new WeakSet<SharedArrayBuffer>();
  /** Test hook: may replace a block's bytes on the wire (e.g. corrupt them) or drop the call by throwing. */
  tamper: ((from: string, hash: string, data: Uint8Array) => Uint8Array) | null = null;
  /** Test hook: while set, every `getBlocks` call waits for it before reading any block. */
  gate: Promise<void> | null = null;

  /** Makes `store` (and `blocks`) reachable as node `nodeId`. */
  register(nodeId: string, store: ObjectStore, blocks?: BlockSource): void {
    this.stores.set(nodeId, store);
    if (blocks) this.blockSources.set(nodeId, blocks);
  }

  /** Bytes delivered by `getBlocks` so far. */
  blockBytes(): number {
    return this.blockFetches.reduce((n, f) => n + f.bytes, 0);
  }

  /** A fetcher that tries `sources` in order, then every registered store. */
  fetcher(): BlobFetcher {
    return {
      fetch: async (sha256, sources, destPath) => {
        const order = [...new Set([...sources, ...this.stores.keys()])];
        for (const n of order) {
          const store = this.stores.get(n);
          if (!store?.has(sha256)) continue;
          await pipeline(store.createReadStream(sha256), createWriteStream(destPath));
          this.fetches.push({ sha256, from: n });
          return;
        }
        throw new NotFoundError(`no node has object ${sha256}`);
      },
      fetchKept: async (source, path, sha256, destPath) => {
        const src = this.blockSources.get(source);
        if (!src?.keptVersionFile) throw new UnavailableError(`node ${source} is not reachable`);
        const file = await src.keptVersionFile(path, sha256);
        if (!file) throw new NotFoundError(`node ${source} kept no version of ${path} with content ${sha256}`);
        await pipeline(createReadStream(file), createWriteStream(destPath));
        this.fetches.push({ sha256, from: source });
      },
      getBlocks: async (source, hashes) => {
        const src = this.blockSources.get(source);
        if (!src) throw new UnavailableError(`node ${source} is not reachable`);
        this.blockCalls.push({ from: source, count: hashes.length });
        if (this.gate) await this.gate;
        const out: (Uint8Array | null)[] = [];
        for (const h of hashes) {
          let data = await src.readBlock(h);
          if (data) {
            if (this.tamper) data = this.tamper(source, h, data);
            this.blockFetches.push({ hash: h, from: source, bytes: data.length });
            const shared = new Uint8Array(new SharedArrayBuffer(data.length));
            shared.set(data);
            data = shared;
          }
          out.push(data);
        }
        return out;
      },
      release: (data) => {
        if (!(data.buffer instanceof SharedArrayBuffer)) return;
        if (this.handedBack.has(data.buffer)) this.releasedTwice++;
        this.handedBack.add(data.buffer);
        this.released++;
        new Uint8Array(data.buffer).fill(0xff);
      },
    };
  }
}
