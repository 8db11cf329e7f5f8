/**
 * The replicated file index: `files/<path>` → JSON {@link IndexRecord}, one key per file. Written
 * by the sync engine, read by the lock manager (a lock needs an existing file) and the node's
 * Files view.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import type { FileEntry } from '../control/api';
import type { KeyValue } from '../kv/types';
import { blockCount, INLINE_BLOCKS_MAX, isSha256 } from './blocks';

/** KV prefix of the file index. */
export const FILES_PREFIX = 'files/';

/**
 * One committed version of a file (the fields of {@link FileEntry} that are stored; `lock` and
 * `replicas` are joined in when shown). `version` is 1 on create and +1 per change, a delete
 * being a change (`deleted: true`, a tombstone); `modifiedAt` is the file's mtime at commit.
 */
export type IndexRecord = Omit<FileEntry, 'lock' | 'replicas'> & {
  /**
   * SHA-256 of the file's block manifest object (see `blocks.ts`), present when the file has more
   * than one block; absent for files of at most one block (the block hash is then `sha256`).
   */
  manifest?: string;
  /**
   * The block hashes (SHA-256 hex, in order) of a file of 2 to {@link INLINE_BLOCKS_MAX} blocks,
   * carried in the record so a receiver needs no round trip for the manifest; `manifest` is then
   * the SHA-256 of `encodeManifest(size, blocks)` (the engine checks it) and that object is not
   * stored anywhere. Absent for other files (records written before it: the object is fetched).
   */
  blocks?: string[];
};

/** Parses and checks a stored record; null for anything malformed (callers log and skip it). */
export function parseIndexRecord(kv: Pick<KeyValue, 'value'>): IndexRecord | null {
  try {
    const v = JSON.parse(kv.value) as IndexRecord;
    if (typeof v.path !== 'string' || typeof v.version !== 'number' || typeof v.deleted !== 'boolean' || typeof v.modifiedBy !== 'string') return null;
    if (!isSha256(v.sha256)) return null;
    if (typeof v.size !== 'number' || typeof v.modifiedAt !== 'number') return null;
    if (v.manifest !== undefined && !isSha256(v.manifest)) return null;
    if (v.blocks !== undefined) {
      if (!Array.isArray(v.blocks) || v.manifest === undefined || v.deleted) return null;
      if (v.blocks.length < 2 || v.blocks.length > INLINE_BLOCKS_MAX || !v.blocks.every(isSha256)) return null;
      if (!Number.isSafeInteger(v.size) || v.size < 0 || blockCount(v.size) !== v.blocks.length) return null;
    }
    return v;
  } catch {
    return null;
  }
}
