/**
 * Raft consensus as a pure state machine (the etcd-io/raft `raft.go` + `rawnode.go` design).
 *
 * Inputs: {@link Raft.tick}, {@link Raft.step}, {@link Raft.propose}, {@link Raft.readIndex}.
 * Output: a {@link Ready} drained by {@link Raft.ready} and acknowledged by {@link Raft.advance}.
 * Nothing in here sends, writes, reads a clock or draws an unseeded random number: time is
 * ticks and randomness comes from the seeded {@link RaftConfig.rng}.
 *
 * Driver loop (see `core/kv/embedded-kv.ts`):
 * ```
 * while (raft.hasReady()) {
 *   const rd = raft.ready();
 *   persist(rd.hardState, rd.entries);   // fsync
 *   send(rd.messages);
 *   apply(rd.committedEntries);
 *   raft.advance();
 * }
 * ```
 *
 * References: Ongaro & Ousterhout 2014 ("paper"), Ongaro's 2014 dissertation ("thesis").
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { NotLeaderError, UnavailableError, ValidationError, invariant } from '../common/errors';
import type { Logger } from '../common/logger';
import { silentLogger } from '../common/logger';
import type { Rng } from '../common/rng';
import { applyConfChange, decodeConfEntry, encodeConfEntry, validateConfChange, type ConfChange, type ConfState } from './confchange';
import { RaftLog } from './log';
import type { Entry, HardState, Message, MessageType, NodeId, RaftRole, RaftStatus, Snapshot } from './types';

/** Configuration of one Raft node. */
export interface RaftConfig {
  /** This node's id; must be in `voters` or `learners`. */
  id: NodeId;
  /** Voting members (including this node if it votes). Quorum = floor(n/2) + 1 of these. */
  voters: NodeId[];
  /** Non-voting members: they receive the log but never vote, campaign or count toward quorum (thesis §4.2.1). */
  learners: NodeId[];
  /** Election timeout base, in ticks (default 10). Followers wait a random timeout in [electionTicks, 2·electionTicks) (paper §5.2). */
  electionTicks?: number;
  /** Leader heartbeat interval, in ticks (default 1). Must be < electionTicks. */
  heartbeatTicks?: number;
  /** Seeded randomness for election timeouts (`createRng(seed)`); same seed, same timeouts. */
  rng: Rng;
  /**
   * Preferred leader at startup. For the FIRST election timeout after construction only, a node
   * with `preferred: true` uses exactly `electionTicks`, and every other node draws from
   * [2·electionTicks, 3·electionTicks). So the preferred node usually campaigns first and wins
   * (it can still lose if its log is behind). Later timeouts use the normal range. Non-preferred
   * nodes pay this extra delay even when no node is preferred. Default false.
   */
  preferred?: boolean;
  /** Pre-vote phase before a real election (thesis §9.6), so a rejoining node cannot disrupt a leader. Default true. */
  preVote?: boolean;
  /**
   * Check-quorum (thesis §6.2): a leader that has not heard from a quorum within an election
   * timeout steps down; followers that heard from a leader within the timeout ignore votes (leader lease). Default true.
   */
  checkQuorum?: boolean;
  /**
   * How {@link Raft.readIndex} confirms leadership (etcd `ReadOnlyOption`; thesis §6.4, §6.4.1):
   * - `'safe'` (default): a heartbeat round to a quorum for every read (ReadIndex).
   * - `'lease-based'`: no round while the leader holds a lease: a quorum of voters (itself included)
   *   acknowledged heartbeats it sent less than `electionTicks - 2` ticks ago (one tick for tick
   *   phase, one for clock drift). Such a voter ignores vote requests for `electionTicks` ticks after
   *   hearing from the leader (check-quorum's leader lease), so no other leader can be elected before
   *   the lease ends. No lease before the leader committed an entry of its term, and none for the
   *   rest of a term in which it started a leadership transfer (the TimeoutNow election bypasses
   *   the voters' lease, §3.10). Without a lease the read falls back to the safe round.
   *   A node that starts in this mode ignores vote requests for its first `electionTicks` ticks
   *   (it may have acknowledged a leader's heartbeat before a restart). Relies on bounded clock
   *   drift; set it on every node. Requires `checkQuorum` (ValidationError otherwise).
   */
  readOnly?: 'safe' | 'lease-based';
  /** Maximum entries per AppendEntries message (default 256). */
  maxEntriesPerMessage?: number;
  /** Maximum bytes of entry data per AppendEntries message; a single larger entry is still sent alone (default 1 MiB; etcd `MaxSizePerMsg`). */
  maxBytesPerMessage?: number;
  /**
   * Flow control (etcd `MaxInflightMsgs`): at most this many unacknowledged AppendEntries
   * messages per follower in replicate state (default 256).
   */
  maxInflightMessages?: number;
  /**
   * Entries kept in memory below a snapshot's index by {@link Raft.compact}, so that followers
   * lagging by fewer entries catch up with AppendEntries instead of InstallSnapshot (etcd
   * server's `SnapshotCatchUpEntries`; default 0).
   */
  snapshotCatchUpEntries?: number;
  /**
   * State recovered from stable storage at restart: the last HardState, the latest snapshot
   * (if any) and the log entries after it. With a snapshot the driver restores its state machine
   * from `snapshot.data` itself before starting Raft; `applied` then defaults to snapshot.index.
   * The configuration before the first entry of `entries` is the snapshot's (voters, learners,
   * context), else `confState`, else `voters`/`learners`; the configuration in effect is the
   * latest config entry of the log, else that one (thesis §4.1).
   */
  storage?: { hardState: HardState; entries: Entry[]; snapshot?: Snapshot; confState?: ConfState };
  /** Highest index already applied by the state machine (default 0, or the snapshot index: re-apply committed entries after that). */
  /**
   * Promote a learner only when its match index is within this many entries of the leader's
   * last index (thesis §4.2.1: a new server catches up before it votes). Default 64.
   */
  promoteMaxLag?: number;
  applied?: number;
  logger?: Logger;
}

/** Volatile state reported when it changes. */
export interface SoftState {
  role: RaftRole;
  leaderId: NodeId | null;
}

