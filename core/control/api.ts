/**
 * ControlApi — the only way a console (React renderer, CLI) reaches a node.
 *
 * One contract, three transports (VS Code's `base/parts/ipc` pattern):
 * - Electron IPC through the narrow preload (`electron/preload`), channel names `cd:call` and `cd:event`;
 * - WebSocket for the browser console and the CLI (`/control?token=…` on the node's console port);
 * - in-memory for tests.
 *
 * Every transport carries the same {@link ControlFrame}s. Errors travel as `WireError`
 * (`{ name, code, message, detail? }`, see `core/common/errors.ts`).
 *
 * Deterministic module shared with the renderer: imports nothing from `node:` or `electron`.
 */
import type { WireError } from '../common/errors';

export type Role = 'leader' | 'team-leader' | 'worker';
export type RaftRoleView = 'follower' | 'pre-candidate' | 'candidate' | 'leader' | 'learner' | 'unknown';

/** One node as the cluster sees it. Figures of a down node are its last known ones (or 0). */
export interface NodeStatus {
  id: string;
  host: string;
  role: Role;
  team: string | null;
  /** gRPC address `ip:port`. */
  address: string;
  /** Port of this node's browser console (same interface as `address`), null when it serves none. */
  consolePort: number | null;
  up: boolean;
  raftState: RaftRoleView;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** Requests waiting in this node's bounded queue. */
  queueDepth: number;
  /** Requests in flight on this node (at most 100). */
  inFlight: number;
  /** Requests completed per second over the last 10 s. */
  requestsPerSec: number;
  /** Files this node still has to download or commit. */
  syncBacklog: number;
  /** OS process id, when known. */
  pid: number | null;
  /** Absolute path of the node's synchronized folder. */
  folder: string;
  /** Milliseconds since the Unix epoch when this node last answered. */
  lastSeen: number;
}

export interface TeamView {
  name: string;
  leader: string;
  workers: string[];
}

/** The whole topology and health view, pushed as `status` events about once a second. */
export interface ClusterStatus {
  /** Id of the node serving this console. */
  self: string;
  clusterName: string;
  /** Raft leader as seen by `self`, null while none is known. */
  leaderId: string | null;
  term: number;
  nodes: NodeStatus[];
  /** Overlay links (undirected), e.g. ["A","B"]. */
  links: [string, string][];
  teams: TeamView[];
  hosts: { name: string; nodes: string[] }[];
  /** Milliseconds since the Unix epoch. */
  at: number;
  /**
   * The Raft configuration in effect on `self` (thesis §4.1; the latest in its log): voters and
   * learners. Nodes added at runtime that the config file does not list appear in `nodes` too.
   */
  membership?: MembershipView;
  /**
   * Present once `self` learned it was removed from the cluster (the leader's committed Raft
   * configuration no longer lists it): `leader` said so at `at` (ms since the epoch). Its folder
   * sync and job dispatch have stopped; file changes through this console are refused.
   */
  removed?: { leader: string; at: number };
}

/** A Raft configuration: voting members and learners (non-voting, thesis §4.2.1). */
export interface MembershipView {
  voters: string[];
  learners: string[];
}

/** Result of a membership change: the configuration after it and the index of its config log entry. */
export interface MembershipChangeResult extends MembershipView {
  index: number;
}

/** A file lock (exclusive or shared) with its fencing token (the lock key's modRevision). */
export interface LockInfo {
  path: string;
  mode: 'exclusive' | 'shared';
  /** Node ids holding the lock (one for exclusive). */
  holders: string[];
  /** Host of the first holder. */
  host: string;
  user: string;
  /** Milliseconds since the Unix epoch. */
  since: number;
  fencingToken: number;
}

/** One file of the synchronized folder, as committed in the replicated index. */
export interface FileEntry {
  /** Folder-relative path with `/` separators, NFC. */
  path: string;
  size: number;
  sha256: string;
  /** Index version: 1 on creation, +1 per committed change (including delete). */
  version: number;
  deleted: boolean;
  /** Node that committed this version. */
  modifiedBy: string;
  /** Milliseconds since the Unix epoch (file mtime at commit). */
  modifiedAt: number;
  lock: LockInfo | null;
  /** Per node: the index version its folder holds (null when it has none yet), when known. */
  replicas: Record<string, number | null>;
}

