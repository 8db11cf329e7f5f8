/**
 * `Hasher`: SHA-256 of files on a Piscina worker pool (1–2 threads), so hashing never blocks
 * the main thread (DESIGN "File change": "hashes it … off the main thread").
 *
 * Worker resolution, in order: the explicit `workerPath` option; `./hash-worker.js` beside this
 * module (bundled builds); `./hash-worker.ts` beside it (running from sources under tsx or
 * vitest). For a `.ts` worker the threads get `--import tsx` unless the parent already has it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { ConfigError } from '../common/errors';
import type {
  BlocksResult,
  CheckBlocksTask,
  CopyBlocksTask,
  HashFailure,
  HashResult,
  BatchTask,
  ScanFileResult,
  ScanFileTask,
  WriteBlocksTask,
} from './hash-worker';

export type { HashResult, ScanFileResult, ScanFileTask } from './hash-worker';

/** Options of {@link Hasher}. */
export interface HasherOptions {
  /** Absolute path (or file URL) of the worker module; default: see the module doc. */
  workerPath?: string;
  /** Worker threads, 1–2 (default: 2 when the machine has 2 cores or more, else 1). */
  threads?: number;
}

function resolveWorker(explicit: string | undefined): string {
  if (explicit) return explicit.startsWith('file:') ? explicit : pathToFileURL(explicit).href;
  const js = new URL('./hash-worker.js', import.meta.url);
  if (js.protocol === 'file:' && existsSync(fileURLToPath(js))) return js.href;
  const ts = new URL('./hash-worker.ts', import.meta.url);
  if (ts.protocol === 'file:' && !existsSync(fileURLToPath(ts))) {
    throw new ConfigError(`hash worker not found beside ${import.meta.url} (looked for hash-worker.js and hash-worker.ts); bundle core/sync/hash-worker.ts as its own entry or pass workerPath`);
  }
  return ts.href;
}

function hasTsx(argv: readonly string[]): boolean {
  return argv.some((a, i) => /(^|[/\\])tsx([/\\]|$)|^--import=tsx|^tsx$/.test(a) || (a === '--import' && /tsx/.test(argv[i + 1] ?? '')));
}

/** Node options of the parent that take their value as the next argument and that worker threads accept. */
const WORKER_ARG_WITH_VALUE = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--conditions', '-C', '--cpu-prof-dir', '--cpu-prof-name', '--cpu-prof-interval', '--heap-prof-dir', '--heap-prof-name', '--heap-prof-interval']);
/** The same options written `--name=value`, and the flags without a value, that worker threads accept. */
const WORKER_ARG = /^(--(import|require|loader|experimental-loader|conditions|cpu-prof-dir|cpu-prof-name|cpu-prof-interval|heap-prof-dir|heap-prof-name|heap-prof-interval)=.|--cpu-prof$|--heap-prof$|--enable-source-maps$|--no-warnings$|--no-deprecation$|--trace-warnings$|--trace-deprecation$|--trace-uncaught$)/;

/**
 * The parent's `execArgv` (`process.execArgv` shape: Node's own options before the script) that a
 * worker thread may be given explicitly: loaders (`--import`, `--require`…), the profiler's and a
 * few warning options. V8 and per-process options (`--max-old-space-size`, `--stack-size`,
 * `--trace-gc`…) are left out: an explicit `execArgv` holding one makes `new Worker` throw
 * ERR_WORKER_INVALID_EXEC_ARGV ("Initiated Worker with invalid execArgv flags"), and they apply to
 * the worker threads anyway, being the process's. Unknown options are left out too.
 */
export function workerExecArgv(parent: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < parent.length; i++) {
    const a = parent[i]!;
    if (WORKER_ARG_WITH_VALUE.has(a) && i + 1 < parent.length) out.push(a, parent[++i]!);
    else if (WORKER_ARG.test(a)) out.push(a);
  }
  return out;
}

/** Most {@link Hasher.scanFile} calls sent to a worker in one message. */
const SCAN_BATCH = 32;
/** Writes smaller than this (bytes) may share one worker task with others made in the same event-loop turn. */
const WRITE_BATCH_BYTES = 1 << 20;
/** Most writes in one shared worker task. */
const WRITE_BATCH_TASKS = 64;

/** Bytes of its backing buffer a block may leave unused and still be transferred without a copy (a reply message's header). */
const TRANSFER_SLACK = 64;
/**
 * Smallest block transferred without a copy. Larger than an HTTP/2 frame (16 KiB), so such a
 * block arrived in a buffer of its own (gRPC joins a message spanning frames into a new buffer);
 * smaller blocks are cheap to copy and may be views into a shared read buffer.
 */
const TRANSFER_MIN = 64 << 10;

/**
 * True when `data` may be handed to a worker by transferring its backing ArrayBuffer: it is at
 * least {@link TRANSFER_MIN} bytes and covers all of its buffer but at most {@link TRANSFER_SLACK}
 * bytes (so no other data lives there; Node's shared Buffer pool, which is untransferable, only
 * holds Buffers under 4 KiB).
 */
