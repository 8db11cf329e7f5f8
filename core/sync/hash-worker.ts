/**
 * Piscina worker: hashes one file with SHA-256, streaming it through `node:crypto` so large
 * files never sit in memory. Runs on a worker thread only (see `hasher.ts`).
 *
 * With `copyTo`, the bytes read are also written to that path (one read for hash and copy; the
 * copy then holds exactly the bytes that hashed to `sha256`, whatever happens to the source).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Input of one hashing task. */
export interface HashTask {
  /** Absolute path of the file to hash. */
  path: string;
  /** Also write the bytes read to this path (created or replaced). */
  copyTo?: string;
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

/** Files up to this size are read in one call. */
const SMALL = 4 << 20;

/** Hashes `path`; an fs failure (ENOENT, EACCES…) is returned as {@link HashFailure}, since thrown errors lose `code` across threads. */
export default async function hashFile({ path, copyTo }: HashTask): Promise<HashResult | HashFailure> {
  try {
    return await hashStream(path, copyTo);
  } catch (err) {
    if (copyTo) await rm(copyTo, { force: true }).catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    return { error: { name: e.name ?? 'Error', code: e.code ?? 'EIO', message: e.message ?? String(err) } };
  }
}

async function hashStream(path: string, copyTo: string | undefined): Promise<HashResult> {
  const before = await stat(path);
  const hash = createHash('sha256');
  let size = 0;
  if (before.size <= SMALL) {
    const buf = await readFile(path);
    hash.update(buf);
    size = buf.length;
    if (copyTo) await writeFile(copyTo, buf);
  } else if (copyTo) {
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), tap, createWriteStream(copyTo, { highWaterMark: 1 << 20 }));
  } else {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      const buf = chunk as Buffer;
      size += buf.length;
      hash.update(buf);
    }
  }
  return { sha256: hash.digest('hex'), size, mtimeMs: before.mtimeMs };
}
