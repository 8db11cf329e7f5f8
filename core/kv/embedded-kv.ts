/**
 * `EmbeddedKv`: the Raft-replicated {@link ReplicatedKV} (the etcd `node.go` + `etcdserver` role).
 *
 * It owns everything with side effects around the pure core: the tick timer, the WAL in
 * `dataDir`, the transport, the apply loop, client requests and watches.
 *
 * - Ready loop ({@link EmbeddedKv.drive}, {@link EmbeddedKv.handleReady}): send, apply, persist
 *   (one write + fsync per Ready; with entries, in the next check phase so the messages and client
 *   replies are on the wire first), advance. Ready.messages may go out before the fsync: Raft holds
 *   back every message that depends on unpersisted state (votes, append acknowledgements) until
 *   advance(); a leader's AppendEntries may precede its own fsync (thesis §10.2.1), and its own
 *   entries count toward commit only once durable. With `asyncPersist` (off by default; 'auto':
 *   while fsyncs are slow, see {@link PersistMode}) a Ready with entries is persisted off the event loop (`Wal.saveAsync`); Raft keeps taking input
 *   meanwhile but hands out no new Ready until advance(), which runs after the fsync.
 * - Batching (group commit): Raft input that arrives in one event-loop turn (peer messages,
 *   client proposals) is stepped first and driven once at the end of the turn
 *   ({@link EmbeddedKv.scheduleTurn}), so one Ready — one WAL write and one fsync, one message
 *   per peer — covers all of it. Client commands proposed in one turn travel in ONE Raft entry
 *   (`{ batch: Envelope[] }`, applied in order, each command its own revision); lease grants
 *   travel alone because their id is the entry index. Superseded messages of one Ready
 *   (an AppendEntries covered by a later one to the same peer, repeated acknowledgements) are
 *   dropped before sending ({@link compactMessages}).
 * - Writes are proposed on the leader. A follower or learner forwards them with
 *   `transport.forward` (JSON request; replies carry `{ ok, value }` or `{ ok: false, error: WireError }`).
 *   A write resolves once committed and applied on the proposing node; on a forwarding node it
 *   additionally waits until the local replica has applied that index (read-your-writes for
 *   serializable reads and watches).
 * - Linearizable reads use ReadIndex (thesis §6.4) on the leader; followers ask the leader for
 *   a read index and serve from their own replica once it has applied that far. With
 *   `readOnly: 'lease-based'` a leader holding a lease skips the heartbeat round (thesis §6.4.1,
 *   `RaftConfig.readOnly`); ticks then follow the monotonic clock (ticks missed while the event
 *   loop stalled are replayed before a read), and the fast failover of `watchLeader` is off
 *   (followers wait out the full election timeout, which is what the lease relies on).
 * - While no leader is known, requests retry every ~2 ticks until `requestTimeoutMs`, then
 *   reject with UnavailableError. NotLeader/Unavailable answers are retried; a proposal whose
 *   outcome is unknown at the deadline rejects with TimeoutError (it may still commit).
 * - Leases: the leader tracks deadlines in ticks and proposes `leaseRevoke` on expiry;
 *   keep-alives go to the leader; a new leader resets every deadline to the full TTL (as etcd).
 * - Log compaction (thesis §5.1): every `snapshotEntries` applied entries the store serializes
 *   its state machine, hands it to `raft.compact` and persists it (`Wal.saveSnapshot`: snapshot
 *   file, then a new WAL segment with only the entries after it), so memory and disk stay bounded.
 *   A follower too far behind receives the leader's snapshot (InstallSnapshot): it is validated
 *   when it arrives (a malformed one is dropped with a CorruptionError log line), persisted
 *   (replacing the WAL) and restored into the state machine; watchers see the difference.
 * - Restart: the snapshot file restores the state machine, the WAL restores term/vote and the
 *   log after it; committed entries after the snapshot are re-applied.
 * - Membership (thesis §4.1) and leadership transfer (§3.10): {@link EmbeddedKv.addLearner},
 *   `promote`, `removeMember` and `transferLeadership` run on the leader (forwarded like
 *   proposals). A change resolves once its config entry is applied here; the configuration
 *   (with each added member's address in its `context`) lives in the Raft log and in every
 *   snapshot (voters, learners, context), so it survives restarts and compaction and reaches a
 *   follower that installs the leader's snapshot; {@link EmbeddedKv.onConfState} tells the node
 *   when to connect to new members. Config entries are Raft's: the state machine skips them.
 */
import { CancelledError, ClusterDeskError, CompactedError, CorruptionError, NotFoundError, NotLeaderError, StorageError, TimeoutError, UnavailableError, ValidationError, fromWire, toWire, type WireError } from '../common/errors';
import { silentLogger, type Logger } from '../common/logger';
import { createRng } from '../common/rng';
import { decodeConfEntry, type ConfChange, type ConfState } from '../raft/confchange';
import { Raft, type Ready } from '../raft/raft';
import type { Entry, Message, NodeId, RaftStatus, RaftTransport, Snapshot } from '../raft/types';
import { Wal } from '../raft/wal';
import { KvStateMachine, validateSnapshotImage, type KvCommand, type KvResult } from './state-machine';
import type { KeyValue, LeaseGrantResponse, RangeOptions, ReplicatedKV, TxnRequest, TxnResponse, WatchEvent, WatchOptions, Watcher } from './types';