/** One committed change of a file (from the KV history, `core/sync/history.ts`). */
export interface HistoryEntry {
  path: string;
  /** Index version this change created. */
  version: number;
  sha256: string;
  size: number;
  deleted: boolean;
  /** Node that committed the change. */
  modifiedBy: string;
  /** Host of that node. */
  host: string;
  /** File mtime at commit (ms since the Unix epoch; the delete time for a tombstone). */
  modifiedAt: number;
  /** When the commit was made (ms since the Unix epoch, committing node's clock). */
  committedAt: number;
}

/**
 * Old bytes of a file kept on this node before a remote change replaced or deleted them
 * (Syncthing "simple versioning": `.clusterdesk/versions/<path>~<YYYYMMDD-HHMMSS>`).
 */
export interface KeptVersion {
  /** `YYYYMMDD-HHMMSS` (UTC), with `-N` appended when several were kept in one second. */
  id: string;
  path: string;
  size: number;
  /** When it was kept (ms since the Unix epoch). */
  keptAt: number;
}

/** A lock taken, released or broken on a file (kept per file, the last 10). */
export interface LockEvent {
  /** Milliseconds since the Unix epoch (the acting node's clock). */
  at: number;
  action: 'lock' | 'unlock' | 'break';
  mode: 'exclusive' | 'shared';
  /** Node that acted. */
  node: string;
  host: string;
  user: string;
}

/** Result of `fileHistory`: the committed changes (newest first), the versions this node kept, recent lock events (newest first). */
export interface FileHistory {
  path: string;
  history: HistoryEntry[];
  versions: KeptVersion[];
  locks: LockEvent[];
}

/** A conflict copy (Syncthing `.sync-conflict-…`) with the file it conflicts with. */
export interface ConflictEntry {
  /** Path of the conflict copy. */
  copy: string;
  /** Path of the original file. */
  original: string;
  /** False when the original has been deleted meanwhile. */
  originalExists: boolean;
  /** Node whose bytes the copy holds. */
  copyBy: string;
  /** Copy's mtime (ms since the Unix epoch). */
  copyModifiedAt: number;
  copySize: number;
}

/** Why a path is not synced on this node. */
export type SyncProblemKind = 'invalid-name' | 'too-long' | 'case-collision' | 'nfc' | 'symlink';

/** A path this node refuses to sync, with the reason (shown in the console's Problems section). */
export interface SyncProblem {
  path: string;
  kind: SyncProblemKind;
  reason: string;
  /** Where the path came from: this node's folder or the replicated index. */
  source: 'local' | 'remote';
  /** First refused (ms since the Unix epoch). */
  since: number;
}

export type ComputeOp = 'add' | 'sort';

/** Result of a synchronous, routed request. */
export interface RequestResult {
  op: ComputeOp;
  /** `add`: a number; `sort`: the sorted array. */
  result: number | number[];
  /** Nodes visited, in order, e.g. ["A","B","C"]. */
  route: string[];
  /** Wall-clock milliseconds from acceptance to answer. */
  durationMs: number;
}

export interface JobInfo {
  id: string;
  op: ComputeOp;
  values: number[];
  team: string | null;
  state: 'queued' | 'running' | 'done' | 'failed';
  result: number | number[] | null;
  error: WireError | null;
  route: string[];
  submittedBy: string;
  /** Milliseconds since the Unix epoch. */
  submittedAt: number;
  finishedAt: number | null;
}

/** A notable event for the console's activity log (leader changes, lock refusals, conflicts…). */
export interface ActivityEntry {
  /** Milliseconds since the Unix epoch. */
  at: number;
  level: 'info' | 'warn' | 'error';
  node: string;
  kind: 'leader' | 'node' | 'lock' | 'file' | 'conflict' | 'job' | 'error';
  message: string;
}

/**
 * The commands. Each key is a method name; `params` is its single argument and `result` what it resolves to.
 * Limits: paths ≤ 1024 chars; upload ≤ 64 MiB (base64 in JSON transports); values ≤ 100,000 numbers.
 */
