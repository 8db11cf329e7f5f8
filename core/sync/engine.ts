/**
 * `SyncEngine`: keeps one node's synchronized folder identical to the replicated file index
 * (DESIGN "File change" and "Lock" flows, Failure rules).
 *
 * Every event — a local change seen by chokidar, a `files/` or `locks/` record seen through
 * `kv.watch`, a console upload — only schedules the path; a per-path queue then re-plans it with
 * the pure {@link planPath} from the current local bytes, the last synced state and the newest
 * index record, and carries the plan out. Work on one path is serialized; different paths run
 * in parallel up to {@link SyncEngineOptions.concurrency}.
 *
 * Guarantees:
 * - A change is committed only by `txn` guarded by the index key's modRevision (the version this
 *   folder last saw) and the lock key's modRevision; a lost race keeps the local bytes as a
 *   Syncthing-style conflict copy and takes the committed version. No bytes are lost.
 * - Remote content is verified (SHA-256) in the object store, copied to `.clusterdesk-tmp-*` in the
 *   folder, given the record's mtime and renamed into place: nothing half-written is visible.
 * - A path locked by another node is read-only (0444) locally; local edits/deletes of it are
 *   refused (conflict copy + restore) and never committed.
 * - Invalid paths (see `paths.ts`) are refused with a log line and an `error` activity entry.
 * - Without a quorum, commits fail and are retried with backoff; local work continues.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { closeSync, lstatSync, mkdirSync, openSync, readSync, renameSync, type Dirent, type Stats } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, rmdir, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { CorruptionError, errCode, LockConflictError, NotFoundError, PathError, UnavailableError, ValidationError } from '../common/errors';
import { silentLogger, type Logger } from '../common/logger';
import type { ActivityEntry, ConflictEntry, FileHistory, LockInfo, SyncProblem, SyncProblemKind } from '../control/api';
import type { ReplicatedKV, TxnResponse, WatchEvent, Watcher } from '../kv/types';
import { Hasher, type ScanFileResult } from './hasher';
import { lstatForScan, type BlocksResult } from './hash-worker';
import { assertSha256, ObjectStore } from './object-store';
import { conflictCopyName, conflictOriginal, isConflictCopy, isTemporary, normalizePath, TEMP_PREFIX } from './paths';
import { historyEntryOf, historyKey, historyPrefixOf, HISTORY_KEEP, parseHistoryEntry } from './history';
import { IGNORE_FILE, IgnoreRules } from './ignores';
import { DEFAULT_VERSIONING, VERSIONS_DIR, VersionStore, type VersioningOptions } from './versions';
import { planPath } from './planner';
import { LOCK_HISTORY_PREFIX, LOCK_PREFIX, parseLock, parseLockEvents } from '../locks/lock-manager';
import { FILES_PREFIX, parseIndexRecord, type IndexRecord } from './index-record';
import { BufferPool } from './buffer-pool';
import { SyncStateStore } from './sync-state';
import { batchBlocks, blocksOf, BlockVerifyError, decodeManifest, encodeManifest, INLINE_BLOCKS_MAX, isFullBlockSize, isSingleBlock, MIN_BLOCK_SIZE, type BlockInfo } from './blocks';

export { FILES_PREFIX, type IndexRecord } from './index-record';
/** KV prefix of file locks: `locks/<path>` → JSON `LockInfo` (written by the lock manager). */
export const LOCKS_PREFIX = LOCK_PREFIX;

/**
 * How the engine gets an object it lacks (implemented over gRPC by the node). Lower layers
 * declare the interfaces upper layers implement (Syncthing `lib/protocol`).
 */
export interface BlobFetcher {
  /**
   * Streams object `sha256` from one of `sources` (node ids, best first) into `destPath`
   * (a temp path; the engine verifies the hash afterwards). Rejects when no source has it.
   * `signal` is aborted when the engine stops; implementations should then reject promptly.
   * Resolving with `{ verified: true }` says the bytes written were hashed on the way and matched
   * `sha256`; the engine then does not hash them again. `size` is the object's size from the
   * index record (a hint: implementations may batch small objects).
   */
  fetch(sha256: string, sources: string[], destPath: string, signal?: AbortSignal, size?: number): Promise<void | { verified: boolean }>;
  /**
   * Asks node `source` for the blocks `hashes` (SHA-256 hex; at most {@link MAX_BLOCKS_PER_REQUEST}
   * per call; `bytes` is their total size, a hint for batching) in one streamed request (peer RPC
   * `GetBlocks`; implementations may merge small requests into one call). Resolves with one entry per hash, in
   * order: the bytes the peer sent (unverified: the engine checks them) or null when the peer does
   * not have that block. Rejects when the call fails (peer down, refused, aborted).
   */
  getBlocks(source: string, hashes: string[], signal?: AbortSignal, bytes?: number): Promise<(Uint8Array | null)[]>;
  /**
   * Streams the old version of `path` with content `sha256` that node `source` kept (its
   * versions folder; peer RPC `GetObject` with `path`) into `destPath`, verifying the hash on the
   * way. Rejects with NotFoundError when `source` kept no such version, UnavailableError when it
   * cannot be reached. Optional: without it, a version is restored only from this node's copies.
   */
  fetchKept?(source: string, path: string, sha256: string, destPath: string): Promise<void>;
  /**
   * Called with each block {@link getBlocks} returned once the engine is done with it (verified
   * and written, or rejected), so the implementation may reuse its buffer. Optional.
   */
  release?(data: Uint8Array): void;
}

/** Most blocks asked for in one `GetBlocks` call (the server refuses more). */
export const MAX_BLOCKS_PER_REQUEST = 256;
/** Target bytes per `GetBlocks` call made by the receiver. */
const FETCH_BATCH_BYTES = 4 << 20;
/** `GetBlocks` calls in flight per file (spread over the file's sources). */
const FETCH_CALLS_PER_FILE = 4;
/** Bytes of fetched blocks held in memory at once, across all files. */
const FETCH_BUDGET_BYTES = 64 << 20;
/**
 * Most bytes of free block buffers kept for serving peers (see {@link SyncEngine.releaseBlock}):
 * as much as a receiver keeps in flight (its fetch budget), so a bulk transfer reads every block
 * into a buffer used before. Dropped once no block was served for {@link POOL_TRIM_MS}.
 */
const SERVE_POOL_BYTES = 64 << 20;
/** How often (ms) the served-block buffer pool drops its free buffers if it sat idle meanwhile. */
const POOL_TRIM_MS = 10_000;
/** How long a file deleted by a remote change is kept (outside the folder) as a block source for a rename's create (ms). */
const HELD_MS = 120_000;
/** Partial files in the staging dir older than this are removed at start instead of resumed (ms). */
const PARTIAL_MAX_AGE_MS = 24 * 3600_000;

/** Options of {@link SyncEngine}. */
export interface SyncEngineOptions {
  /** This node's id (written as `modifiedBy`, matched against lock holders). */
  nodeId: string;
  /** This node's host name (for log lines). */
  host: string;
  /** Absolute path of the synchronized folder (created if missing). */
  folder: string;
  /** Node data directory: `objects/`, `staging/` and the synced state (`sync-state.json` and its journal, see `sync-state.ts`) live here. Must not be inside `folder`. */
  dataDir: string;
  kv: ReplicatedKV;
  fetcher: BlobFetcher;
  /** Where the engine logs, under `{ mod: 'sync' }`; the node's own bindings (its id) come with it. Default: silent. */
  logger?: Logger;
  /** Shared hasher; when absent the engine creates (and destroys on stop) its own. */
  hasher?: Hasher;
  /**
   * A file's mtime must be this old (ms) before it is hashed. Default 150. Files up to 1 MiB wait
   * at most {@link SMALL_FILE_STABILITY_MS}. Either way a file is committed only when its size and
   * mtime are the same before and after hashing.
   */
  stabilityMs?: number;
  /**
   * Full folder rescan period in ms (0 = never). A safety net for watcher events the OS or
   * chokidar drops (Syncthing rescans for the same reason). Default 60 000.
   */
  rescanIntervalMs?: number;
  /**
   * Window of the per-file log lines in ms (default {@link FILE_LOG_WINDOW_MS}): within one, the
   * first 20 committed/applied files are logged at info, the rest at debug, then one info line
   * counts them all. The window also ends at {@link SyncEngine.stop}.
   */
  fileLogWindowMs?: number;
  /** Paths reconciled at once (a path waiting for its index commit does not count). Default 64. */
  concurrency?: number;
  /** Other node ids to try as fetch sources after the record's `modifiedBy`. */
  peers?: () => string[];
  /** Receives notable events (conflicts, lock refusals, invalid paths). */
  onActivity?: (e: ActivityEntry) => void;
  /** Retention of versions kept before remote changes replace or delete a file (`versions.ts`). Default keep 5, 30 days. */
  versioning?: VersioningOptions;
}

/** Per-path state this folder holds, persisted by {@link SyncStateStore} (`<dataDir>/sync-state.json` and `sync-state.journal`). */
interface SyncedState {
  /** Content synced (null = the folder holds the tombstone, i.e. no file). */
  sha256: string | null;
  version: number;
  /** modRevision of the index record synced. */
  modRevision: number;
  /** Size and mtime of the local file when synced (skip re-hashing an unchanged file). */
  size?: number;
  mtimeMs?: number;
  /** Manifest object of the synced content (multi-block files). */
  manifest?: string;
}

interface IndexEntry {
  record: IndexRecord;
  modRevision: number;
}

interface LocalFile {
  sha256: string;
  size: number;
  mtimeMs: number;
  /** Block hashes (`blocks.ts` layout), when known. */
  blocks?: string[];
  /** Manifest object id, when known (multi-block files). */
  manifest?: string;
}

interface PendingCommit {
  path: string;
  record: IndexRecord;
  /** `record` as the index value written (JSON). */
  value: string;
  fileRev: number;
  lockRev: number;
  resolve: (r: TxnResponse) => void;
  reject: (err: unknown) => void;
}

/** How often files held read-only for another node's lock are checked for edits, in ms. */
const LOCK_POLL_MS = 500;
const IS_WINDOWS = process.platform === 'win32';
/** How long stop() waits for in-flight work (a hung fetch must not block shutdown). */
const STOP_DRAIN_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;
/** Blocks up to this size are read for a peer's `GetBlocks` on the main thread (see {@link lstatOrNull}). */
const SYNC_READ_MAX = 256 << 10;
/** Files up to this size are "small": they wait at most {@link SMALL_FILE_STABILITY_MS}. */
const SMALL_FILE = 1 << 20;
/** Stability wait (ms) for small files (their mtime age; they are also re-stated around the hash). */
export const SMALL_FILE_STABILITY_MS = 20;
/** Index commits per `txn` (group commit); at most {@link COMMITS_IN_FLIGHT} txns at once. */
const COMMIT_BATCH = 256;
// While txns commit, the next batch fills (fewer, larger Raft entries and fsyncs during a bulk
// sync; a lone edit still commits at once). One txn in flight capped a bulk add at
// COMMIT_BATCH per txn latency: with busy disks (fsync ~0.3–2 s on a loaded 2-core host) 2,000
// commits queued behind it; a few pipelined txns keep the queue short. Paths are distinct across
// txns in flight (a path's next commit waits for its previous one), so they cannot race each other.
const COMMITS_IN_FLIGHT = 4;
/**
 * While a folder scan still has paths queued, a commit batch waits up to this long (ms) for more
 * commits (or until COMMIT_BATCH are queued): scan commits arrive at the hashing rate, a few per
 * Raft round trip, and without the wait a 20,000-file scan made ~3,700 txns of ~5 records
 * (one Raft entry and one fsync each); with it, a few hundred.
 */
const COMMIT_LINGER_MS = 100;
/** Reads of a changing `.clusterdeskignore` before its bytes are taken as they are (about a second of settle waits). */
const IGNORE_SETTLE_TRIES = 50;
/** Granularity (ms) of delayed re-plans: paths due within one tick share a timer (see SyncEngine `schedule`). */
const RETRY_TICK_MS = 5;
/** Staging directory (inside dataDir) for files about to be renamed into the folder. */
const STAGING_DIR = 'staging';
/** Changes of the synced state are saved (`sync-state.ts`) at most this long (ms) after they were made (a lost save only costs re-hashing). */
const STATE_SAVE_MS = 250;
/**
 * Paths of a folder scan queued at once (the rest wait in {@link SyncEngine} `scanQueue` as plain
 * strings): a 100,000-file scan must not hold 100,000 promise chains. Larger than COMMIT_BATCH so
 * paths waiting for their group commit (which give their slot back) do not starve the hashers.
 */
const SCAN_WINDOW = 1024;
/** Unchanged-file checks in flight during a scan (lstat in the hash workers, batched: enough to fill several batches). */
const SCAN_STAT_PARALLEL = 256;
/**
 * Per-file log lines (committed / applied, ms window): the first {@link FILE_LOG_BURST} of each
 * window are logged at info with their path, the rest at debug, and a window that had more ends
 * with one info line counting them all (a bulk copy of 100,000 files is not 100,000 info lines).
 */
const FILE_LOG_WINDOW_MS = 2_000;
const FILE_LOG_BURST = 20;
/**
 * Least time (ms) between two of chokidar's re-listings of one directory while events arrive in
 * it (see {@link coalesceListings}). Only a new subdirectory or symlink in a directory listed less
 * than this long ago waits for it (files in a new subdirectory are found by its first listing);
 * files are planned from the raw events at once. Syncthing's watcher waits 10 s by default.
 */
const RELIST_COALESCE_MS = 500;

/** Thrown inside a reconcile to re-run it (file still changing, lost txn race). */
class Replan extends Error {
  constructor(readonly delayMs: number) {
    super('replan');
  }
}

/** The Problems-list category of a refusal, from its PathError message. */
function problemKind(message: string): SyncProblemKind {
  if (/symbolic link/.test(message)) return 'symlink';
  if (/letter case/.test(message)) return 'case-collision';
  if (/NFC/.test(message)) return 'nfc';
  if (/longer than/.test(message)) return 'too-long';
  return 'invalid-name';
}

/** The block hashes a multi-block file's index record carries itself (at most {@link INLINE_BLOCKS_MAX}), or undefined. */
function inlineList(local: { size: number; blocks?: string[] }): string[] | undefined {
  return local.blocks && !isSingleBlock(local.size) && local.blocks.length <= INLINE_BLOCKS_MAX ? local.blocks : undefined;
}

/**
 * The blocks of a record that carries its block list (`IndexRecord.blocks`), after checking that
 * the list is the manifest the record names (SHA-256 of its encoding equals `rec.manifest`).
 * @throws ValidationError when the list does not fit the size or is not that manifest
 */
function inlineBlocks(rec: IndexRecord): BlockInfo[] {
  const hashes = rec.blocks ?? [];
  const text = encodeManifest(rec.size, hashes); // validates count and hashes against the size
  if (createHash('sha256').update(text).digest('hex') !== rec.manifest) {
    throw new ValidationError(`index record of ${rec.path}: its block list is not the manifest ${String(rec.manifest).slice(0, 12)}…`, { detail: { path: rec.path } });
  }
  return blocksOf(rec.size, hashes);
}