/** Options of {@link EmbeddedKv}. */
export interface EmbeddedKvOptions {
  /** This node's id (must be in `voters` or `learners`). */
  id: NodeId;
  /** Voting members. */
  voters: NodeId[];
  /** Non-voting members (receive the log, serve local reads and watches). */
  learners: NodeId[];
  /** Directory of the WAL (`raft.wal`); created if missing. */
  dataDir: string;
  /** Peer transport (gRPC in production, `MemoryTransport` in tests). */
  transport: RaftTransport;
  /** Cluster name written in the WAL header; opening a WAL of another cluster fails with CorruptionError. */
  clusterId: string;
  /** Milliseconds per Raft tick (default 50). */
  tickMs?: number;
  /** Election timeout base in ticks (default 10); see `RaftConfig.electionTicks`. */
  electionTicks?: number;
  /** Heartbeat interval in ticks (default 1). */
  heartbeatTicks?: number;
  /** Preferred leader at startup; see `RaftConfig.preferred`. */
  preferred?: boolean;
  /** Seed of the election-timeout randomness (default: `${clusterId}/${id}`). */
  seed?: string | number;
  logger?: Logger;
  /** Deadline of each client operation in ms (default 5000). */
  requestTimeoutMs?: number;
  /**
   * Boot as a joining server: this node starts as a learner of `voters`/`learners` (never
   * campaigns) until the leader's log, which holds the configuration that added it, arrives.
   * Default false. Ignored once the log holds a configuration.
   */
  join?: boolean;
  /**
   * Persist Readies with entries off the event loop (`Wal.saveAsync`; advance() after the fsync):
   * true always, false never (default), `'auto'` while the disk is slow — see {@link PersistMode}:
   * a write + fsync that blocks the event loop for milliseconds also holds up every peer message,
   * client reply and file transfer of the node, while on a fast disk (or tmpfs) the thread-pool
   * round trip costs more than the fsync it moves. Not the default: with the off-loop path in use
   * (true, or 'auto' on a loaded machine) the integration tests "enforces a lock" (earlier) and
   * compaction-membership (C's remote watch after its SIGKILL restart never reaches 170 events;
   * 2 of 3 parallel runs under load) time out; under investigation.
   */
  asyncPersist?: boolean | 'auto';
  /** How the leader confirms linearizable reads: `RaftConfig.readOnly` (default 'safe'; 'lease-based' needs the same on every node). */
  readOnly?: 'safe' | 'lease-based';
  /** Zero bytes the WAL keeps allocated ahead of its end so each fsync is a data-only fdatasync (`Wal.open`); 0 = off (default 4 MiB). */
  walPreallocateBytes?: number;
  /** Compact the log (snapshot + WAL cut) every this many applied entries; 0 = never (default 10,000). */
  snapshotEntries?: number;
  /** Entries kept in memory below a snapshot for slightly lagging followers (RaftConfig.snapshotCatchUpEntries; default 1,000). */
  snapshotCatchUpEntries?: number;
}

/** A Node I/O error from a file operation (write, fsync, rename: it has a `syscall`), as opposed to a bug. */
function isIoError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | null;
  return !!e && typeof e.code === 'string' && typeof e.syscall === 'string';
}

/** Body of a replicated entry: who proposed it (request id) and the command. */
interface Envelope {
  rid: string;
  node: NodeId;
  cmd: KvCommand;
}

/** Body of a batched entry: commands applied in order, each with its own revision. */
interface BatchBody {
  batch: Envelope[];
}

/** Ticks without a message from the leader before its port is probed (heartbeats come every tick). */
const LEADER_SILENT_TICKS = 3;

/** Default of {@link EmbeddedKvOptions.walPreallocateBytes}. */
const WAL_PREALLOCATE_BYTES = 4 << 20;

/**
 * The `'auto'` choice of {@link EmbeddedKvOptions.asyncPersist}: persists off the event loop while
 * the moving average of recent persists (write + fsync of a Ready with entries, in ms; measured
 * on whichever path ran it) is above {@link PersistMode.slowMs}, with hysteresis (back to the
 * synchronous path below half of it) so it does not flip on every sample.
 */
export class PersistMode {
  /** Average persist time (ms) above which persisting moves off the event loop. */
  static readonly slowMs = 2;
  private avgMs = 0;
  private offLoop = false;

  /** Records how long one persist took (ms). */
  observe(ms: number): void {
    this.avgMs = this.avgMs === 0 ? ms : this.avgMs * 0.8 + ms * 0.2;
    if (!this.offLoop && this.avgMs > PersistMode.slowMs) this.offLoop = true;
    else if (this.offLoop && this.avgMs < PersistMode.slowMs / 2) this.offLoop = false;
  }

  /** True while the next persist should run off the event loop. */
  async(): boolean {
    return this.offLoop;
  }
}

/** Most encoded bytes of client commands put into one batched Raft entry. */
const MAX_BATCH_BYTES = 128 << 10;

type ForwardRequest = { kind: 'propose'; cmd: KvCommand } | { kind: 'readIndex' } | { kind: 'keepAlive'; id: number } | { kind: 'confChange'; change: ConfChange } | { kind: 'transfer'; to: NodeId };

/** The outcome of a membership change: the configuration after it and the index of its config entry. */
export interface MembershipResult {
  index: number;
  voters: NodeId[];
  learners: NodeId[];
}
type ForwardReply = { ok: true; value: unknown } | { ok: false; error: WireError };

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

const ERROR_CLASSES: Record<string, (w: WireError) => Error> = {
  ENOENT: (w) => new NotFoundError(w.message, w.detail ? { detail: w.detail } : undefined),
  EINVAL: (w) => new ValidationError(w.message, w.detail ? { detail: w.detail } : undefined),
  EUNAVAILABLE: (w) => new UnavailableError(w.message, w.detail ? { detail: w.detail } : undefined),
  ETIMEDOUT: (w) => new TimeoutError(w.message, w.detail ? { detail: w.detail } : undefined),
  ENOTLEADER: (w) => new NotLeaderError((w.detail?.leaderId as string | null | undefined) ?? null),
  ECANCELED: (w) => new CancelledError(w.message),
};

/** Rebuilds a typed local error from its wire form (falls back to `fromWire`'s RemoteError). */
function revive(w: WireError): Error {
  return ERROR_CLASSES[w.code]?.(w) ?? fromWire(w);
}

function isRetryableForward(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOTLEADER' || code === 'EUNAVAILABLE';
}

