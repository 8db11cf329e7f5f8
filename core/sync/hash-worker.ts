/**
 * Piscina worker: hashes one file with SHA-256 — the whole file and each of its blocks (see
 * `blocks.ts`) in the same read — a chunk at a time, so large files never sit in memory. Also
 * verifies and writes blocks for the receiver (copy from a local file, write fetched
 * bytes, check a partial file on resume), so block hashing never runs on the main thread.
 * Runs on a worker thread only (see `hasher.ts`).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, futimesSync, lstatSync, openSync, readSync, writeSync } from 'node:fs';
import { errCode } from '../common/errors';
import { blockSize } from './blocks';

/** Input of one hashing task. */
export interface HashTask {
  /** Absolute path of the file to hash. */
  path: string;
}

/** Result of one hashing task. `size` is in bytes and `mtimeMs` is the mtime seen before reading. */
export interface HashResult {
  sha256: string;
  size: number;
  mtimeMs: number;
  /** SHA-256 of each block (`blocks.ts` layout for `size`), in order; `[sha256]` for a one-block file, `[]` when empty. */
  blocks: string[];
}

/** Copy verified blocks from `src` into `dest` (both absolute; `dest` exists). */
export interface CopyBlocksTask {
  kind: 'copyBlocks';
  src: string;
  dest: string;
  items: { srcOffset: number; destOffset: number; size: number; hash: string }[];
}
/** Write fetched blocks into `dest` (created when missing) after checking each one's hash. */
export interface WriteBlocksTask {
  kind: 'writeBlocks';
  dest: string;
  items: { offset: number; hash: string; data: Uint8Array }[];
  /** When every item verified: also make `dest` mode 0644 with this mtime (ms), and report its size and mtime. */
  finish?: { mtimeMs: number };
  /**
   * More places for verified items (another partial file waiting for the same block): `items[item]`
   * is also written to `dest` at `offset` once it verified. `dest` must exist (it is not created);
   * an item that did not verify, or a `dest` that cannot be opened, is reported false in `alsoOk`.
   */
  also?: { item: number; dest: string; offset: number }[];
}
/** Which blocks `path` already holds (resume of a partial file). */
export interface CheckBlocksTask {
  kind: 'checkBlocks';
  path: string;
  items: { offset: number; size: number; hash: string }[];
}
/** Per item of a block task: true when its bytes hashed to its `hash` (and, for copy/write, were written). */
export interface BlocksResult {
  ok: boolean[];
  /** With `finish`, when it was applied: the file's size and mtime (fstat). */
  finished?: { size: number; mtimeMs: number };
  /** Per entry of a write's `also`: true when written there. */
  alsoOk?: boolean[];
}

/**
 * Examine one file of the folder for the sync engine in one round trip (the scan's per-file
 * lstat/hash/lstat off the main thread): lstat each of `parents` (a symbolic link among them is
 * reported, a missing one ends the check), lstat `path`, and hash it unless its size and mtime equal
 * `known` or it was modified less than its settle time ago; after hashing, lstat it again.
 */
export interface ScanFileTask {
  kind: 'scanFile';
  path: string;
  /** Absolute paths of the folders between the synchronized folder and `path`, outermost first. */
  parents: string[];
  /** Size and mtime (ms) of content already hashed: equal ones are not hashed again. */
  known?: { size: number; mtimeMs: number };
  /** Only lstat: report `stat` instead of hashing. */
  statOnly?: boolean;
  /** Files up to `smallFile` bytes must be `settleSmallMs` old (by mtime) before hashing, larger ones `settleMs`. */
  smallFile: number;
  settleSmallMs: number;
  settleMs: number;
}
/**
 * Several small tasks in one message: calls made in one event-loop turn (a scan's files, the small
 * files of one merged `GetBlocks` reply), sent together by `Hasher` instead of one message each.
 * Each runs on its own: one result, or its fs failure, per task, in order.
 */