/**
 * lstat on the calling thread; null when the path cannot be stat'ed (missing, not a directory…).
 * The per-file metadata calls of a sync run synchronously: each async call is a round trip through
 * libuv's thread pool that cost several times the syscall itself in CPU (measured ~70–200 µs vs
 * ~16 µs per lstat on a 2-core host), which capped a bulk sync of small files.
 */
function lstatOrNull(path: string): Stats | null {
  try {
    // throwIfNoEntry: a missing file (the usual case for a file about to be received) costs no exception.
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** Keeps one folder in sync with the replicated index. See the module doc. */
export class SyncEngine {
  /** This node's content-addressed store; the node serves peers' block requests from it. */
  readonly objects: ObjectStore;
  private readonly opts: SyncEngineOptions;
  private readonly log: Logger;
  private readonly folder: string;
  /** `folder` with a trailing separator. */
  private readonly folderPrefix: string;
  /** Absolute path of the data directory. */
  private readonly dataDirAbs: string;
  private hasher: Hasher | null;
  private readonly ownsHasher: boolean;
  private readonly stabilityMs: number;
  private readonly concurrency: number;

  private readonly index = new Map<string, IndexEntry>();
  /** Index paths by lower-cased path (for the case-collision check without scanning the index). */
  private readonly folded = new Map<string, string | Set<string>>(); // a Set only for names that collide (rare)
  private readonly locks = new Map<string, { info: LockInfo; modRevision: number }>();
  private readonly state = new Map<string, SyncedState>();
  private readonly hashCache = new Map<string, LocalFile>();
  private readonly readOnlyByUs = new Set<string>();
  private lockPollTimer: ReturnType<typeof setInterval> | null = null;
  /** Paths refused (not synced), with the reason: the console's Problems list. */
  private readonly refusedPaths = new Map<string, SyncProblem>();
  /** `.clusterdeskignore` plus built-in defaults. */
  private readonly ignoreRules = new IgnoreRules();
  /** Ignored paths whose remote change was already logged (path → index modRevision). */
  private readonly ignoredLogged = new Map<string, number>();
  /** Paths refused during the running folder scan (to forget problems that went away). */
  private scanSeen: Set<string> | null = null;
  private ignoreReload: Promise<void> = Promise.resolve();
  /** Text of `.clusterdeskignore` the rules were loaded from (null: no file; undefined: not loaded yet). */
  private ignoreText: string | null | undefined = undefined;
  /** Kept versions (Syncthing simple versioning). */
  readonly versions: VersionStore;

  private readonly pending = new Set<string>();
  /** The index value (record JSON) each path's commit in flight is writing (see {@link onFileEvent}). */
  private readonly committing = new Map<string, string>();
  private readonly chains = new Map<string, Promise<void>>();
  /** Paths found by a folder scan, not yet scheduled (fed into `chains` by {@link pumpScan}; insertion order). */
  private readonly scanQueue = new Set<string>();
  /** Where {@link pumpScan} is in `scanQueue` (null: start at its first entry). */
  private scanIter: Iterator<string> | null = null;
  private readonly retryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Shared timers of {@link schedule}'s delayed paths, by due time (ms, a multiple of RETRY_TICK_MS). */
  private readonly retryDue = new Map<string, number>();
  /** Watcher events: absolute path → when the plan they scheduled is due (later events until then are covered by it). */
  private readonly eventDue = new Map<string, number>();
  private readonly retryBuckets = new Map<number, { timer: ReturnType<typeof setTimeout>; paths: Set<string> }>();
  private readonly settleTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Re-listings of directories chokidar reported as new (see {@link rescanDirSoon}). */
  private readonly dirTimers = new Set<ReturnType<typeof setTimeout>>();
  private rescanTimer: ReturnType<typeof setInterval> | null = null;
  private readonly rescanIntervalMs: number;
  private readonly attempts = new Map<string, number>();
  private active = 0;
  private readonly slotWaiters: (() => void)[] = [];

  private readonly changeListeners = new Set<(paths: string[]) => void>();
  private watcher: FSWatcher | null = null;
  private kvWatches: Watcher[] = [];
  private running = false;
  private abort = SyncEngine.newAbort();
  private stateWrite: Promise<void> = Promise.resolve();
  /** `state` and `readOnlyByUs` on disk (snapshot + journal of changes). */
  private readonly stateStore: SyncStateStore<SyncedState>;
  private stateTimer: ReturnType<typeof setTimeout> | null = null;
  /** Per-file outcomes of the current log window; see {@link FILE_LOG_WINDOW_MS}. */
  private readonly fileTally = { committed: 0, committedDeletes: 0, applied: 0, appliedDeletes: 0 };
  private fileTallyTimer: ReturnType<typeof setTimeout> | null = null;
  private fileTallyStart = 0;
  private readonly commitQueue: PendingCommit[] = [];
  private commitsInFlight = 0;
  private commitFlushScheduled = false;
  private commitLinger: ReturnType<typeof setTimeout> | null = null;
  private readonly stagingDir: string;
  /** True when the staging dir and the folder are on one filesystem (rename works between them). */
  private stageOutside = false;
  /** Local block sources: block hash → a file (absolute path) holding it at an offset. */
  private readonly blockAt = new Map<string, { abs: string; offset: number; size: number }>();
  /** Blocks indexed per absolute path (to drop them when the file changes or goes). */
  private readonly blocksOfAbs = new Map<string, BlockInfo[]>();
  /** Files removed by remote deletes, kept in the staging dir as block sources for a while: path → timer. */
  private readonly held = new Map<string, ReturnType<typeof setTimeout>>();
  /** Partial file being built per folder path (removed when a newer version replaces it). */
  private readonly partials = new Map<string, string>();
  /** Blocks being fetched right now, by hash: settles when that fetch ends (then {@link blockAt} says where the block landed). */
  private readonly inflight = new Map<string, Promise<void>>();
  /**
   * Other partial files waiting for a block in {@link inflight}, by hash: the fetching transfer
   * writes the block there too as it lands (verified once, no copy read back and hashed again
   * afterwards), then calls `done`. Entries are taken by the write that serves them and dropped
   * when that block's fetch ends.
   */
  private readonly fanout = new Map<string, { part: string; offset: number; done: () => void }[]>();
  private poolTrimTimer: ReturnType<typeof setInterval> | null = null;
  /** Buffers of full blocks served to peers, read into again once sent (see {@link releaseBlock}). */
  private readonly servePool = new BufferPool({ maxBytes: SERVE_POOL_BYTES, alloc: (n) => Buffer.allocUnsafeSlow(n).buffer as ArrayBuffer });
  /** Copies reading from a partial file right now, by partial path: its rename into place waits for them. */
  private readonly partReaders = new Map<string, { n: number; drained: (() => void)[] }>();
  /** Partial files being renamed into place: settles once their blocks are indexed under the final name. */
  private readonly closing = new Map<string, Promise<void>>();
  private fetchBudget = FETCH_BUDGET_BYTES;
  private readonly budgetWaiters: (() => void)[] = [];
  /** Transfer counters since start (bytes): fetched from peers, copied from local files, reused from a partial file, and written by a fetch into other partial files waiting for the same blocks (`sharedWriteBytes`, not read back). */
  readonly transferStats = { fetchedBytes: 0, copiedBytes: 0, resumedBytes: 0, rejectedBlocks: 0, sharedWriteBytes: 0 };

  /** The engine's stop signal: every in-flight fetch listens to it (more than Node's default 10 listeners). */
  private static newAbort(): AbortController {
    const c = new AbortController();
    setMaxListeners(0, c.signal);
    return c;
  }

  constructor(options: SyncEngineOptions) {
    this.opts = options;
    this.folder = resolve(options.folder);
    this.folderPrefix = this.folder.endsWith(sep) ? this.folder : this.folder + sep;
    this.dataDirAbs = resolve(options.dataDir);
    this.log = (options.logger ?? silentLogger).child({ mod: 'sync' });
    this.ownsHasher = !options.hasher;
    this.hasher = options.hasher ?? null;
    this.stabilityMs = options.stabilityMs ?? 150;
    this.concurrency = Math.max(1, options.concurrency ?? 64);
    this.stagingDir = join(options.dataDir, STAGING_DIR);
    this.stateStore = new SyncStateStore<SyncedState>(options.dataDir, options.nodeId);
    this.rescanIntervalMs = options.rescanIntervalMs ?? 60_000;
    this.objects = new ObjectStore(options.dataDir, (p) => this.hash(p));
    this.versions = new VersionStore(this.folder, options.versioning ?? DEFAULT_VERSIONING, this.log.child({ part: 'versions' }));
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Starts syncing: loads the synced state (`sync-state.ts`), reads the index and locks, starts the folder watcher,
   * scans the folder and schedules every known path (offline local changes get committed,
   * missing or outdated files fetched), then follows `kv.watch`. Resolves once the scan is
   * scheduled; use {@link idle} to wait for the backlog to drain.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.startInner();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private async startInner(): Promise<void> {
    await mkdir(this.folder, { recursive: true });
    await mkdir(this.opts.dataDir, { recursive: true });
    await this.objects.init();
    await this.cleanStaging();
    this.stageOutside = (await stat(this.folder)).dev === (await stat(this.stagingDir)).dev;
    if (!this.hasher) this.hasher = new Hasher();
    await this.loadState();
    await this.loadIgnores();
    await this.resyncKv();
    await this.startFolderWatcher();
    this.lockPollTimer = setInterval(() => this.pollLockedFiles(), LOCK_POLL_MS);
    this.lockPollTimer.unref?.();
    this.poolTrimTimer = setInterval(() => this.servePool.trimIdle(), POOL_TRIM_MS);
    this.poolTrimTimer.unref?.();
    const local = await this.scanFolder();
    await this.enqueueScan(local);
    if (this.rescanIntervalMs > 0) {
      this.rescanTimer = setInterval(() => this.periodicRescan(), this.rescanIntervalMs);
      this.rescanTimer.unref?.();
    }
    this.scansCompleted++;
    void this.versions.pruneAll().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not prune kept versions'));
    this.log.info({ folder: this.folder, files: local.length, indexed: this.index.size }, 'sync engine started');
  }

  /** Stops watching, waits for in-flight work, persists state. The engine can be started again. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const w of this.kvWatches) w.cancel();
    this.kvWatches = [];
    for (const t of [...this.retryTimers.values(), ...this.settleTimers.values(), ...this.dirTimers]) clearTimeout(t);
    this.dirTimers.clear();
    this.retryTimers.clear();
    this.retryBuckets.clear();
    this.retryDue.clear();
    this.eventDue.clear();
    this.settleTimers.clear();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = null;
    if (this.lockPollTimer) clearInterval(this.lockPollTimer);
    this.lockPollTimer = null;
    if (this.poolTrimTimer) clearInterval(this.poolTrimTimer);
    this.poolTrimTimer = null;
    this.servePool.trimIdle();
    this.servePool.trimIdle(); // twice: drops every free buffer
    await this.watcher?.close();
    this.watcher = null;
    this.abort.abort();
    const drained = await Promise.race([this.drain().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), STOP_DRAIN_MS).unref?.())]);
    if (!drained) this.log.warn({ backlog: this.backlog() }, `in-flight sync work did not finish within ${STOP_DRAIN_MS} ms of stop`);
    this.abort = SyncEngine.newAbort();
    this.pending.clear();
    this.scanQueue.clear();
    this.scanIter = null;
    for (const [p, t] of this.held) {
      clearTimeout(t);
      await rm(p, { force: true }).catch(() => undefined);
    }
    this.held.clear();
    this.blockAt.clear();
    this.blocksOfAbs.clear();
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.stateTimer = null;
    await this.saveState();
    this.logFileTally();
    if (this.ownsHasher) {
      await this.hasher?.destroy();
      this.hasher = null;
    }
    this.log.info('sync engine stopped');
  }

  /** Resolves when no path is queued, running or waiting for a retry. */
  async idle(): Promise<void> {
    while (this.chains.size > 0 || this.retryTimers.size > 0 || this.scanQueue.size > 0) {
      if (this.chains.size > 0) await this.drain();
      else await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Paths still to commit, download or retry (the console's `syncBacklog`). */
  backlog(): number {
    // Every pending path also has a chain; only retry timers can add paths (O(retries), not O(files)).
    let n = this.chains.size + this.scanQueue.size;
    for (const p of this.retryTimers.keys()) if (!this.chains.has(p) && !this.scanQueue.has(p)) n++;
    return n;
  }

  /** Live (not deleted) files in the index this engine has seen (the `clusterdesk_sync_indexed_files` gauge). */
  indexedFiles(): number {
    let n = 0;
    for (const e of this.index.values()) if (!e.record.deleted) n++;
    return n;
  }

  /**
   * Full folder scans finished since this process started (startup and periodic rescans): a scan
   * has walked the folder and scheduled every path, so once this grows and {@link backlog} is 0
   * every change made while the app was closed has been committed.
   */
  scansCompleted = 0;
  private rescanning = false;

  /** Per path: the index version this folder holds (a tombstone's version once deleted here), or null when it holds none yet. */
  localVersions(): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const p of this.index.keys()) out[p] = null;
    for (const [p, s] of this.state) out[p] = s.version;
    return out;
  }

  /** The newest index records this engine has seen, by path (tombstones included). */
  indexRecords(): IndexRecord[] {
    return [...this.index.values()].map((e) => e.record);
  }

  /** Subscribes to "files changed" (paths whose index record or local copy changed). Returns an unsubscribe function. */
  onChange(listener: (paths: string[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  // ---------------------------------------------------------------- console operations

  /**
   * Writes `bytes` to `path` in the folder atomically (temp file + rename); the engine then commits it.
   * @throws PathError for an invalid path, LockConflictError when another node holds its lock
   */
  async writeLocal(path: string, bytes: Uint8Array): Promise<{ path: string; size: number; sha256: string }> {
    const p = normalizePath(path);
    if (!this.running) throw new UnavailableError(`cannot write ${p}: the sync engine is not running (it starts once the node has joined the cluster); retry shortly`);
    this.assertNotLocked(p);
    const abs = this.abs(p);
    await mkdir(dirname(abs), { recursive: true });
    const tmp = join(dirname(abs), TEMP_PREFIX + randomBytes(6).toString('hex'));
    try {
      await writeFile(tmp, bytes);
      const h = await this.hash(tmp);
      await rename(tmp, abs);
      this.schedule(p);
      this.settleCheck(p);
      return { path: p, size: h.size, sha256: h.sha256 };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Deletes `path` from the folder; the engine then commits a tombstone.
   * @throws PathError, LockConflictError, NotFoundError when the file does not exist
   */
  async deleteLocal(path: string): Promise<void> {
    const p = normalizePath(path);
    this.assertNotLocked(p);
    try {
      await rm(this.abs(p));
    } catch (err) {
      if (errCode(err) === 'ENOENT') throw new NotFoundError(`no such file: ${p}`);
      throw err;
    }
    this.schedule(p);
  }

  /**
   * Renames a file in the folder (a delete plus a create; peers find the content in their object store).
   * @throws PathError, LockConflictError (either path), NotFoundError (no source), ValidationError (target exists)
   */
  async renameLocal(from: string, to: string): Promise<void> {
    const a = normalizePath(from);
    const b = normalizePath(to);
    this.assertNotLocked(a);
    this.assertNotLocked(b);
    const st = await lstat(this.abs(a)).catch(() => null);
    if (!st || !st.isFile()) throw new NotFoundError(`no such file: ${a}`);
    if (await lstat(this.abs(b)).catch(() => null)) throw new ValidationError(`target already exists: ${b}`);
    await mkdir(dirname(this.abs(b)), { recursive: true });
    await rename(this.abs(a), this.abs(b));
    this.schedule(a);
    this.schedule(b);
    this.settleCheck(b);
  }

  /**
   * A file's committed changes (newest first; at most {@link HISTORY_KEEP}, from the KV history
   * written with each commit), the old versions this node kept, and its recent lock events
   * (newest first, written by the lock manager).
   * @throws PathError for an invalid path
   */
  async fileHistory(path: string): Promise<FileHistory> {
    const p = normalizePath(path);
    const r = await this.opts.kv.range(historyPrefixOf(p), { prefix: true });
    const history = r.kvs
      .map((kv) => parseHistoryEntry(kv))
      .filter((e): e is NonNullable<typeof e> => !!e && e.path === p)
      .sort((a, b) => b.version - a.version);
    const locks = parseLockEvents((await this.opts.kv.range(LOCK_HISTORY_PREFIX + p)).kvs[0]).reverse();
    return { path: p, history, versions: await this.versions.list(p), locks };
  }

  /**
   * Restores an old version of `path` as a new local change (written atomically, then committed
   * like any edit, so a concurrent change elsewhere yields a conflict copy). `versionId` is a kept
   * version's id (`YYYYMMDD-HHMMSS[-N]`, see {@link VersionStore}) or `v<N>` for committed version N
   * (from the file's history): its bytes come from a version this node kept with that SHA-256,
   * else from one another node that is up kept (peer RPC `GetObject` with the path; the node
   * that wrote the next version keeps none, the nodes that received that change do), verified
   * against the history's SHA-256 before anything is replaced.
   * @throws PathError, LockConflictError (locked by another node), NotFoundError (no such version,
   *   or no node that is up holds its content; `detail.tried` lists each node's answer),
   *   ValidationError (malformed id, or `v<N>` names a delete), CorruptionError (a copy whose bytes
   *   are not that version's)
   */
  async restoreVersion(path: string, versionId: string): Promise<{ path: string; size: number; sha256: string }> {
    const p = normalizePath(path);
    this.assertNotLocked(p);
    if (this.ignoreRules.ignores(p)) throw new ValidationError(`${p} is ignored (${IGNORE_FILE} or a built-in default); it is not synced`);
    let source: string | null = null;
    let sha256: string | null = null;
    /** A copy fetched from a peer (removed at the end). */
    let fetched: string | null = null;
    const m = /^v([1-9]\d{0,14})$/.exec(versionId);
    if (m) {
      const version = Number(m[1]);
      const entry = (await this.fileHistory(p)).history.find((h) => h.version === version);
      if (!entry) throw new NotFoundError(`no history entry for version ${version} of ${p}`);
      if (entry.deleted) throw new ValidationError(`version ${version} of ${p} is a delete; there are no bytes to restore`);
      // The bytes of a committed version live on in a kept version (or, for content fetched before
      // block-level transfer, in the object store); look for them by hash, here first.
      source = await this.keptVersionFile(p, entry.sha256);
      sha256 = entry.sha256;
      if (!source && !this.objects.has(entry.sha256)) {
        // The writer of the next version keeps no copy of what it replaced; the nodes that received
        // that change did. Ask each node believed up, in turn.
        const peers = (this.opts.peers?.() ?? []).filter((n) => n !== this.opts.nodeId);
        const tried: string[] = [];
        const fetchKept = this.opts.fetcher.fetchKept?.bind(this.opts.fetcher);
        if (fetchKept && peers.length > 0) {
          await mkdir(this.opts.dataDir, { recursive: true });
          for (const peer of peers) {
            const dest = join(this.opts.dataDir, `fetch-version-${randomBytes(6).toString('hex')}`);
            try {
              await fetchKept(peer, p, entry.sha256, dest);
              fetched = dest;
              break;
            } catch (err) {
              await rm(dest, { force: true });
              tried.push(`${peer}: ${(err as Error).message}`);
            }
          }
        }
        if (!fetched) {
          throw new NotFoundError(`no copy of version ${version} of ${p} was found: this node kept none, and ${peers.length === 0 ? 'no other node is up' : `no other node that is up kept one (${tried.join('; ') || 'not asked'})`}. A node keeps the bytes another node's change replaced or deleted in its ${VERSIONS_DIR} folder.`, { detail: { tried } });
        }
        source = fetched;
      }
    } else {
      source = await this.versions.fileOfVersion(p, versionId);
    }
    const abs = this.abs(p);
    await this.assertNoSymlinkedParent(p);
    await mkdir(dirname(abs), { recursive: true });
    const tmp = join(dirname(abs), TEMP_PREFIX + randomBytes(6).toString('hex'));
    try {
      if (source) await copyFile(source, tmp);
      else await this.objects.copyTo(sha256!, tmp);
      await chmod(tmp, 0o644);
      const h = await this.hash(tmp);
      // A committed version's bytes must be exactly that version (a peer's copy is not trusted).
      if (sha256 && h.sha256 !== sha256) throw new CorruptionError(`the copy of version ${versionId.slice(1)} of ${p} hashes to ${h.sha256}, not ${sha256}; nothing was restored`, { detail: { expected: sha256, got: h.sha256 } });
      if (await lstat(abs).catch(() => null)) await this.versions.keep(p, abs); // the bytes being replaced stay restorable
      await rename(tmp, abs);
      this.hashCache.delete(p);
      this.schedule(p);
      this.settleCheck(p);
      const msg = `restored ${p} from ${m ? `version ${versionId.slice(1)}` : `the version kept at ${versionId}`}`;
      this.log.info({ path: p, versionId }, msg);
      this.activity('info', 'file', msg);
      return { path: p, size: h.size, sha256: h.sha256 };
    } finally {
      await rm(tmp, { force: true });
      if (fetched) await rm(fetched, { force: true });
    }
  }

  /**
   * The file of a version of `path` this node kept whose content hashes to `sha256`, or null
   * (for peers restoring a committed version: peer RPC `GetObject` with `path`).
   * @throws PathError for an invalid path
   */
  async keptVersionFile(path: string, sha256: string): Promise<string | null> {
    const p = normalizePath(path);
    for (const v of await this.versions.list(p)) {
      const file = await this.versions.fileOfVersion(p, v.id);
      const st = await lstat(file).catch(() => null);
      if (!st?.isFile()) continue;
      if ((await this.hash(file).catch(() => null))?.sha256 === sha256) return file;
    }
    return null;
  }

  /** Conflict copies (live in the index) with their originals, newest first. */
  listConflicts(): ConflictEntry[] {
    const out: ConflictEntry[] = [];
    for (const [path, e] of this.index) {
      if (e.record.deleted || !isConflictCopy(path)) continue;
      const original = conflictOriginal(path);
      if (!original) continue;
      const o = this.index.get(original);
      out.push({ copy: path, original, originalExists: !!o && !o.record.deleted, copyBy: e.record.modifiedBy, copyModifiedAt: e.record.modifiedAt, copySize: e.record.size });
    }
    return out.sort((a, b) => b.copyModifiedAt - a.copyModifiedAt || a.copy.localeCompare(b.copy));
  }

  /**
   * Settles a conflict. `keep: 'copy'` writes the copy's bytes over the original (the original's
   * bytes are kept as a version) and deletes the copy; `keep: 'original'` deletes the copy. Both
   * changes are committed normally.
   * @param copyPath path of the conflict copy
   * @throws PathError, ValidationError (not a conflict copy), NotFoundError (copy not in this folder), LockConflictError
   */
  async resolveConflict(copyPath: string, keep: 'original' | 'copy'): Promise<{ original: string; kept: 'original' | 'copy' }> {
    const copy = normalizePath(copyPath);
    const original = isConflictCopy(copy) ? conflictOriginal(copy) : null;
    if (!original) throw new ValidationError(`${copy} is not a conflict copy (name.sync-conflict-YYYYMMDD-HHMMSS-<node>.ext)`);
    this.assertNotLocked(copy);
    this.assertNotLocked(original);
    await this.assertNoSymlinkedParent(copy);
    await this.assertNoSymlinkedParent(original);
    const st = await lstat(this.abs(copy)).catch(() => null);
    if (!st || !st.isFile()) throw new NotFoundError(`no such conflict copy in this folder: ${copy}`);
    if (keep === 'copy') {
      const abs = this.abs(original);
      await mkdir(dirname(abs), { recursive: true });
      const tmp = join(dirname(abs), TEMP_PREFIX + randomBytes(6).toString('hex'));
      try {
        await copyFile(this.abs(copy), tmp);
        await chmod(tmp, 0o644);
        if (await lstat(abs).catch(() => null)) await this.versions.keep(original, abs);
        await rename(tmp, abs);
      } finally {
        await rm(tmp, { force: true });
      }
      this.hashCache.delete(original);
      this.schedule(original);
      this.settleCheck(original);
    }
    await rm(this.abs(copy), { force: true });
    this.hashCache.delete(copy);
    this.schedule(copy);
    const msg = keep === 'copy' ? `resolved conflict on ${original}: kept the copy ${copy}` : `resolved conflict on ${original}: kept the original, removed ${copy}`;
    this.log.info({ original, copy, keep }, msg);
    this.activity('info', 'conflict', msg);
    return { original, kept: keep };
  }

  /** Paths this node refuses to sync, with the reason (invalid names, collisions, symlinks, too long). */
  listProblems(): SyncProblem[] {
    return [...this.refusedPaths.values()].sort((a, b) => a.path.localeCompare(b.path));
  }

  /** The user patterns of `.clusterdeskignore` in effect. */
  ignorePatterns(): string[] {
    return this.ignoreRules.patterns();
  }

  private hash(path: string): Promise<LocalFile> {
    if (!this.hasher) return Promise.reject(new UnavailableError('the sync engine is not running (it starts once the node has joined the cluster, and stops with it); retry shortly'));
    return this.hasher.hash(path);
  }

  /** Renames a finished temp file into place; falls back to in-folder temps if the filesystems differ after all. */
  private async placeFile(tmp: string, abs: string): Promise<void> {
    try {
      try {
        renameSync(tmp, abs);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
        mkdirSync(dirname(abs), { recursive: true }); // the file's directory is new (or was removed meanwhile)
        renameSync(tmp, abs);
      }
    } catch (err) {
      if (errCode(err) === 'EXDEV' && this.stageOutside) {
        this.stageOutside = false;
        throw new Replan(1);
      }
      throw err;
    }
  }

  /**
   * Makes the local file's block list available to peers: for a multi-block file, stores its
   * manifest object (peers fetch it by the hash the index record carries) and returns its id;
   * undefined for a file of at most one block. A file of at most {@link INLINE_BLOCKS_MAX} blocks
   * gets its id only: its record carries the list itself (IndexRecord.blocks). The file's bytes
   * stay in the folder: peers' block requests are served from there ({@link readBlock}) and
   * verified by the receiver.
   * @throws Replan when the block hashes are unknown (re-hash the file)
   */
  private async storeLocal(path: string, local: LocalFile): Promise<string | undefined> {
    if (isSingleBlock(local.size)) return undefined;
    const inline = inlineList(local) !== undefined;
    if (local.manifest && (inline || this.objects.has(local.manifest))) return local.manifest;
    if (!local.blocks) {
      this.hashCache.delete(path);
      const st = this.state.get(path);
      if (st) delete st.mtimeMs; // forces a re-hash
      throw new Replan(1);
    }
    const text = encodeManifest(local.size, local.blocks);
    const id = createHash('sha256').update(text).digest('hex');
    // A list short enough to ride in the index record (IndexRecord.blocks) needs no object.
    if (!inline && !this.objects.has(id)) {
      const tmp = this.objects.tempPath();
      await writeFile(tmp, text);
      await this.objects.adoptVerified(tmp, id);
    }
    local.manifest = id;
    return id;
  }

  // ---------------------------------------------------------------- blocks

  /** Records that `abs` holds `blocks` (replacing what was recorded for it). */
  private indexBlocks(abs: string, blocks: BlockInfo[]): void {
    this.unindexBlocks(abs);
    this.blocksOfAbs.set(abs, blocks);
    for (const b of blocks) this.blockAt.set(b.hash, { abs, offset: b.offset, size: b.size });
  }

  private unindexBlocks(abs: string): void {
    const old = this.blocksOfAbs.get(abs);
    if (!old) return;
    this.blocksOfAbs.delete(abs);
    for (const b of old) if (this.blockAt.get(b.hash)?.abs === abs) this.blockAt.delete(b.hash);
  }

  /** Indexes a local file's blocks from its hashes, or from its manifest when only that is known. */
  private async indexLocal(path: string, local: LocalFile): Promise<void> {
    const abs = this.abs(path);
    const cur = this.blocksOfAbs.get(abs);
    if (local.size === 0) return this.indexBlocks(abs, []);
    if (isSingleBlock(local.size)) {
      if (cur?.length !== 1 || cur[0]!.hash !== local.sha256) this.indexBlocks(abs, [{ offset: 0, size: local.size, hash: local.sha256 }]);
      return;
    }
    if (local.blocks) {
      const hashes = local.blocks;
      const same = cur !== undefined && cur.length === hashes.length && cur.every((blk, i) => blk.hash === hashes[i] && blk.offset + blk.size <= local.size);
      if (!same) this.indexBlocks(abs, blocksOf(local.size, hashes));
      return;
    }
    const rec = this.index.get(path)?.record;
    if (!cur && rec?.blocks && rec.sha256 === local.sha256 && rec.size === local.size) {
      try {
        return this.indexBlocks(abs, inlineBlocks(rec));
      } catch (err) {
        this.log.warn({ path, err: (err as Error).message }, 'block list in the index record is invalid; blocks of this file are not offered');
        return;
      }
    }
    if (cur || !local.manifest || !this.objects.has(local.manifest)) return;
    try {
      this.indexBlocks(abs, decodeManifest(await readFile(this.objects.pathOf(local.manifest), 'utf8'), local.size));
    } catch (err) {
      this.log.warn({ path, err: (err as Error).message }, 'stored manifest unreadable; blocks of this file are not offered');
    }
  }

  /**
   * A buffer for a block of `size` bytes read for a peer, with `headroom` bytes before it: with
   * room, a buffer of its own (not a slice of Node's shared pool) so the caller may write into
   * that room; a full block ({@link isFullBlockSize}: every block but a file's last) comes from
   * {@link servePool}.
   */
  private blockBuffer(size: number, headroom: number): Buffer {
    if (headroom === 0) return Buffer.allocUnsafe(size);
    if (isFullBlockSize(size)) return Buffer.from(this.servePool.take(headroom + size), headroom, size);
    return Buffer.allocUnsafeSlow(headroom + size).subarray(headroom);
  }

  /**
   * Hands back a block {@link readBlock} returned, once its bytes have been written to the
   * connection and nothing reads it any more: a full block's buffer is then read into again for
   * a later request instead of a fresh one (memory fresh from the OS costs a page fault per
   * 4 KiB). Any other buffer, or one handed back before, is ignored.
   */
  releaseBlock(data: Uint8Array): void {
    if (data.buffer instanceof ArrayBuffer) this.servePool.give(data.buffer);
  }

  /** Blocks other partial files wait to have written into them by a fetch in progress (see `fanout`; for status and tests). */
  get sharedWritesWaiting(): number {
    let n = 0;
    for (const regs of this.fanout.values()) n += regs.length;
    return n;
  }

  /** Buffers of served blocks read into again instead of allocated (see {@link releaseBlock}). */
  get servedBlockBuffersReused(): number {
    return this.servePool.reused;
  }

  /**
   * Bytes of block `hash` for a peer's `GetBlocks`, read from the local file that holds it; null
   * when this node has no such block. Not verified here: the receiver checks every block's hash.
   * With `headroom` (bytes, 0–64), the block is read into a buffer of `headroom` + its size, its
   * own until handed back with {@link releaseBlock} (or dropped), and returned as the view past
   * that room, which the caller may write its framing into.
   * @throws ValidationError for a malformed hash or headroom
   */
  async readBlock(hash: string, headroom = 0): Promise<Uint8Array | null> {
    assertSha256(hash);
    if (!Number.isInteger(headroom) || headroom < 0 || headroom > 64) throw new ValidationError(`readBlock: headroom must be an integer 0–64, got ${headroom}`);
    const loc = this.blockAt.get(hash);
    if (!loc) return null;
    if (loc.size <= SYNC_READ_MAX) return this.readBlockSync(loc, headroom);
    let fh;
    try {
      fh = await open(loc.abs, 'r');
    } catch {
      return null;
    }
    try {
      const buf = this.blockBuffer(loc.size, headroom);
      let got = 0;
      while (got < loc.size) {
        const { bytesRead } = await fh.read(buf, got, loc.size - got, loc.offset + got);
        if (bytesRead === 0) return null; // the file shrank: not this block any more
        got += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  /** {@link readBlock} of a small block on the calling thread (open, read, close: no thread-pool round trips). */
  private readBlockSync(loc: { abs: string; offset: number; size: number }, headroom: number): Uint8Array | null {
    let fd: number;
    try {
      fd = openSync(loc.abs, 'r');
    } catch {
      return null;
    }
    try {
      const buf = this.blockBuffer(loc.size, headroom);
      let got = 0;
      while (got < loc.size) {
        const n = readSync(fd, buf, got, loc.size - got, loc.offset + got);
        if (n === 0) return null; // the file shrank: not this block any more
        got += n;
      }
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  /** The block list of `rec` (a one-block file's hash, the list the record carries, or its manifest, fetched from `sources` when missing locally). */
  private async blockList(rec: IndexRecord, sources: string[]): Promise<BlockInfo[]> {
    if (rec.size === 0) return [];
    if (isSingleBlock(rec.size) || !rec.manifest) {
      if (!isSingleBlock(rec.size)) throw new ValidationError(`index record of ${rec.path} (${rec.size} bytes) has no block manifest`);
      return [{ offset: 0, size: rec.size, hash: rec.sha256 }];
    }
    if (rec.blocks) return inlineBlocks(rec);
    if (!this.objects.has(rec.manifest)) {
      const tmp = this.objects.tempPath();
      let verified = false;
      try {
        const r = await this.opts.fetcher.fetch(rec.manifest, sources, tmp, this.abort.signal);
        verified = !!r && r.verified === true;
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      if (verified) await this.objects.adoptVerified(tmp, rec.manifest);
      else await this.objects.adopt(tmp, rec.manifest);
    }
    return decodeManifest(await readFile(this.objects.pathOf(rec.manifest), 'utf8'), rec.size);
  }

  private async takeBudget(bytes: number): Promise<void> {
    const want = Math.min(bytes, FETCH_BUDGET_BYTES);
    while (this.fetchBudget < want) await new Promise<void>((r) => this.budgetWaiters.push(r));
    this.fetchBudget -= want;
  }

  private giveBudget(bytes: number): void {
    this.fetchBudget += Math.min(bytes, FETCH_BUDGET_BYTES);
    for (const w of this.budgetWaiters.splice(0)) w();
  }

  /**
   * Builds version `rec` of `path` in a partial file (Syncthing's temp-file puller): blocks the
   * partial already holds (an interrupted transfer) are kept, blocks any local file holds are
   * copied (verified), the rest are fetched from `sources` with `GetBlocks`, several calls in
   * parallel over different sources, each block verified before it is written. Returns the
   * partial's path (complete, size `rec.size`). On failure the partial is kept for the retry.
   * @throws BlockVerifyError when a block could not be had intact from any source; UnavailableError when no source has it
   */
  private async buildFile(path: string, rec: IndexRecord, sources: string[]): Promise<{ part: string; blocks: BlockInfo[]; finished?: { size: number; mtimeMs: number } }> {
    const abs = this.abs(path);
    const part = this.partialPath(abs, rec);
    if (rec.size > 0 && !isSingleBlock(rec.size) && !rec.manifest) return { part: await this.buildLegacy(rec, sources, part), blocks: [] };
    const want = await this.blockList(rec, sources);
    const old = this.partials.get(path);
    if (old && old !== part) await rm(old, { force: true });
    this.partials.set(path, part);
    let have = want.map(() => false);
    // A one-block file has nothing to resume: the worker creates the partial as it writes the block.
    const st = want.length > 1 ? await stat(part).catch(() => null) : null;
    if (st && st.isFile() && st.size === rec.size) {
      have = await this.hasher!.checkBlocks(part, want);
      this.transferStats.resumedBytes += want.reduce((n, b, i) => n + (have[i] ? b.size : 0), 0);
    } else if (want.length !== 1) {
      await writeFile(part, '');
      if (rec.size > 0) await truncate(part, rec.size);
    }
    await this.copyLocalBlocks(part, want, have);
    // Blocks another transfer is fetching right now are waited for and then copied (a file
    // repeated under several names, or sharing blocks, crosses the network once); the rest are
    // claimed and fetched here.
    const mine: BlockInfo[] = [];
    const waits = new Set<Promise<void>>();
    const claimed = new Map<string, () => void>();
    want.forEach((b, i) => {
      if (have[i]) return;
      const other = this.inflight.get(b.hash);
      if (other) {
        waits.add(other);
        // The partial exists (a file of one block gets its partial only when written): the other
        // transfer may write the block here as well once it lands.
        if (want.length > 1) {
          const regs = this.fanout.get(b.hash) ?? [];
          regs.push({ part, offset: b.offset, done: () => (have[i] = true) });
          this.fanout.set(b.hash, regs);
        }
      } else if (!claimed.has(b.hash)) {
        let done!: () => void;
        this.inflight.set(b.hash, new Promise<void>((r) => (done = r)));
        claimed.set(b.hash, done);
        mine.push(b);
      }
    });
    let finished: { size: number; mtimeMs: number } | undefined;
    try {
      // A one-block file fetched whole: the worker also sets its mode and mtime (one task).
      if (mine.length > 0) finished = await this.fetchBlocks(part, mine, sources, want.length === 1 ? rec.modifiedAt : undefined);
    } finally {
      for (const [hash, done] of claimed) {
        this.inflight.delete(hash);
        this.fanout.delete(hash); // waiters not served copy or fetch the block themselves
        done();
      }
    }
    for (const b of mine) have[want.indexOf(b)] = true;
    if (have.some((v) => !v)) {
      await Promise.all(waits);
      await this.copyLocalBlocks(part, want, have);
      const rest = want.filter((_, i) => !have[i]);
      if (rest.length > 0) await this.fetchBlocks(part, rest, sources);
      finished = undefined;
    }
    return finished ? { part, blocks: want, finished } : { part, blocks: want };
  }

  /**
   * A record written before block manifests (a multi-block file with only its whole-file hash):
   * the whole object, from this node's object store or a peer's (stores written before the change
   * still hold such objects), verified by its SHA-256, copied to `part`.
   */
  private async buildLegacy(rec: IndexRecord, sources: string[], part: string): Promise<string> {
    if (!this.objects.has(rec.sha256)) {
      const tmp = this.objects.tempPath();
      let verified = false;
      try {
        const r = await this.opts.fetcher.fetch(rec.sha256, sources, tmp, this.abort.signal, rec.size);
        verified = !!r && r.verified === true;
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      if (verified) await this.objects.adoptVerified(tmp, rec.sha256);
      else await this.objects.adopt(tmp, rec.sha256); // rejects (stores nothing) on a mismatch
    }
    await this.objects.copyTo(rec.sha256, part);
    return part;
  }

  /**
   * Copies (verified) every block of `want` not yet `have` that a local file holds into `part`;
   * updates `have`. A block whose recorded location fails is looked up again (another transfer may
   * just have renamed its partial file into place), at most three rounds.
   */
  private async copyLocalBlocks(part: string, want: BlockInfo[], have: boolean[]): Promise<void> {
    const tried = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const bySource = new Map<string, { i: number; srcOffset: number }[]>();
      const moving = new Set<Promise<void>>();
      want.forEach((b, i) => {
        if (have[i]) return;
        const loc = this.blockAt.get(b.hash);
        if (!loc || loc.size !== b.size || tried.has(`${i}\0${loc.abs}`)) return;
        const closing = this.closing.get(loc.abs);
        if (closing) return void moving.add(closing); // look again once it has its final name
        tried.add(`${i}\0${loc.abs}`);
        const list = bySource.get(loc.abs) ?? [];
        list.push({ i, srcOffset: loc.offset });
        bySource.set(loc.abs, list);
      });
      if (bySource.size === 0 && moving.size === 0) return;
      await this.copyFrom(part, want, have, bySource);
      await Promise.all(moving);
    }
  }

  private async copyFrom(part: string, want: BlockInfo[], have: boolean[], bySource: Map<string, { i: number; srcOffset: number }[]>): Promise<void> {
    for (const [src, list] of bySource) {
      // Reading another transfer's partial file: hold off its rename into place until done.
      const readers = src !== part && this.partials.size > 0 && [...this.partials.values()].includes(src) ? (this.partReaders.get(src) ?? { n: 0, drained: [] }) : null;
      if (readers) {
        readers.n++;
        this.partReaders.set(src, readers);
      }
      let ok: boolean[];
      try {
        ok = await this.hasher!.copyBlocks(
          src,
          part,
          list.map((x) => ({ srcOffset: x.srcOffset, destOffset: want[x.i]!.offset, size: want[x.i]!.size, hash: want[x.i]!.hash })),
        );
      } finally {
        if (readers && --readers.n === 0) {
          this.partReaders.delete(src);
          for (const d of readers.drained.splice(0)) d();
        }
      }
      list.forEach((x, k) => {
        if (!ok[k]) return;
        have[x.i] = true;
        this.transferStats.copiedBytes += want[x.i]!.size;
      });
      if (ok.some((v) => !v) && src !== part) this.unindexBlocks(src); // that file changed since it was indexed
    }
  }

  /** Fetches `need` into `part` from `sources`: batches spread over the sources, a failed or corrupt block retried from the next source. */
  private async fetchBlocks(part: string, need: BlockInfo[], sources: string[], finishMtimeMs?: number): Promise<{ size: number; mtimeMs: number } | undefined> {
    let finished: { size: number; mtimeMs: number } | undefined;
    if (sources.length === 0) throw new UnavailableError('no peer to fetch blocks from');
    const queue = batchBlocks(need, MAX_BLOCKS_PER_REQUEST, FETCH_BATCH_BYTES).map((blocks, k) => ({ blocks, attempt: 0, k }));
    const maxAttempts = sources.length + 2;
    let lastErr: Error | null = null;
    const worker = async (): Promise<void> => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        if (!this.running) throw new UnavailableError('sync engine stopped');
        const source = sources[(job.k + job.attempt) % sources.length]!;
        const bytes = job.blocks.reduce((n, b) => n + b.size, 0);
        const failed: BlockInfo[] = [];
        await this.takeBudget(bytes);
        try {
          let got: (Uint8Array | null)[];
          try {
            got = await this.opts.fetcher.getBlocks(source, job.blocks.map((b) => b.hash), this.abort.signal, bytes);
          } catch (err) {
            lastErr = err as Error;
            this.log.debug({ source, err: lastErr.message }, 'GetBlocks failed; trying the next source');
            got = [];
          }
          const items: { offset: number; hash: string; data: Uint8Array }[] = [];
          const idx: BlockInfo[] = [];
          job.blocks.forEach((b, i) => {
            const data = got[i];
            if (data && data.length === b.size) {
              items.push({ offset: b.offset, hash: b.hash, data });
              idx.push(b);
            } else {
              if (data) {
                lastErr = new BlockVerifyError(b.hash, source);
                this.transferStats.rejectedBlocks++;
              } else if (got.length > 0) lastErr = new UnavailableError(`${source} does not have block ${b.hash.slice(0, 12)}…`);
              failed.push(b);
            }
          });
          if (items.length > 0) {
            const finish = finishMtimeMs !== undefined && items.length === need.length ? { mtimeMs: finishMtimeMs } : undefined;
            // Partial files waiting for these blocks get them from this write too.
            const also: { item: number; dest: string; offset: number }[] = [];
            const served: { bytes: number; done: () => void }[] = [];
            items.forEach((it, k) => {
              const regs = this.fanout.get(it.hash);
              if (!regs) return;
              this.fanout.delete(it.hash);
              for (const r of regs) {
                also.push({ item: k, dest: r.part, offset: r.offset });
                served.push({ bytes: it.data.length, done: r.done });
              }
            });
            let res: BlocksResult;
            try {
              res = await this.hasher!.writeBlocksFinish(part, items, finish, also);
            } finally {
              // The worker is done with these bytes (written, rejected, or failed).
              const release = this.opts.fetcher.release;
              if (release) for (const it of items) release.call(this.opts.fetcher, it.data);
            }
            if (res.finished) finished = res.finished;
            res.alsoOk?.forEach((v, k) => {
              if (!v) return;
              served[k]!.done();
              this.transferStats.sharedWriteBytes += served[k]!.bytes;
            });
            const ok = res.ok;
            ok.forEach((v, i) => {
              if (v) {
                this.transferStats.fetchedBytes += idx[i]!.size;
                const b = idx[i]!;
                this.blockAt.set(b.hash, { abs: part, offset: b.offset, size: b.size }); // other transfers may copy it from here
                return;
              }
              const err = new BlockVerifyError(idx[i]!.hash, source);
              this.transferStats.rejectedBlocks++;
              this.log.warn({ source, hash: idx[i]!.hash, err: err.message, name: err.name, code: err.code }, 'rejected a corrupt block; fetching it again');
              lastErr = err;
              failed.push(idx[i]!);
            });
          }
        } finally {
          this.giveBudget(bytes);
        }
        if (failed.length > 0) {
          if (job.attempt + 1 >= maxAttempts) throw lastErr ?? new UnavailableError('blocks could not be fetched');
          queue.push({ blocks: failed, attempt: job.attempt + 1, k: job.k });
        }
      }
    };
    const n = Math.min(FETCH_CALLS_PER_FILE, Math.max(1, queue.length));
    await Promise.all(Array.from({ length: n }, () => worker()));
    return finished;
  }

  /** Deterministic partial-file path for version `rec` of the file at `abs` (so a retry or restart resumes it). */
  private partialPath(abs: string, rec: IndexRecord): string {
    const name = `${createHash('sha256').update(rec.path).digest('hex').slice(0, 16)}-${rec.sha256.slice(0, 16)}.part`;
    return this.stageOutside ? join(this.stagingDir, name) : join(dirname(abs), TEMP_PREFIX + name);
  }

  /** Keeps resumable partial files (recent `.part`) in the staging dir; removes everything else there. */
  private async cleanStaging(): Promise<void> {
    await mkdir(this.stagingDir, { recursive: true });
    for (const name of await readdir(this.stagingDir).catch(() => [] as string[])) {
      const p = join(this.stagingDir, name);
      const st = await lstat(p).catch(() => null);
      if (st && st.isFile() && name.endsWith('.part') && Date.now() - st.mtimeMs < PARTIAL_MAX_AGE_MS) continue;
      await rm(p, { recursive: true, force: true });
    }
  }

  /** Moves a file a remote delete removes to the staging dir, offering its blocks for {@link HELD_MS} (a rename's create finds them). */
  private async holdDeleted(path: string): Promise<boolean> {
    const abs = this.abs(path);
    const blocks = this.blocksOfAbs.get(abs);
    if (!this.stageOutside || !blocks || blocks.length === 0) return false;
    const dest = join(this.stagingDir, `held-${randomBytes(6).toString('hex')}`);
    try {
      await rename(abs, dest);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return true;
      return false;
    }
    this.unindexBlocks(abs);
    this.indexBlocks(dest, blocks);
    const t = setTimeout(() => {
      this.held.delete(dest);
      this.unindexBlocks(dest);
      void rm(dest, { force: true });
    }, HELD_MS);
    t.unref?.();
    this.held.set(dest, t);
    return true;
  }

  /** Re-plans every path on disk, in the index or in the sync state (cheap: unchanged files are not re-hashed). */
  async rescan(): Promise<void> {
    if (!this.running || this.rescanning) return;
    this.rescanning = true;
    try {
      const local = await this.scanFolder(this.folder, false);
      await this.enqueueScan(local);
      this.scansCompleted++;
    } finally {
      this.rescanning = false;
    }
  }

  /**
   * The periodic rescan: skipped while paths are queued or running (a big first scan of a 100,000-file folder
   * must not be re-walked every minute; the next period after it drains catches what was missed).
   */
  private periodicRescan(): void {
    // Paths only waiting for a retry (a persistent failure) do not hold the rescan back.
    if (this.chains.size > 0 || this.scanQueue.size > 0) {
      this.log.debug({ queued: this.chains.size + this.scanQueue.size }, 'periodic rescan skipped: queued work not drained');
      return;
    }
    void this.rescan();
  }

  /**
   * chokidar can miss files written into a directory right after the directory is created (its
   * listing of the new directory races the writes; seen in the bulk-sync bench: a few files of one
   * new folder went unseen until the 60 s rescan). Files get no chokidar watch of their own, so
   * chokidar's listing of a new directory reports none of its files either. A new directory is
   * therefore listed at once (a file written right after its folder was made syncs without
   * waiting) and again shortly after (files written while its watch was being set up), and files
   * in it this engine has not seen yet are planned.
   */
  private rescanDirSoon(absDir: string): void {
    for (const ms of [0, 300, 2_000]) {
      const t = setTimeout(() => {
        this.dirTimers.delete(t);
        if (!this.running) return;
        // Only files this engine has never seen (applied or hashed ones are known already) and is
        // not planning right now (two listings of one new directory planned each file twice).
        void this.scanFolder(absDir, false).then((paths) => paths.forEach((p) => !this.state.has(p) && !this.hashCache.has(p) && !this.chains.has(p) && this.schedule(p)));
      }, ms);
      t.unref?.();
      this.dirTimers.add(t);
    }
  }

  /**
   * Re-plans `path` a while after a write of ours, unless it still holds exactly what was synced
   * ({@link unchangedSinceSynced}): a safety net should the event of a change made just after
   * our write be lost.
   */
  private settleCheck(path: string): void {
    if (!this.running) return;
    const old = this.settleTimers.get(path);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.settleTimers.delete(path);
      if (!this.unchangedSinceSynced(path)) this.schedule(path);
    }, this.stabilityMs * 3 + 300);
    t.unref?.();
    this.settleTimers.set(path, t);
  }

  /**
   * True when `path` is a regular file whose size and mtime (one lstat on this thread) are those
   * this folder last synced, that synced state is the newest index record (a live one), and no
   * lock, read-only mode, refusal or queued work concerns it: planning it would find nothing to do
   * (readLocal trusts size and mtime the same way). A watcher event for such a path — typically
   * the rename of a file this engine just placed, or an attribute change — is dropped instead of
   * costing a reconcile and a hash-worker round trip.
   */
  private unchangedSinceSynced(path: string): boolean {
    const s = this.state.get(path);
    if (!s || s.sha256 === null || s.size === undefined || s.mtimeMs === undefined) return false;
    const idx = this.index.get(path);
    if (!idx || idx.record.deleted || idx.modRevision !== s.modRevision || idx.record.sha256 !== s.sha256) return false;
    if (path === IGNORE_FILE || this.chains.has(path) || this.locks.has(path) || this.readOnlyByUs.has(path) || this.refusedPaths.has(path)) return false;
    const st = lstatOrNull(this.abs(path));
    return !!st && st.isFile() && st.size === s.size && st.mtimeMs === s.mtimeMs;
  }

  // ---------------------------------------------------------------- scheduling

  /**
   * Plans `path` now, or after `delayMs` (a path already waiting keeps its time). Delayed paths
   * share timers due on the same {@link RETRY_TICK_MS} tick, so paths that become due together
   * (the files of a bulk copy settling) are planned in one event-loop turn and their hash-worker
   * tasks go out as one batch.
   */
  private schedule(path: string, delayMs = 0): void {
    if (!this.running) return;
    if (delayMs > 0) {
      if (this.retryTimers.has(path)) return;
      const now = Date.now();
      const due = Math.ceil((now + delayMs) / RETRY_TICK_MS) * RETRY_TICK_MS;
      let bucket = this.retryBuckets.get(due);
      if (!bucket) {
        const paths = new Set<string>();
        const timer = setTimeout(() => {
          this.retryBuckets.delete(due);
          for (const p of paths) {
            if (this.retryTimers.get(p) !== timer) continue;
            this.retryTimers.delete(p);
            this.retryDue.delete(p);
            if (this.eventDue.size > 0) this.eventDue.delete(this.abs(p));
            this.schedule(p);
          }
        }, due - now);
        bucket = { timer, paths };
        this.retryBuckets.set(due, bucket);
      }
      bucket.paths.add(path);
      this.retryTimers.set(path, bucket.timer);
      this.retryDue.set(path, due);
      return;
    }
    // A plan now supersedes a delayed one (it re-schedules itself if it must wait after all):
    // a path planned by a directory listing and by its watcher event is planned once, not twice.
    if (this.retryTimers.delete(path)) {
      this.retryDue.delete(path);
      if (this.eventDue.size > 0) this.eventDue.delete(this.abs(path));
    }
    if (this.pending.has(path)) return;
    this.pending.add(path);
    const prev = this.chains.get(path) ?? Promise.resolve();
    const next = prev.then(() => this.runOne(path));
    this.chains.set(path, next);
    void next.finally(() => {
      if (this.chains.get(path) === next) this.chains.delete(path);
      this.pumpScan();
    });
  }

  /**
   * Plans every path of a full folder scan (`local`: the files found; plus every indexed or synced
   * path). A file whose size and mtime still match what this folder synced, and whose synced
   * version is the newest index record, is done at once without hashing, a queue slot or a Raft
   * write (Syncthing's scanner skips unchanged files the same way); the rest go through the scan
   * queue, at most {@link SCAN_WINDOW} scheduled at a time.
   */
  private async enqueueScan(local: string[]): Promise<void> {
    const found = new Set(local);
    const candidates: string[] = [];
    const queue = (p: string): void => {
      this.scanQueue.add(p);
    };
    for (const p of found) {
      if (this.unchangedCandidate(p)) candidates.push(p);
      else queue(p);
    }
    for (const [p, idx] of this.index) {
      if (found.has(p)) continue;
      // A deletion this folder has already carried out (no file, tombstone synced): nothing to do.
      const s = this.state.get(p);
      if (idx.record.deleted && s && s.sha256 === null && s.modRevision === idx.modRevision && !this.locks.has(p) && !this.readOnlyByUs.has(p)) continue;
      queue(p);
    }
    for (const p of this.state.keys()) if (!found.has(p) && !this.index.has(p)) queue(p);
    found.clear();
    this.pumpScan();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < candidates.length && this.running) {
        const p = candidates[next++]!;
        if (!(await this.stillSynced(p))) queue(p);
      }
      this.pumpScan();
    };
    await Promise.all(Array.from({ length: SCAN_STAT_PARALLEL }, () => worker()));
    if (!this.running) {
      this.scanQueue.clear();
      this.scanIter = null;
    }
  }

  /**
   * True when `path` (a regular file the scan walk found: no symlinked parent) may skip planning if
   * its size and mtime are unchanged: it holds the newest index record's content as a single block,
   * no lock or read-only mode is involved, and no rule or refusal applies to it.
   */
  private unchangedCandidate(path: string): boolean {
    const s = this.state.get(path);
    const idx = this.index.get(path);
    return (
      !!s &&
      !!idx &&
      !idx.record.deleted &&
      s.sha256 === idx.record.sha256 &&
      s.modRevision === idx.modRevision &&
      s.size !== undefined &&
      s.mtimeMs !== undefined &&
      isSingleBlock(s.size) &&
      path !== IGNORE_FILE &&
      !this.locks.has(path) &&
      !this.readOnlyByUs.has(path) &&
      !this.refusedPaths.has(path) &&
      !this.pending.has(path) &&
      !this.ignoreRules.ignores(path)
    );
  }

  /** lstat-checks a {@link unchangedCandidate}; when unchanged, offers its block to peers and returns true. */
  private async stillSynced(path: string): Promise<boolean> {
    const abs = this.abs(path);
    // lstat in the hash worker, batched with other files (one message per batch, not one lstat each on the main thread).
    const st = await this.hasher?.scanFile({ path: abs, parents: [], statOnly: true, smallFile: SMALL_FILE, settleSmallMs: 0, settleMs: 0 }).catch(() => null);
    const s = this.state.get(path);
    const idx = this.index.get(path);
    if (st?.kind !== 'stat' || !s || st.size !== s.size || st.mtimeMs !== s.mtimeMs) return false;
    // Re-check after the await: a watch event or a commit may have moved the index or the state on.
    if (!idx || !this.unchangedCandidate(path)) return false;
    const cur = this.blocksOfAbs.get(abs);
    if (st.size === 0 ? cur?.length !== 0 : cur?.length !== 1 || cur[0]!.hash !== idx.record.sha256) {
      this.indexBlocks(abs, st.size === 0 ? [] : [{ offset: 0, size: st.size, hash: idx.record.sha256 }]);
    }
    return true;
  }

  /** Moves paths from the scan queue into `chains` while fewer than {@link SCAN_WINDOW} are queued. */
  private pumpScan(): void {
    if (!this.running) return;
    // One live iterator across calls: a fresh `for…of` starts at the Set's first slot and steps
    // over every entry already taken (deleted slots stay until the table is rehashed), which made
    // a 100,000-file scan quadratic (1.3 s of its main thread in this loop; 0.9 s against 23 ms
    // for 100,000 takes in isolation).
    while (this.chains.size < SCAN_WINDOW) {
      this.scanIter ??= this.scanQueue.values();
      const next = this.scanIter.next();
      if (next.done) {
        this.scanIter = null; // a finished iterator stays finished: paths queued later get a new one
        return;
      }
      this.scanQueue.delete(next.value);
      this.schedule(next.value);
    }
  }

  private async drain(): Promise<void> {
    while (this.chains.size > 0) await Promise.allSettled([...this.chains.values()]);
  }

  /** Takes a reconcile slot; `first` goes ahead of paths still waiting for their first slot. */
  private async acquire(first = false): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((r) => (first ? this.slotWaiters.unshift(r) : this.slotWaiters.push(r)));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.active--;
  }

  private async runOne(path: string): Promise<void> {
    // A large remote file starts ahead of queued small ones: its transfer is bound by bandwidth,
    // theirs by round trips, so the two overlap instead of the large one trailing a bulk sync.
    const rec = this.index.get(path)?.record;
    const remoteDue = !!rec && !rec.deleted && rec.modifiedBy !== this.opts.nodeId && this.state.get(path)?.sha256 !== rec.sha256;
    let first = remoteDue && rec.size > SMALL_FILE;
    // Likewise a local file of several blocks while paths queue for a slot (a bulk copy into the
    // folder): hashed and committed early, its bytes travel while the small files still commit.
    // (Not looked for on a path with a remote version to apply: the receiving side of a bulk sync
    // would lstat every file for it.)
    if (!remoteDue && this.active >= this.concurrency && this.slotWaiters.length > 0) {
      const st = lstatOrNull(this.abs(path));
      first = !!st && st.isFile() && st.size > MIN_BLOCK_SIZE && this.state.get(path)?.size !== st.size;
    }
    await this.acquire(first);
    this.pending.delete(path);
    try {
      if (!this.running) return;
      await this.reconcile(path);
      this.attempts.delete(path);
      if (this.refusedPaths.get(path)?.source === 'local') this.refusedPaths.delete(path);
    } catch (err) {
      if (err instanceof Replan) {
        this.schedule(path, err.delayMs);
      } else if (err instanceof PathError) {
        this.refusePath(path, err);
      } else {
        const n = (this.attempts.get(path) ?? 0) + 1;
        this.attempts.set(path, n);
        const delay = Math.min(MAX_BACKOFF_MS, 200 * 2 ** (n - 1));
        this.log.warn({ path, err: (err as Error).message, name: (err as Error).name, code: errCode(err), retryInMs: delay }, 'sync of path failed; will retry');
        this.schedule(path, delay);
      }
    } finally {
      this.release();
    }
  }

  // ---------------------------------------------------------------- reconcile

  private async reconcile(path: string): Promise<void> {
    normalizePath(path); // throws PathError for paths that must never be written
    if (this.ignoreRules.ignores(path)) {
      this.skipIgnored(path);
      return;
    }
    const local = await this.readLocal(path); // also refuses a path below a symbolic link
    if (local) await this.indexLocal(path, local);
    else this.unindexBlocks(this.abs(path));
    await this.reconcileWith(path, local);
    // Rules follow the file whatever changed it (an applied remote version, a console write, an
    // edit), not only when a watcher event for it arrives.
    if (path === IGNORE_FILE) this.ignoreFileChanged();
  }

  private async reconcileWith(path: string, local: LocalFile | null): Promise<void> {
    const idx = this.index.get(path) ?? null;
    const synced = this.state.get(path) ?? null;
    const lockedByOther = this.isLockedByOther(path);
    this.log.debug({ path, local: local?.sha256 ?? null, synced, idx: idx ? { sha: idx.record.sha256, deleted: idx.record.deleted, rev: idx.modRevision } : null, lockedByOther }, 'plan');
    const action = planPath({
      local: local?.sha256 ?? null,
      synced,
      index: idx ? { sha256: idx.record.sha256, deleted: idx.record.deleted, modRevision: idx.modRevision } : null,
      lockedByOther,
    });
    switch (action.kind) {
      case 'synced':
        if (local) await this.storeLocal(path, local).catch(() => undefined);
        this.markSynced(path, idx, local);
        break;
      case 'commit':
        await this.commit(path, local, idx);
        break;
      case 'apply':
        await this.apply(path, idx, local);
        break;
      case 'conflict':
        await this.conflictCopy(path, 'changed here and on another node from the same version');
        await this.apply(path, idx, null);
        break;
      case 'refuse': {
        if (action.copy) await this.conflictCopy(path, 'edited while locked by another node');
        await this.apply(path, idx, null);
        const lock = this.locks.get(path)?.info;
        const msg = `refused local ${action.copy ? 'edit' : 'delete'} of ${path}: locked by ${lock?.holders.join(', ') ?? 'another node'}${lock ? ` (${lock.user}@${lock.host})` : ''}; restored the locked version`;
        this.log.warn({ path, lock }, msg);
        this.activity('warn', 'lock', msg);
        break;
      }
    }
    await this.applyMode(path);
  }

  /** Logs (once per index version) that a remote change to an ignored path is not applied here. */
  private skipIgnored(path: string): void {
    const idx = this.index.get(path);
    if (!idx || this.ignoredLogged.get(path) === idx.modRevision) return;
    this.ignoredLogged.set(path, idx.modRevision);
    if (this.state.get(path)?.modRevision === idx.modRevision) return; // nothing new
    this.log.info({ path, version: idx.record.version, by: idx.record.modifiedBy }, `remote ${idx.record.deleted ? 'delete' : 'change'} of ignored path ${path} not applied (${IGNORE_FILE} or a built-in default)`);
  }

  /**
   * Refuses a path below a symbolic link: writing or reading through it would reach outside the
   * folder (symlinks are never followed). @throws PathError naming the link
   */
  private async assertNoSymlinkedParent(path: string): Promise<void> {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const st = lstatOrNull(this.abs(dir));
      if (!st) return;
      if (st.isSymbolicLink()) throw await this.symlinkError(dir);
    }
  }

  /** A PathError describing the symbolic link at `path` (and whether it points outside the folder). */
  private async symlinkError(path: string): Promise<PathError> {
    const abs = this.abs(path);
    const target = await readlink(abs).catch(() => '?');
    const dest = resolve(dirname(abs), target);
    const outside = dest !== this.folder && !dest.startsWith(this.folder + sep);
    const reason = `"${path}" is a symbolic link to ${JSON.stringify(target)}${outside ? ' (outside the synchronized folder)' : ''}; symbolic links are never followed or synced`;
    return new PathError(reason, { detail: { path, reason, target, outside } });
  }

  /**
   * Hashes the local file (off-thread), or returns null when there is no regular file. The lstat
   * checks (no symbolic link among its parent folders or as itself; size and mtime against the
   * hash cache and the synced state; settled; unchanged while hashed) run in the hash worker with
   * the hash, in one round trip (a folder scan costs the main thread one task per file, not
   * three lstat calls and a task).
   * @throws PathError for a symbolic link (itself or a parent folder); Replan while it settles
   */
  private async readLocal(path: string): Promise<LocalFile | null> {
    if (!this.hasher) throw new UnavailableError('the sync engine is not running (it starts once the node has joined the cluster, and stops with it); retry shortly');
    const abs = this.abs(path);
    const parts = path.split('/');
    const parents: string[] = [];
    for (let i = 1; i < parts.length; i++) parents.push(this.abs(parts.slice(0, i).join('/')));
    const cached = this.hashCache.get(path);
    const synced = this.state.get(path);
    const known = cached ?? (synced?.sha256 && synced.size !== undefined && synced.mtimeMs !== undefined ? synced : undefined);
    const settleSmallMs = Math.min(this.stabilityMs, SMALL_FILE_STABILITY_MS);
    let r: ScanFileResult | null = null;
    // A remote file this folder has never held (in a bulk sync, thousands of them) is most likely
    // missing: the worker's lstat step runs here (microseconds) instead of a worker round trip
    // that queues behind other hashing and writing; a regular file found still goes to the worker.
    const rec = this.index.get(path)?.record;
    const expectMissing = !cached && !synced?.sha256 && !!rec && !rec.deleted && rec.modifiedBy !== this.opts.nodeId;
    try {
      if (expectMissing) {
        const here = lstatForScan(abs, parents);
        if (here.kind !== 'stat') r = here;
      }
      r ??= await this.hasher.scanFile({ path: abs, parents, ...(known ? { known: { size: known.size!, mtimeMs: known.mtimeMs! } } : {}), smallFile: SMALL_FILE, settleSmallMs, settleMs: this.stabilityMs });
    } catch (err) {
      if (errCode(err) === 'ENOENT') throw new Replan(1); // removed while being hashed
      throw err;
    }
    switch (r.kind) {
      case 'missing':
        this.hashCache.delete(path);
        return null;
      case 'notFile':
        return null;
      case 'symlink':
        throw await this.symlinkError(path);
      case 'symlinkParent':
        throw await this.symlinkError(parts.slice(0, parents.indexOf(r.dir) + 1).join('/'));
    }
    const settle = r.size <= SMALL_FILE ? settleSmallMs : this.stabilityMs;
    if (r.kind === 'stat') {
      if (cached && cached.size === r.size && cached.mtimeMs === r.mtimeMs) return cached;
      if (synced?.sha256 && synced.size === r.size && synced.mtimeMs === r.mtimeMs) {
        // Not cached: the synced state already holds it (one entry per file, not two).
        return { sha256: synced.sha256, size: r.size, mtimeMs: r.mtimeMs, ...(synced.manifest ? { manifest: synced.manifest } : {}) };
      }
      throw new Replan(Math.max(1, Math.ceil(settle - (Date.now() - r.mtimeMs)))); // still settling
    }
    // Never trust bytes whose size or mtime moved while they were read.
    if (!r.stable) throw new Replan(settle); // still being written
    const local: LocalFile = { sha256: r.hash.sha256, size: r.hash.size, mtimeMs: r.hash.mtimeMs, blocks: r.hash.blocks };
    this.hashCache.set(path, local);
    return local;
  }

  private async commit(path: string, local: LocalFile | null, idx: IndexEntry | null): Promise<void> {
    let record: IndexRecord;
    if (local && (!idx || idx.record.deleted)) {
      // A new name must not collide, ignoring case, with a live file: Windows and macOS would see one file.
      for (const other of this.foldedPaths(path)) {
        const e = this.index.get(other);
        if (other !== path && e && !e.record.deleted) {
          throw new PathError(`"${path}" differs from existing "${other}" only by letter case (one file on Windows and macOS)`);
        }
      }
    }
    if (local) {
      let manifest: string | undefined;
      try {
        manifest = await this.storeLocal(path, local);
      } catch (err) {
        if (err instanceof ValidationError || errCode(err) === 'ENOENT') throw new Replan(this.stabilityMs); // changed under us
        throw err;
      }
      const blocks = manifest ? inlineList(local) : undefined;
      record = {
        path,
        size: local.size,
        sha256: local.sha256,
        version: (idx?.record.version ?? 0) + 1,
        deleted: false,
        modifiedBy: this.opts.nodeId,
        modifiedAt: Math.round(local.mtimeMs),
        ...(manifest ? { manifest } : {}),
        ...(blocks ? { blocks } : {}),
      };
    } else {
      if (!idx || idx.record.deleted) {
        this.markSynced(path, idx, null);
        return;
      }
      const { manifest: _m, blocks: _b, ...rest } = idx.record;
      record = { ...rest, version: idx.record.version + 1, deleted: true, modifiedBy: this.opts.nodeId, modifiedAt: Date.now() };
    }
    const lock = this.locks.get(path);
    // Waiting for Raft is not work: give the slot to another path meanwhile, so many files queue
    // for one group commit (a slot held per waiting file capped a bulk add at concurrency/commit-latency files/s).
    this.release();
    let resp: TxnResponse;
    const value = JSON.stringify(record);
    this.committing.set(path, value);
    try {
      resp = await this.commitTxn(path, record, value, idx?.modRevision ?? 0, lock?.modRevision ?? 0);
    } finally {
      this.committing.delete(path);
      await this.acquire(true); // finishing a commit goes ahead of paths not started yet
    }
    if (!resp.succeeded) {
      // Someone committed (or locked) first: learn the newest records and re-plan (conflict copy or refusal).
      const [files, locks] = resp.responses;
      if (files?.type === 'range') {
        const kv = files.kvs[0];
        if (kv) this.onFileEvent({ type: 'put', kv });
      }
      if (locks?.type === 'range') {
        const kv = locks.kvs[0];
        if (kv) this.onLockEvent({ type: 'put', kv });
        else if (lock) this.locks.delete(path);
      }
      this.log.info({ path }, 'commit lost a race; re-planning');
      throw new Replan(1);
    }
    this.setIndex(path, { record, modRevision: resp.revision });
    this.markSynced(path, this.index.get(path) ?? null, local);
    this.fileLog(record.deleted ? 'committedDeletes' : 'committed', { path, version: record.version, deleted: record.deleted }, record.deleted ? 'committed delete' : 'committed change');
    this.emitChange([path]);
  }

  /**
   * Commits one record guarded by the file's and the lock's modRevision. Commits queued while a
   * txn is in flight go out together in one txn (group commit: one Raft entry, one fsync); when
   * such a batch fails its guards, each commit is retried alone so one lost race fails only itself.
   * Resolves with the txn response of this commit's guards (`responses` = [files range, locks range] on failure).
   */
  private commitTxn(path: string, record: IndexRecord, value: string, fileRev: number, lockRev: number): Promise<TxnResponse> {
    return new Promise<TxnResponse>((resolve, reject) => {
      this.commitQueue.push({ path, record, value, fileRev, lockRev, resolve, reject });
      this.scheduleCommitFlush();
    });
  }

  private scheduleCommitFlush(): void {
    if (this.commitLinger && this.commitQueue.length >= COMMIT_BATCH) {
      // A full batch is waiting: send it now.
      clearTimeout(this.commitLinger);
      this.commitLinger = null;
      this.commitFlushScheduled = false;
    }
    if (this.commitFlushScheduled || this.commitsInFlight >= COMMITS_IN_FLIGHT || this.commitQueue.length === 0) return;
    this.commitFlushScheduled = true;
    const run = (): void => {
      this.commitLinger = null;
      this.commitFlushScheduled = false;
      void this.flushCommits();
    };
    if (this.scanQueue.size > 0 && this.commitQueue.length < COMMIT_BATCH) this.commitLinger = setTimeout(run, COMMIT_LINGER_MS);
    else setImmediate(run);
  }

  private async flushCommits(): Promise<void> {
    if (this.commitsInFlight >= COMMITS_IN_FLIGHT || this.commitQueue.length === 0) return;
    const batch = this.commitQueue.splice(0, COMMIT_BATCH);
    this.commitsInFlight++;
    try {
      const resp = await this.singleOrBatchTxn(batch);
      if (resp.succeeded || batch.length === 1) {
        for (const c of batch) c.resolve(resp);
      } else {
        // Someone else won at least one race: settle each commit on its own.
        await Promise.all(batch.map((c) => this.singleOrBatchTxn([c]).then(c.resolve, c.reject)));
      }
    } catch (err) {
      for (const c of batch) c.reject(err);
    } finally {
      this.commitsInFlight--;
      this.scheduleCommitFlush();
    }
  }

  private singleOrBatchTxn(batch: PendingCommit[]): Promise<TxnResponse> {
    return this.opts.kv.txn({
      compare: batch.flatMap((c) => [
        { key: FILES_PREFIX + c.path, target: 'modRevision' as const, result: '=' as const, value: c.fileRev },
        { key: LOCKS_PREFIX + c.path, target: 'modRevision' as const, result: '=' as const, value: c.lockRev },
      ]),
      success: batch.flatMap((c) => [
        { type: 'put' as const, key: FILES_PREFIX + c.path, value: c.value },
        // The change history, bounded to HISTORY_KEEP entries per path (history.ts).
        { type: 'put' as const, key: historyKey(c.path, c.record.version), value: JSON.stringify(historyEntryOf(c.record, this.opts.host, Date.now())) },
        ...(c.record.version > HISTORY_KEEP ? [{ type: 'deleteRange' as const, key: historyKey(c.path, c.record.version - HISTORY_KEEP) }] : []),
      ]),
      failure: batch.length === 1 ? [{ type: 'range', key: FILES_PREFIX + batch[0]!.path }, { type: 'range', key: LOCKS_PREFIX + batch[0]!.path }] : [],
    });
  }

  /** Makes the local file match `idx` (write verified content via temp + rename, or delete). */
  private async apply(path: string, idx: IndexEntry | null, expectLocal: LocalFile | null): Promise<void> {
    const abs = this.abs(path);
    if (!idx || idx.record.deleted) {
      if (IS_WINDOWS) await chmod(abs, 0o644).catch(() => undefined); // Windows cannot delete a read-only file
      await this.versions.keep(path, abs); // the deleted bytes stay restorable (no-op when there is no file)
      if (!(await this.holdDeleted(path))) await rm(abs, { force: true });
      this.unindexBlocks(abs);
      this.hashCache.delete(path);
      this.readOnlyByUs.delete(path);
      await this.removeEmptyParents(path);
      this.markSynced(path, idx, null);
      this.fileLog('appliedDeletes', { path, version: idx?.record.version ?? null }, 'applied remote delete');
      this.emitChange([path]);
      return;
    }
    const rec = idx.record;
    const sources = [...new Set([rec.modifiedBy, ...(this.opts.peers?.() ?? [])])].filter((n) => n !== this.opts.nodeId);
    // A partial beside the file needs its directory now; one in the staging dir gets it at the
    // rename (placeFile), one mkdir per new directory instead of one per file.
    if (!this.stageOutside) mkdirSync(dirname(abs), { recursive: true });
    // Built from local blocks and verified fetched blocks; kept on failure so a retry resumes it.
    const { part: tmp, blocks, finished } = await this.buildFile(path, rec, sources);
    try {
      if (!finished) {
        await chmod(tmp, 0o644);
        const at = new Date(rec.modifiedAt);
        await utimes(tmp, at, at);
      }
      // Do not clobber bytes written since we planned: re-plan if the file changed meanwhile.
      const now = lstatOrNull(abs);
      const changed = expectLocal === null ? now !== null : !now || now.mtimeMs !== expectLocal.mtimeMs || now.size !== expectLocal.size;
      if (changed) throw new Replan(1);
      if (now) await this.versions.keep(path, abs); // the replaced bytes stay restorable
      if (IS_WINDOWS && now && (now.mode & 0o200) === 0) await chmod(abs, 0o644); // Windows cannot replace a read-only file
      let closed!: () => void;
      this.closing.set(tmp, new Promise<void>((r) => (closed = r)));
      try {
        for (let r = this.partReaders.get(tmp); r; r = this.partReaders.get(tmp)) {
          const readers = r;
          await new Promise<void>((done) => readers.drained.push(done)); // another transfer is copying blocks out of it
        }
        await this.placeFile(tmp, abs);
        this.indexBlocks(abs, blocks); // at once: other transfers may be about to copy these blocks from the partial's old name
      } finally {
        this.closing.delete(tmp);
        closed();
      }
      this.partials.delete(path);
    } catch (err) {
      if (!(err instanceof Replan)) await unlink(tmp).catch(() => undefined);
      throw err;
    }
    // rename keeps size and mtime: the worker's fstat of the finished file is the placed file's.
    const st = finished ?? lstatSync(abs);
    const local: LocalFile = { sha256: rec.sha256, size: st.size, mtimeMs: st.mtimeMs, ...(rec.manifest ? { manifest: rec.manifest } : {}) };
    if (blocks.length > 0 || rec.size === 0) local.blocks = blocks.map((b) => b.hash); // unknown for a legacy record
    this.hashCache.set(path, local);
    this.readOnlyByUs.delete(path);
    this.markSynced(path, idx, local);
    this.settleCheck(path); // should the event of an edit made right after our rename be lost
    this.fileLog('applied', { path, version: rec.version }, 'applied remote version');
    this.emitChange([path]);
  }

  /** Renames the local file to a Syncthing-style conflict copy (which is then committed as a new file). */
  private async conflictCopy(path: string, why: string): Promise<string> {
    let name = conflictCopyName(path, new Date(), this.opts.nodeId);
    for (let i = 1; await lstat(this.abs(name)).catch(() => null); i++) name = conflictCopyName(path, new Date(Date.now() + i * 1000), this.opts.nodeId);
    await rename(this.abs(path), this.abs(name));
    await chmod(this.abs(name), 0o644).catch(() => undefined);
    this.hashCache.delete(path);
    this.settleCheck(name);
    const msg = `conflict on ${path} (${why}); kept this node's bytes as ${name}`;
    this.log.warn({ path, copy: name }, msg);
    this.activity('warn', 'conflict', msg);
    this.schedule(name);
    return name;
  }

  private markSynced(path: string, idx: IndexEntry | null, local: LocalFile | null): void {
    if (!idx) {
      if (this.state.delete(path)) this.saveStateSoon(path);
      return;
    }
    const next: SyncedState = { sha256: idx.record.deleted ? null : idx.record.sha256, version: idx.record.version, modRevision: idx.modRevision };
    const manifest = idx.record.deleted ? undefined : (idx.record.manifest ?? local?.manifest);
    if (manifest) next.manifest = manifest;
    if (local) {
      next.size = local.size;
      next.mtimeMs = local.mtimeMs;
      // The state now answers readLocal for these bytes: the hash cache entry (with its block list) is redundant.
      if (next.sha256 === local.sha256 && this.hashCache.get(path) === local) this.hashCache.delete(path);
    }
    const prev = this.state.get(path);
    if (prev && prev.sha256 === next.sha256 && prev.modRevision === next.modRevision && prev.mtimeMs === next.mtimeMs) return;
    this.state.set(path, next);
    this.saveStateSoon(path);
    if (prev?.version !== next.version) this.emitChange([path]);
  }

  private async removeEmptyParents(path: string): Promise<void> {
    let dir = dirname(this.abs(path));
    while (dir !== this.folder && dir.startsWith(this.folder + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
      dir = dirname(dir);
    }
  }

  // ---------------------------------------------------------------- locks

  private isLockedByOther(path: string): boolean {
    const l = this.locks.get(path)?.info;
    return !!l && l.holders.length > 0 && !l.holders.includes(this.opts.nodeId);
  }

  private assertNotLocked(path: string): void {
    const l = this.locks.get(path)?.info;
    if (l && this.isLockedByOther(path)) {
      throw new LockConflictError(`${path} is locked by ${l.holders.join(', ')} (${l.user}@${l.host})`, { detail: { lock: l } });
    }
  }

  /**
   * Lock enforcement must not depend on the watcher alone: chokidar was seen (intermittently, in
   * the lock-refusal integration test) to deliver no event for an edit of a file it had reported
   * moments before (an edit made within milliseconds of our chmod). Files we hold read-only for
   * another node's lock are therefore also checked every LOCK_POLL_MS against the synced size,
   * mtime and read-only mode; a difference re-plans the path, which refuses the edit.
   */
  private pollLockedFiles(): void {
    for (const path of this.readOnlyByUs) {
      const synced = this.state.get(path);
      void lstat(this.abs(path)).then(
        (st) => {
          // Compare with the synced version, not with an earlier sample: an edit made between our
          // chmod and the first sample must still be seen.
          const edited = !synced || st.size !== synced.size || st.mtimeMs !== synced.mtimeMs || (st.mode & 0o222) !== 0;
          if (edited && !this.pending.has(path)) this.schedule(path);
        },
        () => {
          if (!this.pending.has(path)) this.schedule(path); // deleted while locked: restore it
        },
      );
    }
  }

  /** Read-only (0444) while another node holds the lock; back to 0644 when we made it read-only. */
  private async applyMode(path: string): Promise<void> {
    if (!this.readOnlyByUs.has(path) && !this.isLockedByOther(path)) return; // nothing to change
    const abs = this.abs(path);
    const st = await lstat(abs).catch(() => null);
    if (!st || !st.isFile()) return;
    if (this.isLockedByOther(path)) {
      if ((st.mode & 0o222) !== 0) await chmod(abs, 0o444);
      if (!this.readOnlyByUs.has(path)) {
        this.readOnlyByUs.add(path);
        this.saveStateSoon();
      }
    } else if (this.readOnlyByUs.has(path)) {
      if ((st.mode & 0o200) === 0) await chmod(abs, 0o644);
      this.readOnlyByUs.delete(path);
      this.saveStateSoon();
    }
  }

  // ---------------------------------------------------------------- kv

  /** Reads files/ and locks/ and (re)starts both watches just after that revision. */
  private async resyncKv(): Promise<void> {
    for (const w of this.kvWatches) w.cancel();
    this.kvWatches = [];
    const files = await this.opts.kv.range(FILES_PREFIX, { prefix: true });
    const locks = await this.opts.kv.range(LOCKS_PREFIX, { prefix: true });
    for (const kv of files.kvs) this.onFileEvent({ type: 'put', kv }, false);
    const seenLocks = new Set<string>();
    for (const kv of locks.kvs) {
      this.onLockEvent({ type: 'put', kv }, false);
      seenLocks.add(kv.key.slice(LOCKS_PREFIX.length));
    }
    for (const p of [...this.locks.keys()]) if (!seenLocks.has(p)) this.locks.delete(p);
    const from = Math.min(files.revision, locks.revision) + 1;
    const onError = (err: Error): void => {
      this.log.error({ err: err.message }, 'index watch failed; resyncing');
      if (this.running)
        void this.resyncKv()
          .then(() => {
            for (const p of new Set([...this.index.keys(), ...this.state.keys()])) this.schedule(p);
          })
          .catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'resync failed'));
    };
    this.kvWatches.push(
      this.opts.kv.watch(FILES_PREFIX, (events) => events.forEach((e) => this.onFileEvent(e)), { fromRevision: from, onError }),
      this.opts.kv.watch(LOCKS_PREFIX, (events) => events.forEach((e) => this.onLockEvent(e)), { fromRevision: from, onError }),
    );
  }

  private onFileEvent(e: WatchEvent, schedule = true): void {
    const path = e.kv.key.slice(FILES_PREFIX.length);
    if (!this.checkRemotePath(path)) return;
    const cur = this.index.get(path);
    if (cur && e.kv.modRevision <= cur.modRevision) return; // stale (already seen through a txn reply)
    if (e.type === 'delete') {
      this.index.delete(path);
      this.unfold(path);
    } else {
      const record = parseIndexRecord(e.kv);
      if (!record || record.path !== path) {
        this.log.error({ key: e.kv.key }, 'malformed index record ignored');
        return;
      }
      this.setIndex(path, { record, modRevision: e.kv.modRevision });
    }
    if (schedule) {
      this.emitChange([path]);
      // The echo of a commit this engine is making (the watch delivers it before the txn's reply):
      // that commit's own plan marks it synced; planning again would only find it so (a second
      // plan of every file the folder commits, in a bulk add).
      if (e.type === 'put' && this.committing.get(path) === e.kv.value) return;
      this.schedule(path);
    }
  }

  private onLockEvent(e: WatchEvent, schedule = true): void {
    const path = e.kv.key.slice(LOCKS_PREFIX.length);
    if (!this.checkRemotePath(path)) return;
    const cur = this.locks.get(path);
    if (cur && e.kv.modRevision < cur.modRevision) return;
    if (e.type === 'delete') this.locks.delete(path);
    else {
      const info = parseLock(e.kv);
      if (info) this.locks.set(path, { info, modRevision: e.kv.modRevision });
      else this.log.error({ key: e.kv.key }, 'malformed lock record ignored');
    }
    if (schedule) {
      this.emitChange([path]);
      this.schedule(path);
    }
  }

  private setIndex(path: string, entry: IndexEntry): void {
    const cur = this.index.get(path);
    if (!cur || entry.modRevision > cur.modRevision) {
      if (entry.record.path === path) entry.record.path = cur ? cur.record.path : path; // one string per path, not one per record parsed
      this.index.set(path, entry);
      if (!cur) {
        const k = path.toLowerCase();
        const got = this.folded.get(k);
        if (got === undefined) this.folded.set(k, path);
        else if (typeof got === 'string') this.folded.set(k, new Set([got, path]));
        else got.add(path);
      }
    }
  }

  /** Index paths equal to `path` ignoring letter case (itself included when indexed). */
  private foldedPaths(path: string): Iterable<string> {
    const got = this.folded.get(path.toLowerCase());
    return got === undefined ? [] : typeof got === 'string' ? [got] : got;
  }

  private unfold(path: string): void {
    const k = path.toLowerCase();
    const got = this.folded.get(k);
    if (got === path) this.folded.delete(k);
    else if (typeof got === 'object' && got.delete(path) && got.size <= 1) {
      const rest = [...got];
      if (rest.length === 1) this.folded.set(k, rest[0]!);
      else this.folded.delete(k);
    }
  }

  private checkRemotePath(path: string): boolean {
    try {
      if (normalizePath(path) !== path) throw new PathError(`index path ${JSON.stringify(path)} is not in NFC form`);
      return true;
    } catch (err) {
      this.refusePath(path, err as Error, 'remote');
      return false;
    }
  }

  private refusePath(path: string, err: Error, source: SyncProblem['source'] = 'local'): void {
    this.scanSeen?.add(path);
    if (this.refusedPaths.has(path)) return;
    const reason = typeof (err as PathError).detail?.reason === 'string' ? ((err as PathError).detail!.reason as string) : err.message;
    this.refusedPaths.set(path, { path, kind: problemKind(err.message), reason, source, since: Date.now() });
    const msg = `refused to sync ${JSON.stringify(path)}: ${err.message}`;
    this.log.error({ path }, msg);
    this.activity('error', 'error', msg);
  }

  // ---------------------------------------------------------------- folder

  private abs(path: string): string {
    return folderPath(this.folder, this.folderPrefix, path);
  }

  private rel(absPath: string): string | null {
    // Fast path (every watcher event comes here): a normalized path below the folder.
    if (absPath.startsWith(this.folderPrefix) && absPath.length > this.folderPrefix.length && !absPath.includes(`${sep}.`)) {
      const r = absPath.slice(this.folderPrefix.length);
      return sep === '/' ? r : r.split(sep).join('/');
    }
    const r = relative(this.folder, absPath);
    if (!r || r.startsWith('..')) return null;
    return sep === '/' ? r : r.split(sep).join('/');
  }

  private ignored(absPath: string): boolean {
    const dataDir = this.dataDirAbs;
    if (absPath === dataDir || absPath.startsWith(dataDir + sep)) return true;
    if (absPath === this.folder) return false;
    if (isTemporary(absPath)) return true;
    const rel = this.rel(absPath);
    return rel !== null && this.ignoreRules.ignores(rel);
  }

  /** (Re)reads `.clusterdeskignore`; an unreadable file counts as empty (logged). */
  /** @returns true when the rules changed */
  private async loadIgnores(): Promise<boolean> {
    let text: string | null = null;
    const abs = this.abs(IGNORE_FILE);
    // The rules are read once the file has settled, as any file is hashed (its mtime at least
    // SMALL_FILE_STABILITY_MS old, unchanged across the read): an editor or `writeFile` truncates
    // the file before writing it, and rules read from the empty file un-ignored everything for a
    // moment ("never commits ignored paths" committed build/out.bin that way). The old rules stay
    // in force meanwhile; after IGNORE_SETTLE_TRIES the bytes read are taken as they are.
    for (let attempt = 1; ; attempt++) {
      try {
        const before = await lstat(abs);
        if (!before.isFile()) break;
        const age = Date.now() - before.mtimeMs;
        if (age > -1000 && age < SMALL_FILE_STABILITY_MS && attempt < IGNORE_SETTLE_TRIES) {
          await new Promise((r) => setTimeout(r, Math.ceil(SMALL_FILE_STABILITY_MS - age) + 1));
          continue;
        }
        const read = await readFile(abs, 'utf8');
        const after = await lstat(abs);
        if ((after.size !== before.size || after.mtimeMs !== before.mtimeMs) && attempt < IGNORE_SETTLE_TRIES) continue;
        text = read;
      } catch (err) {
        if (errCode(err) !== 'ENOENT') this.log.warn({ err: (err as Error).message }, `could not read ${IGNORE_FILE}; using the built-in ignores only`);
      }
      break;
    }
    if (text === this.ignoreText && this.ignoreText !== undefined) return false;
    this.ignoreText = text;
    const patterns = this.ignoreRules.load(text);
    this.log.info({ patterns }, `loaded ${IGNORE_FILE}`);
    return true;
  }

  /**
   * Maps an on-disk relative path to its index key; invalid names are refused (logged once), or
   * with `refuse` false only reported as null.
   */
  private keyOf(rel: string, refuse = true): string | null {
    try {
      const key = normalizePath(rel);
      // On Linux and Windows a non-NFC name is a different file from its NFC form: syncing it
      // under the NFC key would read and write the other name. macOS normalizes names itself.
      if (key !== rel && process.platform !== 'darwin') {
        throw new PathError(`name ${JSON.stringify(rel)} is not in Unicode NFC form; rename it (its NFC form ${JSON.stringify(key)} is what other hosts see)`, { detail: { path: rel, reason: 'name is not in Unicode NFC form (would collide with its NFC spelling)' } });
      }
      return key;
    } catch (err) {
      if (refuse) this.refusePath(rel, err as Error);
      return null;
    }
  }

  /**
   * Watches the folder's directories (chokidar; one OS watch per directory, not per file: a
   * 100,000-file folder needs ~100 inotify watches instead of 100,000, and no per-file watcher
   * objects and Stats). A directory's watch reports every change of an entry in it (Linux
   * inotify, macOS FSEvents, Windows ReadDirectoryChangesW); those raw events name the entry,
   * which is then planned (a plan works out itself whether it was added, changed or removed).
   * Missed events are caught by the periodic rescan, as before.
   *
   * chokidar itself is kept for new directories and symlinks. It re-lists a directory on every
   * event in it and lstat's each entry to do so; here those listings come at most every
   * {@link RELIST_COALESCE_MS} per busy directory ({@link coalesceListings}) and are made from
   * readdir's entries with regular files dropped at once ({@link listWithoutStat}).
   */
  private async startFolderWatcher(): Promise<void> {
    const w = chokidarWatch(this.folder, {
      ignoreInitial: true,
      persistent: true,
      // Regular files get no watch of their own: their directory's watch reports them (see 'raw' below).
      ignored: (p: string, st?: Stats) => (st?.isFile() ?? false) || this.ignored(p),
      followSymlinks: false, // a symlink is reported as itself and refused, never followed
      // No awaitWriteFinish: readLocal waits for a stable mtime and re-stats around the hash.
    });
    listWithoutStat(w, { skipFiles: true });
    coalesceListings(w, RELIST_COALESCE_MS);
    w.on('raw', (_event: string, name: unknown, details: unknown) => {
      const dir = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (!this.running || typeof dir !== 'string') return;
      if (typeof name !== 'string' || name === '') {
        this.rescanDirSoon(resolve(dir)); // the OS did not say which entry changed: list the directory again
        return;
      }
      this.onEntryEvent(entryPath(dir, name));
    });
    w.on('all', (event, absPath) => {
      const rel = this.rel(absPath);
      if (rel === null) return;
      if (event === 'unlinkDir') {
        const prefix = rel + '/';
        for (const p of new Set([...this.index.keys(), ...this.state.keys()])) if (p.startsWith(prefix)) this.schedule(p);
        return;
      }
      if (event === 'addDir') {
        this.rescanDirSoon(absPath);
        return;
      }
      if (event === 'add' || event === 'change' || event === 'unlink') this.onEntryEvent(absPath);
    });
    w.on('error', (err) => this.log.error({ err: (err as Error).message }, 'folder watcher error'));
    await new Promise<void>((r) => w.once('ready', () => r()));
    this.watcher = w;
  }

  /** A watcher event for the folder entry `absPath` (a file or name in a watched directory). */
  private onEntryEvent(absPath: string): void {
    if (!this.running) return;
    // Every event of the ignore file reloads it, also those a due plan covers below: the first
    // event may come before its new bytes are written, and the rules must not stay at those.
    if (absPath.endsWith(IGNORE_FILE) && this.rel(absPath) === IGNORE_FILE) this.ignoreFileChanged();
    // A plan of this path is due within the settle wait and will see this change too (a file
    // being written raises several events: create, writes, mode, times).
    const due = this.eventDue.get(absPath);
    if (due !== undefined) {
      if (due >= Date.now()) return;
      this.eventDue.delete(absPath);
    }
    if (this.ignored(absPath)) return;
    const rel = this.rel(absPath);
    if (rel === null) return;
    const key = this.keyOf(rel, false);
    if (key) {
      // A file this folder already holds as synced (e.g. one this engine just renamed into place): nothing to plan.
      if (this.unchangedSinceSynced(key)) return;
      // A file being written is hashed only once it has settled for the small-file wait: plan it
      // then (the events of one write, and of many files written together, coalesce into one
      // batched pass) rather than now and again after a "still settling" re-plan.
      const wait = Math.min(this.stabilityMs, SMALL_FILE_STABILITY_MS);
      const retry = this.retryDue.get(key);
      if (retry === undefined) {
        this.schedule(key, wait);
        const at = this.retryDue.get(key);
        if (at !== undefined) this.eventDue.set(absPath, at);
      } else if (retry > Date.now() + wait + RETRY_TICK_MS) this.schedule(key); // waiting out a failure's backoff: a new change is planned now
    }
    // An invalid name is refused only while it exists (the event may be its removal).
    else if (key === null) void lstat(absPath).then(() => this.keyOf(rel), () => undefined);
  }

  /**
   * Reloads the ignore rules after `.clusterdeskignore` changed, then re-plans everything: newly
   * un-ignored files get committed (or fetched), newly ignored ones are left alone.
   */
  private ignoreFileChanged(): void {
    this.ignoreReload = this.ignoreReload
      .then(() => this.loadIgnores())
      .then((changed) => (changed ? this.rescan() : undefined))
      .catch((err: unknown) => this.log.error({ err: (err as Error).message }, `could not reload ${IGNORE_FILE}`));
  }

  /**
   * Lists regular files under `root` (the whole folder by default) as index keys, removing temp
   * files left by a crash when `removeTemps`. Refuses symbolic links (never followed) and invalid
   * names; after a walk of the whole folder, local problems not seen again are forgotten.
   */
  private async scanFolder(root = this.folder, removeTemps = true): Promise<string[]> {
    const out: string[] = [];
    if (root === this.folder) this.scanSeen = new Set();
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const abs = join(dir, e.name);
        if (e.name.startsWith(TEMP_PREFIX)) {
          // At start only: while running, a temp file may be a transfer in progress.
          if (removeTemps) await rm(abs, { force: true, recursive: true });
          continue;
        }
        if (this.ignored(abs)) continue;
        if (e.isSymbolicLink()) {
          const rel = this.rel(abs);
          const key = rel === null ? null : this.keyOf(rel);
          if (key) this.refusePath(key, await this.symlinkError(key));
        } else if (e.isDirectory()) await walk(abs);
        else if (e.isFile()) {
          const rel = this.rel(abs);
          const key = rel === null ? null : this.keyOf(rel);
          if (key) out.push(key);
        }
      }
    };
    const full = root === this.folder;
    try {
      await walk(root);
      if (full) {
        for (const [p, prob] of this.refusedPaths) {
          if (prob.source === 'local' && prob.kind !== 'case-collision' && !this.scanSeen?.has(p)) this.refusedPaths.delete(p);
        }
      }
    } finally {
      if (full) this.scanSeen = null;
    }
    return out;
  }

  // ---------------------------------------------------------------- state file

  private async loadState(): Promise<void> {
    this.state.clear();
    this.readOnlyByUs.clear();
    const got = await this.stateStore.load();
    for (const [p, st] of got.entries) this.state.set(p, st);
    for (const p of got.readOnly) this.readOnlyByUs.add(p);
    if (got.problem) this.log.error({ problem: got.problem }, `${got.problem}; local files not covered by the sync state are compared with the index again`);
  }

  /** Notes that `path`'s synced state changed (when given) and saves the state within {@link STATE_SAVE_MS}. */
  private saveStateSoon(path?: string): void {
    if (path !== undefined) this.stateStore.changed(path);
    if (this.stateTimer) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = null;
      void this.saveState().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'could not write sync state'));
    }, STATE_SAVE_MS);
  }

  /**
   * Writes the state's changes (`sync-state.ts`: appended to the journal, or a new snapshot);
   * calls are serialized, and a failed save does not stop later ones (the next one compacts).
   */
  private saveState(): Promise<void> {
    this.stateWrite = this.stateWrite.catch(() => undefined).then(() => this.stateStore.save(this.state, this.readOnlyByUs));
    return this.stateWrite;
  }

  // ---------------------------------------------------------------- events

  /** Logs one file's outcome: at info within the window's first {@link FILE_LOG_BURST}, else at debug (counted in the window's summary). */
  private fileLog(kind: keyof SyncEngine['fileTally'], fields: Record<string, unknown>, msg: string): void {
    const t = this.fileTally;
    const n = t.committed + t.committedDeletes + t.applied + t.appliedDeletes;
    t[kind]++;
    if (n < FILE_LOG_BURST) this.log.info(fields, msg);
    else this.log.debug(fields, msg);
    if (this.fileTallyTimer === null) {
      this.fileTallyStart = Date.now();
      this.fileTallyTimer = setTimeout(() => this.logFileTally(), this.opts.fileLogWindowMs ?? FILE_LOG_WINDOW_MS);
      this.fileTallyTimer.unref?.();
    }
  }

  /** Ends the log window: one info line counting its files when some were logged at debug only. */
  private logFileTally(): void {
    if (this.fileTallyTimer !== null) clearTimeout(this.fileTallyTimer);
    this.fileTallyTimer = null;
    const t = { ...this.fileTally };
    Object.assign(this.fileTally, { committed: 0, committedDeletes: 0, applied: 0, appliedDeletes: 0 });
    if (t.committed + t.committedDeletes + t.applied + t.appliedDeletes <= FILE_LOG_BURST) return;
    const seconds = +((Date.now() - this.fileTallyStart) / 1000).toFixed(1);
    this.log.info(
      { ...t, seconds },
      `in ${seconds} s: committed ${t.committed} changes and ${t.committedDeletes} deletes, applied ${t.applied} remote versions and ${t.appliedDeletes} remote deletes (per file at debug level after the first ${FILE_LOG_BURST})`,
    );
  }

  private emitChange(paths: string[]): void {
    for (const l of this.changeListeners) {
      try {
        l(paths);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'onChange listener threw');
      }
    }
  }

  private activity(level: ActivityEntry['level'], kind: ActivityEntry['kind'], message: string): void {
    this.opts.onActivity?.({ at: Date.now(), level, node: this.opts.nodeId, kind, message });
  }
}

