/**
 * The KV state machine applied from committed Raft entries (etcd `mvcc` + `lease` semantics
 * as described in `./types`). One instance per replica; every replica applies the same
 * commands in the same order and reaches the same state.
 *
 * Determinism rules:
 * - No clocks, no randomness: lease ids are chosen by the proposer or derived from the Raft
 *   entry index that carries the grant; lease expiry is decided outside (the driver proposes a
 *   `leaseRevoke` when a lease expires).
 * - `apply` validates a command completely before mutating, and throws typed errors
 *   (`ValidationError`, `NotFoundError`) without side effects, so every replica fails the same way.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { CompactedError, CorruptionError, NotFoundError, ValidationError } from '../common/errors';
import type {
  Compare,
  DeleteRangeResponse,
  KeyValue,
  PutResponse,
  RangeResponse,
  RequestOp,
  ResponseOp,
  TxnRequest,
  TxnResponse,
  WatchEvent,
  WatchOptions,
  Watcher,
} from './types';

/** A replicated command, the payload of a normal Raft entry (JSON-encoded by {@link encodeCommand}). */
export type KvCommand =
  | { op: 'put'; key: string; value: string; lease?: number }
  | { op: 'delete'; key: string; prefix?: boolean }
  | { op: 'txn'; request: TxnRequest }
  /** `id` 0/absent = use the applying entry's index as the lease id. `ttl` in seconds (>= 1). */
  | { op: 'leaseGrant'; id?: number; ttl: number }
  | { op: 'leaseRevoke'; id: number }
  /** Does nothing; used for linearizable reads through the log. */
  | { op: 'noop' };

/** What {@link KvStateMachine.apply} returns, by command kind. */
export type KvResult =
  | { op: 'put'; revision: number; prevKv?: KeyValue }
  | { op: 'delete'; revision: number; deleted: number }
  | { op: 'txn'; response: TxnResponse }
  | { op: 'leaseGrant'; id: number; ttl: number }
  | { op: 'leaseRevoke'; revision: number }
  | { op: 'noop'; revision: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as UTF-8 JSON bytes. */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/** Decodes bytes produced by {@link encodeCommand}; throws ValidationError on malformed input. */
export function decodeCommand(data: Uint8Array): KvCommand {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new ValidationError('malformed KV command', { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { op?: unknown }).op !== 'string') {
    throw new ValidationError('malformed KV command: missing op');
  }
  return parsed as KvCommand;
}

/**
 * Compares two strings in UTF-8 byte order (equal to code point order), which is etcd's key
 * order. Plain `<` on JS strings compares UTF-16 code units and differs for astral characters.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Default number of events kept for watch replay. */
export const DEFAULT_HISTORY_EVENTS = 10_000;

interface HistoryBatch {
  revision: number;
  events: WatchEvent[];
}

interface WatchEntry {
  prefix: string;
  exact: boolean;
  prevKv: boolean;
  listener: (events: WatchEvent[], revision: number) => void;
  queue: Array<{ events: WatchEvent[]; revision: number }>;
  scheduled: boolean;
  cancelled: boolean;
}

function matches(w: { prefix: string; exact: boolean }, key: string): boolean {
  return w.exact ? key === w.prefix : key.startsWith(w.prefix);
}

function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new ValidationError('key must be a string');
}

/** Options of {@link KvStateMachine}. */
export interface KvStateMachineOptions {
  /** How many events to keep for watch replay (default {@link DEFAULT_HISTORY_EVENTS}); older `fromRevision` → CompactedError. */
  historyEvents?: number;
}

/**
 * The etcd-shaped KV store as a deterministic state machine, plus a local watch hub
 * (watches are served from this replica's applied state).
 */
export class KvStateMachine {
  private readonly kvs = new Map<string, KeyValue>();
  private readonly leases = new Map<number, { ttl: number; keys: Set<string> }>();
  private rev = 0;
  private readonly history: HistoryBatch[] = [];
  private historyCount = 0;
  /** Highest revision whose events were dropped from history (0 = none). */
  private compacted = 0;
  /** Revision of the last {@link KvStateMachine.restore}: this replica has no events at or before it (0 = never restored). */
  private restoredAt = 0;
  private readonly historyLimit: number;
  private readonly watchers = new Set<WatchEntry>();

