/**
 * Raft wire and storage types, named after the Raft paper (Ongaro & Ousterhout 2014, "In Search
 * of an Understandable Consensus Algorithm", and Ongaro's thesis 2014). These types are mirrored
 * one-to-one by `core/proto/peer.proto` (message `RaftMessage`), which the gRPC adapter encodes.
 *
 * Deterministic module: imports nothing from `node:`.
 */

/** A node id, e.g. "A". */
export type NodeId = string;

/**
 * Message types. `PreVote*` is the thesis §9.6 pre-vote phase; `TimeoutNow` is leadership
 * transfer (thesis §3.10); `ReadIndex*` is the thesis §6.4 read protocol; `InstallSnapshot`
 * is §5 / paper §7.
 */
export type MessageType =
  | 'AppendEntries'
  | 'AppendEntriesResponse'
  | 'RequestVote'
  | 'RequestVoteResponse'
  | 'PreVote'
  | 'PreVoteResponse'
  | 'Heartbeat'
  | 'HeartbeatResponse'
  | 'InstallSnapshot'
  | 'TimeoutNow'
  | 'ReadIndex'
  | 'ReadIndexResponse';

/** One log entry. `data` empty = a no-op (the leader's first entry of its term, paper §8). */
export interface Entry {
  term: number;
  index: number;
  type: 'normal' | 'config';
  data: Uint8Array;
}

/** A snapshot of the applied state up to `index` (paper §7). */
export interface Snapshot {
  index: number;
  term: number;
  /** The configuration at `index` (thesis §5.1: a snapshot includes the latest configuration as of its index). */
  voters: NodeId[];
  learners: NodeId[];
  /** Per-member opaque context of that configuration (the node layer: peer addresses); absent = none. */
  context?: Record<NodeId, string>;
  data: Uint8Array;
}

/**
 * A Raft message. Fields not used by a type are 0 / '' / empty.
 * - AppendEntries: `index`/`logTerm` = prevLogIndex/prevLogTerm, `entries`, `commit` = leaderCommit.
 * - AppendEntriesResponse: `index` = last matching index on success; on `reject`, `index` = the rejected prevLogIndex,
 *   `rejectHint` = the follower's largest index <= min(prevLogIndex, its last index) whose term <= prevLogTerm, and
 *   `logTerm` = that entry's term (etcd's fast backtracking; with an empty or shorter log it is the follower's last index).
 * - RequestVote / PreVote: `index`/`logTerm` = candidate's lastLogIndex/lastLogTerm.
 * - *Response with `reject` = vote not granted.
 * - Heartbeat: `commit`; `context` carries a ReadIndex round's id when present; `index` = the leader's tick count
 *   at sending (its term's clock), echoed in the HeartbeatResponse `index` (start of a lease-based read lease).
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot?: Snapshot;
  /** Opaque bytes (ReadIndex request id). */
  context: Uint8Array;
}

/** State that must be on stable storage before any message depending on it is sent (paper Fig. 2). */
export interface HardState {
  term: number;
  /** Candidate voted for in `term`, '' if none. */
  vote: NodeId;
  commit: number;
}

export type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader' | 'learner';

/** What the core reports about itself (for status views and metrics). */
export interface RaftStatus {
  id: NodeId;
  role: RaftRole;
  term: number;
  leaderId: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  voters: NodeId[];
  learners: NodeId[];
  /** True when the configuration in effect (`voters`, `learners`) is committed (its entry's index <= commitIndex; thesis §4.1). */
  confCommitted: boolean;
}

/**
 * The transport the Raft-backed store uses between nodes. The gRPC adapter implements it for
 * real processes; `MemoryTransport` implements it for tests (with drop/partition controls).
 *
 * - `send` is fire-and-forget: lost messages are Raft's problem (it retries).
 * - `forward` is a request/response call to another node's store, used by followers and learners
 *   to hand client operations (proposals, linearizable reads, lease keep-alives) to the leader.
 *   The payload is opaque bytes that `EmbeddedKv` encodes and decodes itself.
 */
export interface RaftTransport {
  send(messages: Message[]): void;
  /** Registers the handler for incoming Raft messages (one per transport). */
  onMessage(handler: (message: Message) => void): void;
  /** Calls `to`'s forward handler; rejects with UnavailableError if `to` cannot be reached within `timeoutMs`. */
  forward(to: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Registers the handler for forwarded requests; it resolves to the reply payload or rejects with a typed error. */
  onForward(handler: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>): void;
  /**
   * Optional fast failure detection: resolves 'down' only when `to` certainly does not run (its
   * port refuses connections), 'up' when it accepts one, 'unknown' otherwise (timeout, other errors).
   * The store uses it to stop waiting out the leader lease for a leader that is gone.
   */
  probe?(to: NodeId, timeoutMs: number): Promise<'up' | 'down' | 'unknown'>;
}
