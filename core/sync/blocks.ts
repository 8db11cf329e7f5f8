/**
 * Block layout of synchronized files (Syncthing's block model, `lib/protocol` `BlockSize` and
 * `lib/scanner` `Blocks`): a file is cut into fixed-size blocks, the last one possibly shorter,
 * each identified by its SHA-256. The block size grows with the file — 128 KiB, 256 KiB, … up to
 * 16 MiB, doubling — and is the smallest power of two for which the file has fewer than
 * {@link DESIRED_BLOCKS_PER_FILE} blocks (Syncthing: `fileSize < DesiredPerFileBlocks * blockSize`),
 * so a file has at most ~2000 blocks until it exceeds 2000 × 16 MiB.
 *
 * A file of at most one block is described by its whole-file SHA-256 alone (the block hash is the
 * file hash). A larger file's block list travels as a content-addressed **manifest** object (see
 * {@link encodeManifest}) referenced by hash from the index record, keeping Raft entries small.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { ValidationError } from '../common/errors';

/** Smallest block size in bytes (Syncthing `MinBlockSize`, 128 KiB). */
export const MIN_BLOCK_SIZE = 128 << 10;
/** Largest block size in bytes (Syncthing `MaxBlockSize`, 16 MiB). */
export const MAX_BLOCK_SIZE = 16 << 20;
/** Target upper bound of blocks per file (Syncthing `DesiredPerFileBlocks`). */
export const DESIRED_BLOCKS_PER_FILE = 2000;
/**
 * Most blocks of a file whose block hashes its index record carries itself (`IndexRecord.blocks`):
 * files of up to 1 MiB. A receiver then needs no round trip for the manifest (one more request,
 * and an object file written on both nodes, per file of 2–8 blocks: most documents).
 */
export const INLINE_BLOCKS_MAX = 8;
/** Largest manifest accepted (bytes): enough for a 1 TiB file at 16 MiB blocks, with room. */
export const MAX_MANIFEST_BYTES = 8 << 20;

const SHA_RE = /^[0-9a-f]{64}$/;

/**
 * A block's bytes (from a peer, or from a local file that changed) did not hash to the block's
 * SHA-256. `detail`: `{ hash, source }`. The receiver drops the bytes and asks another source.
 */
export class BlockVerifyError extends ValidationError {
  constructor(hash: string, source: string) {
    super(`block ${hash.slice(0, 12)}… from ${source} failed SHA-256 verification`, { detail: { hash, source } });
    this.name = 'BlockVerifyError';
  }
}

/** True when `s` is a lowercase hex SHA-256 digest. */
export function isSha256(s: unknown): s is string {
  return typeof s === 'string' && SHA_RE.test(s);
}

/** One block of a file: byte `offset`, `size` in bytes and lowercase hex SHA-256 `hash`. */
export interface BlockInfo {
  offset: number;
  size: number;
  hash: string;
}

/**
 * Block size in bytes for a file of `fileSize` bytes (Syncthing `protocol.BlockSize`).
 * @throws ValidationError for a negative or non-integer size
 */
export function blockSize(fileSize: number): number {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) throw new ValidationError(`file size must be a non-negative integer, got ${fileSize}`);
  let size = MIN_BLOCK_SIZE;
  while (size < MAX_BLOCK_SIZE && fileSize >= DESIRED_BLOCKS_PER_FILE * size) size *= 2;
  return size;
}

/**
 * True when `n` bytes is the size of a full block: a power of two from {@link MIN_BLOCK_SIZE} to
 * {@link MAX_BLOCK_SIZE} (every block of a file but its last is one).
 */
export function isFullBlockSize(n: number): boolean {
  return n >= MIN_BLOCK_SIZE && n <= MAX_BLOCK_SIZE && (n & (n - 1)) === 0;
}

/** Number of blocks of a file of `fileSize` bytes (0 for an empty file). */
export function blockCount(fileSize: number): number {
  return Math.ceil(fileSize / blockSize(fileSize));
}

