/**
 * The Raft write-ahead log on disk (adapter; uses `node:fs`). One append-only file
 * `<dir>/raft.wal` of records from `./wal-codec`, starting with a header naming the cluster.
 *
 * - {@link Wal.save} appends a Ready's hardState and entries with ONE write and ONE fsync
 *   (group commit per Ready). It is synchronous on purpose: the driver calls it between
 *   `ready()` and `advance()` without yielding, so no Raft input interleaves with persistence.
 * - Conflicting suffix: when a follower's log is overwritten, we simply append the new entries.
 *   On replay an entry with index i replaces every stored entry with index >= i (the etcd WAL
 *   rule), so no separate truncate record is needed.
 * - Open replays the file, truncates a torn tail (a crash mid-write; never acknowledged), and
 *   throws CorruptionError for a bad record in the middle or a header from another cluster.
 * - No snapshots yet: the file grows forever. Snapshot seam: a future `snapshot` record type
 *   plus rotation to a new file starting after the snapshot index.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptionError } from '../common/errors';
import { WAL_VERSION, decodeRecords, encodeRecords, type WalRecord } from './wal-codec';
import type { Entry, HardState } from './types';

/** State recovered by {@link Wal.open}. */
export interface WalState {
  hardState: HardState;
  /** The log, indexes 1..n, after applying replacement semantics. */
  entries: Entry[];
  /** True if a torn tail was truncated during open. */
  repairedTornTail: boolean;
}

/** File name of the WAL inside its directory. */
export const WAL_FILE = 'raft.wal';

export class Wal {
  private constructor(
    private fd: number | null,
    readonly path: string,
  ) {}

  /**
   * Opens (or creates) the WAL in `dir` for `clusterId` and replays it.
   * Throws CorruptionError for mid-file corruption or a header of another cluster.
   */
  static open(dir: string, clusterId: string): { wal: Wal; state: WalState } {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, WAL_FILE);
    const existed = existsSync(path);
    const fd = openSync(path, existed ? 'r+' : 'w+');
    try {
      const buf = existed ? readFileSync(path) : Buffer.alloc(0);
      const { records, validBytes, torn } = decodeRecords(buf);
      const wal = new Wal(fd, path);
      if (torn) {
        ftruncateSync(fd, validBytes);
        fsyncSync(fd);
      }
      const state: WalState = { hardState: { term: 0, vote: '', commit: 0 }, entries: [], repairedTornTail: torn };
      if (records.length === 0) {
        ftruncateSync(fd, 0);
        wal.append([{ type: 'header', clusterId, version: WAL_VERSION }]);
        fsyncDir(dir);
        return { wal, state };
      }
      const [head, ...rest] = records;
      if (head?.type !== 'header') throw new CorruptionError(`WAL ${path} does not start with a header`);
      if (head.clusterId !== clusterId) throw new CorruptionError(`WAL ${path} belongs to cluster "${head.clusterId}", not "${clusterId}"`, { detail: { found: head.clusterId, expected: clusterId } });
      for (const r of rest) {
        if (r.type === 'hardState') state.hardState = r.hardState;
        else if (r.type === 'entry') {
          const e = r.entry;
          if (e.index < 1 || e.index > state.entries.length + 1) throw new CorruptionError(`WAL ${path} has a gap before entry ${e.index}`);
          state.entries.length = e.index - 1;
          state.entries.push(e);
        } else throw new CorruptionError(`WAL ${path} has a second header`);
      }
      return { wal, state };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Appends records with one write and one fsync. */
  private append(records: WalRecord[]): void {
    if (this.fd === null) throw new Error('WAL is closed');
    const bytes = encodeRecords(records);
    const pos = fstatSync(this.fd).size;
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, pos + done);
    fsyncSync(this.fd);
  }

  /** Durably appends a Ready's hardState (if any) and entries; returns after fsync. No-op when both are empty. */
  save(hardState: HardState | undefined, entries: Entry[]): void {
    const records: WalRecord[] = entries.map((entry) => ({ type: 'entry', entry }));
    if (hardState) records.push({ type: 'hardState', hardState });
    if (records.length > 0) this.append(records);
  }

  /** Closes the file. Idempotent. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some platforms (Windows) cannot fsync a directory; the file's own fsync still holds.
  }
}
