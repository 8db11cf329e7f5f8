/**
 * `MemoryKv`: the KV state machine in one process, without replication. For unit tests of
 * code written against {@link ReplicatedKV} (locks, sync, jobs). Lease expiry uses real
 * timers (`setTimeout`, unref'd); call {@link MemoryKv.close} to clear them.
 */
import { NotFoundError, ValidationError } from '../common/errors';
import { KvStateMachine, type KvCommand, type KvResult, type KvStateMachineOptions } from './state-machine';
import type { KeyValue, LeaseGrantResponse, RangeOptions, ReplicatedKV, TxnRequest, TxnResponse, WatchEvent, WatchOptions, Watcher } from './types';

/** Options of {@link MemoryKv}. */
export interface MemoryKvOptions extends KvStateMachineOptions {
  /** Multiplier applied to lease TTLs (seconds → ms is ×1000); tests may shrink it, e.g. 0.01 makes a 1 s lease last 10 ms. Default 1. */
  leaseTimeScale?: number;
}

/** A single-process {@link ReplicatedKV} with etcd semantics; every read is trivially linearizable. */
export class MemoryKv implements ReplicatedKV {
  private readonly sm: KvStateMachine;
  private index = 0;
  private readonly timers = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly scale: number;
  private closed = false;

  constructor(options: MemoryKvOptions = {}) {
    this.sm = new KvStateMachine(options);
    this.scale = options.leaseTimeScale ?? 1;
  }

  private apply(cmd: KvCommand): KvResult {
    if (this.closed) throw new ValidationError('MemoryKv is closed');
    this.index++;
    return this.sm.apply(this.index, cmd);
  }

  /** See {@link ReplicatedKV.range}. */
  async range(key: string, options: RangeOptions = {}): Promise<{ kvs: KeyValue[]; count: number; more: boolean; revision: number }> {
    return this.sm.range(key, options);
  }

  /** See {@link ReplicatedKV.put}. Rejects with NotFoundError for an unknown lease. */
  async put(key: string, value: string, options: { lease?: number } = {}): Promise<{ revision: number; prevKv?: KeyValue }> {
    const r = this.apply({ op: 'put', key, value, lease: options.lease ?? 0 });
    if (r.op !== 'put') throw new Error('unreachable');
    return r.prevKv ? { revision: r.revision, prevKv: r.prevKv } : { revision: r.revision };
  }

  /** See {@link ReplicatedKV.delete}. */
  async delete(key: string, options: { prefix?: boolean } = {}): Promise<{ revision: number; deleted: number }> {
    const r = this.apply({ op: 'delete', key, prefix: options.prefix ?? false });
    if (r.op !== 'delete') throw new Error('unreachable');
    return { revision: r.revision, deleted: r.deleted };
  }

  /** See {@link ReplicatedKV.txn}. */
  async txn(request: TxnRequest): Promise<TxnResponse> {
    const r = this.apply({ op: 'txn', request });
    if (r.op !== 'txn') throw new Error('unreachable');
    return r.response;
  }

  /** See {@link ReplicatedKV.leaseGrant}. The lease expires `ttlSeconds × 1000 × leaseTimeScale` ms after the last grant/keep-alive. */
  async leaseGrant(ttlSeconds: number): Promise<LeaseGrantResponse> {
    const r = this.apply({ op: 'leaseGrant', ttl: ttlSeconds });
    if (r.op !== 'leaseGrant') throw new Error('unreachable');
    this.arm(r.id, r.ttl);
    return { id: r.id, ttl: r.ttl };
  }

  /** See {@link ReplicatedKV.leaseKeepAlive}; NotFoundError if the lease expired or never existed. */
  async leaseKeepAlive(id: number): Promise<{ ttl: number }> {
    const ttl = this.sm.leaseTtl(id);
    if (ttl === undefined) throw new NotFoundError(`lease ${id} not found`);
    this.arm(id, ttl);
    return { ttl };
  }

  /** See {@link ReplicatedKV.leaseRevoke}; NotFoundError for an unknown lease. */
  async leaseRevoke(id: number): Promise<void> {
    this.apply({ op: 'leaseRevoke', id });
    this.disarm(id);
  }

  /** See {@link ReplicatedKV.watch}. */
  watch(prefix: string, listener: (events: WatchEvent[], revision: number) => void, options: WatchOptions & { onError?: (err: Error) => void } = {}): Watcher {
    try {
      return this.sm.watch(prefix, listener, options);
    } catch (err) {
      if (options.onError) {
        const e = err as Error;
        queueMicrotask(() => options.onError?.(e));
        return { cancel: () => {} };
      }
      throw err;
    }
  }

  /** See {@link ReplicatedKV.localRevision}. */
  localRevision(): number {
    return this.sm.revision;
  }

  /** Clears lease timers and cancels watches. Further writes reject. Idempotent. */
  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.sm.cancelAllWatches();
  }

  /** Alias of {@link MemoryKv.close}. */
  dispose(): void {
    this.close();
  }

  private arm(id: number, ttl: number): void {
    this.disarm(id);
    const t = setTimeout(() => {
      this.timers.delete(id);
      if (!this.closed && this.sm.leaseTtl(id) !== undefined) this.apply({ op: 'leaseRevoke', id });
    }, ttl * 1000 * this.scale);
    (t as { unref?: () => void }).unref?.();
    this.timers.set(id, t);
  }

  private disarm(id: number): void {
    const t = this.timers.get(id);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(id);
  }
}
