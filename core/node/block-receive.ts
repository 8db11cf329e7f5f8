/**
 * The receiving side of `GetBlocks` without fresh memory per block: each reply that carries one
 * full block is assembled in a `SharedArrayBuffer` from a pool, handed to the hash worker as it
 * is (a shared buffer crosses threads without a copy or a transfer), and handed back to the pool
 * by the sync engine once the worker has verified and written it ({@link releaseReceivedBlock}).
 *
 * Why: grpc-js's client joins the HTTP/2 frames of each message into a new buffer
 * (`StreamDecoder`, `Buffer.concat`). malloc serves 128 KiB and more from fresh mappings, and a
 * fresh page costs a fault per 4 KiB (about 4 ms per MiB on the benchmark VM): 0.28 s of the
 * receiver's event loop per 64 MiB of blocks, plus V8's garbage collections triggered by the
 * external memory.
 *
 * How: {@link installBlockReplyDecoder} swaps the message reader of client calls to
 * `/clusterdesk.peer.v1.Data/GetBlocks` (grpc-js 1.14's `Http2SubchannelCall.decoder`; every
 * other call keeps grpc-js's own) for a {@link BlockReplyDecoder}, which reads the same gRPC
 * Length-Prefixed-Message framing (PROTOCOL-HTTP2.md: a 1-byte compressed flag, a 4-byte
 * big-endian length, the message) and copies each message's bytes straight into its buffer. A
 * grpc-js without that hook is left alone (replies are then assembled as before).
 */
import { createRequire } from 'node:module';
import { isFullBlockSize } from '../sync/blocks';
import { BufferPool } from '../sync/buffer-pool';

/** gRPC path of the block RPC whose replies are read by {@link BlockReplyDecoder}. */
export const GET_BLOCKS_PATH = '/clusterdesk.peer.v1.Data/GetBlocks';

/** Bytes of gRPC's Length-Prefixed-Message header: compressed flag (1) and message length (4, big-endian). */
export const GRPC_PREFIX_BYTES = 5;
/**
 * Bytes of framing around one block in a `GetBlocks` reply, at most: gRPC's 5-byte message
 * header, the index field (1 + up to 3 bytes for MAX_GET_BLOCKS) and the data field's tag and
 * length (1 + up to 4 bytes for blocks under 256 MiB), rounded up. The server reads each block
 * with this much room before it (framed in place); the receiver assembles a reply of one full
 * block in a buffer of the block's size plus this much.
 */
export const BLOCK_REPLY_HEADROOM = 16;
/**
 * Most bytes of free reply buffers kept for reuse: the sync engine's fetch budget (the bytes of
 * blocks it keeps in flight), so a bulk transfer assembles every reply in a buffer used before.
 */
const RECEIVE_POOL_BYTES = 64 << 20;
/** How often (ms) the pool drops its free buffers if no reply was assembled meanwhile. */
const POOL_TRIM_MS = 10_000;

/** Free reply buffers, by size (a full block's size + {@link BLOCK_REPLY_HEADROOM}). */
const receivePool = new BufferPool<SharedArrayBuffer>({ maxBytes: RECEIVE_POOL_BYTES, alloc: (n) => new SharedArrayBuffer(n) });
setInterval(() => receivePool.trimIdle(), POOL_TRIM_MS).unref();

/**
 * A buffer for a framed message of `total` bytes (header included): a pooled shared one when the
 * message is one full block ({@link isFullBlockSize}) and its framing, else a fresh one as
 * grpc-js allocates.
 */
function messageBuffer(total: number): Buffer {
  const len = total - GRPC_PREFIX_BYTES;
  const block = len > 0 ? 2 ** (31 - Math.clz32(len)) : 0; // largest power of two ≤ len (len < 2^31)
  if (isFullBlockSize(block) && total <= block + BLOCK_REPLY_HEADROOM) return Buffer.from(receivePool.take(block + BLOCK_REPLY_HEADROOM), 0, total);
  return Buffer.allocUnsafe(total);
}