/** A completed ReadIndex round (thesis §6.4): once `appliedIndex >= index`, reads tagged `context` are linearizable. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/** Everything the driver must do, collected since the last {@link Raft.ready}. */
export interface Ready {
  /** Changed role or leader (for status views); absent if unchanged. */
  softState?: SoftState;
  /** Term/vote/commit to persist; absent if unchanged since last persisted. */
  hardState?: HardState;
  /**
   * A snapshot received from the leader (InstallSnapshot, paper §7): persist it (it replaces the
   * stored snapshot and every stored entry) before `entries`, and restore the state machine from
   * it before applying `committedEntries`. applied and commit jump to snapshot.index.
   */
  snapshot?: Snapshot;
  /** Unstable entries to append to stable storage. An entry with index i replaces any stored entries >= i. */
  entries: Entry[];
  /** Committed, persisted entries to apply, in order. */
  committedEntries: Entry[];
  /** Messages to send now. All state they depend on was persisted by an earlier advance(). */
  messages: Message[];
  /** Completed ReadIndex rounds. */
  readStates: ReadState[];
  /**
   * The configuration in effect, when it changed since the last Ready (a config entry was
   * appended or truncated away). The driver connects to new members here (their address is in
   * `context`); it is already persisted as part of the log, nothing else needs storing.
   */
  confState?: ConfState;
}

/**
 * The leader's view of one follower (etcd `tracker.Progress`). States:
 * - `probe`: the match point is unknown; at most one AppendEntries is in flight (`probeSent`),
 *   re-sent after a heartbeat response, backing `next` off on rejections.
 * - `replicate`: steady state; `next` advances optimistically as messages are sent, and up to
 *   maxInflightMessages unacknowledged messages may be in flight (pipelining).
 * - `snapshot`: an InstallSnapshot at `pendingSnapshot` is in flight; nothing else is sent until
 *   it is acknowledged (or a snapshot timeout of electionTicks sends it again).
 */
interface Progress {
  match: number;
  next: number;
  /** Heard from since the last check-quorum round. */
  recentActive: boolean;
  state: 'probe' | 'replicate' | 'snapshot';
  /** Probe state: an AppendEntries is in flight. */
  probeSent: boolean;
  /** Replicate state: last index of each unacknowledged AppendEntries, oldest first. */
  inflights: number[];
  /** Snapshot state: index of the snapshot being sent. */
  pendingSnapshot: number;
  /** Leader tick at which `match` last advanced, or the current state (snapshot) began. */
  since: number;
  /** Latest leader tick (`leaderTicks`) at which a heartbeat was sent that this follower acknowledged (lease-based reads); -Infinity if none. */
  leaseAck: number;
}

function newProgress(next: number, now: number): Progress {
  return { match: 0, next, recentActive: true, state: 'probe', probeSent: false, inflights: [], pendingSnapshot: 0, since: now, leaseAck: -Infinity };
}

interface PendingRead {
  index: number;
  context: Uint8Array;
  key: string;
  acks: Set<NodeId>;
}

const EMPTY = new Uint8Array(0);
/** `RequestVote.context` of an election started by TimeoutNow (etcd `campaignTransfer`): bypasses the leader lease. */
const TRANSFER_CONTEXT = new TextEncoder().encode('transfer');

function isTransfer(c: Uint8Array): boolean {
  return c.length === TRANSFER_CONTEXT.length && c.every((b, i) => b === TRANSFER_CONTEXT[i]);
}

