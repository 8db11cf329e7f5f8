/**
 * The Raft write-ahead log on disk (adapter; uses `node:fs`). One append-only file
 * `<dir>/raft.wal` of records from `./wal-codec`, starting with a header naming the cluster.
 *
 * - {@link Wal.save} appends a Ready's hardState and entries with ONE write and ONE fsync
 *   (group commit per Ready), synchronously; {@link Wal.saveAsync} does the same on libuv's
 *   thread pool (the driver holds `advance()` until it completes, one save in flight at a time).
 *   As etcd's `MustSync`: a write that only advances the commit index is not fsynced (a lost
 *   commit index is re-learned from the leader; term, vote and entries are always fsynced
 *   before save returns, and the next fsync covers the earlier unsynced bytes too).
 * - Conflicting suffix: when a follower's log is overwritten, we simply append the new entries.
 *   On replay an entry with index i replaces every stored entry with index >= i (the etcd WAL
 *   rule), so no separate truncate record is needed.
 * - Open replays the file, truncates a torn tail (a crash mid-write; never acknowledged), and
 *   throws CorruptionError for a bad record in the middle or a header from another cluster.
 * - No snapshots yet: the file grows forever. Snapshot seam: a future `snapshot` record type
 *   plus rotation to a new file starting after the snapshot index.
 */
import { closeSync, existsSync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, write, writeSync } from 'node:fs';
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
  /** Bytes of valid records in the file (the append position). */
  private size = 0;
  /** Term and vote of the last hardState written (a change must be fsynced). */
  private term = 0;
  private vote = '';

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
      wal.size = validBytes;
      if (torn) {
        ftruncateSync(fd, validBytes);
        fsyncSync(fd);
      }
      const state: WalState = { hardState: { term: 0, vote: '', commit: 0 }, entries: [], repairedTornTail: torn };
      if (records.length === 0) {
        ftruncateSync(fd, 0);
        wal.size = 0;
        wal.append([{ type: 'header', clusterId, version: WAL_VERSION }], true);
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
      wal.term = state.hardState.term;
      wal.vote = state.hardState.vote;
      return { wal, state };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Appends records with one write and (when `sync`) one fsync. */
  private append(records: WalRecord[], sync: boolean): void {
    if (this.fd === null) throw new Error('WAL is closed');
    const bytes = encodeRecords(records);
    const pos = this.size;
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, pos + done);
    this.size = pos + bytes.length;
    if (sync) fsyncSync(this.fd);
  }

  /**
   * Appends a Ready's hardState (if any) and entries with one write. Returns after fsync when
   * there are entries or the term or vote changed; a commit-only change is written without
   * fsync (etcd `MustSync`). No-op when both are empty.
   */
  save(hardState: HardState | undefined, entries: Entry[]): void {
    const { records, mustSync } = this.prepare(hardState, entries);
    if (records.length > 0) this.append(records, mustSync);
  }

  /**
   * The records for one Ready, and whether they must be fsynced: entries, or a changed term or
   * vote, must be durable before Raft acts on them; a commit-only change need not (etcd `MustSync`).
   */
  private prepare(hardState: HardState | undefined, entries: Entry[]): { records: WalRecord[]; mustSync: boolean } {
    const records: WalRecord[] = entries.map((entry) => ({ type: 'entry', entry }));
    let mustSync = entries.length > 0;
    if (hardState) {
      records.push({ type: 'hardState', hardState });
      if (hardState.term !== this.term || hardState.vote !== this.vote) mustSync = true;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    return { records, mustSync };
  }

  /**
   * Like {@link Wal.save} but the write and fsync run on libuv's thread pool, so the event loop
   * keeps sending and receiving while the disk works. `done` is called once the records are
   * durable (or with the error). At most one saveAsync may be in flight at a time (the driver
   * holds Raft's Ready until `done`); records are placed in call order.
   */
  saveAsync(hardState: HardState | undefined, entries: Entry[], done: (err: Error | null) => void): void {
    if (this.fd === null) return done(new Error('WAL is closed'));
    const { records, mustSync } = this.prepare(hardState, entries);
    if (records.length === 0) return done(null);
    const bytes = encodeRecords(records);
    const fd = this.fd;
    const pos = this.size;
    this.size = pos + bytes.length;
    const writeFrom = (off: number): void => {
      write(fd, bytes, off, bytes.length - off, pos + off, (err, n) => {
        if (err) return done(err);
        if (off + n < bytes.length) return writeFrom(off + n);
        if (!mustSync) return done(null);
        fsync(fd, (e) => done(e ?? null));
      });
    };
    writeFrom(0);
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