/**
 * Reads gRPC Length-Prefixed Messages from a stream's data chunks, as grpc-js's `StreamDecoder`
 * does (same interface: `write(chunk)` returns the messages completed by it, each with its
 * 5-byte header), copying each message's bytes once into its own buffer ({@link messageBuffer}).
 * @throws Error "Received message larger than max (N vs M)" (grpc-js's wording; the call then
 *   fails with RESOURCE_EXHAUSTED) for a message over `maxReadMessageLength` (-1: no limit)
 */
export class BlockReplyDecoder {
  private readonly head = Buffer.alloc(GRPC_PREFIX_BYTES);
  private headGot = 0;
  private message: Buffer | null = null;
  private messageGot = 0;

  constructor(readonly maxReadMessageLength: number) {}

  write(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < data.length) {
      if (this.message === null) {
        const n = Math.min(GRPC_PREFIX_BYTES - this.headGot, data.length - at);
        data.copy(this.head, this.headGot, at, at + n);
        this.headGot += n;
        at += n;
        if (this.headGot < GRPC_PREFIX_BYTES) break;
        const len = this.head.readUInt32BE(1);
        if (this.maxReadMessageLength !== -1 && len > this.maxReadMessageLength) {
          throw new Error(`Received message larger than max (${len} vs ${this.maxReadMessageLength})`);
        }
        this.message = messageBuffer(GRPC_PREFIX_BYTES + len);
        this.head.copy(this.message, 0);
        this.messageGot = 0;
      }
      const need = this.message.length - GRPC_PREFIX_BYTES - this.messageGot;
      const n = Math.min(need, data.length - at);
      data.copy(this.message, GRPC_PREFIX_BYTES + this.messageGot, at, at + n);
      this.messageGot += n;
      at += n;
      if (n === need) {
        out.push(this.message);
        this.message = null;
        this.headGot = 0;
      }
    }
    return out;
  }
}

/**
 * Hands a block received by `GetBlocks` back once nothing reads it any more (the hash worker
 * verified and wrote it): its buffer then assembles a later reply. A block in any other buffer,
 * or one handed back before, is ignored.
 */
export function releaseReceivedBlock(data: Uint8Array): void {
  if (data.buffer instanceof SharedArrayBuffer) receivePool.give(data.buffer);
}

/** Reply buffers reused instead of allocated so far (for tests and metrics). */
export function receivedBlockBuffersReused(): number {
  return receivePool.reused;
}

/** Marks grpc-js's call class once it is ours. */
const installed = Symbol('clusterdesk.blockReplyDecoder');

/**
 * Makes client calls to {@link GET_BLOCKS_PATH} read their replies with a
 * {@link BlockReplyDecoder}: grpc-js's transport creates each call with
 * `new subchannel_call.Http2SubchannelCall(http2Stream, …)`, looked up on the module's exports
 * at each call, so a subclass set there is used; it swaps the call's `decoder` (set in the
 * constructor, before any data can arrive) when the stream's `:path` is the block RPC. Idempotent.
 * Returns whether the hook is in place (false for a grpc-js without it).
 */
export function installBlockReplyDecoder(): boolean {
  type CallCtor = new (stream: { sentHeaders?: Record<string, unknown> }, ...rest: unknown[]) => { decoder?: { maxReadMessageLength?: unknown; write?: unknown } };
  let mod: { Http2SubchannelCall?: CallCtor & { [installed]?: true } };
  try {
    mod = createRequire(import.meta.url)('@grpc/grpc-js/build/src/subchannel-call.js') as typeof mod;
  } catch {
    return false;
  }
  const Original = mod.Http2SubchannelCall;
  if (typeof Original !== 'function') return false;
  if (Original[installed]) return true;
  class BlockReplyCall extends Original {
    static override readonly [installed] = true as const;
    constructor(stream: { sentHeaders?: Record<string, unknown> }, ...rest: unknown[]) {
      super(stream, ...rest);
      const max = this.decoder?.maxReadMessageLength;
      if (stream.sentHeaders?.[':path'] === GET_BLOCKS_PATH && typeof max === 'number' && typeof this.decoder?.write === 'function') this.decoder = new BlockReplyDecoder(max);
    }
  }
  mod.Http2SubchannelCall = BlockReplyCall;
  return true;
}
/** Whether `GetBlocks` replies are read into pooled buffers (see {@link installBlockReplyDecoder}). */
export const blockRepliesPooled = installBlockReplyDecoder();