function ctxKey(c: Uint8Array): string {
  return Array.from(c, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The Raft state machine. Single-threaded; every method is synchronous. */
export class Raft {
  readonly id: NodeId;
  private voters: NodeId[];
  private learners: NodeId[];
  private nodeContext: Record<NodeId, string> = {};
  /**
   * The configuration before the first config entry of the log: the snapshot's (at its index),
   * else storage.confState, else RaftConfig voters/learners. Replaced when a snapshot is made
   * ({@link Raft.compact}) or installed from the leader.
   */
  private baseConf: ConfState;
  /** Index and term of the config entry in effect (0/0: {@link Raft.baseConf}). */
  private confIndex = 0;
  private confTerm = 0;
  private prevConfKey = '';
  private confKeyNow = '';
  private readonly promoteMaxLag: number;
  /** Leadership transfer target while a transfer is in progress (thesis §3.10), else ''. */
  private leadTransferee: NodeId = '';
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly rng: Rng;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly readOnly: 'safe' | 'lease-based';
  /** Lease-based reads: this leader started a leadership transfer in its term, so it holds no lease until it steps down. */
  private leaseRevoked = false;
  /** Lease-based reads: a freshly started node ignores vote requests until `electionTicks` ticks pass (see RaftConfig.readOnly). */
  private startupLease = false;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxInflight: number;
  private readonly catchUpEntries: number;
  /** Ticks seen as leader (the clock of flow-control timeouts). */
  private leaderTicks = 0;
  private readonly log: RaftLog;
  private readonly logger: Logger;

  private term = 0;
  private vote: NodeId = '';
  private lead: NodeId = '';
  private role: RaftRole = 'follower';
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  private prs = new Map<NodeId, Progress>();
  private pendingReads: PendingRead[] = [];
  private readStates: ReadState[] = [];

  /** Messages that may be sent now. */
  private msgs: Message[] = [];
  /** Messages that must wait until the state they depend on is persisted (see {@link Raft.sendAfterPersist}). */
  private msgsAfterPersist: Message[] = [];
  /** Messages handed out with the current Ready's persistence work; released at advance(). */
  private inflightAfterPersist: Message[] = [];
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private inflightReady: { lastIndex: number; lastTerm: number; applied: number; hardState: HardState } | null = null;

  constructor(config: RaftConfig) {
    this.id = config.id;
    const stored = config.storage?.snapshot ? snapshotConf(config.storage.snapshot) : config.storage?.confState;
    this.baseConf = stored
      ? { voters: [...stored.voters], learners: [...stored.learners], context: { ...stored.context } }
      : { voters: [...config.voters], learners: [...config.learners], context: {} };
    this.voters = [...this.baseConf.voters];
    this.learners = [...this.baseConf.learners];
    this.nodeContext = { ...this.baseConf.context };
    if (this.voters.some((v) => this.learners.includes(v))) throw new ValidationError('a node cannot be both voter and learner');
    this.promoteMaxLag = config.promoteMaxLag ?? 64;
    this.electionTicks = config.electionTicks ?? 10;
    this.heartbeatTicks = config.heartbeatTicks ?? 1;
    if (!(this.heartbeatTicks >= 1 && this.electionTicks > this.heartbeatTicks)) throw new ValidationError('need 1 <= heartbeatTicks < electionTicks');
    this.rng = config.rng;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.readOnly = config.readOnly ?? 'safe';
    if (this.readOnly !== 'safe' && this.readOnly !== 'lease-based') throw new ValidationError(`readOnly must be 'safe' or 'lease-based', got ${String(this.readOnly)}`);
    if (this.readOnly === 'lease-based' && !this.checkQuorum) throw new ValidationError("readOnly 'lease-based' requires checkQuorum (etcd requires CheckQuorum for ReadOnlyLeaseBased too)");
    this.maxEntries = config.maxEntriesPerMessage ?? 256;
    this.maxBytes = config.maxBytesPerMessage ?? 1024 * 1024;
    this.maxInflight = config.maxInflightMessages ?? 256;
    this.catchUpEntries = config.snapshotCatchUpEntries ?? 0;
    if (!(this.maxEntries >= 1 && this.maxBytes >= 1 && this.maxInflight >= 1 && this.catchUpEntries >= 0)) {
      throw new ValidationError('need maxEntriesPerMessage, maxBytesPerMessage, maxInflightMessages >= 1 and snapshotCatchUpEntries >= 0');
    }
    this.logger = config.logger ?? silentLogger;
    const hs = config.storage?.hardState ?? { term: 0, vote: '', commit: 0 };
    const snap = config.storage?.snapshot ?? null;
    this.log = new RaftLog(config.storage?.entries ?? [], hs.commit, config.applied ?? snap?.index ?? 0, snap);
    this.loadConfFromLog();
    // A node that was removed (a config entry in its log or its snapshot says so) may restart; a fresh one must be a member.
    if (this.confIndex === 0 && !snap && !this.voters.includes(this.id) && !this.learners.includes(this.id)) throw new ValidationError(`node ${this.id} is neither a voter nor a learner`);
    this.prevConfKey = this.confKeyNow;
    this.term = hs.term;
    this.vote = hs.vote;
    this.prevHardState = { term: hs.term, vote: hs.vote, commit: this.log.committed };
    this.becomeFollower(this.term, '');
    this.startupLease = this.readOnly === 'lease-based';
    this.prevSoftState = this.softState();
    // First election timeout: the "preferred leader" rule (see RaftConfig.preferred).
    const et = this.electionTicks;
    this.randomizedElectionTimeout = config.preferred ? et : this.rng.int(2 * et, 3 * et);
  }

  // ---- Public API -----------------------------------------------------------------------

  /** Advances logical time by one tick: election timeout for followers/candidates, heartbeats and check-quorum for leaders. */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /**
   * Proposes `data` as a new log entry. Returns the entry's index (it may still be lost if
   * leadership changes before it commits). Throws NotLeaderError (with the known leader) when
   * this node is not the leader.
   */
  propose(data: Uint8Array): number {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead || null);
    this.rejectDuringTransfer();
    const index = this.log.lastIndex() + 1;
    this.log.appendNew({ term: this.term, index, type: 'normal', data });
    this.broadcastAppend();
    return index;
  }

  /**
   * Starts a ReadIndex round (thesis §6.4): the leader records its commit index, confirms it is
   * still leader with a heartbeat round to a quorum, then emits a {@link ReadState} with
   * `context`. Reads served once `applied >= index` are linearizable. Rounds started before the
   * leader committed an entry of its term wait for that commit. With `readOnly: 'lease-based'` a
   * leader holding a valid lease ({@link Raft.hasLease}) emits the ReadState at once, without a
   * round (thesis §6.4.1). Throws NotLeaderError when not leader.
   */
  readIndex(context: Uint8Array): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead || null);
    if (this.hasLease()) {
      this.readStates.push({ index: this.log.committed, context });
      return;
    }
    const read: PendingRead = { index: this.log.committed, context, key: ctxKey(context), acks: new Set([this.id]) };
    this.pendingReads.push(read);
    if (this.committedInTerm()) this.startReadRound(read);
  }

  /**
   * Log compaction (thesis §5.1, paper §7): the application reports that its state after
   * applying index `index` is `data`, already on stable storage. The core keeps that
   * {@link Snapshot} (index, term, the configuration at `index`: voters, learners, context; data) to send to followers that
   * need compacted entries, and drops entries <= index - snapshotCatchUpEntries from memory.
   * The driver may then drop stored entries <= index. `index` must have been handed out for apply
   * (it may be called between applying a Ready's committedEntries and advance()) and persisted;
   * an index at or below the current snapshot is ignored. Throws ValidationError otherwise.
   * Returns the snapshot kept, or null when ignored.
   */
  compact(index: number, data: Uint8Array): Snapshot | null {
    const applied = Math.max(this.log.applied, this.inflightReady?.applied ?? 0);
    if (!Number.isInteger(index) || index < 0) throw new ValidationError(`compact index must be a non-negative integer, got ${index}`);
    if (index > applied || index > this.log.stable) {
      throw new ValidationError(`cannot compact at ${index}: applied ${applied}, persisted ${this.log.stable}`, { detail: { index, applied, stable: this.log.stable } });
    }
    if (index <= (this.log.snapshot?.index ?? 0) || index < this.log.firstIndex()) return null;
    // The snapshot carries the configuration AT `index` (committed), not the latest one of the
    // log: an uncommitted config entry after `index` may still be truncated away.
    const conf = this.confAt(index);
    const snap: Snapshot = { index, term: this.log.term(index)!, voters: [...conf.voters], learners: [...conf.learners], context: { ...conf.context }, data };
    this.log.compact(snap, this.catchUpEntries);
    this.baseConf = conf;
    return snap;
  }

  /** The latest snapshot (made by {@link Raft.compact} or installed from the leader), or null. */
  snapshot(): Snapshot | null {
    return this.log.snapshot;
  }

  /** Index of the first log entry held in memory (entries before it are compacted into the snapshot). */
  firstIndex(): number {
    return this.log.firstIndex();
  }

  /**
   * Proposes a single-server membership change (thesis §4.1) and returns its log index. The new
   * configuration takes effect on every server as soon as the entry is in its log (committed
   * or not); a leader that removes itself keeps leading until the entry commits, then steps
   * down (thesis §4.2.2). Errors:
   * - NotLeaderError: not the leader;
   * - UnavailableError (retryable): a previous change is not committed yet, the leader has not
   *   committed an entry of its term yet (the fix of the single-server bug, Ongaro raft-dev
   *   2015), a leadership transfer is in progress, or a learner to promote has not caught up
   *   (its match index is more than `promoteMaxLag` entries behind);
   * - ValidationError: a change that makes no sense (see {@link applyConfChange}).
   */
  proposeConfChange(input: ConfChange): number {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead || null);
    this.rejectDuringTransfer();
    // Only the validated fields go into the log (the change may come from a peer or a console).
    const change = validateConfChange(input);
    const next = applyConfChange(this.confState(), change);
    if (this.confIndex > this.log.committed) throw new UnavailableError(`configuration change at index ${this.confIndex} is not committed yet; one change at a time`);
    if (!this.committedInTerm()) throw new UnavailableError('the leader has not committed an entry of its term yet; retry shortly');
    if (change.type === 'promote') {
      const match = this.prs.get(change.node)?.match ?? 0;
      const lag = this.log.lastIndex() - match;
      if (match === 0 || lag > this.promoteMaxLag) {
        throw new UnavailableError(`learner ${change.node} has not caught up (match index ${match}, leader's last index ${this.log.lastIndex()}, at most ${this.promoteMaxLag} behind allowed)`, {
          detail: { node: change.node, match, lastIndex: this.log.lastIndex() },
        });
      }
    }
    const index = this.log.lastIndex() + 1;
    this.log.appendNew({ term: this.term, index, type: 'config', data: encodeConfEntry({ change, state: next }) });
    this.logger.info({ id: this.id, term: this.term, index, change }, 'proposed configuration change');
    this.setConf(next, index, this.term);
    if (this.role === 'leader') this.broadcastAppend();
    return index;
  }

  /**
   * Starts a leadership transfer to voter `to` (thesis §3.10, etcd `MsgTransferLeader`): the
   * leader stops accepting proposals, brings `to`'s log up to date, then sends it TimeoutNow;
   * `to` campaigns at once with a vote request that bypasses the leader lease. The transfer is
   * aborted (proposals accepted again) after an election timeout without success, or if `to`
   * leaves the configuration. Transferring to itself or to the current transferee is a no-op.
   * Throws NotLeaderError when not leader, ValidationError when `to` is not a voter.
   */
  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead || null);
    if (to === this.id) {
      this.abortTransfer('transfer to the leader itself');
      return;
    }
    if (!this.voters.includes(to)) throw new ValidationError(this.learners.includes(to) ? `node ${to} is a learner; promote it before transferring leadership to it` : `node ${to} is not a member`);
    if (this.leadTransferee === to) return;
    this.abortTransfer(`new transfer to ${to}`);
    this.leadTransferee = to;
    // The transferee's election bypasses the voters' lease, possibly after this transfer timed
    // out here: no lease-based read for the rest of this term.
    this.leaseRevoked = true;
    this.electionElapsed = 0;
    this.logger.info({ id: this.id, term: this.term, to }, 'leadership transfer started');
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'TimeoutNow', to });
    else this.sendAppend(to);
  }

  /** The configuration in effect (the latest in the log, committed or not). */
  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners], context: { ...this.nodeContext } };
  }

  /**
   * True when this node may serve a read without a heartbeat round (thesis §6.4.1): it is the
   * leader, `readOnly` is `'lease-based'`, it committed an entry of its term, started no
   * leadership transfer in this term, and a quorum of voters (itself included if it votes)
   * acknowledged a heartbeat sent less than `electionTicks - 2` ticks ago.
   */
  hasLease(): boolean {
    if (this.readOnly !== 'lease-based' || this.role !== 'leader' || this.leaseRevoked || !this.committedInTerm()) return false;
    const acks = this.voters.map((v) => (v === this.id ? this.leaderTicks : (this.prs.get(v)?.leaseAck ?? -Infinity))).sort((a, b) => b - a);
    const start = acks[this.quorum() - 1] ?? -Infinity;
    return this.leaderTicks < start + this.electionTicks - 2;
  }

  /** Target of the leadership transfer in progress, or null. */
  transferee(): NodeId | null {
    return this.leadTransferee || null;
  }

  /** Processes one message from a peer (paper Fig. 2 "Rules for Servers"; thesis §9.6 for pre-vote). */
  step(m: Message): void {
    if (m.to !== this.id) return;
    // Servers outside our configuration: thesis §4.1 has servers answer RPCs without consulting
    // their configuration (a sender may be in a newer one we have not received yet), §4.2.3 wants
    // removed servers not to disrupt. So: a leader's AppendEntries/Heartbeat is always processed
    // (and InstallSnapshot; following a leader of a term >= ours is safe; an added or re-added server must hear from
    // a leader it does not know yet); a vote request only when the candidate's log is at least as
    // up to date as ours (then it may know a configuration that includes it; a removed server that
    // missed its removal has an older log and would only bump our term); anything else is ignored.
    // A leader also hears from a server it removed until the removal commits (see setConf).
    const tracked = this.role === 'leader' && this.prs.has(m.from);
    if (!this.isMember(m.from) && !tracked && m.type !== 'AppendEntries' && m.type !== 'Heartbeat' && m.type !== 'InstallSnapshot') {
      const vote = m.type === 'PreVote' || m.type === 'RequestVote';
      // Without a leader, a stale non-member's newer term is still taken (its vote refused, our
      // election timeout kept: see below): otherwise a server that ignores it stays terms behind
      // the stale servers that vote for it and never wins their votes (simulator seed 3497).
      const adoptTerm = m.type === 'RequestVote' && m.term > this.term && this.role !== 'leader' && this.lead === '';
      if (!vote || (!this.log.isUpToDate(m.index, m.logTerm) && !adoptTerm)) return;
    }
    if (m.term > this.term) {
      if (m.type === 'PreVote' || m.type === 'RequestVote') {
        // Leader lease (thesis §4.2.3): while we hear from a live leader, ignore disruptive campaigns,
        // except the election a leader asked for with TimeoutNow (thesis §3.10, etcd campaignTransfer).
        const inLease = this.checkQuorum && (this.lead !== '' || this.startupLease) && this.electionElapsed < this.electionTicks && !isTransfer(m.context);
        if (inLease) return;
      }
      if (m.type === 'PreVote') {
        // Pre-votes never change our term.
      } else if (m.type === 'PreVoteResponse' && !m.reject) {
        // A granted pre-vote carries the term we will campaign with; not a newer leader.
      } else {
        const leader = m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot' ? m.from : '';
        // Paper Fig. 2: a follower's election timeout restarts on AppendEntries from the current
        // leader or on granting a vote, not on a newer term. A RequestVote from a candidate whose
        // log is behind ours (we will refuse it) moves our term on but keeps our timeout running,
        // so stale candidates (a removed server, a lagging one) cannot keep the up-to-date servers
        // from campaigning (found by the simulator with pre-vote off: seed 3497).
        const keepTimer = m.type === 'RequestVote' && this.role !== 'leader' && !this.log.isUpToDate(m.index, m.logTerm);
        const elapsed = this.electionElapsed;
        const timeout = this.randomizedElectionTimeout;
        this.becomeFollower(m.term, leader);
        if (keepTimer) {
          this.electionElapsed = elapsed;
          this.randomizedElectionTimeout = timeout;
        }
      }
    } else if (m.term < this.term) {
      if (m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot') {
        // Tell a stale leader about the newer term so it steps down (needed with check-quorum/pre-vote, which suppress its disruption).
        this.send({ type: 'AppendEntriesResponse', to: m.from, term: this.term, reject: true, index: 0, rejectHint: 0, logTerm: 0 });
      } else if (m.type === 'PreVote') {
        this.send({ type: 'PreVoteResponse', to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'PreVote' || m.type === 'RequestVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      default:
        this.stepFollower(m);
    }
  }

  /** True when {@link Raft.ready} would return something to do. */
  hasReady(): boolean {
    if (this.inflightReady) return false;
    const ss = this.softState();
    return (
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.log.pendingSnapshot !== null ||
      this.log.unstable().length > 0 ||
      this.log.nextCommitted().length > 0 ||
      this.readStates.length > 0 ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      this.confKeyNow !== this.prevConfKey ||
      ss.role !== this.prevSoftState.role ||
      ss.leaderId !== this.prevSoftState.leaderId
    );
  }

  /**
   * Collects the pending work. The driver must persist `hardState` and `entries` (durably),
   * send `messages`, apply `committedEntries`, then call {@link Raft.advance} before the next
   * ready(). Calling ready() twice without advance() is a bug (InvariantError).
   */
  ready(): Ready {
    invariant(this.inflightReady === null, 'ready() called twice without advance()');
    const hs = this.hardState();
    const ss = this.softState();
    const entries = this.log.unstable();
    const committedEntries = this.log.nextCommitted();
    const rd: Ready = { entries, committedEntries, messages: this.msgs, readStates: this.readStates };
    if (this.log.pendingSnapshot) {
      rd.snapshot = this.log.pendingSnapshot;
      this.log.pendingSnapshot = null;
    }
    if (!sameHardState(hs, this.prevHardState)) rd.hardState = hs;
    if (this.confKeyNow !== this.prevConfKey) {
      rd.confState = this.confState();
      this.prevConfKey = this.confKeyNow;
    }
    if (ss.role !== this.prevSoftState.role || ss.leaderId !== this.prevSoftState.leaderId) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    this.msgs = [];
    this.readStates = [];
    this.inflightAfterPersist = this.msgsAfterPersist;
    this.msgsAfterPersist = [];
    const last = entries[entries.length - 1];
    this.inflightReady = {
      lastIndex: last ? last.index : this.log.stable,
      lastTerm: last ? last.term : (this.log.term(this.log.stable) ?? 0),
      applied: committedEntries[committedEntries.length - 1]?.index ?? this.log.applied,
      hardState: hs,
    };
    return rd;
  }

  /**
   * Acknowledges the last {@link Ready}: its hardState and entries are durable and its committed
   * entries applied. Releases the messages that were waiting for that persistence.
   */
  advance(): void {
    const inflight = this.inflightReady;
    invariant(inflight !== null, 'advance() without ready()');
    this.inflightReady = null;
    this.prevHardState = inflight.hardState;
    if (this.log.term(inflight.lastIndex) === inflight.lastTerm && inflight.lastIndex > this.log.stable) this.log.stable = inflight.lastIndex;
    this.log.applied = Math.max(this.log.applied, inflight.applied);
    // Paper Fig. 2 / §5.4 and thesis §3.8: a server must persist currentTerm, votedFor and new
    // log entries before responding to RPCs (a vote or an AppendEntries success), otherwise a
    // crash could make it vote twice in a term or forget entries it acknowledged. These
    // responses were queued by sendAfterPersist() and are released only now.
    this.msgs.push(...this.inflightAfterPersist);
    this.inflightAfterPersist = [];
    if (this.role === 'leader') {
      // The leader counts its own entries toward commit only once they are durable (thesis §10.2.1).
      const self = this.prs.get(this.id);
      if (self && this.log.stable > self.match) {
        self.match = this.log.stable;
        self.next = self.match + 1;
        this.maybeCommit();
      }
    }
  }

  /** Current status for views and metrics. */
  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leaderId: this.lead || null,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex(),
      voters: [...this.voters],
      learners: [...this.learners],
      confCommitted: this.log.committed >= this.confIndex,
    };
  }

  /** True if `id` is a voter or learner of the configuration in effect. */
  private isMember(id: NodeId): boolean {
    return this.voters.includes(id) || this.learners.includes(id);
  }

  /** True if this node is a learner (never campaigns or votes). */
  isLearner(): boolean {
    return this.learners.includes(this.id);
  }

  // ---- Roles --------------------------------------------------------------------------

  private softState(): SoftState {
    return { role: this.role, leaderId: this.lead || null };
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = '';
    }
    this.lead = '';
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.rng.int(this.electionTicks, 2 * this.electionTicks);
    this.votes.clear();
    this.pendingReads = [];
    this.leadTransferee = '';
    this.leaseRevoked = false;
    this.startupLease = false;
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = this.isLearner() ? 'learner' : 'follower';
  }

  private becomePreCandidate(): void {
    // Thesis §9.6: neither term nor vote changes during pre-vote.
    this.votes.clear();
    this.lead = '';
    this.electionElapsed = 0;
    this.startupLease = false;
    this.randomizedElectionTimeout = this.rng.int(this.electionTicks, 2 * this.electionTicks);
    this.role = 'pre-candidate';
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.prs.clear();
    const last = this.log.lastIndex();
    this.leaderTicks = 0;
    for (const p of [...this.voters, ...this.learners]) this.trackPeer(p);
    const self = this.prs.get(this.id)!;
    self.match = this.log.stable;
    // Paper §8 / thesis §6.4: a no-op entry of the new term lets the leader commit (and learn the commit index).
    this.log.appendNew({ term: this.term, index: last + 1, type: 'normal', data: EMPTY });
    this.broadcastAppend();
    this.logger.info({ id: this.id, term: this.term }, 'became leader');
  }

  private campaign(pre: boolean, transfer = false): void {
    if (this.isLearner() || !this.voters.includes(this.id)) return;
    let term: number;
    let type: MessageType;
    if (pre) {
      this.becomePreCandidate();
      term = this.term + 1;
      type = 'PreVote';
    } else {
      this.becomeCandidate();
      term = this.term;
      type = 'RequestVote';
    }
    if (this.poll(this.id, true) === 'won') {
      if (pre) this.campaign(false);
      else this.becomeLeader();
      return;
    }
    for (const v of this.voters) {
      if (v === this.id) continue;
      const m = { type, to: v, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), ...(transfer ? { context: TRANSFER_CONTEXT } : {}) };
      // A real RequestVote announces a term and self-vote that must be durable first; pre-votes change nothing.
      if (pre) this.send(m);
      else this.sendAfterPersist(m);
    }
  }

  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters) {
      const g = this.votes.get(v);
      if (g === true) yes++;
      else if (g === false) no++;
    }
    const q = this.quorum();
    return yes >= q ? 'won' : no > this.voters.length - q ? 'lost' : 'pending';
  }

  private quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  // ---- Ticks --------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) this.startupLease = false;
    if (this.isLearner() || !this.voters.includes(this.id)) return;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.preVote);
    }
  }

  private tickLeader(): void {
    this.leaderTicks++;
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      // Thesis §3.10: a transfer that did not complete within an election timeout is aborted.
      this.abortTransfer('timed out');
      if (this.checkQuorum) {
        let active = 0;
        for (const v of this.voters) if (v === this.id || this.prs.get(v)?.recentActive) active++;
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
        if (active < this.quorum()) {
          this.logger.info({ id: this.id, term: this.term }, 'check-quorum failed; stepping down');
          this.becomeFollower(this.term, '');
          return;
        }
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(EMPTY);
    }
  }

  // ---- Message handling ---------------------------------------------------------------

  private handleVoteRequest(m: Message): void {
    const pre = m.type === 'PreVote';
    const respType: MessageType = pre ? 'PreVoteResponse' : 'RequestVoteResponse';
    const canVote = this.vote === m.from || (this.vote === '' && this.lead === '') || (pre && m.term > this.term);
    // A learner votes when asked (as in etcd): it may have been promoted by an entry it has not
    // received yet; a candidate only counts the votes of the voters in its own configuration.
    const grant = canVote && this.log.isUpToDate(m.index, m.logTerm);
    if (grant) {
      if (pre) {
        this.send({ type: respType, to: m.from, term: m.term, reject: false });
      } else {
        this.electionElapsed = 0;
        this.vote = m.from;
        this.sendAfterPersist({ type: respType, to: m.from, term: this.term, reject: false });
      }
    } else {
      const resp = { type: respType, to: m.from, term: this.term, reject: true };
      if (pre) this.send(resp);
      else this.sendAfterPersist(resp);
      // A server without a leader that already voted in this term (for itself, as a candidate or a
      // candidate that lost) and is asked by a server whose log is strictly more up to date (paper
      // §5.4.1) restarts its election timeout as a follower; its vote stays cast. Safety does not
      // depend on timers; liveness does: a server whose stale configuration lists the asker as a
      // learner never sends it RequestVote, so neither resets the other's timer, both time out at
      // the same rate, and the one that cannot win (older log) stays a term ahead forever (found by
      // the simulator with pre-vote off: seeds 3497 and 6573).
      const newerLog = m.logTerm > this.log.lastTerm() || (m.logTerm === this.log.lastTerm() && m.index > this.log.lastIndex());
      if (!pre && this.role !== 'leader' && this.lead === '' && m.term === this.term && this.vote !== '' && newerLog) {
        this.logger.debug({ id: this.id, term: this.term, from: m.from }, 'asked by a server with a more up-to-date log; restarting the election timeout');
        this.becomeFollower(this.term, '');
      }
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case 'AppendEntriesResponse': {
        pr.recentActive = true;
        if (m.reject) {
          // Stale rejection: in probe state it must answer the probe in flight (prev = next - 1);
          // in replicate state anything at or below match is old news; snapshot state waits.
          if (pr.state === 'snapshot' || m.index <= pr.match) return;
          if (pr.state === 'probe' && m.index !== pr.next - 1) return;
          // Fast backtracking (etcd `findConflictByTerm`, paper §5.3 optimisation): the follower
          // hints (rejectHint, logTerm) = its last index whose term <= our prevLogTerm.
          let probe = m.rejectHint;
          if (m.logTerm > 0) probe = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
          this.becomeProbe(pr, Math.max(Math.min(m.index, probe + 1), pr.match + 1));
          this.sendAppend(m.from);
        } else {
          freeInflights(pr, m.index);
          if (m.index > pr.match) {
            pr.match = m.index;
            pr.since = this.leaderTicks;
            pr.next = Math.max(pr.next, m.index + 1);
            // etcd: a probe that succeeded, or a snapshot that was installed, moves to replicate.
            if (pr.state === 'probe' || (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot)) this.becomeReplicate(pr);
            if (this.maybeCommit()) this.broadcastAppend(true);
            else if (this.role === 'leader') this.sendAppend(m.from);
            // Thesis §3.10: once the transferee's log matches ours, tell it to campaign now.
            if (this.role === 'leader' && m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.send({ type: 'TimeoutNow', to: m.from });
          } else if (pr.state === 'probe') {
            // Answer to a probe below our match point (e.g. at the follower's commit index): probe on.
            pr.probeSent = false;
            this.sendAppend(m.from);
          }
        }
        break;
      }
      case 'HeartbeatResponse': {
        pr.recentActive = true;
        // A send tick from the future (a buggy or hostile peer) must not extend the lease.
        if (m.index <= this.leaderTicks && m.index > pr.leaseAck) pr.leaseAck = m.index;
        this.onHeartbeatResponse(pr);
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context.length > 0 && this.voters.includes(m.from)) {
          const key = ctxKey(m.context);
          const read = this.pendingReads.find((r) => r.key === key);
          if (read) {
            read.acks.add(m.from);
            if (this.voterAcks(read.acks) >= this.quorum()) {
              this.pendingReads = this.pendingReads.filter((r) => r !== read);
              this.readStates.push({ index: read.index, context: read.context });
            }
          }
        }
        break;
      }
      default:
        break;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'AppendEntries':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case 'InstallSnapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case 'Heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case 'PreVoteResponse':
      case 'RequestVoteResponse': {
        const expected = this.role === 'pre-candidate' ? 'PreVoteResponse' : 'RequestVoteResponse';
        if (m.type !== expected) return;
        const r = this.poll(m.from, !m.reject);
        if (r === 'won') {
          if (this.role === 'pre-candidate') this.campaign(false);
          else this.becomeLeader();
        } else if (r === 'lost') {
          this.becomeFollower(this.term, '');
        }
        break;
      }
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'AppendEntries':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case 'InstallSnapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case 'Heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case 'TimeoutNow':
        // Thesis §3.10: the leader handed over; campaign at once, skipping pre-vote (we know a leader asked).
        if (this.voters.includes(this.id)) {
          this.logger.info({ id: this.id, term: this.term, from: m.from }, 'TimeoutNow: campaigning for leadership transfer');
          this.campaign(false, true);
        }
        break;
      default:
        break;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.sendAfterPersist({ type: 'AppendEntriesResponse', to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      this.log.appendFromLeader(m.entries);
      // A new config entry, or truncation of the one in effect, changes the configuration (thesis §4.1).
      // Only uncommitted entries can be truncated (a compacted config entry is committed).
      if (m.entries.some((e) => e.type === 'config') || (this.confIndex > this.log.committed && this.log.term(this.confIndex) !== this.confTerm)) this.loadConfFromLog();
      const lastNew = m.index + m.entries.length;
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.sendAfterPersist({ type: 'AppendEntriesResponse', to: m.from, index: lastNew });
    } else {
      const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
      this.send({ type: 'AppendEntriesResponse', to: m.from, index: m.index, reject: true, rejectHint: hint, logTerm: this.log.term(hint) ?? 0 });
    }
  }

  /**
   * InstallSnapshot receiver (paper §7, Fig. 13; etcd `handleSnapshot`/`restore`). A snapshot at
   * or below our commit index is old news; one whose (index, term) our log already holds only
   * fast-forwards the commit index (rule 6: keep the entries that follow); otherwise the log is
   * discarded and replaced by the snapshot, which the next Ready hands to the driver. The
   * acknowledgement (an AppendEntriesResponse at the snapshot index) waits for persistence.
   */
  private handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    if (!snap || snap.index !== m.index || snap.term !== m.logTerm || snap.index < 1) {
      this.logger.warn({ id: this.id, from: m.from, index: m.index }, 'ignoring malformed InstallSnapshot');
      return;
    }
    if (snap.index <= this.log.committed) {
      this.sendAfterPersist({ type: 'AppendEntriesResponse', to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(snap.index, snap.term)) {
      this.log.commitTo(snap.index);
      this.sendAfterPersist({ type: 'AppendEntriesResponse', to: m.from, index: snap.index });
      return;
    }
    this.logger.info({ id: this.id, from: m.from, index: snap.index, term: snap.term }, 'restoring snapshot from leader');
    this.log.restore(snap);
    // The log is gone: the snapshot's configuration (voters, learners, addresses) is in effect.
    this.baseConf = snapshotConf(snap);
    this.loadConfFromLog();
    this.sendAfterPersist({ type: 'AppendEntriesResponse', to: m.from, index: snap.index });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'HeartbeatResponse', to: m.from, context: m.context, index: m.index });
  }

  // ---- Configuration (thesis §4.1) and leadership transfer (thesis §3.10) ---------------

  /** Starts tracking replication progress of `id` (leader only). The one place that creates a `prs` entry. */
  private trackPeer(id: NodeId): void {
    this.prs.set(id, newProgress(this.log.lastIndex() + 1, this.leaderTicks));
  }

  /** Stops tracking `id` (leader only). The one place that deletes a `prs` entry. */
  private untrackPeer(id: NodeId): void {
    this.prs.delete(id);
  }

  /**
   * Stops replicating to servers outside the configuration once the configuration that removed
   * them is committed. Until then they still receive the log, so a removed server normally
   * learns of its removal (as in etcd, where a removal takes effect when applied).
   */
  private untrackRemoved(): void {
    if (this.log.committed < this.confIndex) return;
    for (const id of [...this.prs.keys()]) if (id !== this.id && !this.isMember(id)) this.untrackPeer(id);
  }

  /** Re-derives the configuration from the latest config entry in the log, else the base configuration. */
  private loadConfFromLog(): void {
    const e = this.latestConfEntry(this.log.lastIndex());
    if (e) this.setConf(decodeConfEntry(e.data).state, e.index, e.term);
    else this.setConf(this.baseConf, 0, 0);
  }

  /** The latest config entry at or below `index` still in the log (entries below firstIndex are compacted), or undefined. */
  private latestConfEntry(index: number): Entry | undefined {
    for (let i = index; i >= this.log.firstIndex(); i--) {
      const e = this.log.slice(i, i)[0];
      if (e?.type === 'config') return e;
    }
    return undefined;
  }

  /** The configuration in effect at log index `index` (for a snapshot at `index`). */
  private confAt(index: number): ConfState {
    const e = this.latestConfEntry(index);
    const c = e ? decodeConfEntry(e.data).state : this.baseConf;
    return { voters: [...c.voters], learners: [...c.learners], context: { ...c.context } };
  }

  /** Makes `state` (from the config entry at `index`/`term`, or the base at 0) the configuration in effect. */
  private setConf(state: ConfState, index: number, term: number): void {
    this.voters = [...state.voters];
    this.learners = [...state.learners];
    this.nodeContext = { ...state.context };
    this.confIndex = index;
    this.confTerm = term;
    this.confKeyNow = confKey(state);
    if (this.role === 'leader') {
      for (const id of [...this.voters, ...this.learners]) if (!this.prs.has(id)) this.trackPeer(id);
      this.untrackRemoved();
      if (this.leadTransferee && !this.voters.includes(this.leadTransferee)) this.abortTransfer('transferee left the configuration');
      // A smaller quorum may already hold more entries (thesis §4.1: the new configuration counts at once).
      if (this.maybeCommit()) this.broadcastAppend(true);
    } else if (this.role === 'follower' || this.role === 'learner') {
      this.role = this.isLearner() ? 'learner' : 'follower';
    } else if (!this.voters.includes(this.id)) {
      this.becomeFollower(this.term, '');
    }
  }

  private abortTransfer(reason: string): void {
    if (!this.leadTransferee) return;
    this.logger.info({ id: this.id, term: this.term, to: this.leadTransferee, reason }, 'leadership transfer aborted');
    this.leadTransferee = '';
  }

  private rejectDuringTransfer(): void {
    if (this.leadTransferee) {
      throw new UnavailableError(`leadership transfer to ${this.leadTransferee} in progress; retry shortly`, { detail: { transferee: this.leadTransferee } });
    }
  }

  /** ReadIndex acknowledgements that count: voters only (a leader removing itself does not count itself). */
  private voterAcks(acks: Set<NodeId>): number {
    let n = 0;
    for (const a of acks) if (this.voters.includes(a)) n++;
    return n;
  }

  // ---- Replication --------------------------------------------------------------------

  /** Commit rule (paper §5.3, §5.4.2): the highest index stored on a quorum of voters, only if its entry is from the current term. */
  private maybeCommit(): boolean {
    const matches = this.voters.map((v) => this.prs.get(v)?.match ?? 0).sort((a, b) => b - a);
    const n = matches[this.quorum() - 1] ?? 0;
    if (n > this.log.committed && this.log.term(n) === this.term) {
      const firstInTerm = !this.committedInTerm();
      this.log.commitTo(n);
      if (firstInTerm) for (const r of this.pendingReads) this.startReadRound(r);
      if (this.log.committed >= this.confIndex && [...this.prs.keys()].some((id) => id !== this.id && !this.isMember(id))) {
        this.broadcastAppend(true); // the removed servers hear of the commit once more
        this.untrackRemoved();
      }
      if (!this.voters.includes(this.id) && this.log.committed >= this.confIndex) {
        // Thesis §4.2.2: a leader removed from the configuration steps down once the removal
        // commits; it first tells the others the new commit index.
        this.broadcastAppend(true);
        this.logger.info({ id: this.id, term: this.term, index: this.confIndex }, 'removed from the configuration; stepping down');
        this.becomeFollower(this.term, '');
        return false;
      }
      return true;
    }
    return false;
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private startReadRound(read: PendingRead): void {
    read.index = Math.max(read.index, this.log.committed);
    if (this.voterAcks(read.acks) >= this.quorum()) {
      this.pendingReads = this.pendingReads.filter((r) => r !== read);
      this.readStates.push({ index: read.index, context: read.context });
      return;
    }
    this.broadcastHeartbeat(read.context);
  }

  /** Sends new entries to every follower; `sendIfEmpty` also sends an empty append (to spread a new commit index). */
  private broadcastAppend(sendIfEmpty = false): void {
    for (const p of this.prs.keys()) if (p !== this.id) this.sendAppend(p, sendIfEmpty);
  }

  private broadcastHeartbeat(context: Uint8Array): void {
    for (const [p, pr] of this.prs) {
      if (p === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold (etcd does the same).
      // `index` carries the send tick, echoed back: the start of a lease-based read lease.
      this.send({ type: 'Heartbeat', to: p, commit: Math.min(pr.match, this.log.committed), context, index: this.leaderTicks });
    }
  }

  // ---- Flow control (etcd `tracker.Progress`) -------------------------------------------

  private becomeProbe(pr: Progress, next: number): void {
    pr.state = 'probe';
    pr.next = next;
    pr.probeSent = false;
    pr.inflights = [];
    pr.since = this.leaderTicks;
  }

  private becomeReplicate(pr: Progress): void {
    pr.state = 'replicate';
    pr.next = pr.match + 1;
    pr.probeSent = false;
    pr.inflights = [];
  }

  /**
   * A heartbeat response proves the follower is reachable. Probe: allow the next probe (one per
   * heartbeat round). Replicate: if match has not advanced for max(2 heartbeats, electionTicks/2)
   * ticks while entries are outstanding, an AppendEntries or its acknowledgement was lost: fall
   * back to probe from match + 1 (bounded resend); otherwise a full window frees its oldest slot
   * (etcd `FreeFirstOne`). Snapshot: re-send after electionTicks.
   */
  private onHeartbeatResponse(pr: Progress): void {
    const stalled = this.leaderTicks - pr.since >= Math.max(2 * this.heartbeatTicks, Math.ceil(this.electionTicks / 2));
    if (pr.state === 'probe') pr.probeSent = false;
    else if (pr.state === 'replicate') {
      if (pr.match < this.log.lastIndex() && stalled) this.becomeProbe(pr, pr.match + 1);
      // etcd: a live follower with a full window gets room for one more message per heartbeat.
      else if (pr.inflights.length >= this.maxInflight) pr.inflights.shift();
    } else if (this.leaderTicks - pr.since >= this.electionTicks) {
      this.becomeProbe(pr, pr.match + 1);
    }
  }

  /**
   * Sends what flow control allows to `to` (etcd `maybeSendAppend`): nothing while a probe or a
   * snapshot is in flight or the in-flight window is full; an InstallSnapshot when `next` is
   * compacted away; otherwise AppendEntries of at most maxEntriesPerMessage entries and
   * maxBytesPerMessage bytes, repeated (pipelined) in replicate state until caught up or the
   * window is full. `sendIfEmpty` sends one empty append when there is nothing new (commit news).
   */
  private sendAppend(to: NodeId, sendIfEmpty = false): void {
    const pr = this.prs.get(to)!;
    for (;;) {
      if (pr.state === 'snapshot' || (pr.state === 'probe' && pr.probeSent) || pr.inflights.length >= this.maxInflight) return;
      const prev = pr.next - 1;
      const prevTerm = this.log.term(prev);
      if (prevTerm === undefined) {
        this.sendSnapshot(to, pr);
        return;
      }
      const entries = pr.next <= this.log.lastIndex() ? this.log.slice(pr.next, this.log.lastIndex(), this.maxEntries, this.maxBytes) : [];
      if (entries.length === 0 && !sendIfEmpty && pr.state === 'replicate') return;
      this.send({ type: 'AppendEntries', to, index: prev, logTerm: prevTerm, entries, commit: this.log.committed });
      if (pr.state === 'probe') {
        pr.probeSent = true;
        return;
      }
      if (entries.length === 0) return;
      // The stall clock runs from the oldest unacknowledged message (or the last match advance).
      if (pr.inflights.length === 0) pr.since = this.leaderTicks;
      pr.next = entries[entries.length - 1]!.index + 1;
      pr.inflights.push(pr.next - 1);
      sendIfEmpty = false;
    }
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot;
    invariant(snap !== null, `entry ${pr.next - 1} is compacted but there is no snapshot`);
    this.logger.info({ id: this.id, to, index: snap.index, term: snap.term }, 'sending snapshot');
    this.send({ type: 'InstallSnapshot', to, index: snap.index, logTerm: snap.term, snapshot: snap, commit: this.log.committed });
    pr.state = 'snapshot';
    pr.pendingSnapshot = snap.index;
    pr.inflights = [];
    pr.probeSent = false;
    pr.since = this.leaderTicks;
  }

  private msg(m: Partial<Message> & { type: MessageType; to: NodeId }): Message {
    return {
      from: this.id,
      term: this.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      context: EMPTY,
      ...m,
    };
  }

  private send(m: Partial<Message> & { type: MessageType; to: NodeId }): void {
    this.msgs.push(this.msg(m));
  }

  /**
   * Queues a message that depends on state not yet on stable storage (a vote, an append
   * acknowledgement, a candidate's vote request). It is released by the advance() that
   * acknowledges the persistence of that state; see the comment in {@link Raft.advance}.
   */
  private sendAfterPersist(m: Partial<Message> & { type: MessageType; to: NodeId }): void {
    this.msgsAfterPersist.push(this.msg(m));
  }
}

function freeInflights(pr: Progress, index: number): void {
  let k = 0;
  while (k < pr.inflights.length && pr.inflights[k]! <= index) k++;
  if (k > 0) pr.inflights.splice(0, k);
}

/** The configuration a snapshot carries (a snapshot without `context`, written before it existed, has none). */
function snapshotConf(s: Snapshot): ConfState {
  return { voters: [...s.voters], learners: [...s.learners], context: { ...(s.context ?? {}) } };
}

function confKey(c: ConfState): string {
  return JSON.stringify([c.voters, c.learners, Object.entries(c.context).sort()]);
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