  constructor(options: KvStateMachineOptions = {}) {
    this.historyLimit = options.historyEvents ?? DEFAULT_HISTORY_EVENTS;
  }

  /** Current store revision (0 before the first write). */
  get revision(): number {
    return this.rev;
  }

  /** Lease id → TTL (seconds) of every live lease, for drivers that track expiry. */
  leaseTtls(): Map<number, number> {
    return new Map([...this.leases].map(([id, l]) => [id, l.ttl]));
  }

  /** TTL in seconds of lease `id`, or undefined if it does not exist. */
  leaseTtl(id: number): number | undefined {
    return this.leases.get(id)?.ttl;
  }

  /**
   * Applies one committed command. `index` is the Raft entry index carrying it (used as the
   * lease id of a grant without an explicit id). Throws ValidationError/NotFoundError without
   * changing state.
   */
  apply(index: number, cmd: KvCommand): KvResult {
    switch (cmd.op) {
      case 'put': {
        const r = this.txn({ compare: [], success: [{ type: 'put', key: cmd.key, value: cmd.value, lease: cmd.lease ?? 0, prevKv: true }], failure: [] });
        const p = r.responses[0] as PutResponse;
        return p.prevKv ? { op: 'put', revision: r.revision, prevKv: p.prevKv } : { op: 'put', revision: r.revision };
      }
      case 'delete': {
        const r = this.txn({ compare: [], success: [{ type: 'deleteRange', key: cmd.key, prefix: cmd.prefix ?? false }], failure: [] });
        return { op: 'delete', revision: r.revision, deleted: (r.responses[0] as DeleteRangeResponse).deleted };
      }
      case 'txn':
        return { op: 'txn', response: this.txn(cmd.request) };
      case 'leaseGrant': {
        if (!Number.isInteger(cmd.ttl) || cmd.ttl < 1) throw new ValidationError(`lease TTL must be an integer >= 1, got ${cmd.ttl}`);
        const id = cmd.id && cmd.id > 0 ? cmd.id : index;
        if (!Number.isInteger(id) || id <= 0) throw new ValidationError(`invalid lease id ${id}`);
        if (this.leases.has(id)) throw new ValidationError(`lease ${id} already exists`);
        this.leases.set(id, { ttl: cmd.ttl, keys: new Set() });
        return { op: 'leaseGrant', id, ttl: cmd.ttl };
      }
      case 'leaseRevoke': {
        const lease = this.leases.get(cmd.id);
        if (!lease) throw new NotFoundError(`lease ${cmd.id} not found`);
        const keys = [...lease.keys].sort(compareKeys);
        this.leases.delete(cmd.id);
        if (keys.length > 0) {
          const newRev = this.rev + 1;
          const events: WatchEvent[] = [];
          for (const k of keys) this.deleteKey(k, newRev, events);
          this.commitRevision(newRev, events);
        }
        return { op: 'leaseRevoke', revision: this.rev };
      }
      case 'noop':
        return { op: 'noop', revision: this.rev };
      default:
        throw new ValidationError(`unknown KV command ${(cmd as { op: string }).op}`);
    }
  }

  /** Reads keys from the applied state (etcd Range): `prefix` treats `key` as a prefix; `limit` 0 = none; byte order. */
  range(key: string, options: { prefix?: boolean; limit?: number } = {}): { kvs: KeyValue[]; count: number; more: boolean; revision: number } {
    validateKey(key);
    const r = this.rangeOp({ key, prefix: options.prefix ?? false, limit: options.limit ?? 0 });
    return { kvs: r.kvs, count: r.count, more: r.more, revision: this.rev };
  }

  private rangeOp(op: { key: string; prefix?: boolean; limit?: number }): RangeResponse {
    const limit = op.limit ?? 0;
    if (!Number.isInteger(limit) || limit < 0) throw new ValidationError(`limit must be a non-negative integer`);
    let found: KeyValue[];
    if (op.prefix) {
      found = [];
      for (const kv of this.kvs.values()) if (kv.key.startsWith(op.key)) found.push({ ...kv });
      found.sort((a, b) => compareKeys(a.key, b.key));
    } else {
      const kv = this.kvs.get(op.key);
      found = kv ? [{ ...kv }] : [];
    }
    const count = found.length;
    const kvs = limit > 0 ? found.slice(0, limit) : found;
    return { type: 'range', kvs, count, more: kvs.length < count };
  }

