/**
 * Piscina worker: hashes one file with SHA-256, streaming it through `node:crypto` so large
 * files never sit in memory. Runs on a worker thread only (see `hasher.ts`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

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
}

/** An fs failure in wire form (errors crossing threads travel as `{ name, code, message }`). */
export interface HashFailure {
  error: { name: string; code: string; message: string };
}

/** Hashes `path`; an fs failure (ENOENT, EACCES…) is returned as {@link HashFailure}, since thrown errors lose `code` across threads. */
export default async function hashFile({ path }: HashTask): Promise<HashResult | HashFailure> {
  try {
    return await hashStream(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: { name: e.name ?? 'Error', code: e.code ?? 'EIO', message: e.message ?? String(err) } };
  }
}

async function hashStream(path: string): Promise<HashResult> {
  const before = await stat(path);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    size += buf.length;
    hash.update(buf);
  }
  return { sha256: hash.digest('hex'), size, mtimeMs: before.mtimeMs };
}
