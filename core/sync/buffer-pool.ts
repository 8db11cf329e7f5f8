/**
 * Free buffers of exact sizes, reused for the blocks a node serves to its peers and receives
 * from them (`GetBlocks`).
 *
 * Memory fresh from the operating system costs a page fault per 4 KiB page: on the benchmark VM
 * about 4 ms per MiB, several times SHA-256 of the same bytes. malloc serves a buffer of 128 KiB
 * or more (one block) from fresh mappings, so reading each served block into a new buffer paid
 * that for every byte sent: 0.36 s of the serving node's event loop per 64 MiB (and the receiver
 * as much to assemble each reply). A buffer handed back once its bytes have gone out (or been
 * written to disk) is used again instead.
 *
 * Safety: only buffers this pool issued are taken back, each once per issue, so a buffer handed
 * back twice (or one the pool never issued) can never be given to two readers at a time.
 *
 * Deterministic module: imports nothing from `node:`; the caller supplies the allocator.
 */

/** Options of a {@link BufferPool}. */
export interface BufferPoolOptions<B extends ArrayBufferLike> {
  /** Most bytes kept free at a time; a buffer handed back beyond that is left to the garbage collector. */
  maxBytes: number;
  /** Allocates a new buffer of `byteLength` bytes (contents need not be zeroed). */
  alloc(byteLength: number): B;
}

/** A pool of free buffers (`ArrayBuffer`s or `SharedArrayBuffer`s) keyed by exact byte length; see the module comment. */
export class BufferPool<B extends ArrayBufferLike = ArrayBuffer> {
  private readonly free = new Map<number, B[]>();
  /** Buffers issued and not handed back yet. */
  private readonly issued = new WeakSet<B>();
  private freeBytes = 0;
  private takenSinceTrim = false;
  /** Buffers handed out from the free lists (for tests and metrics). */
  reused = 0;

  constructor(private readonly opts: BufferPoolOptions<B>) {
    if (!Number.isSafeInteger(opts.maxBytes) || opts.maxBytes < 0) throw new RangeError(`BufferPool: maxBytes must be a non-negative integer, got ${opts.maxBytes}`);
  }

  /** A buffer of exactly `byteLength` bytes: a free one when there is one, else a new one. Its contents are undefined. */
  take(byteLength: number): B {
    this.takenSinceTrim = true;
    const list = this.free.get(byteLength);
    let buf = list?.pop();
    if (buf) {
      this.freeBytes -= byteLength;
      this.reused++;
      if (list!.length === 0) this.free.delete(byteLength);
    } else {
      buf = this.opts.alloc(byteLength);
    }
    this.issued.add(buf);
    return buf;
  }

  /**
   * Hands back a buffer {@link take} issued, once nothing reads or writes it any more. A buffer
   * the pool did not issue, or already had back, is ignored (returns false), as is one that would
   * take the free bytes past `maxBytes` or was detached (transferred) meanwhile.
   */
  give(buf: B): boolean {
    if (!this.issued.has(buf)) return false;
    this.issued.delete(buf);
    const n = buf.byteLength;
    if (n === 0 || this.freeBytes + n > this.opts.maxBytes) return false;
    const list = this.free.get(n);
    if (list) list.push(buf);
    else this.free.set(n, [buf]);
    this.freeBytes += n;
    return true;
  }

  /**
   * Drops every free buffer when none was taken since the previous call (the pool sat idle
   * between two calls: call it every few seconds so a burst's buffers do not stay held). Returns
   * the bytes dropped.
   */
  trimIdle(): number {
    const idle = !this.takenSinceTrim;
    this.takenSinceTrim = false;
    if (!idle) return 0;
    const dropped = this.freeBytes;
    this.free.clear();
    this.freeBytes = 0;
    return dropped;
  }

  /** Bytes held free right now. */
  get bytesFree(): number {
    return this.freeBytes;
  }
}
