/**
 * The in-memory Raft log (etcd `log.go` + `log_unstable.go`, without snapshots yet).
 * Entry `i` lives at `entries[i - 1]`; index 0 is the empty prefix with term 0.
 * `stable` is the last index known to be on stable storage; later entries are "unstable"
 * and are handed to the driver in `Ready.entries` to be persisted.
 *
 * Snapshot seam: when log compaction arrives, replace `entries[i - 1]` by `entries[i - 1 - offset]`
 * and keep the snapshot's (index, term) as the prefix.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { invariant } from '../common/errors';
import type { Entry } from './types';

export class RaftLog {
  /** All entries, index 1.. */
  private entries: Entry[];
  /** Last index persisted by the driver. */
  stable: number;
  /** Highest index known committed (paper Fig. 2 `commitIndex`). */
  committed: number;
  /** Highest index handed out in `Ready.committedEntries` (paper `lastApplied`). */
  applied: number;

  constructor(persisted: Entry[], committed: number, applied: number) {
    persisted.forEach((e, i) => invariant(e.index === i + 1, `persisted log is not contiguous at ${i + 1}`));
    this.entries = [...persisted];
    this.stable = persisted.length;
    this.committed = Math.min(committed, this.lastIndex());
    this.applied = Math.min(applied, this.committed);
  }

  /** Index of the last entry (0 when empty). */
  lastIndex(): number {
    return this.entries.length;
  }

  /** Term of the last entry (0 when empty). */
  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** Term of entry `i`; 0 for i = 0; undefined when `i` is beyond the log. */
  term(i: number): number | undefined {
    if (i === 0) return 0;
    return this.entries[i - 1]?.term;
  }

  /** True if entry `i` exists with term `term` (the AppendEntries consistency check, paper §5.3). */
  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** Entries in [lo, hi] (inclusive), at most `max` of them. */
  slice(lo: number, hi: number, max = Infinity): Entry[] {
    const end = Math.min(hi, this.lastIndex(), lo + max - 1);
    return lo > end ? [] : this.entries.slice(lo - 1, end);
  }

  /** Entries not yet persisted. */
  unstable(): Entry[] {
    return this.entries.slice(this.stable);
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
      const t = this.term(e.index);
      if (t === e.term) continue;
      if (t !== undefined) {
        invariant(e.index > this.committed, `conflict at committed index ${e.index}`);
        this.entries.length = e.index - 1;
        this.stable = Math.min(this.stable, e.index - 1);
      }
      invariant(e.index === this.lastIndex() + 1, `gap appending ${e.index} after ${this.lastIndex()}`);
      for (const rest of entries.slice(k)) this.entries.push(rest);
      return;
    }
  }

  /** Largest index <= `index` whose term is <= `term` (etcd `findConflictByTerm`, for fast backtracking). */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > 0 && (this.term(i) ?? 0) > term) i--;
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
}
