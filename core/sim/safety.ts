/**
 * Raft's safety properties (paper Fig. 3, §5.4; thesis §3.6), checked incrementally after
 * every simulator step:
 * - Election safety: at most one leader per term, over the whole run.
 * - Log matching: if two logs hold an entry with the same index and term, the entries are
 *   identical and so are the logs up to there. Checked by induction over a global table
 *   (index, term) → (data, term of index - 1): every (index, term) ever seen on any node must
 *   always carry the same data and sit after the same previous term.
 * - Leader completeness: an entry committed in term T is in the log of every leader of a term
 *   >= T. The commit term is the term of the first node seen with that commit index; commit
 *   index only grows on a leader first, so this is exact, and otherwise only an overestimate
 *   (a weaker, never a false, check).
 * - State machine safety: no two nodes apply different entries at the same index, and every
 *   node applies indexes 1, 2, 3… in order (across restarts it starts again at 1, or after its
 *   durable snapshot).
 * - Snapshots (paper §7): a snapshot made or installed at index i has the term of the entry
 *   committed at i, and all snapshots made at the same index hold the same bytes (the state
 *   machines agree); an installed snapshot moves the node's apply point to i.
 * - Quorum of the configuration in effect (thesis §4.1): when a leader commits an index first,
 *   a majority of the voters of ITS configuration (the latest in its log, committed or not)
 *   holds that entry durably, in its log or its snapshot (checked when the driver passes
 *   `voters` and `storedOn`).
 * - One change at a time (thesis §4.1): a leader's log never holds more than one config entry
 *   beyond its commit index.
 * - Configuration (thesis §4.1, §5.1): a node with no config entry beyond its commit index uses
 *   the committed configuration as of that index, also when it came from a snapshot.
 *
 * Compacted entries (below a node's first index) are not in its log any more; the checks cover
 * the entries it still holds and its snapshot.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import type { RaftLog } from '../raft/log';
import type { Raft } from '../raft/raft';
import { decodeConfEntry } from '../raft/confchange';
import type { Entry, NodeId, RaftRole, Snapshot } from '../raft/types';
import { SafetyViolation } from './errors';

/** What the checker reads of one node's in-memory log (a subset of {@link RaftLog}). */
export interface LogView {
  /** First index still in the log (1 before any compaction). */
  firstIndex(): number;
  lastIndex(): number;
  term(i: number): number | undefined;
  slice(lo: number, hi: number): Entry[];
}

/** One running node as the checker sees it. */
export interface NodeView {
  id: NodeId;
  role: RaftRole;
  term: number;
  commitIndex: number;
  log: LogView;
  /** Voters of the node's configuration in effect (enables the quorum check for leaders). */
  voters?: NodeId[];
  /** Learners of the node's configuration in effect (with `voters`, enables the configuration check). */
  learners?: NodeId[];
}

/** Options of the checker. */
export interface SafetyOptions {
  /** True when node `id` durably stores the entry (index, term); enables the quorum check. */
  storedOn?: (id: NodeId, index: number, term: number) => boolean;
  /** The configuration before any config entry; enables the configuration check. */
  initialConf?: { voters: NodeId[]; learners: NodeId[] };
}

/**
 * The in-memory log of a running {@link Raft} (a test seam: the core keeps it private; a
 * public read-only accessor on Raft would make this cast unnecessary).
 */
export function inspectLog(raft: Raft): LogView {
  return (raft as unknown as { log: RaftLog }).log;
}

/** Byte equality (entries are usually the very same object on every node, so that is tried first). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Committed {
  term: number;
  data: Uint8Array;
  /** Term of the node that first reported this index committed (>= the real commit term). */
  commitTerm: number;
}