/** A directory entry as chokidar's listing filters see it: `stats` is read for its type only. */
interface ListedEntry {
  stats?: unknown;
  dirent?: unknown;
}
type EntryFilter = (entry: ListedEntry) => boolean;

/**
 * Makes chokidar 4 list directories from readdir's entries instead of lstat-ing each entry.
 *
 * chokidar's `_readdirp(root, opts)` spreads `opts` over its own `{ alwaysStat: true, lstat: true }`,
 * and its filters and its listing handler read `entry.stats` only for `isSymbolicLink()`,
 * `isFile()` and `isDirectory()` (and, for files, read permissions: but this engine's `ignored`
 * drops every regular file before that check). A `fs.Dirent` answers those three, so the filters
 * get the entry's Dirent as its `stats`. Entries of other kinds (FIFOs, sockets, devices) now fail
 * chokidar's read-permission check (a Dirent has no mode) and are left out: the engine syncs none
 * of them. A chokidar without `_readdirp` (a future version) keeps its stock listing: slower, same
 * events.
 *
 * With `skipFiles` (for a watcher whose `ignored` drops every regular file, as the engine's does),
 * regular files also leave the listing right after readdir, before readdirp builds an entry for
 * each (path.resolve, path.relative and two promises per entry) and chokidar filters it: a
 * directory of 100,000 files costs one readdir instead. chokidar's listings are one directory
 * deep (readdirp `depth: 0`), so the listing is the stream's one pending readdir, which is
 * filtered; a readdirp without that shape is left alone. Returns whether the listing was changed.
 */
