/**
 * The ReplicatedKV contract: an etcd-shaped key-value store (etcd v3 API is the reference:
 * `api/etcdserverpb/rpc.proto`, `mvcc/mvccpb/kv.proto`).
 *
 * Locks, the file index, membership and jobs are written once over this contract. It is
 * implemented by the embedded Raft store (`EmbeddedKv`, the default), by `MemoryKv` (one
 * process, no replication, for unit tests) and later by an external etcd cluster.
 *
 * Semantics (as etcd):
 * - Every successful write (put, delete that deleted something, txn with writes) advances the
 *   store's `revision` by exactly 1; all writes in one txn share that revision.
 * - Each key carries `createRevision`, `modRevision`, `version` (1 on create, +1 per put,
 *   reset when deleted) and `lease` (0 = none).
 * - Values are UTF-8 strings (ClusterDesk stores JSON documents).
 * - Reads are linearizable unless `serializable: true` is passed (then served from the local
 *   replica, possibly stale).
 *
 * Deterministic module: imports nothing from `node:`.
 */

/** One stored key (etcd `mvccpb.KeyValue`). Revisions are positive integers; 0 means "never". */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the write that created this key (since its last deletion). */
  createRevision: number;
  /** Revision of the last write to this key. */
  modRevision: number;
  /** Number of puts since creation; 1 after the first put. */
  version: number;
  /** Lease id the key is attached to; 0 for none. */
  lease: number;
}

/** A txn guard (etcd `Compare`). For a missing key, version/createRevision/modRevision/lease compare as 0 and value as ''. */
export interface Compare {
  key: string;
  target: 'version' | 'createRevision' | 'modRevision' | 'value' | 'lease';
  result: '=' | '!=' | '<' | '>';
  /** Number for version/createRevision/modRevision/lease targets; string for value. */
  value: number | string;
}

/** One operation inside a txn branch (etcd `RequestOp`). */
export type RequestOp =
  | { type: 'range'; key: string; prefix?: boolean; limit?: number }
  | { type: 'put'; key: string; value: string; lease?: number; prevKv?: boolean }
  | { type: 'deleteRange'; key: string; prefix?: boolean; prevKv?: boolean };

export interface RangeResponse {
  type: 'range';
  kvs: KeyValue[];
  /** Number of keys matching, before `limit` was applied. */
  count: number;
  more: boolean;
}
export interface PutResponse {
  type: 'put';
  prevKv?: KeyValue;
}
export interface DeleteRangeResponse {
  type: 'deleteRange';
  deleted: number;
  prevKvs?: KeyValue[];
}
export type ResponseOp = RangeResponse | PutResponse | DeleteRangeResponse;

/** A transaction: if every compare holds, run `success`, else `failure` (etcd `TxnRequest`). */
export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}
export interface TxnResponse {
  succeeded: boolean;
  /** Store revision after the txn (unchanged when nothing was written). */
  revision: number;
  responses: ResponseOp[];
}

/** A change seen by a watcher (etcd `mvccpb.Event`). For deletes, `kv.value` is '' and `kv.modRevision` is the delete's revision. */
export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface RangeOptions {
  /** Treat `key` as a prefix. */
  prefix?: boolean;
  /** At most this many keys (0 or absent = no limit); keys are returned in byte order. */
  limit?: number;
  /** Serve from the local replica without a linearizability check. */
  serializable?: boolean;
}

export interface LeaseGrantResponse {
  /** Lease id (positive). */
  id: number;
  /** Granted TTL in seconds. */
  ttl: number;
}

export interface WatchOptions {
  /** Replay events with modRevision >= fromRevision before live ones. 0/absent = only future events. */
  fromRevision?: number;
  /** Also deliver `prevKv` on each event. */
  prevKv?: boolean;
}

/** Handle returned by {@link ReplicatedKV.watch}. */
export interface Watcher {
  /** Stop delivering events. Idempotent. */
  cancel(): void;
}

/**
 * The store. All methods reject with typed errors from `core/common/errors.ts`:
 * `UnavailableError`/`TimeoutError` when no leader or quorum answers before the deadline
 * (retryable), `ValidationError` for malformed requests, `CompactedError` for a watch from a
 * compacted revision.
 */
export interface ReplicatedKV {
  range(key: string, options?: RangeOptions): Promise<{ kvs: KeyValue[]; count: number; more: boolean; revision: number }>;
  put(key: string, value: string, options?: { lease?: number }): Promise<{ revision: number; prevKv?: KeyValue }>;
  delete(key: string, options?: { prefix?: boolean }): Promise<{ revision: number; deleted: number }>;
  txn(request: TxnRequest): Promise<TxnResponse>;
  /** Grants a lease of `ttlSeconds` (>= 1). Keys attached to it are deleted when it expires or is revoked. */
  leaseGrant(ttlSeconds: number): Promise<LeaseGrantResponse>;
  /** Refreshes a lease's TTL. Rejects with NotFoundError if it has expired. */
  leaseKeepAlive(id: number): Promise<{ ttl: number }>;
  leaseRevoke(id: number): Promise<void>;
  /**
   * Watches keys under `prefix` (exact key when it does not end the range). Events are
   * delivered in revision order, batched per revision. `onError` receives CompactedError if
   * `fromRevision` is older than what the local replica kept.
   */
  watch(prefix: string, listener: (events: WatchEvent[], revision: number) => void, options?: WatchOptions & { onError?: (err: Error) => void }): Watcher;
  /** The revision the local replica has applied (serializable view). */
  localRevision(): number;
}
