/**
 * Test helpers for `core/sync`: a {@link BlobFetcher} that copies objects straight from other
 * in-process engines' object stores (standing in for the node's gRPC block stream).
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '../../common/errors';
import type { BlobFetcher } from '../engine';
import type { ObjectStore } from '../object-store';

/** Registry of in-process object stores by node id; `fetcher()` gives each engine its BlobFetcher. */
export class LocalBlobNetwork {
  private readonly stores = new Map<string, ObjectStore>();
  /** Every fetch made, for assertions (`{ sha256, from }`). */
  readonly fetches: { sha256: string; from: string }[] = [];

  /** Makes `store` reachable as node `nodeId`. */
  register(nodeId: string, store: ObjectStore): void {
    this.stores.set(nodeId, store);
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
    };
  }
}