export interface BatchTask {
  kind: 'batch';
  tasks: (ScanFileTask | WriteBlocksTask)[];
}
/** What {@link ScanFileTask} found. */
export type ScanFileResult =
  | { kind: 'missing' }
  | { kind: 'symlinkParent'; dir: string }
  | { kind: 'symlink' }
  | { kind: 'notFile' }
  /** Not hashed: equal to `known`, or still settling (the caller decides which from the numbers). */
  | { kind: 'stat'; size: number; mtimeMs: number }
  /** Hashed; `stable` is false when size or mtime moved while it was read (still being written). */
  | { kind: 'hashed'; hash: HashResult; size: number; mtimeMs: number; stable: boolean };

/** An fs failure in wire form (errors crossing threads travel as `{ name, code, message }`). */
export interface HashFailure {
  error: { name: string; code: string; message: string };
}

/** Bytes read per call when hashing a file of more than one block. */
const READ_CHUNK = 1 << 20;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function failure(err: unknown): HashFailure {
  const e = err as NodeJS.ErrnoException;
  return { error: { name: e.name ?? 'Error', code: e.code ?? 'EIO', message: e.message ?? String(err) } };
}

/**
 * Runs one task: hashes `path` (a {@link HashTask}), or a block task. An fs failure (ENOENT,
 * EACCES…) is returned as {@link HashFailure}, since thrown errors lose `code` across threads.
 */
export default async function run(
  task: HashTask | CopyBlocksTask | WriteBlocksTask | CheckBlocksTask | ScanFileTask | BatchTask,
): Promise<HashResult | BlocksResult | ScanFileResult | (ScanFileResult | BlocksResult | HashFailure)[] | HashFailure> {
  if ('kind' in task) {
    if (task.kind === 'batch') {
      const out: (ScanFileResult | BlocksResult | HashFailure)[] = [];
      for (const t of task.tasks) {
        try {
          out.push(t.kind === 'scanFile' ? await scanFile(t) : writeBlocks(t));
        } catch (err) {
          out.push(failure(err));
        }
      }
      return out;
    }
    try {
      if (task.kind === 'scanFile') return await scanFile(task);
      if (task.kind === 'copyBlocks') return copyBlocks(task);
      if (task.kind === 'writeBlocks') return writeBlocks(task);
      return checkBlocks(task);
    } catch (err) {
      return failure(err);
    }
  }
  try {
    return hashFile(task.path);
  } catch (err) {
    return failure(err);
  }
}

/**
 * The lstat step of a {@link ScanFileTask}, synchronous, on whichever thread calls it (the worker,
 * or the engine for a file it expects to be missing): lstat each of `parents` (a symbolic link
 * among them is reported, a missing one ends the check), then `path`. Returns every answer but
 * `hashed`; `stat` for a regular file.
 * @throws the fs error (with its `code`) for failures other than ENOENT/ENOTDIR
 */
export function lstatForScan(path: string, parents: readonly string[]): Exclude<ScanFileResult, { kind: 'hashed' }> {
  for (const dir of parents) {
    let st;
    try {
      st = lstatSync(dir);
    } catch (err) {
      if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') break; // the file lstat below reports it
      throw err;
    }
    if (st.isSymbolicLink()) return { kind: 'symlinkParent', dir };
  }
  let st;
  try {
    // throwIfNoEntry: a missing file (every file a bulk sync is about to receive) costs no exception.
    st = lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (errCode(err) === 'ENOENT' || errCode(err) === 'ENOTDIR') return { kind: 'missing' };
    throw err;
  }
  if (!st) return { kind: 'missing' };
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  if (!st.isFile()) return { kind: 'notFile' };
  return { kind: 'stat', size: st.size, mtimeMs: st.mtimeMs };
}