/** Incremental checker; feed it every node after every step and every applied entry. */
export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly identity = new Map<string, { data: Uint8Array; prevTerm: number }>();
  /** committed[i - 1] = the entry committed at index i. */
  private readonly committed: Committed[] = [];
  private readonly appliedAt: Array<{ term: number; data: Uint8Array }> = [];
  /** Per node: commit index already cross-checked against `committed`. */
  private readonly nodeCommitChecked = new Map<NodeId, number>();
  /** Per node and term: committed prefix already found in its log while leader. */
  private readonly leaderChecked = new Map<NodeId, { term: number; upTo: number }>();
  /** Per node: index of its last applied entry since its last (re)start. */
  private readonly lastApplied = new Map<NodeId, number>();
  /** Data of the snapshots made (compaction) per index. */
  private readonly snapshotData = new Map<number, Uint8Array>();
  /** Committed configurations, by the index of their config entry, ascending. */
  private readonly committedConfs: Array<{ index: number; voters: NodeId[]; learners: NodeId[] }> = [];

  constructor(private readonly options: SafetyOptions = {}) {}

  /** Highest index known committed anywhere. */
  get commitIndex(): number {
    return this.committed.length;
  }

  /** Checks one node. `full` re-scans its whole log (used at the end of a run) instead of the uncommitted tail. */
  checkNode(n: NodeView, full = false): void {
    const log = n.log;
    const last = log.lastIndex();
    // Election safety.
    if (n.role === 'leader') {
      const other = this.leaderOfTerm.get(n.term);
      if (other === undefined) this.leaderOfTerm.set(n.term, n.id);
      else if (other !== n.id) throw new SafetyViolation('election-safety', `${other} and ${n.id} are both leaders of term ${n.term}`);
    }
    // Log matching, over the entries that may have changed since the last check.
    const checkedCommit = this.nodeCommitChecked.get(n.id) ?? 0;
    const from = Math.max(log.firstIndex(), full ? 1 : Math.min(checkedCommit, n.commitIndex) + 1);
    if (from <= last) {
      const entries = log.slice(from, last);
      let prevTerm = log.term(from - 1) ?? 0;
      for (const e of entries) {
        const key = `${e.index}/${e.term}`;
        const seen = this.identity.get(key);
        if (!seen) this.identity.set(key, { data: e.data, prevTerm });
        else if (seen.prevTerm !== prevTerm || !sameBytes(seen.data, e.data)) {
          throw new SafetyViolation('log-matching', `${n.id} holds a different entry at index ${e.index} term ${e.term} (prev term ${prevTerm} vs ${seen.prevTerm})`);
        }
        prevTerm = e.term;
      }
    }
    // Newly committed entries on this node agree with what is already known committed.
    if (n.commitIndex > checkedCommit) {
      const entries = log.slice(Math.max(checkedCommit + 1, log.firstIndex()), n.commitIndex);
      for (const e of entries) {
        const c = this.committed[e.index - 1];
        if (!c && e.index - 1 > this.committed.length) {
          throw new SafetyViolation('committed-agreement', `${n.id} commits index ${e.index} but only ${this.committed.length} entries were ever seen committed`);
        }
        if (!c) {
          this.committed.push({ term: e.term, data: e.data, commitTerm: n.term });
          if (e.type === 'config') {
            const s = decodeConfEntry(e.data).state;
            this.committedConfs.push({ index: e.index, voters: s.voters, learners: s.learners });
          }
          if (n.role === 'leader') this.checkQuorum(n, e);
        } else if (c.term !== e.term || !sameBytes(c.data, e.data)) {
          throw new SafetyViolation('committed-agreement', `${n.id} committed index ${e.index} term ${e.term}, but term ${c.term} was committed there before`);
        }
      }
      this.nodeCommitChecked.set(n.id, n.commitIndex);
    } else if (n.commitIndex < checkedCommit) {
      // Restarted with a lower durable commit index: re-check from there next time.
      this.nodeCommitChecked.set(n.id, n.commitIndex);
    }
    this.checkConfiguration(n);
    // One configuration change at a time: at most one config entry beyond the leader's commit index.
    if (n.role === 'leader' && last > n.commitIndex) {
      const pending = log.slice(n.commitIndex + 1, last).filter((e) => e.type === 'config');
      if (pending.length > 1) throw new SafetyViolation('one-change-at-a-time', `leader ${n.id} of term ${n.term} has ${pending.length} uncommitted config entries (${pending.map((e) => e.index).join(', ')})`);
    }
    // Leader completeness: every entry committed in a term <= ours is in our log.
    if (n.role === 'leader') {
      const lc = this.leaderChecked.get(n.id);
      let upTo = lc && lc.term === n.term ? lc.upTo : 0;
      for (let i = upTo + 1; i <= this.committed.length; i++) {
        const c = this.committed[i - 1]!;
        // Compacted away: covered by the leader's snapshot, whose term was checked when it was made or installed.
        if (i < log.firstIndex() - 1) {
          upTo = i;
          continue;
        }
        if (c.commitTerm <= n.term && log.term(i) !== c.term) {
          throw new SafetyViolation('leader-completeness', `leader ${n.id} of term ${n.term} lacks index ${i} (term ${c.term}) committed in term ${c.commitTerm}; it has term ${log.term(i)}`);
        }
        upTo = i;
      }
      this.leaderChecked.set(n.id, { term: n.term, upTo });
    }
  }

  /**
   * Configuration in effect (thesis §4.1, §5.1): a node whose log holds no config entry beyond
   * its commit index uses the committed configuration as of that index, whether it learned it
   * from a config entry or from a snapshot (compacted, restarted or installed). A joining node's
   * own boot-time learner role is ignored until it is in a configuration.
   */
  private checkConfiguration(n: NodeView): void {
    const init = this.options.initialConf;
    if (!init || !n.voters || !n.learners || n.commitIndex === 0) return;
    const last = n.log.lastIndex();
    if (last > n.commitIndex && n.log.slice(Math.max(n.commitIndex + 1, n.log.firstIndex()), last).some((e) => e.type === 'config')) return;
    let expected: { voters: NodeId[]; learners: NodeId[] } = init;
    for (let k = this.committedConfs.length - 1; k >= 0; k--) {
      if (this.committedConfs[k]!.index <= n.commitIndex) {
        expected = this.committedConfs[k]!;
        break;
      }
    }
    const member = expected.voters.includes(n.id) || expected.learners.includes(n.id);
    const learners = member ? n.learners : n.learners.filter((x) => x !== n.id);
    const same = (a: NodeId[], b: NodeId[]) => a.length === b.length && a.every((x) => b.includes(x));
    if (!same(n.voters, expected.voters) || !same(learners, expected.learners)) {
      throw new SafetyViolation(
        'configuration',
        `${n.id} (commit ${n.commitIndex}, no later config entry) uses voters ${n.voters.join(',')} learners ${n.learners.join(',') || '-'}, but the committed configuration is voters ${expected.voters.join(',')} learners ${expected.learners.join(',') || '-'}`,
      );
    }
  }

  /** A leader's first commit of `e`: a majority of its configuration's voters holds it durably. */
  private checkQuorum(n: NodeView, e: Entry): void {
    const stored = this.options.storedOn;
    if (!stored || !n.voters) return;
    const holders = n.voters.filter((v) => stored(v, e.index, e.term));
    if (holders.length < Math.floor(n.voters.length / 2) + 1) {
      throw new SafetyViolation('commit-quorum', `leader ${n.id} of term ${n.term} committed index ${e.index} held durably only by ${holders.join(',') || 'nobody'} of voters ${n.voters.join(',')}`);
    }
  }

  /** Records that `id` applied `e` to its state machine (state machine safety and in-order apply). */
  onApply(id: NodeId, e: Entry): void {
    const prev = this.lastApplied.get(id) ?? 0;
    if (e.index !== prev + 1) throw new SafetyViolation('apply-order', `${id} applied index ${e.index} after ${prev}`);
    this.lastApplied.set(id, e.index);
    const seen = this.appliedAt[e.index - 1];
    if (!seen) {
      if (e.index - 1 !== this.appliedAt.length) throw new SafetyViolation('apply-order', `index ${e.index} applied before index ${this.appliedAt.length + 1} anywhere`);
      this.appliedAt.push({ term: e.term, data: e.data });
    } else if (seen.term !== e.term || !sameBytes(seen.data, e.data)) {
      throw new SafetyViolation('state-machine-safety', `${id} applied term ${e.term} at index ${e.index}, another node applied term ${seen.term}`);
    }
  }

  /** A node restarted: its state machine starts from its durable snapshot (or empty) and re-applies from there. */
  onRestart(id: NodeId, snapshot?: Snapshot): void {
    this.lastApplied.set(id, snapshot?.index ?? 0);
    this.leaderChecked.delete(id);
  }

  /**
   * `id` made a snapshot by compaction (`made`, at its applied index) or received one from the
   * leader in a Ready (`installed`, its apply point jumps there). The snapshot's (index, term)
   * must match what was applied there; snapshots made at the same index must hold equal bytes.
   */
  onSnapshot(id: NodeId, snap: Snapshot, how: 'made' | 'installed'): void {
    const applied = this.appliedAt[snap.index - 1];
    if (!applied) throw new SafetyViolation('snapshot', `${id} ${how} a snapshot at ${snap.index}, but no node applied that index`);
    if (applied.term !== snap.term) throw new SafetyViolation('snapshot', `${id} ${how} a snapshot at ${snap.index} term ${snap.term}, but term ${applied.term} was applied there`);
    if (how === 'made') {
      if (this.lastApplied.get(id) !== snap.index) throw new SafetyViolation('snapshot', `${id} made a snapshot at ${snap.index} but applied up to ${this.lastApplied.get(id)}`);
      const other = this.snapshotData.get(snap.index);
      if (!other) this.snapshotData.set(snap.index, snap.data);
      else if (!sameBytes(other, snap.data)) throw new SafetyViolation('state-machine-safety', `${id}'s state at index ${snap.index} differs from another node's`);
    } else {
      const prev = this.lastApplied.get(id) ?? 0;
      if (snap.index <= prev) throw new SafetyViolation('apply-order', `${id} installed a snapshot at ${snap.index} after applying ${prev}`);
      this.lastApplied.set(id, snap.index);
    }
  }
}
