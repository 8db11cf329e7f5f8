/**
 * GetBlocks replies read into pooled shared buffers: the reader against grpc-js's own on the same
 * byte streams cut at every kind of boundary, and over real gRPC on 127.0.0.1 (the hook is in
 * place for GetBlocks only, a handed-back buffer assembles a later reply, bytes intact).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BlockReplyDecoder, blockRepliesPooled, GET_BLOCKS_PATH, receivedBlockBuffersReused, releaseReceivedBlock } from './block-receive';
import { startTestPeer } from '../../test/helpers/peer-server';

type Decoder = { write(data: Buffer): Buffer[] };
const { StreamDecoder } = createRequire(import.meta.url)('@grpc/grpc-js/build/src/stream-decoder.js') as { StreamDecoder: new (max: number) => Decoder };

/** gRPC framing of `message`: flag 0, 4-byte big-endian length, the bytes. */
function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Feeds `stream` cut at `cuts` to a decoder; the messages it returned, in order. */
function decodeAll(d: Decoder, stream: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    out.push(...d.write(stream.subarray(from, to)));
    from = to;
  }
  return out;
}

describe('BlockReplyDecoder', () => {
  const K = 1024;
  // Messages of every shape: empty, tiny, a full 128 KiB block with 1- and 8-byte framing (pooled),
  // just under a block (not pooled), a 256 KiB block with framing, 1 MiB + 12 (past the room: not pooled).
  const sizes = [0, 1, 100, 128 * K + 4, 128 * K + 8, 128 * K - 1, 256 * K + 6, 1024 * K + 12, 5];
  const messages = sizes.map((n) => randomBytes(n));
  const stream = Buffer.concat(messages.map(frame));

  it('returns what grpc-js StreamDecoder returns for the same stream, however it is cut', () => {
    let seed = 7;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const cutsList: number[][] = [
      [], // one chunk
      Array.from({ length: 200 }, (_, i) => i + 1), // 1-byte chunks through the first headers
      Array.from({ length: stream.length / 16384 }, (_, i) => (i + 1) * 16384).filter((c) => c < stream.length), // HTTP/2 frame sized
      [...new Set(Array.from({ length: 300 }, () => 1 + rnd(stream.length - 1)))].sort((a, b) => a - b), // random
    ];
    for (const cuts of cutsList) {
      const ours = decodeAll(new BlockReplyDecoder(-1), stream, cuts);
      const theirs = decodeAll(new StreamDecoder(-1), stream, cuts);
      expect(ours.length).toBe(messages.length);
      ours.forEach((m, i) => expect(m.equals(theirs[i]!)).toBe(true));
      // Full blocks with their framing in pooled shared buffers; the rest as grpc-js allocates.
      expect(ours.map((m) => m.buffer instanceof SharedArrayBuffer)).toEqual([false, false, false, true, true, false, true, false, false]);
      for (const m of ours) releaseReceivedBlock(m);
    }
  });

  it('refuses a message over the limit with grpc-js wording, before reading it', () => {
    const big = frame(randomBytes(2000));
    expect(() => new BlockReplyDecoder(1999).write(big)).toThrow('Received message larger than max (2000 vs 1999)');
    expect(() => new StreamDecoder(1999).write(big)).toThrow('Received message larger than max (2000 vs 1999)');
    expect(new BlockReplyDecoder(2000).write(big)).toHaveLength(1);
  });
});

describe('GetBlocks replies over real gRPC', () => {
  it('assembles full blocks in pooled buffers that, handed back, assemble later replies; bytes intact', async () => {
    expect(blockRepliesPooled).toBe(true); // the grpc-js we pin has the hook
    expect(GET_BLOCKS_PATH).toBe('/clusterdesk.peer.v1.Data/GetBlocks');
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    const list = Array.from({ length: 24 }, (_, i) => randomBytes(i % 3 === 0 ? 5000 : 128 * 1024));
    const blocks = new Map(list.map((b) => [sha(b), b]));
    const peer = await startTestPeer({ readBlock: async (hash) => blocks.get(hash) ?? null });
    const fetcher = peer.fetcher;
    try {
      const before = receivedBlockBuffersReused();
      for (let round = 0; round < 3; round++) {
        const got = await fetcher.getBlocks('S', list.map(sha));
        got.forEach((b, i) => {
          expect(Buffer.from(b!).equals(list[i]!)).toBe(true);
          expect(b!.buffer instanceof SharedArrayBuffer).toBe(list[i]!.length === 128 * 1024); // full blocks only
        });
        // As the engine does once the worker wrote them: scribbled over here to show no reply shares one.
        for (const b of got) {
          if (b!.buffer instanceof SharedArrayBuffer) new Uint8Array(b!.buffer).fill(0xff);
          fetcher.release(b!);
        }
      }
      expect(receivedBlockBuffersReused() - before).toBeGreaterThan(0);
    } finally {
      await peer.close();
    }
  });
});