async function scanFile(t: ScanFileTask): Promise<ScanFileResult | HashFailure> {
  const stat0 = lstatForScan(t.path, t.parents);
  if (stat0.kind !== 'stat') return stat0;
  const st = stat0;
  if (t.statOnly || (t.known && t.known.size === st.size && t.known.mtimeMs === st.mtimeMs)) return stat0;
  const settle = st.size <= t.smallFile ? t.settleSmallMs : t.settleMs;
  // Date.now() is whole ms while mtimes have sub-ms parts: a file written this very ms has a
  // slightly negative age and must wait too (an edit was lost in the history test when it did
  // not). An mtime more than a second ahead is clock skew, not a write in progress: no wait.
  const age = Date.now() - st.mtimeMs;
  if (age > -1000 && age < settle) return stat0;
  const hash = hashFile(t.path); // ENOENT here is returned as a HashFailure
  let after;
  try {
    after = lstatSync(t.path);
  } catch {
    after = null;
  }
  const stable = hash.size === st.size && hash.mtimeMs === st.mtimeMs && !!after && after.size === st.size && after.mtimeMs === st.mtimeMs;
  return { kind: 'hashed', hash, size: st.size, mtimeMs: st.mtimeMs, stable };
}

/**
 * This thread's read buffer, reused by every read whose bytes are used up before the next read
 * (hashed, then written or dropped). Memory fresh from the OS costs a page fault per 4 KiB: on the
 * benchmark VM about 4 ms per MiB, more than SHA-256 of it (0.7 ms per MiB), and hashing a 64 MiB
 * file through a read stream's fresh 1 MiB chunks, or copying its blocks through a fresh buffer
 * each, paid it for every byte. Only synchronous code holds a view of it: no await separates a
 * read into it from the use of those bytes (and Piscina runs one task at a time per thread).
 * Grows to the largest read asked for (a block: at most 16 MiB).
 */
let scratch = Buffer.allocUnsafeSlow(READ_CHUNK);

/** Reads up to `size` bytes of `fd` at `offset` into {@link scratch}; returns the bytes read (fewer at the end of the file). Valid until the next read. */
function readScratch(fd: number, size: number, offset: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, scratch, got, size - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return scratch.subarray(0, got);
}

// Synchronous fs, reads into the thread's scratch buffer (see writeBlocks and readScratch).
function copyBlocks(t: CopyBlocksTask): BlocksResult {
  const ok = t.items.map(() => false);
  let src: number;
  try {
    src = openSync(t.src, 'r');
  } catch {
    return { ok }; // the source went away: every block must come from elsewhere
  }
  try {
    const dest = openSync(t.dest, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      for (let i = 0; i < t.items.length; i++) {
        const it = t.items[i]!;
        const buf = readScratch(src, it.size, it.srcOffset);
        if (buf.length !== it.size || sha(buf) !== it.hash) continue;
        writeAllAt(dest, buf, it.destOffset);
        ok[i] = true;
      }
    } finally {
      closeSync(dest);
    }
  } finally {
    closeSync(src);
  }
  return { ok };
}

// Synchronous fs on this worker thread: one task, no thread-pool round trip per call.
function writeBlocks(t: WriteBlocksTask): BlocksResult {
  const ok = t.items.map(() => false);
  const fd = openSync(t.dest, constants.O_RDWR | constants.O_CREAT, 0o644);
  let finished: BlocksResult['finished'];
  try {
    for (let i = 0; i < t.items.length; i++) {
      const it = t.items[i]!;
      if (sha(it.data) !== it.hash) continue;
      writeAllAt(fd, it.data, it.offset);
      ok[i] = true;
    }
    if (t.finish && ok.every(Boolean)) {
      fchmodSync(fd, 0o644);
      const at = new Date(t.finish.mtimeMs);
      futimesSync(fd, at, at);
      const st = fstatSync(fd);
      finished = { size: st.size, mtimeMs: st.mtimeMs };
    }
  } finally {
    closeSync(fd);
  }
  const alsoOk = t.also ? writeAlso(t, ok) : undefined;
  return { ok, ...(finished ? { finished } : {}), ...(alsoOk ? { alsoOk } : {}) };
}

/** Writes all of `data` to `fd` at byte `position` (writeSync may write less than asked). */
function writeAllAt(fd: number, data: Uint8Array, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}