export function listWithoutStat(watcher: FSWatcher, options: { skipFiles?: boolean } = {}): boolean {
  type Listing = { parents?: unknown };
  const fsw = watcher as unknown as { _readdirp?: (root: string, opts: { fileFilter?: EntryFilter; directoryFilter?: EntryFilter }) => unknown };
  const original = fsw._readdirp;
  if (typeof original !== 'function') return false;
  const withType = (filter: EntryFilter | undefined): EntryFilter => (entry) => {
    if (entry.stats === undefined) entry.stats = entry.dirent;
    return filter ? filter(entry) : true;
  };
  const notFile = (d: unknown): boolean => typeof (d as { isFile?: unknown } | null)?.isFile !== 'function' || !(d as Dirent).isFile();
  fsw._readdirp = function (root, opts) {
    const stream = original.call(this, root, { ...opts, alwaysStat: false, fileFilter: withType(opts.fileFilter), directoryFilter: withType(opts.directoryFilter) } as typeof opts) as Listing | undefined;
    const pending = stream?.parents;
    if (options.skipFiles && Array.isArray(pending) && pending.length === 1 && typeof (pending[0] as Promise<unknown> | undefined)?.then === 'function') {
      pending[0] = (pending[0] as Promise<{ files?: unknown } | undefined>).then((dir) => (dir && Array.isArray(dir.files) ? { ...dir, files: dir.files.filter(notFile) } : dir));
    }
    return stream;
  };
  return true;
}