export function ownsBuffer(data: Uint8Array): boolean {
  const buf = data.buffer;
  return buf instanceof ArrayBuffer && data.byteLength >= TRANSFER_MIN && buf.byteLength !== Buffer.poolSize && buf.byteLength - data.byteLength <= TRANSFER_SLACK;
}

/** The buffers of `items` to transfer to a worker: all but shared ones (a SharedArrayBuffer is shared, not transferred). */
function transferable(items: readonly { data: Uint8Array }[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const it of items) if (it.data.buffer instanceof ArrayBuffer) out.push(it.data.buffer);
  return out;
}

/** A worker's HashFailure as an Error carrying the fs `code` (thrown errors lose it across threads). */
function failureError(f: HashFailure, path?: string): Error {
  return Object.assign(new Error(f.error.message), { name: f.error.name, code: f.error.code, ...(path ? { path } : {}) });
}

/**
 * How a turn's `count` calls are cut into messages: over `spread` threads, at most `maxTasks` per
 * message, in order. Always spread, even two calls: their files' sizes are unknown on the main
 * thread, and the large files a bulk copy writes together settle, and get scanned, in one turn
 * (four 64 MiB files in one message were hashed one after another on one thread while the other
 * idled). A message costs the main thread about 10 µs; at most `spread - 1` more per turn.
 */
export function messageSizes(count: number, spread: number, maxTasks: number): number[] {
  const per = Math.max(1, Math.min(maxTasks, Math.ceil(count / Math.max(1, spread))));
  const out: number[] = [];
  for (let left = count; left > 0; left -= per) out.push(Math.min(per, left));
  return out;
}

/**
 * Calls made in one event-loop turn, sent to the workers together as {@link BatchTask}s (one
 * message per batch, not per call): flushed at the end of the turn, or at once when `maxBytes`
 * are queued; split over `spread` threads, at most `maxTasks` per message. Each call settles on
 * its own (a failed task rejects only its own call, with the fs `code`).
 */
class TurnBatcher<T extends ScanFileTask | WriteBlocksTask, R> {
  private queue: { task: T; resolve: (r: R) => void; reject: (err: unknown) => void }[] = [];
  private bytes = 0;

  constructor(
    private readonly pool: Piscina,
    private readonly maxTasks: number,
    private readonly maxBytes: number,
    private readonly spread: number,
  ) {}

  add(task: T, bytes = 0): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.bytes += bytes;
      if (this.bytes >= this.maxBytes || this.queue.length >= this.maxTasks * this.spread) this.flush();
      else if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const all = this.queue;
    this.queue = [];
    this.bytes = 0;
    let i = 0;
    for (const n of messageSizes(all.length, this.spread, this.maxTasks)) {
      const batch = all.slice(i, (i += n));
      const transferList = [...new Set(batch.flatMap((b) => (b.task.kind === 'writeBlocks' ? transferable(b.task.items) : [])))];
      const msg: BatchTask = { kind: 'batch', tasks: batch.map((b) => b.task) };
      (this.pool.run(msg, { transferList }) as Promise<(R | HashFailure)[] | HashFailure>).then(
        (rs) => {
          if ('error' in rs) throw failureError(rs);
          batch.forEach((b, k) => {
            const r = rs[k];
            if (r === undefined) b.reject(new Error('hash worker returned no result for a batched task'));
            else if (typeof r === 'object' && r !== null && 'error' in r) b.reject(failureError(r as HashFailure, b.task.kind === 'scanFile' ? b.task.path : b.task.dest));
            else b.resolve(r as R);
          });
        },
      ).catch((err: unknown) => batch.forEach((b) => b.reject(err)));
    }
  }
}

/** Hashes files off the main thread. Call {@link Hasher.destroy} when done. */
export class Hasher {
  private readonly pool: Piscina;
  private readonly threads: number;
  /** scanFile calls of one event-loop turn, split over the threads. */
  private readonly scans: TurnBatcher<ScanFileTask, ScanFileResult>;
  /** Small writes of one event-loop turn (the files of one merged `GetBlocks` reply). */
  private readonly writes: TurnBatcher<WriteBlocksTask, BlocksResult>;
  /** URL of the worker module in use. */
  readonly workerUrl: string;