/** Writes each verified item of `t` to its `also` places (one open per file); false where not written. */
function writeAlso(t: WriteBlocksTask, ok: boolean[]): boolean[] {
  const also = t.also!;
  const out = also.map(() => false);
  const byDest = new Map<string, number[]>();
  also.forEach((a, k) => {
    if (!ok[a.item]) return;
    const list = byDest.get(a.dest);
    if (list) list.push(k);
    else byDest.set(a.dest, [k]);
  });
  for (const [dest, list] of byDest) {
    let fd: number;
    try {
      fd = openSync(dest, constants.O_RDWR); // never created here: the waiting transfer made it
    } catch {
      continue; // gone (that transfer ended): it copies or fetches what it lacks itself
    }
    try {
      for (const k of list) {
        const a = also[k]!;
        writeAllAt(fd, t.items[a.item]!.data, a.offset);
        out[k] = true;
      }
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

function checkBlocks(t: CheckBlocksTask): BlocksResult {
  const ok = t.items.map(() => false);
  let fd: number;
  try {
    fd = openSync(t.path, 'r');
  } catch {
    return { ok };
  }
  try {
    for (let i = 0; i < t.items.length; i++) {
      const it = t.items[i]!;
      const buf = readScratch(fd, it.size, it.offset);
      ok[i] = buf.length === it.size && sha(buf) === it.hash;
    }
  } finally {
    closeSync(fd);
  }
  return { ok };
}

/** Feeds bytes to the whole-file hash and to per-block hashes cut at multiples of `bs`. */
class BlockHasher {
  private readonly whole = createHash('sha256');
  private block = createHash('sha256');
  private inBlock = 0;
  readonly hashes: string[] = [];
  constructor(private readonly bs: number) {}
  update(buf: Buffer): void {
    this.whole.update(buf);
    let pos = 0;
    while (pos < buf.length) {
      const n = Math.min(this.bs - this.inBlock, buf.length - pos);
      this.block.update(pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n));
      this.inBlock += n;
      pos += n;
      if (this.inBlock === this.bs) {
        this.hashes.push(this.block.digest('hex'));
        this.block = createHash('sha256');
        this.inBlock = 0;
      }
    }
  }
  digest(): { sha256: string; blocks: string[] } {
    if (this.inBlock > 0) this.hashes.push(this.block.digest('hex'));
    return { sha256: this.whole.digest('hex'), blocks: this.hashes };
  }
}

/**
 * Hashes the file at `path` (whole and per block), with synchronous reads into the scratch buffer
 * on this worker thread: no thread-pool round trip per call, which cost more than the syscalls in
 * a bulk of small files, and no fresh memory per read. A file of more than one block is read to
 * its end, so one that grew since its stat reports the size read; `mtimeMs` is the one seen
 * before reading.
 */
function hashFile(path: string): HashResult {
  const fd = openSync(path, 'r');
  try {
    const before = fstatSync(fd);
    const bs = blockSize(before.size);
    if (before.size <= bs) {
      // One block: the block hash is the file hash (hash once). The size seen at stat is read (one
      // read call, as readFileSync does); a file that grew meanwhile reports its stat size, and
      // the caller's lstat after the hash sees the change.
      const buf = readScratch(fd, before.size, 0);
      const h = sha(buf);
      return { sha256: h, size: buf.length, mtimeMs: before.mtimeMs, blocks: buf.length === 0 ? [] : [h] };
    }
    const hash = new BlockHasher(bs);
    let size = 0;
    for (;;) {
      const buf = readScratch(fd, READ_CHUNK, size);
      if (buf.length === 0) break;
      hash.update(buf);
      size += buf.length;
    }
    const d = hash.digest();
    // The block size follows the size at stat time; a file that changed size while read is
    // re-hashed by the caller (it compares size and mtime around the hash), so a stale layout never lands.
    return { sha256: d.sha256, size, mtimeMs: before.mtimeMs, blocks: d.blocks };
  } finally {
    closeSync(fd);
  }
}