/** A retried request that gave up: say why (the last refusal), not only that time ran out. */
function explainGaveUp(err: unknown): unknown {
  if (err instanceof UnavailableError && err.cause instanceof Error && err.cause.message) {
    return new UnavailableError(`${err.cause.message} (${err.message})`, { cause: err, ...(err.detail ? { detail: err.detail } : {}) });
  }
  return err;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The embedded Raft-backed store. Create, `start()`, use, `stop()`. */
export class EmbeddedKv implements ReplicatedKV {
  private readonly o: Required<Omit<EmbeddedKvOptions, 'logger' | 'seed' | 'preferred' | 'join'>> & { preferred: boolean; seed: string | number; join: boolean };
  private readonly log: Logger;
  private readonly sm = new KvStateMachine();
  private raft: Raft | null = null;
  private wal: Wal | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Set when a write to the data directory failed; the store is stopped and requests get it. */
  private storageError: StorageError | null = null;
  private running = false;
  private stopped = false;
  private driving = false;
  private driveAgain = false;
  /** A Ready's entries are being written and fsynced; advance() waits for it. */
  private persisting = false;
  /** Chooses the persist path when `asyncPersist` is 'auto'. */
  private readonly persistMode = new PersistMode();
  /** Leader last seen in a tick, ticks since a message from it, and whether a probe is in flight (see watchLeader). */
  private leaderSeen: NodeId | null = null;
  private ticksSinceLeader = 0;
  private probing = false;
  private ticks = 0;
  /** `performance.now()` when ticking started (lease-based reads: ticks follow this clock). */
  private clockStart = 0;
  private seq = 0;
  private readonly incarnation = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}`;
  private readonly proposals = new Map<string, Pending<{ index: number; result: KvResult }>>();
  private readonly reads = new Map<string, Pending<number>>();
  private applyWaiters: Array<{ index: number } & Pending<void>> = [];
  private readonly leaseDeadlines = new Map<number, number>();
  private readonly revoking = new Set<number>();
  private readonly statusListeners = new Set<(s: RaftStatus) => void>();
  private lastStatusKey = '';
  /** Envelopes (encoded) waiting to be proposed at the end of this turn. */
  private queued: Array<{ rid: string; json: string; alone: boolean }> = [];
  private turnScheduled = false;
  /** Config changes proposed here, by index: resolved when the entry at that index is applied with the same term. */
  private readonly confWaiters = new Map<number, { term: number } & Pending<MembershipResult>>();
  private readonly confListeners = new Set<(c: ConfState) => void>();

  constructor(options: EmbeddedKvOptions) {
    this.o = {
      id: options.id,
      voters: [...options.voters],
      learners: [...options.learners],
      dataDir: options.dataDir,
      transport: options.transport,
      clusterId: options.clusterId,
      tickMs: options.tickMs ?? 50,
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      preferred: options.preferred ?? false,
      seed: options.seed ?? `${options.clusterId}/${options.id}`,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      asyncPersist: options.asyncPersist ?? false,
      walPreallocateBytes: options.walPreallocateBytes ?? WAL_PREALLOCATE_BYTES,
      snapshotEntries: options.snapshotEntries ?? 10_000,
      snapshotCatchUpEntries: options.snapshotCatchUpEntries ?? 1_000,
      readOnly: options.readOnly ?? 'safe',
      join: options.join ?? false,
    };
    if (!(Number.isInteger(this.o.snapshotEntries) && this.o.snapshotEntries >= 0)) throw new ValidationError(`snapshotEntries must be a non-negative integer, got ${this.o.snapshotEntries}`);
    this.log = (options.logger ?? silentLogger).child({ node: options.id });
  }

  // ---- Lifecycle --------------------------------------------------------------------------

  /**
   * Opens the WAL (replaying term, vote and log; CorruptionError on damage or a foreign
   * cluster), re-applies committed entries, registers transport handlers and starts ticking.
   * Resolves when the local replica is rebuilt (not when a leader is elected).
   */
  async start(): Promise<void> {
    if (this.running || this.stopped) throw new ValidationError('EmbeddedKv can be started once');
    const { wal, state } = Wal.open(this.o.dataDir, this.o.clusterId, { preallocateBytes: this.o.walPreallocateBytes });
    if (state.repairedTornTail) this.log.warn({ dir: this.o.dataDir }, 'truncated a torn WAL tail');
    if (wal.droppedConflicting) this.log.warn({ dir: this.o.dataDir }, 'ignored WAL entries of a log replaced by an installed snapshot');
    this.wal = wal;
    if (state.snapshot) {
      // CorruptionError here means the local snapshot file is unusable: fail the start loudly.
      this.sm.restore(state.snapshot.data);
      this.applied = state.snapshot.index;
      this.snapshotIndex = state.snapshot.index;
      this.log.info({ index: state.snapshot.index, term: state.snapshot.term, entries: state.entries.length }, 'restored snapshot');
    }
    // A joining server boots as a learner so it never campaigns before it learns the real configuration.
    const voters = this.o.join ? this.o.voters.filter((v) => v !== this.o.id) : this.o.voters;
    const learners = this.o.join && !this.o.learners.includes(this.o.id) ? [...this.o.learners, this.o.id] : this.o.learners;
    this.raft = new Raft({
      id: this.o.id,
      voters,
      learners,
      electionTicks: this.o.electionTicks,
      heartbeatTicks: this.o.heartbeatTicks,
      preferred: this.o.preferred,
      rng: createRng(this.o.seed),
      snapshotCatchUpEntries: this.o.snapshotCatchUpEntries,
      readOnly: this.o.readOnly,
      storage: { hardState: state.hardState, entries: state.entries, ...(state.snapshot ? { snapshot: state.snapshot } : {}) },
      logger: this.log,
    });
    this.running = true;
    this.o.transport.onMessage((m) => {
      if (!this.running || !this.raft) return;
      if (m.from === this.leaderSeen) this.ticksSinceLeader = 0;
      if (m.type === 'InstallSnapshot' && !this.acceptableSnapshot(m)) return;
      try {
        this.raft.step(m);
      } catch (err) {
        this.log.error({ err: (err as Error).message, type: m.type, from: m.from }, 'raft step failed');
      }
      this.scheduleTurn();
    });
    this.o.transport.onForward((from, payload) => this.handleForward(from, payload));
    this.drive();
    this.clockStart = performance.now();
    this.timer = setInterval(() => this.onTick(), this.o.tickMs);
    this.timer.unref?.();
    this.emitStatus(true);
  }

  /** Stops ticking, rejects in-flight requests with CancelledError, cancels watches, closes the WAL. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const err = new CancelledError('node stopping');
    for (const p of this.proposals.values()) p.reject(err);
    for (const p of this.reads.values()) p.reject(err);
    for (const w of this.applyWaiters) w.reject(err);
    for (const w of [...this.confWaiters.values()]) w.reject(err);
    this.confWaiters.clear();
    this.confListeners.clear();
    this.queued = [];
    this.proposals.clear();
    this.reads.clear();
    this.applyWaiters = [];
    this.sm.cancelAllWatches();
    this.wal?.close();
    this.wal = null;
    this.statusListeners.clear();
  }

  /** Current Raft status of this node. */
  status(): RaftStatus {
    if (!this.raft) {
      return { id: this.o.id, role: this.o.learners.includes(this.o.id) ? 'learner' : 'follower', term: 0, leaderId: null, commitIndex: 0, appliedIndex: 0, lastIndex: 0, voters: [...this.o.voters], learners: [...this.o.learners], confCommitted: true };
    }
    return this.raft.status();
  }

  /** Calls `listener` when role, term or leader change (asynchronously). Returns an unsubscribe function. */
  onStatus(listener: (status: RaftStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** The Raft configuration in effect here (the latest in the log; thesis §4.1). */
  confState(): ConfState {
    if (!this.raft) return { voters: [...this.o.voters], learners: [...this.o.learners], context: {} };
    return this.raft.confState();
  }

  /** Calls `listener` synchronously whenever the configuration in effect changes (before messages to new members are sent). */
  onConfState(listener: (c: ConfState) => void): () => void {
    this.confListeners.add(listener);
    return () => this.confListeners.delete(listener);
  }

  // ---- Membership (thesis §4.1) and leadership transfer (thesis §3.10) ----------------------

  /**
   * Adds `id` as a learner; `address` ("host:port" of its peer server) is kept in the
   * configuration so every member can reach it. Resolves once the change is committed and applied
   * here. Errors: ValidationError (already a member, bad id), UnavailableError (another change
   * pending, no leader within the deadline), TimeoutError (outcome unknown).
   */
  addLearner(id: NodeId, address?: string): Promise<MembershipResult> {
    return this.changeMembership({ type: 'add-learner', node: id, ...(address ? { context: address } : {}) });
  }

  /** Promotes learner `id` to voter once it has caught up (retried until `requestTimeoutMs` while it lags). See {@link EmbeddedKv.addLearner}. */
  promote(id: NodeId): Promise<MembershipResult> {
    return this.changeMembership({ type: 'promote', node: id });
  }

  /** Removes member `id` (voter or learner; the leader may remove itself and then steps down). See {@link EmbeddedKv.addLearner}. */
  removeMember(id: NodeId): Promise<MembershipResult> {
    return this.changeMembership({ type: 'remove', node: id });
  }

  /**
   * Transfers leadership to voter `to` (thesis §3.10) and resolves with the new leader once this
   * node sees `to` lead. Proposals are refused (and retried by clients) during the transfer.
   * Errors: ValidationError (`to` is not a voter), UnavailableError (did not complete).
   */
  async transferLeadership(to: NodeId): Promise<{ leaderId: NodeId }> {
    await this.withLeader(
      async (remaining) => this.transferLocal(to, remaining),
      async (leader, remaining) => (await this.forward(leader, { kind: 'transfer', to }, remaining)) as { leaderId: NodeId },
      false,
    ).catch((err: unknown) => {
      throw explainGaveUp(err);
    });
    await this.waitUntil(() => this.status().leaderId === to, this.o.requestTimeoutMs, `${this.o.id} did not see ${to} lead within ${this.o.requestTimeoutMs} ms`);
    return { leaderId: to };
  }

  private async changeMembership(change: ConfChange): Promise<MembershipResult> {
    const r = await this.withLeader(
      async (remaining) => this.confChangeLocal(change, remaining),
      async (leader, remaining) => (await this.forward(leader, { kind: 'confChange', change }, remaining)) as MembershipResult,
      false,
    ).catch((err: unknown) => {
      throw explainGaveUp(err);
    });
    // Read-your-writes for the configuration, except on a node that was just removed: the leader
    // no longer replicates to it (thesis §4.2.2), so it would wait in vain.
    if (!(change.type === 'remove' && change.node === this.o.id)) await this.waitApplied(r.index, this.o.requestTimeoutMs);
    return r;
  }

  /** On the leader: proposes the change and waits for its entry to be applied here. */
  private confChangeLocal(change: ConfChange, timeoutMs: number): Promise<MembershipResult> {
    const raft = this.raft!;
    const index = raft.proposeConfChange(change); // throws NotLeader/Unavailable (retried) or Validation
    const term = raft.status().term;
    const p = new Promise<MembershipResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.confWaiters.delete(index);
        reject(new TimeoutError(`configuration change at index ${index} not applied within ${timeoutMs} ms (it may still commit)`));
      }, timeoutMs);
      this.confWaiters.set(index, {
        term,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    this.log.info({ change, index }, 'proposed membership change');
    this.drive();
    return p;
  }

  /** On the leader: starts the transfer and waits until this node no longer leads, or the transfer aborts. */
  private async transferLocal(to: NodeId, timeoutMs: number): Promise<{ leaderId: NodeId }> {
    if (to === this.o.id) return { leaderId: to };
    this.raft!.transferLeadership(to);
    this.log.info({ to }, 'leadership transfer requested');
    this.drive();
    const deadline = Math.min(timeoutMs, 3 * this.o.electionTicks * this.o.tickMs);
    await this.waitUntil(
      () => {
        const st = this.raft?.status();
        if (!st || st.role !== 'leader') return true;
        if (!this.raft!.transferee()) throw new UnavailableError(`leadership transfer to ${to} was aborted (no election within the election timeout)`);
        return false;
      },
      deadline,
      `leadership transfer to ${to} did not complete within ${deadline} ms`,
    );
    return { leaderId: to };
  }

  /** Polls `cond` every tick until it holds; rejects with UnavailableError(`message`) after `timeoutMs`. */
  private async waitUntil(cond: () => boolean, timeoutMs: number, message: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      this.assertRunning();
      if (Date.now() >= deadline) throw new UnavailableError(message);
      await sleep(Math.max(1, this.o.tickMs));
    }
  }

  // ---- ReplicatedKV -----------------------------------------------------------------------

  /** See {@link ReplicatedKV.range}. Linearizable via ReadIndex unless `serializable`. */
  async range(key: string, options: RangeOptions = {}): Promise<{ kvs: KeyValue[]; count: number; more: boolean; revision: number }> {
    this.assertRunning();
    if (!options.serializable) await this.linearize();
    return this.sm.range(key, { prefix: options.prefix ?? false, limit: options.limit ?? 0 });
  }

  /** See {@link ReplicatedKV.put}. */
  async put(key: string, value: string, options: { lease?: number } = {}): Promise<{ revision: number; prevKv?: KeyValue }> {
    const r = await this.write({ op: 'put', key, value, lease: options.lease ?? 0 });
    if (r.op !== 'put') throw new Error('unexpected result');
    return r.prevKv ? { revision: r.revision, prevKv: r.prevKv } : { revision: r.revision };
  }

  /** See {@link ReplicatedKV.delete}. */
  async delete(key: string, options: { prefix?: boolean } = {}): Promise<{ revision: number; deleted: number }> {
    const r = await this.write({ op: 'delete', key, prefix: options.prefix ?? false });
    if (r.op !== 'delete') throw new Error('unexpected result');
    return { revision: r.revision, deleted: r.deleted };
  }

  /** See {@link ReplicatedKV.txn}. */
  async txn(request: TxnRequest): Promise<TxnResponse> {
    const r = await this.write({ op: 'txn', request });
    if (r.op !== 'txn') throw new Error('unexpected result');
    return r.response;
  }

  /** See {@link ReplicatedKV.leaseGrant}. The lease id is the index of the Raft entry that granted it. */
  async leaseGrant(ttlSeconds: number): Promise<LeaseGrantResponse> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new ValidationError(`lease TTL must be an integer >= 1, got ${ttlSeconds}`);
    const r = await this.write({ op: 'leaseGrant', ttl: ttlSeconds });
    if (r.op !== 'leaseGrant') throw new Error('unexpected result');
    return { id: r.id, ttl: r.ttl };
  }

  /** See {@link ReplicatedKV.leaseKeepAlive}. Served by the leader; NotFoundError for an expired/unknown lease. */
  async leaseKeepAlive(id: number): Promise<{ ttl: number }> {
    return this.withLeader(
      async () => this.keepAliveLocal(id),
      async (leader, remaining) => (await this.forward(leader, { kind: 'keepAlive', id }, remaining)) as { ttl: number },
      true,
    );
  }

  /** See {@link ReplicatedKV.leaseRevoke}. */
  async leaseRevoke(id: number): Promise<void> {
    await this.write({ op: 'leaseRevoke', id });
  }

  /** See {@link ReplicatedKV.watch}. Served from this replica's applied state (learners too). */
  watch(prefix: string, listener: (events: WatchEvent[], revision: number) => void, options: WatchOptions & { onError?: (err: Error) => void } = {}): Watcher {
    try {
      return this.sm.watch(prefix, listener, options);
    } catch (err) {
      if (err instanceof CompactedError && options.onError) {
        queueMicrotask(() => options.onError?.(err));
        return { cancel: () => {} };
      }
      throw err;
    }
  }

  /** See {@link ReplicatedKV.localRevision}. */
  localRevision(): number {
    return this.sm.revision;
  }

  // ---- Requests ---------------------------------------------------------------------------

  /** A node that knows it was removed from the configuration no longer replicates: it cannot serve requests that need the leader. */
  private assertMember(): void {
    const c = this.confState();
    if (!c.voters.includes(this.o.id) && !c.learners.includes(this.o.id)) {
      throw new UnavailableError(`${this.o.id} was removed from the cluster configuration (voters ${c.voters.join(', ')}); use another node`, { detail: { voters: c.voters, learners: c.learners } });
    }
  }

  private assertRunning(): void {
    if (this.storageError) throw this.storageError;
    if (!this.running) throw new UnavailableError(this.stopped ? 'store is stopped' : 'store is not started');
  }

  /**
   * Runs `local` on the leader or `remote` against the known leader, retrying while no leader
   * is known or the leader changed, until `requestTimeoutMs`. `idempotent` operations also retry timeouts.
   */
  private async withLeader<T>(local: (remaining: number) => Promise<T>, remote: (leader: NodeId, remaining: number) => Promise<T>, idempotent: boolean): Promise<T> {
    this.assertRunning();
    this.assertMember();
    const deadline = Date.now() + this.o.requestTimeoutMs;
    let lastErr: unknown;
    for (;;) {
      this.assertRunning();
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new UnavailableError(`no leader answered within ${this.o.requestTimeoutMs} ms`, { cause: lastErr });
      const st = this.status();
      // Idempotent requests use a shorter per-attempt timeout so a dead leader costs one attempt, not the whole deadline.
      const attempt = idempotent ? Math.min(remaining, Math.max(1000, 4 * this.o.electionTicks * this.o.tickMs)) : remaining;
      try {
        if (st.role === 'leader') return await local(attempt);
        if (st.leaderId) return await remote(st.leaderId, attempt);
      } catch (err) {
        const retry = isRetryableForward(err) || (idempotent && (err as { code?: string }).code === 'ETIMEDOUT');
        if (!retry) throw err;
        lastErr = err;
      }
      await sleep(Math.max(1, Math.min(this.o.tickMs, deadline - Date.now())));
    }
  }

  private async write(cmd: KvCommand): Promise<KvResult> {
    return this.withLeader(
      async (remaining) => (await this.proposeLocal(cmd, remaining)).result,
      async (leader, remaining) => {
        const t0 = Date.now();
        const reply = (await this.forward(leader, { kind: 'propose', cmd }, remaining)) as { index: number; result: KvResult };
        await this.waitApplied(reply.index, Math.max(1, remaining - (Date.now() - t0)));
        return reply.result;
      },
      false,
    );
  }

  /**
   * Proposes on this node (must be leader); resolves with the entry index and result once applied here.
   * The command is queued and proposed at the end of this event-loop turn together with every other
   * command queued in the turn (one entry, one fsync).
   */
  private proposeLocal(cmd: KvCommand, timeoutMs: number): Promise<{ index: number; result: KvResult }> {
    const st = this.raft!.status();
    if (st.role !== 'leader') throw new NotLeaderError(st.leaderId); // retried by withLeader
    const rid = `${this.o.id}:${this.incarnation}:${++this.seq}`;
    const env: Envelope = { rid, node: this.o.id, cmd };
    const p = this.deferred(this.proposals, rid, timeoutMs, () => new TimeoutError(`proposal not applied within ${timeoutMs} ms (it may still commit)`));
    this.queued.push({ rid, json: JSON.stringify(env), alone: cmd.op === 'leaseGrant' });
    this.scheduleTurn();
    return p;
  }

  /** Runs {@link EmbeddedKv.endTurn} once, after the I/O callbacks of the current event-loop turn. */
  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      this.endTurn();
    });
  }

  /** Proposes the queued commands (batched into as few entries as allowed), then drives Raft once. */
  private endTurn(): void {
    if (!this.running || !this.raft) return;
    this.flushProposals();
    this.drive();
  }

  private flushProposals(): void {
    const raft = this.raft!;
    let i = 0;
    const q = this.queued;
    this.queued = [];
    while (i < q.length) {
      // One entry: a lease grant alone (its id is the entry index), else consecutive commands up to MAX_BATCH_BYTES.
      let j = i + 1;
      if (!q[i]!.alone) {
        let bytes = q[i]!.json.length;
        while (j < q.length && !q[j]!.alone && bytes + q[j]!.json.length <= MAX_BATCH_BYTES) bytes += q[j++]!.json.length;
      }
      const group = q.slice(i, j);
      i = j;
      const body = group.length === 1 ? group[0]!.json : `{"batch":[${group.map((g) => g.json).join(',')}]}`;
      try {
        raft.propose(enc.encode(body));
      } catch (err) {
        // Lost leadership before proposing: nothing was appended, so the caller may retry safely.
        for (const g of group) this.proposals.get(g.rid)?.reject(err as Error);
      }
    }
  }

  /** Waits until this node, as leader, has confirmed a read index (thesis §6.4) and applied up to it. */
  private async readIndexLocal(timeoutMs: number): Promise<number> {
    const raft = this.raft!;
    const rid = `${this.o.id}:${this.incarnation}:${++this.seq}`;
    // A lease is measured in ticks: count the ones a stalled event loop missed before using it.
    if (this.o.readOnly === 'lease-based') this.catchUpTicks();
    raft.readIndex(enc.encode(rid));
    const p = this.deferred(this.reads, rid, timeoutMs, () => new TimeoutError(`read index not confirmed within ${timeoutMs} ms`));
    this.drive();
    const index = await p;
    return index;
  }

  private async linearize(): Promise<void> {
    const deadline = Date.now() + this.o.requestTimeoutMs;
    const index = await this.withLeader(
      (remaining) => this.readIndexLocal(remaining),
      async (leader, remaining) => (await this.forward(leader, { kind: 'readIndex' }, remaining)) as number,
      true,
    );
    await this.waitApplied(index, Math.max(1, deadline - Date.now()));
  }

  private keepAliveLocal(id: number): { ttl: number } {
    const ttl = this.sm.leaseTtl(id);
    if (ttl === undefined || this.revoking.has(id)) throw new NotFoundError(`lease ${id} not found`);
    this.leaseDeadlines.set(id, this.ticks + this.ttlTicks(ttl));
    return { ttl };
  }

  private deferred<T>(map: Map<string, Pending<T>>, key: string, timeoutMs: number, onTimeout: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        map.delete(key);
        reject(onTimeout());
      }, timeoutMs);
      map.set(key, {
        resolve: (v) => {
          clearTimeout(timer);
          map.delete(key);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          map.delete(key);
          reject(e);
        },
      });
    });
  }

  private waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.appliedIndex() >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        index,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.applyWaiters = this.applyWaiters.filter((x) => x !== w);
        reject(new TimeoutError(`local replica did not apply index ${index} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.applyWaiters.push(w);
    });
  }

  private appliedIndex(): number {
    return this.applied;
  }
  private applied = 0;
  /** Index of the latest snapshot made or installed. */
  private snapshotIndex = 0;

  private async forward(to: NodeId, req: ForwardRequest, timeoutMs: number): Promise<unknown> {
    const raw = await this.o.transport.forward(to, enc.encode(JSON.stringify(req)), timeoutMs);
    const reply = JSON.parse(dec.decode(raw)) as ForwardReply;
    if (!reply.ok) throw revive(reply.error);
    return reply.value;
  }

  /** Serves a request forwarded by a follower/learner. Only the leader serves; others answer NotLeaderError. */
  private async handleForward(_from: NodeId, payload: Uint8Array): Promise<Uint8Array> {
    let reply: ForwardReply;
    try {
      if (!this.running || !this.raft) throw new UnavailableError(`${this.o.id} is not running`);
      const req = JSON.parse(dec.decode(payload)) as ForwardRequest;
      const st = this.raft.status();
      if (st.role !== 'leader') throw new NotLeaderError(st.leaderId);
      const timeout = this.o.requestTimeoutMs;
      let value: unknown;
      if (req.kind === 'propose') value = await this.proposeLocal(req.cmd, timeout);
      else if (req.kind === 'readIndex') value = await this.readIndexLocal(timeout);
      else if (req.kind === 'keepAlive') value = this.keepAliveLocal(req.id);
      else if (req.kind === 'confChange') value = await this.confChangeLocal(req.change, timeout);
      else if (req.kind === 'transfer') value = await this.transferLocal(typeof req.to === 'string' ? req.to : '', timeout);
      else throw new ValidationError('unknown forwarded request');
      reply = { ok: true, value };
    } catch (err) {
      reply = { ok: false, error: toWire(err) };
    }
    return enc.encode(JSON.stringify(reply));
  }

  // ---- Ready loop -------------------------------------------------------------------------

  private onTick(): void {
    if (!this.running || !this.raft) return;
    if (this.o.readOnly === 'lease-based') this.catchUpTicks();
    else {
      this.ticks++;
      this.raft.tick();
    }
    const st = this.raft.status();
    if (st.role === 'leader') this.expireLeases();
    else this.watchLeader(st.leaderId);
    this.drive();
  }

  /**
   * Fast detection of a leader that is gone (thesis §6.2 leaves the failure detector open): after
   * {@link LEADER_SILENT_TICKS} ticks without a message from the leader, probe its port; if it
   * refuses connections (the process is gone, not merely slow), skip the rest of the leader lease
   * by ticking Raft up to `electionTicks`. The randomized election timeout then still applies
   * (no split votes from synchronized followers), and pre-vote keeps a wrong guess harmless: the
   * other voters refuse while they still hear from a live leader.
   */
  private watchLeader(leaderId: NodeId | null): void {
    if (leaderId !== this.leaderSeen) {
      this.leaderSeen = leaderId;
      this.ticksSinceLeader = 0;
      return;
    }
    // Lease-based reads: the leader may serve reads until the followers' election timeout ends.
    if (!leaderId || this.probing || !this.o.transport.probe || this.o.readOnly === 'lease-based') return;
    this.ticksSinceLeader++;
    if (this.ticksSinceLeader < LEADER_SILENT_TICKS || this.ticksSinceLeader >= this.o.electionTicks) return;
    this.probing = true;
    const probe = this.o.transport.probe(leaderId, Math.max(50, 2 * this.o.tickMs));
    probe
      .then((r) => {
        if (r !== 'down' || !this.running || !this.raft) return;
        const st = this.raft.status();
        if (st.role === 'leader' || st.leaderId !== leaderId || this.ticksSinceLeader < LEADER_SILENT_TICKS) return;
        this.log.info({ leader: leaderId, silentTicks: this.ticksSinceLeader }, 'leader refuses connections; skipping the rest of its lease');
        while (this.ticksSinceLeader < this.o.electionTicks) {
          this.ticksSinceLeader++;
          this.raft.tick();
        }
        this.drive();
      })
      .catch(() => undefined)
      .finally(() => {
        this.probing = false;
      });
  }

  /** Ticks Raft once per `tickMs` elapsed on the monotonic clock since start (lease-based reads; see the module doc). */
  private catchUpTicks(): void {
    const due = Math.floor((performance.now() - this.clockStart) / this.o.tickMs);
    while (this.ticks < due && this.raft) {
      this.ticks++;
      this.raft.tick();
    }
  }

  private ttlTicks(ttlSeconds: number): number {
    return Math.ceil((ttlSeconds * 1000) / this.o.tickMs);
  }

  private expireLeases(): void {
    for (const [id, deadline] of this.leaseDeadlines) {
      if (deadline > this.ticks || this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.proposeLocal({ op: 'leaseRevoke', id }, this.o.requestTimeoutMs).catch((err: Error) => {
        this.revoking.delete(id);
        if (!(err instanceof NotFoundError)) this.log.debug({ id, err: err.message }, 'lease revoke failed; will retry');
      });
    }
  }

  /** Runs the Ready loop until Raft has nothing left (re-entrant calls are folded into the running loop). */
  private drive(): void {
    if (this.driving) {
      this.driveAgain = true;
      return;
    }
    if (this.persisting) return; // resumed by the persistence callback
    this.driving = true;
    try {
      do {
        this.driveAgain = false;
        while (this.running && !this.persisting && this.raft?.hasReady()) this.handleReady(this.raft.ready());
      } while (this.driveAgain && this.running && !this.persisting);
    } finally {
      this.driving = false;
    }
    this.emitStatus(false);
  }

  /**
   * One Ready: send its messages, apply its committed entries (already durable here and on a
   * quorum), then persist its hardState and entries. On the synchronous path a Ready with entries is written
   * and fsynced in a setImmediate (after this turn's HTTP/2 writes), then advanced; with
   * `asyncPersist` (or 'auto' while the disk is slow) a Ready with entries is written and fsynced on the thread pool while the
   * event loop keeps receiving (Raft accepts input between ready() and advance(); hasReady() is
   * false until then), and advance() runs once the fsync completed — so everything that arrives
   * meanwhile is persisted by the next Ready with one fsync (group commit).
   */
  private handleReady(rd: Ready): void {
    const raft = this.raft!;
    // Ready.messages never depend on unpersisted state (Raft releases those only at advance(),
    // paper Fig. 2), so they go out first and travel while we fsync (thesis §10.2.1).
    // A new configuration first, so the node can reach members added by it before messages go out.
    if (rd.confState) this.onConf(rd.confState);
    if (rd.messages.length > 0) this.o.transport.send(compactMessages(rd.messages));
    if (rd.softState) this.onSoftState(rd.softState.role);
    try {
      if (rd.snapshot) this.installSnapshot(rd.snapshot);
      for (const e of rd.committedEntries) this.applyEntry(e);
      if (this.o.snapshotEntries > 0 && this.applied - this.snapshotIndex >= this.o.snapshotEntries) this.compact();
      for (const rs of rd.readStates) this.reads.get(dec.decode(rs.context))?.resolve(rs.index);
      if (rd.entries.length === 0) {
        this.wal!.save(rd.hardState, rd.entries);
        raft.advance();
        return;
      }
    } catch (err) {
      if (!isIoError(err)) throw err;
      this.failStorage(err as NodeJS.ErrnoException); // never advance(): nothing unwritten is acknowledged
      return;
    }
    this.persisting = true;
    const wal = this.wal!;
    const started = performance.now();
    if (this.o.asyncPersist === false || (this.o.asyncPersist === 'auto' && !this.persistMode.async())) {
      // The write + fsync runs in the next check phase, after the HTTP/2 writes of this Ready's
      // messages and client replies (grpc-js and node:http2 flush them in microtasks and native
      // immediates): followers receive the AppendEntries and clients their answers while this
      // node fsyncs (thesis §10.2.1), instead of after. Input arriving meanwhile is stepped and
      // persisted by the next Ready (group commit).
      setImmediate(() => {
        this.persisting = false;
        if (!this.running || this.raft !== raft || this.wal !== wal) return;
        const t0 = performance.now();
        try {
          wal.save(rd.hardState, rd.entries);
        } catch (err) {
          if (!isIoError(err)) throw err;
          this.failStorage(err as NodeJS.ErrnoException);
          return;
        }
        this.persistMode.observe(performance.now() - t0);
        raft.advance();
        this.drive();
      });
      return;
    }
    wal.saveAsync(rd.hardState, rd.entries, (err) => {
      this.persisting = false;
      this.persistMode.observe(performance.now() - started);
      if (!this.running || this.raft !== raft || this.wal !== wal) return;
      if (err) {
        // Not durable: never advance (that would acknowledge entries the disk does not hold). Fail-stop.
        this.failStorage(err as NodeJS.ErrnoException);
        return;
      }
      raft.advance();
      this.drive();
    });
  }

  /**
   * Fail-stop after a write to the data directory failed (a full disk, an I/O error): the store
   * stops without acknowledging what the disk does not hold; the process, its console and the rest
   * of the cluster keep running, and every later request gets the {@link StorageError}. A torn
   * record at the WAL's tail is truncated when the node is restarted after space is freed.
   */
  private failStorage(err: NodeJS.ErrnoException): void {
    if (this.storageError) return;
    const why = err.code === 'ENOSPC' ? 'the disk is full' : err.code === 'EDQUOT' ? 'the disk quota is exhausted' : err.message;
    this.storageError = new StorageError(`${this.o.id} cannot write its Raft log in ${this.o.dataDir}: ${why}. Its Raft store has stopped (nothing unwritten was acknowledged); free space and restart the node.`, {
      cause: err,
      detail: { errno: err.code ?? null, dir: this.o.dataDir },
    });
    this.log.error({ code: 'ESTORAGE', errno: err.code, dir: this.o.dataDir, err: err.message }, 'Raft log write failed; stopping the Raft store');
    void this.stop();
  }

  /**
   * Validates an arriving InstallSnapshot before Raft sees it (Raft would replace its log with
   * it): a snapshot whose data is not a KV state image is dropped with a CorruptionError log line
   * (the leader re-sends after its snapshot timeout).
   */
  private acceptableSnapshot(m: Message): boolean {
    try {
      if (!m.snapshot) throw new CorruptionError('InstallSnapshot without a snapshot');
      validateSnapshotImage(m.snapshot.data);
      return true;
    } catch (err) {
      const e = err instanceof CorruptionError ? err : new CorruptionError('malformed snapshot', { cause: err });
      this.log.warn({ from: m.from, index: m.index, code: e.code, err: e.message }, 'malformed snapshot dropped');
      return false;
    }
  }

  /** Ready.snapshot (from the leader): persist it (replacing the WAL), then restore the state machine from it. */
  private installSnapshot(snap: Snapshot): void {
    this.wal!.saveSnapshot(snap, true);
    this.sm.restore(snap.data);
    this.applied = snap.index;
    this.snapshotIndex = snap.index;
    this.log.info({ index: snap.index, term: snap.term, bytes: snap.data.length, voters: snap.voters, learners: snap.learners }, 'installed snapshot from the leader');
    // A change proposed here whose entry is now inside the snapshot never applies here: its outcome
    // is unknown to this node (it may have been overwritten before the snapshot was taken).
    for (const [index, w] of [...this.confWaiters]) {
      if (index > snap.index) continue;
      this.confWaiters.delete(index);
      w.reject(new UnavailableError(`configuration change at index ${index} was covered by a snapshot from the leader before it applied here; check the configuration and retry if needed`));
    }
    this.resolveApplyWaiters();
  }

  /** Snapshots the state machine at the applied index, compacts Raft's log and cuts the WAL. */
  private compact(): void {
    const t0 = Date.now();
    const snap = this.raft!.compact(this.applied, this.sm.serialize());
    if (!snap) return;
    this.wal!.saveSnapshot(snap, false);
    this.snapshotIndex = snap.index;
    this.log.info({ index: snap.index, term: snap.term, bytes: snap.data.length, walBytes: this.wal!.bytes(), ms: Date.now() - t0 }, 'compacted the log');
  }

  private resolveApplyWaiters(): void {
    if (this.applyWaiters.length === 0) return;
    const done = this.applyWaiters.filter((w) => w.index <= this.applied);
    this.applyWaiters = this.applyWaiters.filter((w) => w.index > this.applied);
    for (const w of done) w.resolve();
  }

  private onSoftState(role: string): void {
    if (role === 'leader') {
      // As etcd: a new leader gives every lease a full TTL (it cannot know how long the old leader waited).
      this.leaseDeadlines.clear();
      this.revoking.clear();
      for (const [id, ttl] of this.sm.leaseTtls()) this.leaseDeadlines.set(id, this.ticks + this.ttlTicks(ttl));
    } else {
      for (const p of [...this.reads.values()]) p.reject(new NotLeaderError(null));
    }
  }

  private onConf(c: ConfState): void {
    this.log.info({ voters: c.voters, learners: c.learners }, 'configuration in effect changed');
    for (const l of this.confListeners) {
      try {
        l(c);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'configuration listener threw');
      }
    }
  }

  private applyEntry(e: Entry): void {
    this.applied = e.index;
    if (e.type === 'config') {
      const w = this.confWaiters.get(e.index);
      if (w) {
        this.confWaiters.delete(e.index);
        if (w.term === e.term) {
          const c = decodeConfEntry(e.data).state;
          w.resolve({ index: e.index, voters: c.voters, learners: c.learners });
        } else w.reject(new UnavailableError(`configuration change at index ${e.index} was overwritten by a new leader; retry`));
      }
    } else if (e.data.length > 0) {
      let body: Envelope | BatchBody | null = null;
      try {
        body = JSON.parse(dec.decode(e.data)) as Envelope | BatchBody;
      } catch (err) {
        this.log.error({ index: e.index, err: (err as Error).message }, 'undecodable entry skipped');
      }
      if (body && 'batch' in body && Array.isArray(body.batch)) for (const env of body.batch) this.applyEnvelope(e.index, env);
      else if (body) this.applyEnvelope(e.index, body as Envelope);
    }
    this.resolveApplyWaiters();
  }

  private applyEnvelope(index: number, env: Envelope): void {
    const mine = env.node === this.o.id ? this.proposals.get(env.rid) : undefined;
    try {
      const result = this.sm.apply(index, env.cmd);
      this.afterApply(env.cmd, result);
      mine?.resolve({ index, result });
    } catch (err) {
      if (!(err instanceof ClusterDeskError)) this.log.error({ index, err: (err as Error).message }, 'apply failed');
      if (env.cmd?.op === 'leaseRevoke') this.afterApply(env.cmd, { op: 'leaseRevoke', revision: this.sm.revision });
      mine?.reject(err as Error);
    }
  }

  private afterApply(cmd: KvCommand, result: KvResult): void {
    if (result.op === 'leaseGrant') this.leaseDeadlines.set(result.id, this.ticks + this.ttlTicks(result.ttl));
    else if (cmd.op === 'leaseRevoke') {
      this.leaseDeadlines.delete(cmd.id);
      this.revoking.delete(cmd.id);
    }
  }

  private emitStatus(force: boolean): void {
    if (this.statusListeners.size === 0) return;
    const s = this.status();
    const key = `${s.role}/${s.term}/${s.leaderId}`;
    if (!force && key === this.lastStatusKey) return;
    this.lastStatusKey = key;
    queueMicrotask(() => {
      for (const l of this.statusListeners) {
        try {
          l(s);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'status listener threw');
        }
      }
    });
  }
}