/**
 * Makes chokidar 4 re-list a watched directory at most once per `delayMs` (ms) while events
 * arrive in it, instead of once per event: an event in a directory not listed for `delayMs` lists
 * it at once; the events within `delayMs` of a listing share one listing at the end of that time.
 *
 * chokidar calls its directory listener on every raw `fs.watch` event in that directory and
 * lists the whole directory each time (its 'readdir' throttle only lasts while one listing runs,
 * then lists once more). Copying sync-bulk's 5,000 small files into 50 directories under a bare
 * chokidar watcher raised 14,434 listings of 721,143 entries; with 100 ms, 135 listings of 8,977
 * entries. In sync-bulk's profile those listings took about 3 s of the sender's main thread.
 * The raw events the engine plans files from are emitted unchanged and undelayed; a new
 * subdirectory or symlink in a busy directory is reported up to `delayMs` later, in a quiet one
 * at once. Nothing is listed after the watcher closes. A chokidar without the private
 * `_nodeFsHandler._watchWithNodeFs` hook keeps its stock behaviour. Returns whether the listener
 * was wrapped.
 */
export function coalesceListings(watcher: FSWatcher, delayMs: number): boolean {
  type Listener = (...args: unknown[]) => void;
  const fsw = watcher as unknown as { closed?: boolean; _nodeFsHandler?: { _watchWithNodeFs?: (path: string, listener?: Listener) => unknown } };
  const handler = fsw._nodeFsHandler;
  const original = handler?._watchWithNodeFs;
  if (!handler || typeof original !== 'function') return false;
  handler._watchWithNodeFs = function (path: string, listener?: Listener) {
    if (typeof listener !== 'function') return original.call(this, path, listener);
    let timer: ReturnType<typeof setTimeout> | null = null;
    let lastListedAt = -Infinity;
    let last: unknown[] = [];
    const list = (): void => {
      timer = null;
      lastListedAt = performance.now();
      if (!fsw.closed) listener(...last);
    };
    return original.call(this, path, (...args: unknown[]) => {
      last = args;
      if (timer !== null) return; // a listing is already due: it will see this event's change too
      const waitMs = lastListedAt + delayMs - performance.now();
      if (waitMs <= 0) return list();
      timer = setTimeout(list, waitMs);
      timer.unref?.();
    });
  };
  return true;
}

