/**
 * A per-node view of a shared {@link ReplicatedKV} for fault tests: it can hold back watch
 * events (the node has not heard of others' commits yet) and can be cut off (every call
 * rejects with UnavailableError, as a node without quorum sees).
 */
import { UnavailableError } from '../../common/errors';
import type { ReplicatedKV, TxnRequest, WatchEvent, WatchOptions, Watcher } from '../../kv/types';

export class GatedKv implements ReplicatedKV {
  private holding = false;
  private readonly held: (() => void)[] = [];
  /** When true, every read and write rejects with UnavailableError (no quorum). */
  offline = false;

  constructor(private readonly inner: ReplicatedKV) {}

  /** Buffers watch events until {@link releaseWatches}. */
  holdWatches(): void {
    this.holding = true;
  }

  /** Delivers buffered watch events in order and stops buffering. */
  releaseWatches(): void {
    this.holding = false;
    for (const f of this.held.splice(0)) f();
  }

  private check(): void {
    if (this.offline) throw new UnavailableError('no quorum (test partition)');
  }

  async range(...a: Parameters<ReplicatedKV['range']>): ReturnType<ReplicatedKV['range']> {
    this.check();
    return this.inner.range(...a);
  }
  async put(...a: Parameters<ReplicatedKV['put']>): ReturnType<ReplicatedKV['put']> {
    this.check();
    return this.inner.put(...a);
  }
  async delete(...a: Parameters<ReplicatedKV['delete']>): ReturnType<ReplicatedKV['delete']> {
    this.check();
    return this.inner.delete(...a);
  }
  async txn(request: TxnRequest): ReturnType<ReplicatedKV['txn']> {
    this.check();
    return this.inner.txn(request);
  }
  async leaseGrant(ttl: number): ReturnType<ReplicatedKV['leaseGrant']> {
    this.check();
    return this.inner.leaseGrant(ttl);
  }
  async leaseKeepAlive(id: number): ReturnType<ReplicatedKV['leaseKeepAlive']> {
    this.check();
    return this.inner.leaseKeepAlive(id);
  }
  async leaseRevoke(id: number): Promise<void> {
    this.check();
    return this.inner.leaseRevoke(id);
  }
  watch(prefix: string, listener: (events: WatchEvent[], revision: number) => void, options?: WatchOptions & { onError?: (err: Error) => void }): Watcher {
    return this.inner.watch(
      prefix,
      (events, rev) => {
        if (this.holding) this.held.push(() => listener(events, rev));
        else listener(events, rev);
      },
      options,
    );
  }
  localRevision(): number {
    return this.inner.localRevision();
  }
}