export interface ControlCommands {
  status: { params: Record<string, never>; result: ClusterStatus };
  listFiles: { params: Record<string, never>; result: FileEntry[] };
  lock: { params: { path: string; mode?: 'exclusive' | 'shared'; user?: string }; result: LockInfo };
  unlock: { params: { path: string; force?: boolean }; result: { path: string; released: boolean } };
  /** Writes bytes (base64) into this node's folder atomically; the sync engine commits them. */
  upload: { params: { path: string; dataBase64: string }; result: { path: string; size: number; sha256: string } };
  deleteFile: { params: { path: string }; result: { path: string } };
  renameFile: { params: { from: string; to: string }; result: { from: string; to: string } };
  request: { params: { op: ComputeOp; values: number[]; team?: string }; result: RequestResult };
  submit: { params: { op: ComputeOp; values: number[]; team?: string }; result: JobInfo };
  listJobs: { params: Record<string, never>; result: JobInfo[] };
  activity: { params: Record<string, never>; result: ActivityEntry[] };
  /** A file's committed changes (newest first, at most 20) and the old versions this node kept. */
  fileHistory: { params: { path: string }; result: FileHistory };
  /**
   * Restores a kept version (`versionId` from `fileHistory().versions`) or, as `v<N>`, committed
   * version N when this node still stores its content, as a new local change (committed normally).
   * Errors: ELOCKED (locked by another node), ENOENT (no such version), EPATH, EINVAL.
   */
  restoreVersion: { params: { path: string; versionId: string }; result: { path: string; size: number; sha256: string } };
  /** Conflict copies in the index with their originals. */
  listConflicts: { params: Record<string, never>; result: ConflictEntry[] };
  /**
   * Settles a conflict: `keep: 'copy'` replaces the original with the copy's bytes, `'original'`
   * discards the copy; either way the copy is deleted. `path` is the conflict copy's path.
   */
  resolveConflict: { params: { path: string; keep: 'original' | 'copy' }; result: { original: string; kept: 'original' | 'copy' } };
  /** Paths this node refuses to sync (invalid or Windows-illegal names, case/NFC collisions, symlinks, too long). */
  listProblems: { params: Record<string, never>; result: SyncProblem[] };
  /**
   * Adds node `id` as a Raft learner (thesis §4.1, one server at a time); `address` is its peer
   * (gRPC) address "host:port", stored in the configuration so every member connects to it.
   * Start the node itself with `clusterdesk node --join`. Resolves once the change committed.
   */
  memberAdd: { params: { id: string; address: string }; result: MembershipChangeResult };
  /** Promotes learner `id` to voter; refused (EUNAVAILABLE) until it has caught up with the leader's log. */
  memberPromote: { params: { id: string }; result: MembershipChangeResult };
  /** Removes member `id` (voter or learner); the last voter cannot be removed. */
  memberRemove: { params: { id: string }; result: MembershipChangeResult };
  /** Transfers Raft leadership to voter `id` (thesis §3.10); resolves with the new leader. */
  leaderTransfer: { params: { id: string }; result: { leaderId: string } };
}

export type ControlMethod = keyof ControlCommands;
export type ParamsOf<M extends ControlMethod> = ControlCommands[M]['params'];
export type ResultOf<M extends ControlMethod> = ControlCommands[M]['result'];

/** Events pushed from node to console. */
export type ControlEvent =
  | { type: 'status'; status: ClusterStatus }
  | { type: 'files'; files: FileEntry[] }
  | { type: 'job'; job: JobInfo }
  | { type: 'activity'; entry: ActivityEntry };

/** Frames on every transport. `id` pairs a call with its reply. */
export type ControlFrame =
  | { kind: 'call'; id: number; method: ControlMethod; params: unknown }
  | { kind: 'result'; id: number; result: unknown }
  | { kind: 'error'; id: number; error: WireError }
  | { kind: 'event'; event: ControlEvent };

/** The API as a console uses it, whatever the transport. */
export interface ControlApi {
  call<M extends ControlMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  /** Subscribes to events; returns an unsubscribe function. */
  onEvent(listener: (event: ControlEvent) => void): () => void;
  /** Connection state changes ('connecting' | 'open' | 'closed'); returns an unsubscribe function. */
  onConnection(listener: (state: 'connecting' | 'open' | 'closed') => void): () => void;
}

/** Every method name, for validation and for the preload's allow-list. */
export const CONTROL_METHODS: readonly ControlMethod[] = [
  'status',
  'listFiles',
  'lock',
  'unlock',
  'upload',
  'deleteFile',
  'renameFile',
  'request',
  'submit',
  'listJobs',
  'activity',
  'fileHistory',
  'restoreVersion',
  'listConflicts',
  'resolveConflict',
  'listProblems',
  'memberAdd',
  'memberPromote',
  'memberRemove',
  'leaderTransfer',
] as const;
