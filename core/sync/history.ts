/**
 * Per-file change history in the replicated KV: `history/<path>:<version>` → JSON
 * {@link HistoryEntry}, written in the same `txn` as the index record it describes, so a history
 * entry exists exactly when its version was committed.
 *
 * Bounded: the txn that writes version `v` also deletes version `v - HISTORY_KEEP`, so each path
 * keeps at most {@link HISTORY_KEEP} entries (the index itself keeps one record, tombstones
 * included, per path). `:` cannot occur in a synchronized path (Windows forbids it, `paths.ts`
 * refuses it), so the prefix `history/<path>:` never matches another path's entries.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import type { HistoryEntry } from '../control/api';
import type { KeyValue } from '../kv/types';
import type { IndexRecord } from './index-record';

export type { HistoryEntry } from '../control/api';

/** KV prefix of the change history. */
export const HISTORY_PREFIX = 'history/';
/** History entries kept per path. */
export const HISTORY_KEEP = 20;

/** Key of `path`'s history entry for `version` (zero-padded so keys sort by version). */
export function historyKey(path: string, version: number): string {
  return `${historyPrefixOf(path)}${String(version).padStart(10, '0')}`;
}

/** Prefix of every history entry of `path`. */
export function historyPrefixOf(path: string): string {
  return `${HISTORY_PREFIX}${path}:`;
}

/** The history entry describing the commit of `record` on `host` at `committedAt` (ms since the epoch). */
export function historyEntryOf(record: IndexRecord, host: string, committedAt: number): HistoryEntry {
  return {
    path: record.path,
    version: record.version,
    sha256: record.sha256,
    size: record.size,
    deleted: record.deleted,
    modifiedBy: record.modifiedBy,
    host,
    modifiedAt: record.modifiedAt,
    committedAt,
  };
}

/** Parses a stored entry; null for anything malformed (callers skip it). */
export function parseHistoryEntry(kv: Pick<KeyValue, 'value'>): HistoryEntry | null {
  try {
    const v = JSON.parse(kv.value) as HistoryEntry;
    if (!v || typeof v !== 'object') return null;
    if (typeof v.path !== 'string' || !Number.isSafeInteger(v.version) || typeof v.deleted !== 'boolean') return null;
    if (typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) return null;
    if (typeof v.size !== 'number' || typeof v.modifiedBy !== 'string' || typeof v.host !== 'string') return null;
    if (typeof v.modifiedAt !== 'number' || typeof v.committedAt !== 'number') return null;
    return v;
  } catch {
    return null;
  }
}