/**
 * Absolute path of folder key `key` ('/'-separated, relative to `folder`); `prefix` is `folder`
 * with one trailing separator. A key in the index's normal form (no empty, `.` or `..` segment,
 * no leading or trailing '/') is appended to `prefix` on POSIX: `path.join` would re-normalize it
 * character by character on every call (the engine calls this several times per file). Other
 * keys, and every key on Windows, go through `path.join`, as before. Equal to
 * `join(folder, ...key.split('/'))` for every key.
 */
export function folderPath(folder: string, prefix: string, key: string): string {
  if (sep === '/' && key.length > 0 && key[0] !== '/' && key[key.length - 1] !== '/' && key !== '.' && key !== '..' && !key.includes('//') && !key.includes('./') && !key.endsWith('/.') && !key.endsWith('/..')) return prefix + key;
  return join(folder, ...key.split('/'));
}

/**
 * Absolute path of entry `name` of the watched directory `dir`, as `path.resolve(dir, name)`. A
 * bare entry name (what fs.watch reports for a directory) under an absolute `dir` is appended to
 * it without re-normalizing the whole path on every watcher event.
 */
export function entryPath(dir: string, name: string): string {
  if (name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes(sep) && isAbsolute(dir) && !dir.includes(`${sep}.`) && !dir.includes(sep + sep)) {
    return dir.endsWith(sep) ? dir + name : dir + sep + name;
  }
  return resolve(dir, name);
}