/** Offsets and sizes of the blocks of a file of `fileSize` bytes, in order. */
export function blockLayout(fileSize: number): { offset: number; size: number }[] {
  const bs = blockSize(fileSize);
  const out: { offset: number; size: number }[] = [];
  for (let off = 0; off < fileSize; off += bs) out.push({ offset: off, size: Math.min(bs, fileSize - off) });
  return out;
}

/** True when the file is described by its whole-file hash alone (at most one block, no manifest). */
export function isSingleBlock(fileSize: number): boolean {
  return fileSize <= blockSize(fileSize);
}

/**
 * The block list of a file of `fileSize` bytes with block hashes `hashes` (in order).
 * @throws ValidationError when the number of hashes does not match the layout or a hash is malformed
 */
export function blocksOf(fileSize: number, hashes: readonly string[]): BlockInfo[] {
  const layout = blockLayout(fileSize);
  if (layout.length !== hashes.length) throw new ValidationError(`a ${fileSize}-byte file has ${layout.length} blocks, got ${hashes.length} hashes`);
  return layout.map((b, i) => {
    const hash = hashes[i]!;
    if (!SHA_RE.test(hash)) throw new ValidationError(`block ${i}: not a SHA-256 hex digest: ${JSON.stringify(hash).slice(0, 80)}`);
    return { offset: b.offset, size: b.size, hash };
  });
}

/** Manifest document: the block list of one file version (`v` = format version). */
export interface Manifest {
  v: 1;
  size: number;
  blockSize: number;
  hashes: string[];
}

/** Canonical manifest text for a file (hash it with SHA-256 to get the manifest's object id). */
export function encodeManifest(fileSize: number, hashes: readonly string[]): string {
  blocksOf(fileSize, hashes); // validates
  const m: Manifest = { v: 1, size: fileSize, blockSize: blockSize(fileSize), hashes: [...hashes] };
  return JSON.stringify(m);
}

/**
 * Parses a manifest and checks it against the index record's `fileSize`.
 * @throws ValidationError for malformed JSON, a wrong size/block size, or bad hashes
 */
export function decodeManifest(text: string, fileSize: number): BlockInfo[] {
  if (text.length > MAX_MANIFEST_BYTES) throw new ValidationError(`manifest too large (${text.length} bytes)`);
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(text) as Partial<Manifest>;
  } catch {
    throw new ValidationError('manifest is not JSON');
  }
  if (m === null || typeof m !== 'object' || m.v !== 1 || !Array.isArray(m.hashes)) throw new ValidationError('manifest: unknown format');
  if (m.size !== fileSize) throw new ValidationError(`manifest is for a ${String(m.size)}-byte file, the record says ${fileSize}`);
  if (m.blockSize !== blockSize(fileSize)) throw new ValidationError(`manifest block size ${String(m.blockSize)} is not ${blockSize(fileSize)}`);
  return blocksOf(fileSize, m.hashes as string[]);
}

/**
 * Syncthing's `BlockDiff`: which blocks of `want` the file described by `have` already holds at
 * the same offset (`have`), and which must come from elsewhere (`need`). Both lists in offset order.
 */
export function diffBlocks(have: readonly BlockInfo[], want: readonly BlockInfo[]): { have: BlockInfo[]; need: BlockInfo[] } {
  const same: BlockInfo[] = [];
  const need: BlockInfo[] = [];
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const h = have[i];
    if (h && h.offset === w.offset && h.size === w.size && h.hash === w.hash) same.push(w);
    else need.push(w);
  }
  return { have: same, need };
}

/**
 * Groups `blocks` into request batches of at most `maxBlocks` blocks and `maxBytes` bytes (a
 * single block larger than `maxBytes` gets a batch of its own). Order is kept.
 */
export function batchBlocks<T extends { size: number }>(blocks: readonly T[], maxBlocks: number, maxBytes: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const b of blocks) {
    if (cur.length > 0 && (cur.length >= maxBlocks || bytes + b.size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(b);
    bytes += b.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