/**
 * Drops messages of one Ready that a later message to the same peer supersedes, keeping order
 * otherwise: an AppendEntries with the same term and prevLogIndex as a later one (the later one
 * carries the same entries and more, and a commit index at least as high); successful
 * AppendEntriesResponses of the same term but the highest index; plain heartbeats and heartbeat
 * responses without a ReadIndex context (one per peer and term is enough). Votes, rejections and
 * ReadIndex rounds are never dropped.
 */
export function compactMessages(messages: Message[]): Message[] {
  if (messages.length < 2) return messages;
  const last = new Map<string, number>();
  const keyOf = (m: Message): string | null => {
    switch (m.type) {
      case 'AppendEntries':
        return `ae|${m.to}|${m.term}|${m.index}|${m.logTerm}`;
      case 'AppendEntriesResponse':
        return m.reject ? null : `aer|${m.to}|${m.term}`;
      case 'Heartbeat':
        return m.context.length === 0 ? `hb|${m.to}|${m.term}` : null;
      case 'HeartbeatResponse':
        return m.context.length === 0 ? `hbr|${m.to}|${m.term}` : null;
      default:
        return null;
    }
  };
  const keys = messages.map(keyOf);
  keys.forEach((k, i) => {
    if (k === null) return;
    const prev = last.get(k);
    // For acknowledgements keep the highest index (they only grow, but be safe).
    if (prev !== undefined && messages[i]!.type === 'AppendEntriesResponse' && messages[prev]!.index > messages[i]!.index) return;
    if (prev !== undefined && messages[i]!.type === 'AppendEntries' && messages[prev]!.entries.length > messages[i]!.entries.length) return;
    last.set(k, i);
  });
  return messages.filter((_, i) => keys[i] === null || last.get(keys[i]!) === i);
}
