/**
 * The in-memory Raft log (etcd `log.go` + `log_unstable.go`), with log compaction (paper §7,
 * thesis ch. 5).
 *
 * The log holds entries `offset + 1 .. lastIndex`; entry `i` lives at `entries[i - offset - 1]`.
 * Everything up to `offset` is compacted away: `offset`/`offsetTerm` is the prefix (index 0 with
 * term 0 before any compaction). `snapshot` is the latest snapshot (its index is >= offset: a
 * small trailing window of entries below the snapshot index may be kept so that slightly
 * lagging followers still get plain AppendEntries instead of a whole snapshot).
 *
 * `stable` is the last index known to be on stable storage; later entries are "unstable" and
 * are handed to the driver in `Ready.entries` to be persisted. A snapshot received from a leader
 * (InstallSnapshot) is `pendingSnapshot` until it is handed out in `Ready.snapshot`.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { invariant } from '../common/errors';
import type { Entry, Snapshot } from './types';

export class RaftLog {
  /** Entries offset+1 .. lastIndex. */
  private entries: Entry[];
  /** Index of the last compacted entry (the log prefix); 0 before any compaction. */
  private offset: number;
  /** Term of entry `offset` (0 when offset is 0). */
  private offsetTerm: number;
  /** The latest snapshot (made by {@link RaftLog.compact} or received from a leader), or null. */
  snapshot: Snapshot | null;
  /** A snapshot received from the leader, not yet handed to the driver in a Ready. */
  pendingSnapshot: Snapshot | null = null;
  /** Last index persisted by the driver. */
  stable: number;
  /** Highest index known committed (paper Fig. 2 `commitIndex`). */
  committed: number;
  /** Highest index handed out in `Ready.committedEntries` (paper `lastApplied`), or restored from a snapshot. */
  applied: number;

  /**
   * `persisted` are the stored entries; with a `snapshot` they may start at any index up to
   * snapshot.index + 1 (entries at or below the snapshot index are dropped).
   */
  constructor(persisted: Entry[], committed: number, applied: number, snapshot: Snapshot | null = null) {
    this.snapshot = snapshot;
    this.offset = snapshot?.index ?? 0;
    this.offsetTerm = snapshot?.term ?? 0;
    const kept = persisted.filter((e) => e.index > this.offset);
    kept.forEach((e, i) => invariant(e.index === this.offset + i + 1, `persisted log is not contiguous at ${this.offset + i + 1}`));
    this.entries = kept;
    this.stable = this.lastIndex();
    this.committed = Math.min(Math.max(committed, this.offset), this.lastIndex());
    this.applied = Math.min(Math.max(applied, this.offset), this.committed);
  }

  /** Index of the first entry still in memory (offset + 1; may be lastIndex + 1 when the log holds no entries). */
  firstIndex(): number {
    return this.offset + 1;
  }

  /** Index of the last entry (the snapshot index when no entries follow it; 0 when empty). */
  lastIndex(): number {
    return this.offset + this.entries.length;
  }

  /** Term of the last entry (0 when empty). */
  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** Term of entry `i`; the prefix term for i = offset; undefined when `i` is compacted away or beyond the log. */
  term(i: number): number | undefined {
    if (i === this.offset) return this.offsetTerm;
    if (i < this.offset) return undefined;
    return this.entries[i - this.offset - 1]?.term;
  }

  /** True if entry `i` exists with term `term` (the AppendEntries consistency check, paper §5.3). */
  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /**
   * Entries in [lo, hi] (inclusive), at most `max` of them and, beyond the first, at most
   * `maxBytes` bytes of entry data. `lo` must be > offset (compacted entries are gone).
   */
  slice(lo: number, hi: number, max = Infinity, maxBytes = Infinity): Entry[] {
    invariant(lo > this.offset, `slice from ${lo} but entries up to ${this.offset} are compacted`);
    const end = Math.min(hi, this.lastIndex(), lo + max - 1);
    if (lo > end) return [];
    const out = this.entries.slice(lo - this.offset - 1, end - this.offset);
    if (maxBytes === Infinity) return out;
    let bytes = 0;
    for (let k = 0; k < out.length; k++) {
      bytes += out[k]!.data.length;
      if (k > 0 && bytes > maxBytes) return out.slice(0, k);
    }
    return out;
  }

  /** Entries not yet persisted. */
  unstable(): Entry[] {
    return this.entries.slice(this.stable - this.offset);
  }

  /** Appends entries the leader created (index must be lastIndex + 1). */
  appendNew(e: Entry): void {
    invariant(e.index === this.lastIndex() + 1, `append at ${e.index} but last is ${this.lastIndex()}`);
    this.entries.push(e);
  }

  /**
   * Appends entries received from a leader after `prevIndex` matched: entries already present
   * with the same term are kept; from the first conflicting entry on, the log is truncated and
   * replaced (paper §5.3, Fig. 2 receiver rule 3). Committed entries never conflict (invariant).
   */
  appendFromLeader(entries: Entry[]): void {
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (e.index <= this.offset) continue; // compacted: committed, so it matches
      const t = this.term(e.index);
      if (t === e.term) continue;
      if (t !== undefined) {
        invariant(e.index > this.committed, `conflict at committed index ${e.index}`);
        this.entries.length = e.index - this.offset - 1;
        this.stable = Math.min(this.stable, e.index - 1);
      }
      invariant(e.index === this.lastIndex() + 1, `gap appending ${e.index} after ${this.lastIndex()}`);
      for (const rest of entries.slice(k)) this.entries.push(rest);
      return;
    }
  }

  /**
   * Largest index <= `index` whose term is <= `term` (etcd `findConflictByTerm`, for fast
   * backtracking). Never goes below the log prefix `offset`.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.offset && (this.term(i) ?? 0) > term) i--;
    return i;
  }

  /** Raises `committed` to `i` (never lowers it). */
  commitTo(i: number): void {
    if (i > this.committed) {
      invariant(i <= this.lastIndex(), `commit ${i} beyond last index ${this.lastIndex()}`);
      this.committed = i;
    }
  }

  /** Committed, persisted entries not yet handed out for apply. */
  nextCommitted(): Entry[] {
    const hi = Math.min(this.committed, this.stable);
    return this.slice(this.applied + 1, hi);
  }

  /** Candidate's log is at least as up-to-date as ours (paper §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm() || (lastTerm === this.lastTerm() && lastIndex >= this.lastIndex());
  }

  /**
   * Records `snap` (the application's state at snap.index, already durable) and drops entries
   * <= snap.index - `keep` from memory (thesis §5.1). The caller checks that snap.index is applied
   * and persisted and newer than the current snapshot.
   */
  compact(snap: Snapshot, keep: number): void {
    invariant(snap.index <= this.stable && snap.index <= this.lastIndex(), `compact at ${snap.index} beyond stable ${this.stable}`);
    this.snapshot = snap;
    const newOffset = Math.max(this.offset, snap.index - keep);
    if (newOffset > this.offset) {
      const t = this.term(newOffset)!;
      this.entries = this.entries.slice(newOffset - this.offset);
      this.offset = newOffset;
      this.offsetTerm = t;
    }
  }

  /**
   * Replaces the whole log with a snapshot received from the leader (paper §7 InstallSnapshot
   * receiver rules 6–8: the log does not hold snap.index with snap.term, so it is discarded).
   * committed and applied jump to snap.index; the snapshot waits in `pendingSnapshot` for the
   * driver to persist and apply it.
   */
  restore(snap: Snapshot): void {
    invariant(snap.index > this.committed, `restore snapshot ${snap.index} at or below commit ${this.committed}`);
    this.entries = [];
    this.offset = snap.index;
    this.offsetTerm = snap.term;
    this.snapshot = snap;
    this.pendingSnapshot = snap;
    this.stable = snap.index;
    this.committed = snap.index;
    this.applied = snap.index;
  }
}