  private compareHolds(c: Compare): boolean {
    const kv = this.kvs.get(c.key);
    let actual: number | string;
    switch (c.target) {
      case 'version':
        actual = kv?.version ?? 0;
        break;
      case 'createRevision':
        actual = kv?.createRevision ?? 0;
        break;
      case 'modRevision':
        actual = kv?.modRevision ?? 0;
        break;
      case 'lease':
        actual = kv?.lease ?? 0;
        break;
      case 'value':
        actual = kv?.value ?? '';
        break;
      default:
        throw new ValidationError(`unknown compare target ${String((c as { target: unknown }).target)}`);
    }
    const expected = c.value;
    if (typeof actual !== typeof expected) throw new ValidationError(`compare on ${c.target} needs a ${typeof actual} value`);
    const cmp = typeof actual === 'string' ? compareKeys(actual, expected as string) : actual - (expected as number);
    switch (c.result) {
      case '=':
        return cmp === 0;
      case '!=':
        return cmp !== 0;
      case '<':
        return cmp < 0;
      case '>':
        return cmp > 0;
      default:
        throw new ValidationError(`unknown compare result ${String((c as { result: unknown }).result)}`);
    }
  }

  private validateOps(ops: RequestOp[]): void {
    if (!Array.isArray(ops)) throw new ValidationError('txn branch must be an array');
    for (const op of ops) {
      validateKey(op.key);
      if (op.type === 'put') {
        if (typeof op.value !== 'string') throw new ValidationError('value must be a string');
        const lease = op.lease ?? 0;
        if (lease !== 0 && !this.leases.has(lease)) throw new NotFoundError(`lease ${lease} not found`);
      } else if (op.type === 'range') {
        const limit = op.limit ?? 0;
        if (!Number.isInteger(limit) || limit < 0) throw new ValidationError('limit must be a non-negative integer');
      } else if (op.type !== 'deleteRange') {
        throw new ValidationError(`unknown op type ${String((op as { type: unknown }).type)}`);
      }
    }
  }