  /** @throws ConfigError when no worker module can be found */
  constructor(options: HasherOptions = {}) {
    this.workerUrl = resolveWorker(options.workerPath);
    const threads = Math.min(2, Math.max(1, options.threads ?? (availableParallelism() >= 2 ? 2 : 1)));
    this.threads = threads;
    // `--import tsx` would be resolved from the process's working directory (and fail outside the
    // repository): hand the threads tsx's loader by absolute URL instead, beside the parent's
    // options a worker accepts (a V8 flag such as --max-old-space-size would make it throw).
    const execArgv = this.workerUrl.endsWith('.ts') && !hasTsx(process.execArgv) ? [...workerExecArgv(process.execArgv), '--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : undefined;
    this.pool = new Piscina({
      filename: this.workerUrl,
      minThreads: 1,
      maxThreads: threads,
      idleTimeout: 30_000,
      ...(execArgv ? { execArgv } : {}),
    });
    this.scans = new TurnBatcher(this.pool, SCAN_BATCH, Infinity, threads);
    this.writes = new TurnBatcher(this.pool, WRITE_BATCH_TASKS, WRITE_BATCH_BYTES, 1);
  }

  /**
   * SHA-256 (lowercase hex), size in bytes and mtime (ms) of the file at absolute `path`.
   * Rejects with an Error carrying the fs `code` (ENOENT, EACCES…) when the file cannot be read.
   */
  async hash(path: string): Promise<HashResult> {
    const r = (await this.pool.run({ path })) as HashResult | HashFailure;
    if ('error' in r) throw failureError(r, path);
    return r;
  }

  /**
   * lstat checks and (when needed) the hash of one folder file in one worker round trip; see
   * {@link ScanFileTask}. Rejects with an Error carrying the fs `code` for failures other than a
   * missing file (EACCES, EIO…, or ENOENT when the file vanished while being hashed).
   */
  scanFile(task: Omit<ScanFileTask, 'kind'>): Promise<ScanFileResult> {
    return this.scans.add({ kind: 'scanFile', ...task });
  }

  /**
   * Copies blocks from local file `src` into `dest` at the given offsets, each only after its bytes
   * re-hash to the expected SHA-256 (the source may have changed since it was indexed). Resolves
   * with one flag per item; a missing `src` gives all false. Rejects (with `code`) when `dest` cannot be written.
   */
  async copyBlocks(src: string, dest: string, items: CopyBlocksTask['items']): Promise<boolean[]> {
    return this.runBlocks({ kind: 'copyBlocks', src, dest, items });
  }

  /** Writes fetched blocks into `dest` at their offsets; an item whose bytes do not hash to its `hash` is not written (false). */
  async writeBlocks(dest: string, items: WriteBlocksTask['items']): Promise<boolean[]> {
    return (await this.writeBlocksFinish(dest, items)).ok;
  }

  /**
   * {@link writeBlocks} (creating `dest` when missing); with `finish`, once every item verified,
   * also sets mode 0644 and mtime `finish.mtimeMs` and reports the file's size and mtime. With
   * `also`, verified items are written to those other (existing) files too (`alsoOk`).
   */
  async writeBlocksFinish(dest: string, items: WriteBlocksTask['items'], finish?: { mtimeMs: number }, also?: WriteBlocksTask['also']): Promise<BlocksResult> {
    // A Uint8Array view is cloned with its WHOLE backing buffer (gRPC hands out views into large
    // receive buffers): a block that is (nearly) all of its buffer — a block big enough to have
    // its own reply message — is transferred as it is; any other is copied into its own buffer
    // first, so the frame holding other blocks is not sent (or detached). A view into a
    // SharedArrayBuffer (a pooled GetBlocks reply) crosses as it is: the worker reads the same
    // memory, and the caller may reuse it once this resolves. The caller must not use any other
    // `items[].data` afterwards.
    const seen = new Set<ArrayBufferLike>();
    const own = items.map((it) => {
      if (it.data.buffer instanceof SharedArrayBuffer) return it; // shared memory: crosses as it is
      if (ownsBuffer(it.data) && !seen.has(it.data.buffer)) {
        seen.add(it.data.buffer);
        return it;
      }
      const data = new Uint8Array(it.data.byteLength);
      data.set(it.data);
      return { ...it, data };
    });
    const task: WriteBlocksTask = { kind: 'writeBlocks', dest, items: own, ...(finish ? { finish } : {}), ...(also && also.length > 0 ? { also } : {}) };
    const bytes = own.reduce((n, it) => n + it.data.byteLength, 0);
    if (bytes < WRITE_BATCH_BYTES) return this.writes.add(task, bytes);
    const r = (await this.pool.run(task, { transferList: transferable(own) })) as BlocksResult | HashFailure;
    if ('error' in r) throw failureError(r);
    return r;
  }

  /** Which of `items` the file at `path` already holds (true when the bytes at the offset hash to `hash`). */
  async checkBlocks(path: string, items: CheckBlocksTask['items']): Promise<boolean[]> {
    return this.runBlocks({ kind: 'checkBlocks', path, items });
  }

  private async runBlocks(task: CopyBlocksTask | WriteBlocksTask | CheckBlocksTask, transferList?: ArrayBuffer[]): Promise<boolean[]> {
    const r = (await this.pool.run(task, transferList ? { transferList } : undefined)) as BlocksResult | HashFailure;
    if ('error' in r) throw failureError(r);
    return r.ok;
  }

  /** Stops the worker threads. Idempotent. */
  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}
