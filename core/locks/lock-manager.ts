/**
 * File locks over the ReplicatedKV (etcd's `concurrency` recipes are the model). A lock lives at
 * `locks/<path>` as a JSON {@link LockInfo}; every change is a `txn` guarded by the key's
 * `modRevision`, so two nodes racing for the same lock cannot both win. The fencing token is
 * the lock key's modRevision (the revision of the write that granted or last changed the lock):
 * it grows monotonically across the cluster.
 *
 * - exclusive: one holder; refused while anyone holds the lock.
 * - shared: any number of holders; refused while it is held exclusively.
 * File locks are persistent (no lease): they survive the holder's restart until released or
 * broken with `force` (an explicit, logged action).
 *
 * Errors: LockConflictError (held by another node; `detail.lock` is the current lock),
 * NotFoundError (no such file in the index), PathError/ValidationError (bad path), and the
 * store's UnavailableError when there is no quorum.
 */
import { LockConflictError, NotFoundError, ValidationError } from '../common/errors';
import type { LockEvent, LockInfo } from '../control/api';
import type { KeyValue, ReplicatedKV } from '../kv/types';
import { FILES_PREFIX, parseIndexRecord } from '../sync/index-record';

export const LOCK_PREFIX = 'locks/';
/**
 * KV prefix of each file's recent lock events: `lockhistory/<path>` → JSON {@link LockEvent}[]
 * (oldest first), rewritten in the same guarded `txn` as the lock change it records.
 */
export const LOCK_HISTORY_PREFIX = 'lockhistory/';
/** Lock events kept per path (older ones drop off). */
export const LOCK_HISTORY_KEEP = 10;

/** Parses a stored lock-event list; [] for anything malformed. */
export function parseLockEvents(kv: Pick<KeyValue, 'value'> | undefined): LockEvent[] {
  if (!kv) return [];
  try {
    const v = JSON.parse(kv.value) as unknown;
    if (!Array.isArray(v)) return [];
    return v.filter(
      (e): e is LockEvent =>
        !!e && typeof e === 'object' && typeof (e as LockEvent).at === 'number' && typeof (e as LockEvent).node === 'string' && ['lock', 'unlock', 'break'].includes((e as LockEvent).action),
    );
  } catch {
    return [];
  }
}

export interface LockRequester {
  node: string;
  host: string;
  user: string;
}

/** Parses a stored lock; returns null for a malformed value (treated as no lock, and logged by callers). */
export function parseLock(kv: KeyValue): LockInfo | null {
  try {
    const v = JSON.parse(kv.value) as LockInfo;
    if (typeof v.path !== 'string' || !Array.isArray(v.holders) || (v.mode !== 'exclusive' && v.mode !== 'shared')) return null;
    return { ...v, fencingToken: kv.modRevision };
  } catch {
    return null;
  }
}

export class LockManager {
  constructor(private readonly kv: ReplicatedKV) {}

  /** Current lock on `path`, or null. */
  async get(path: string): Promise<LockInfo | null> {
    const r = await this.kv.range(LOCK_PREFIX + path);
    const kv = r.kvs[0];
    return kv ? parseLock(kv) : null;
  }

  /** Every lock, keyed by path. */
  async all(): Promise<Map<string, LockInfo>> {
    const r = await this.kv.range(LOCK_PREFIX, { prefix: true });
    const out = new Map<string, LockInfo>();
    for (const kv of r.kvs) {
      const l = parseLock(kv);
      if (l) out.set(l.path, l);
    }
    return out;
  }