  private txn(req: TxnRequest): TxnResponse {
    if (!req || !Array.isArray(req.compare)) throw new ValidationError('txn needs compare, success and failure arrays');
    for (const c of req.compare) validateKey(c.key);
    const succeeded = req.compare.every((c) => this.compareHolds(c));
    const ops = succeeded ? req.success : req.failure;
    this.validateOps(ops);
    const newRev = this.rev + 1;
    const events: WatchEvent[] = [];
    const responses: ResponseOp[] = [];
    for (const op of ops) {
      if (op.type === 'range') {
        responses.push(this.rangeOp(op));
      } else if (op.type === 'put') {
        const prev = this.kvs.get(op.key);
        const lease = op.lease ?? 0;
        const kv: KeyValue = {
          key: op.key,
          value: op.value,
          createRevision: prev ? prev.createRevision : newRev,
          modRevision: newRev,
          version: prev ? prev.version + 1 : 1,
          lease,
        };
        if (prev && prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(op.key);
        if (lease !== 0) this.leases.get(lease)!.keys.add(op.key);
        this.kvs.set(op.key, kv);
        events.push(prev ? { type: 'put', kv: { ...kv }, prevKv: { ...prev } } : { type: 'put', kv: { ...kv } });
        responses.push(op.prevKv && prev ? { type: 'put', prevKv: { ...prev } } : { type: 'put' });
      } else {
        const keys = op.prefix ? [...this.kvs.keys()].filter((k) => k.startsWith(op.key)).sort(compareKeys) : this.kvs.has(op.key) ? [op.key] : [];
        const prevKvs: KeyValue[] = [];
        for (const k of keys) prevKvs.push(this.deleteKey(k, newRev, events));
        responses.push(op.prevKv ? { type: 'deleteRange', deleted: keys.length, prevKvs } : { type: 'deleteRange', deleted: keys.length });
      }
    }
    if (events.length > 0) this.commitRevision(newRev, events);
    return { succeeded, revision: this.rev, responses };
  }

  private deleteKey(key: string, rev: number, events: WatchEvent[]): KeyValue {
    const prev = this.kvs.get(key)!;
    this.kvs.delete(key);
    if (prev.lease !== 0) this.leases.get(prev.lease)?.keys.delete(key);
    events.push({ type: 'delete', kv: { key, value: '', createRevision: 0, modRevision: rev, version: 0, lease: 0 }, prevKv: { ...prev } });
    return { ...prev };
  }

  private commitRevision(rev: number, events: WatchEvent[]): void {
    this.rev = rev;
    this.history.push({ revision: rev, events });
    this.historyCount += events.length;
    while (this.historyCount > this.historyLimit && this.history.length > 1) {
      const dropped = this.history.shift()!;
      this.historyCount -= dropped.events.length;
      this.compacted = dropped.revision;
    }
    for (const w of this.watchers) this.deliver(w, events, rev);
  }

  private deliver(w: WatchEntry, events: WatchEvent[], rev: number): void {
    const mine = events.filter((e) => matches(w, e.kv.key)).map((e) => (w.prevKv || !e.prevKv ? e : { type: e.type, kv: e.kv }));
    if (mine.length === 0) return;
    w.queue.push({ events: mine, revision: rev });
    if (!w.scheduled) {
      w.scheduled = true;
      queueMicrotask(() => {
        w.scheduled = false;
        const batches = w.queue.splice(0);
        for (const b of batches) {
          if (w.cancelled) return;
          w.listener(b.events, b.revision);
        }
      });
    }
  }

  /**
   * Watches keys under `prefix` (etcd Watch). Replays kept events with revision >= `fromRevision`,
   * then delivers live ones, in revision order, one call per revision, asynchronously (microtasks).
   * Throws CompactedError if `fromRevision` is older than the kept history.
   */
  watch(prefix: string, listener: (events: WatchEvent[], revision: number) => void, options: WatchOptions & { exact?: boolean } = {}): Watcher {
    validateKey(prefix);
    const from = options.fromRevision ?? 0;
    const floor = Math.max(this.compacted, this.restoredAt);
    if (from > 0 && from <= floor) throw new CompactedError(from, floor + 1);
    const w: WatchEntry = { prefix, exact: options.exact ?? false, prevKv: options.prevKv ?? false, listener, queue: [], scheduled: false, cancelled: false };
    if (from > 0) for (const b of this.history) if (b.revision >= from) this.deliver(w, b.events, b.revision);
    this.watchers.add(w);
    return {
      cancel: () => {
        w.cancelled = true;
        this.watchers.delete(w);
      },
    };
  }

  /**
   * The whole replicated state as bytes, for a Raft snapshot (thesis §5.1): store revision, the
   * revision below which watch history is gone, every key (value, create/mod revision, version,
   * lease) in key order and every lease (id, TTL, keys follow from the kvs). UTF-8 JSON
   * `{"v":1,"revision","compactRevision","kvs":[[key,value,create,mod,version,lease]…],"leases":[[id,ttl]…]}`;
   * equal states give equal bytes. Watch history is not included.
   */
  serialize(): Uint8Array {
    const kvs = [...this.kvs.values()].sort((a, b) => compareKeys(a.key, b.key)).map((kv) => [kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease]);
    const leases = [...this.leases].sort((a, b) => a[0] - b[0]).map(([id, l]) => [id, l.ttl]);
    return encoder.encode(JSON.stringify({ v: 1, revision: this.rev, compactRevision: this.compacted, kvs, leases }));
  }

  /**
   * Replaces the whole state with a {@link KvStateMachine.serialize} image (a snapshot from the
   * leader, or the local one at restart). Validates everything before changing anything: throws
   * CorruptionError for malformed bytes. Watch history before the snapshot is gone (older
   * `fromRevision` → CompactedError); live watchers receive the difference between the old and
   * the new state as one batch at the snapshot's revision (puts for new or changed keys, deletes
   * for keys that vanished), so a watcher never silently misses a change hidden in a snapshot.
   */
  restore(data: Uint8Array): void {
    const next = parseImage(data);
    const events: WatchEvent[] = [];
    for (const [key, prev] of this.kvs) {
      if (!next.kvs.has(key)) events.push({ type: 'delete', kv: { key, value: '', createRevision: 0, modRevision: next.revision, version: 0, lease: 0 }, prevKv: { ...prev } });
    }
    for (const [key, kv] of next.kvs) {
      const prev = this.kvs.get(key);
      if (prev && prev.modRevision === kv.modRevision && prev.createRevision === kv.createRevision && prev.value === kv.value) continue;
      events.push(prev ? { type: 'put', kv: { ...kv }, prevKv: { ...prev } } : { type: 'put', kv: { ...kv } });
    }
    this.kvs.clear();
    for (const [k, kv] of next.kvs) this.kvs.set(k, kv);
    this.leases.clear();
    for (const [id, ttl] of next.leases) this.leases.set(id, { ttl, keys: new Set() });
    for (const kv of this.kvs.values()) if (kv.lease !== 0) this.leases.get(kv.lease)!.keys.add(kv.key);
    this.history.length = 0;
    this.historyCount = 0;
    this.rev = next.revision;
    this.compacted = next.compactRevision;
    this.restoredAt = next.revision;
    if (events.length > 0) for (const w of this.watchers) this.deliver(w, events, next.revision);
  }

  /** Cancels every watcher (used when a store closes). */
  cancelAllWatches(): void {
    for (const w of this.watchers) w.cancelled = true;
    this.watchers.clear();
  }
}

/** Throws CorruptionError (naming the problem) unless `data` is a valid {@link KvStateMachine.serialize} image. */
export function validateSnapshotImage(data: Uint8Array): void {
  parseImage(data);
}

interface Image {
  revision: number;
  compactRevision: number;
  kvs: Map<string, KeyValue>;
  leases: Map<number, number>;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/** Parses and validates a {@link KvStateMachine.serialize} image; CorruptionError names what is wrong. */
function parseImage(data: Uint8Array): Image {
  const bad = (what: string, cause?: unknown): never => {
    throw new CorruptionError(`malformed KV snapshot: ${what}`, cause === undefined ? undefined : { cause });
  };
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (err) {
    return bad('not UTF-8 JSON', err);
  }
  if (typeof raw !== 'object' || raw === null) return bad('not an object');
  const o = raw as Record<string, unknown>;
  if (o.v !== 1) bad(`unknown version ${String(o.v)}`);
  if (!isCount(o.revision) || !isCount(o.compactRevision)) bad('revision and compactRevision must be non-negative integers');
  if (!Array.isArray(o.kvs) || !Array.isArray(o.leases)) bad('kvs and leases must be arrays');
  const leases = new Map<number, number>();
  for (const l of o.leases as unknown[]) {
    if (!Array.isArray(l) || l.length !== 2 || !isCount(l[0]) || l[0] === 0 || !isCount(l[1]) || l[1] < 1) return bad('bad lease');
    if (leases.has(l[0])) bad(`duplicate lease ${l[0]}`);
    leases.set(l[0], l[1]);
  }
  const revision = o.revision as number;
  const kvs = new Map<string, KeyValue>();
  for (const k of o.kvs as unknown[]) {
    if (!Array.isArray(k) || k.length !== 6) return bad('bad key entry');
    const [key, value, createRevision, modRevision, version, lease] = k as unknown[];
    if (typeof key !== 'string' || typeof value !== 'string') return bad('key and value must be strings');
    if (!isCount(createRevision) || !isCount(modRevision) || !isCount(version) || !isCount(lease)) return bad(`bad revisions of key ${key}`);
    if (createRevision < 1 || createRevision > modRevision || modRevision > revision || version < 1) bad(`inconsistent revisions of key ${key}`);
    if (lease !== 0 && !leases.has(lease)) bad(`key ${key} is attached to unknown lease ${lease}`);
    if (kvs.has(key)) bad(`duplicate key ${key}`);
    kvs.set(key, { key, value, createRevision, modRevision, version, lease });
  }
  return { revision, compactRevision: o.compactRevision as number, kvs, leases };
}
