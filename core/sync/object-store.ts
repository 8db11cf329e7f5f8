/**
 * Content-addressed object store: `<dataDir>/objects/<aa>/<sha256>` where `aa` is the first two
 * hex digits (git's loose-object layout). Objects are immutable and are only ever created by
 * renaming a fully written, verified temp file (`<dataDir>/objects/tmp/…`) into place, so a
 * reader never sees a partial object. Peers serve objects from here ({@link ObjectStore.createReadStream}).
 *
 * Verification hashes off the main thread when a `hashFile` function (e.g. `Hasher.hash`) is given.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, type ReadStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, ValidationError } from '../common/errors';
import { isSha256 } from './blocks';

/** Hashes a file at an absolute path; resolves to its lowercase hex SHA-256. */
export type HashFileFn = (path: string) => Promise<{ sha256: string }>;


/** Throws ValidationError unless `sha` is 64 lowercase hex digits. */
export function assertSha256(sha: string): void {
  if (!isSha256(sha)) throw new ValidationError(`not a SHA-256 hex digest: ${JSON.stringify(sha)}`);
}

async function hashInline(path: string): Promise<{ sha256: string }> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return { sha256: h.digest('hex') };
}

/** A content-addressed blob store rooted at `<dataDir>/objects`. */
export class ObjectStore {
  /** `<dataDir>/objects`. */
  readonly root: string;
  private readonly tmpDir: string;
  private readonly hashFile: HashFileFn;
  /** Fan-out directories known to exist. */
  private readonly dirs = new Set<string>();

  /**
   * @param dataDir the node's data directory
   * @param hashFile how to verify content (default: an inline stream hash on the calling thread)
   */
  constructor(dataDir: string, hashFile?: HashFileFn) {
    this.root = join(dataDir, 'objects');
    this.tmpDir = join(this.root, 'tmp');
    this.hashFile = hashFile ?? hashInline;
  }

  /** Creates the directories and removes temp files left by a crash. */
  async init(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** Absolute path where object `sha` lives (whether or not it exists). Throws ValidationError for a malformed digest. */
  pathOf(sha: string): string {
    assertSha256(sha);
    return join(this.root, sha.slice(0, 2), sha);
  }

  /** True when object `sha` is stored (synchronous stat; false for a malformed digest). */
  has(sha: string): boolean {
    return isSha256(sha) && existsSync(this.pathOf(sha));
  }

  /** A fresh temp path inside the store (same filesystem as the objects, so rename is atomic). */
  tempPath(): string {
    return join(this.tmpDir, `${Date.now()}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Copies `srcPath` into the store as object `sha`, verifying the copy's hash first.
   * No-op when the object exists. Rejects with ValidationError on a hash mismatch (the file
   * changed since it was hashed); nothing is stored then.
   */
  async putFile(srcPath: string, sha: string): Promise<void> {
    if (this.has(sha)) return;
    const tmp = this.tempPath();
    try {
      await copyFile(srcPath, tmp);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await this.adopt(tmp, sha);
  }

  /**
   * Moves a complete temp file (from {@link tempPath}) into the store as `sha` after verifying it.
   * Always consumes `tmpPath`. Rejects with ValidationError on mismatch; nothing is stored then.
   */
  async adopt(tmpPath: string, sha: string): Promise<void> {
    const dest = this.pathOf(sha);
    try {
      const got = await this.hashFile(tmpPath);
      if (got.sha256 !== sha) throw new ValidationError(`content hash mismatch: expected ${sha}, got ${got.sha256}`, { detail: { expected: sha, actual: got.sha256 } });
      await mkdir(join(this.root, sha.slice(0, 2)), { recursive: true });
      await rename(tmpPath, dest);
    } finally {
      await rm(tmpPath, { force: true });
    }
  }

  /**
   * Moves a complete temp file (from {@link tempPath}) into the store as `sha` WITHOUT hashing it:
   * only for bytes the caller has already verified (hashed while writing them). Always consumes
   * `tmpPath`; a no-op beyond that when the object exists.
   */
  async adoptVerified(tmpPath: string, sha: string): Promise<void> {
    const dest = this.pathOf(sha);
    try {
      if (!this.has(sha)) {
        const dir = join(this.root, sha.slice(0, 2));
        if (!this.dirs.has(dir)) {
          await mkdir(dir, { recursive: true });
          this.dirs.add(dir);
        }
        await rename(tmpPath, dest);
        return;
      }
    } catch (err) {
      await unlink(tmpPath).catch(() => undefined);
      throw err;
    }
    await unlink(tmpPath).catch(() => undefined);
  }

  /** A read stream of object `sha` (peers serve these). Throws NotFoundError when it is not stored. */
  createReadStream(sha: string): ReadStream {
    if (!this.has(sha)) throw new NotFoundError(`object ${sha} not found`);
    return createReadStream(this.pathOf(sha), { highWaterMark: 1 << 20 });
  }

  /**
   * Stores the bytes of `readable` as object `sha`. Rejects with ValidationError when the bytes
   * do not hash to `sha` (nothing is written), or with the stream's error.
   */
  async writeFromStream(sha: string, readable: Readable): Promise<void> {
    assertSha256(sha);
    const tmp = this.tempPath();
    try {
      await pipeline(readable, createWriteStream(tmp));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await this.adopt(tmp, sha);
  }

  /** Copies object `sha` to `destPath` (which must not be inside the store). Throws NotFoundError when missing. */
  async copyTo(sha: string, destPath: string): Promise<void> {
    if (!this.has(sha)) throw new NotFoundError(`object ${sha} not found`);
    await copyFile(this.pathOf(sha), destPath);
  }
}