  /**
   * Acquires a lock for `who` on a file that exists in the index. Idempotent for a holder
   * asking again in the same mode. Retries internally when it loses a race (at most 5 times).
   */
  async lock(path: string, mode: 'exclusive' | 'shared', who: LockRequester, now: number): Promise<LockInfo> {
    if (mode !== 'exclusive' && mode !== 'shared') throw new ValidationError(`lock mode must be "exclusive" or "shared", not ${JSON.stringify(mode)}`);
    const file = await this.kv.range(FILES_PREFIX + path);
    const entry = file.kvs[0] ? parseIndexRecord(file.kvs[0]) : null;
    if (!entry || entry.deleted) throw new NotFoundError(`no file "${path}" in the synchronized folder`);
    const key = LOCK_PREFIX + path;
    for (let attempt = 0; attempt < 5; attempt++) {
      const [kv, hist] = await this.readLockAndHistory(path);
      const held = kv ? parseLock(kv) : null;
      let next: LockInfo;
      if (!held || !kv) {
        next = { path, mode, holders: [who.node], host: who.host, user: who.user, since: now, fencingToken: 0 };
      } else if (held.holders.includes(who.node) && held.mode === mode) {
        return held;
      } else if (held.mode === 'shared' && mode === 'shared') {
        next = { ...held, holders: [...held.holders, who.node] };
      } else {
        throw new LockConflictError(`"${path}" is locked (${held.mode}) by ${held.holders.join(', ')} on ${held.host} since ${new Date(held.since).toISOString()}`, {
          detail: { lock: held },
        });
      }
      const event: LockEvent = { at: now, action: 'lock', mode, node: who.node, host: who.host, user: who.user };
      const res = await this.kv.txn({
        compare: [
          { key, target: 'modRevision', result: '=', value: kv ? kv.modRevision : 0 },
          { key: LOCK_HISTORY_PREFIX + path, target: 'modRevision', result: '=', value: hist ? hist.modRevision : 0 },
        ],
        success: [{ type: 'put', key, value: JSON.stringify(next) }, this.historyPut(path, hist, event)],
        failure: [],
      });
      // The fencing token is the revision that granted the lock (the key's modRevision).
      if (res.succeeded) return { ...next, fencingToken: res.revision };
    }
    throw new LockConflictError(`"${path}": lost the race for the lock 5 times; try again`);
  }

  /**
   * Releases `who`'s hold on `path`. With `force`, breaks the lock whoever holds it.
   * @returns released=false when there was no lock.
   * @throws LockConflictError when the lock is held by others and `force` is not set.
   */
  async unlock(path: string, who: LockRequester, force = false, now = Date.now()): Promise<{ released: boolean; previous: LockInfo | null }> {
    const key = LOCK_PREFIX + path;
    for (let attempt = 0; attempt < 5; attempt++) {
      const [kv, hist] = await this.readLockAndHistory(path);
      if (!kv) return { released: false, previous: null };
      const held = parseLock(kv);
      if (held && !held.holders.includes(who.node) && !force) {
        throw new LockConflictError(`"${path}" is locked by ${held.holders.join(', ')}, not by ${who.node}; use force to break it`, { detail: { lock: held } });
      }
      const remaining = held && !force ? held.holders.filter((h) => h !== who.node) : [];
      const broke = force && !!held && !held.holders.includes(who.node);
      const event: LockEvent = { at: now, action: broke ? 'break' : 'unlock', mode: held?.mode ?? 'exclusive', node: who.node, host: who.host, user: who.user };
      const res = await this.kv.txn({
        compare: [
          { key, target: 'modRevision', result: '=', value: kv.modRevision },
          { key: LOCK_HISTORY_PREFIX + path, target: 'modRevision', result: '=', value: hist ? hist.modRevision : 0 },
        ],
        success: [
          remaining.length === 0 || !held ? { type: 'deleteRange', key } : { type: 'put', key, value: JSON.stringify({ ...held, holders: remaining }) },
          this.historyPut(path, hist, event),
        ],
        failure: [],
      });
      if (res.succeeded) return { released: true, previous: held };
    }
    throw new LockConflictError(`"${path}": lock changed 5 times while releasing; try again`);
  }

  /** Recent lock events of `path`, oldest first (at most {@link LOCK_HISTORY_KEEP}). */
  async history(path: string): Promise<LockEvent[]> {
    return parseLockEvents((await this.kv.range(LOCK_HISTORY_PREFIX + path)).kvs[0]);
  }

  /** The lock key and its event list, read together (two linearizable reads in parallel, not one after the other). */
  private async readLockAndHistory(path: string): Promise<[KeyValue | undefined, KeyValue | undefined]> {
    const [lock, hist] = await Promise.all([this.kv.range(LOCK_PREFIX + path), this.kv.range(LOCK_HISTORY_PREFIX + path)]);
    return [lock.kvs[0], hist.kvs[0]];
  }

  private historyPut(path: string, hist: KeyValue | undefined, event: LockEvent): { type: 'put'; key: string; value: string } {
    const events = [...parseLockEvents(hist), event].slice(-LOCK_HISTORY_KEEP);
    return { type: 'put', key: LOCK_HISTORY_PREFIX + path, value: JSON.stringify(events) };
  }
}
