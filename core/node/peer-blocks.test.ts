/**
 * `GetBlocks` over real gRPC on 127.0.0.1: blocks by hash, missing blocks flagged, and hostile
 * requests (bad hashes, path-like input, huge counts) refused with INVALID_ARGUMENT before any
 * block is read. `GetObject` with a path: a kept version by content, NOT_FOUND, hostile paths.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NotFoundError, ValidationError } from '../common/errors';
import { normalizePath } from '../sync/paths';
import { BufferPool } from '../sync/buffer-pool';
import { startTestPeer, type TestPeer } from '../../test/helpers/peer-server';
import { BLOCK_REPLY_HEADROOM, encodeBlockReply, hasReplyHeadroom, repliesFramedInPlace, MAX_GET_BLOCKS, peerProto, validateBlocksRequest, type GrpcBlobFetcher, type PeerClients } from './peer';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('GetBlocks peer RPC', () => {
  let peer: TestPeer;
  let clients: PeerClients;
  let fetcher: GrpcBlobFetcher;
  const blocks = new Map<string, Buffer>();
  const reads: string[] = [];
  const one = randomBytes(128 * 1024);
  const two = randomBytes(5000);
  /** Per-hash read delay (ms): reads then finish out of request order. */
  const delays = new Map<string, number>();
  let reading = 0;
  let maxReading = 0;
  /** A block whose read throws. */
  const failing = 'a'.repeat(64);

  beforeAll(async () => {
    blocks.set(sha(one), one);
    blocks.set(sha(two), two);
    peer = await startTestPeer({
      readBlock: async (hash, headroom) => {
        reads.push(hash);
        // Block `two` comes as the engine reads it: a fresh buffer per call, with room for the
        // reply's framing (framed in place); the others as plain shared buffers (copied).
        if (hash === sha(two) && headroom) {
          const buf = Buffer.allocUnsafeSlow(headroom + two.length).fill(0xee);
          two.copy(buf, headroom);
          return buf.subarray(headroom);
        }
        maxReading = Math.max(maxReading, ++reading);
        const ms = delays.get(hash);
        if (ms !== undefined) await new Promise((r) => setTimeout(r, ms));
        reading--;
        if (hash === failing) throw new Error('disk read failed');
        return blocks.get(hash) ?? null;
      },
    });
    ({ clients, fetcher } = peer);
  });
  afterAll(async () => {
    await peer.close();
  });

  it('streams the blocks asked for, in order, and flags missing ones', async () => {
    const missing = 'f'.repeat(64);
    const got = await fetcher.getBlocks('S', [sha(two), missing, sha(one), sha(two)]);
    expect(got).toHaveLength(4);
    expect(Buffer.from(got[0]!).equals(two)).toBe(true);
    expect(got[1]).toBeNull();
    expect(Buffer.from(got[2]!).equals(one)).toBe(true);
    expect(Buffer.from(got[3]!).equals(two)).toBe(true);
  });

  it('reads several blocks of a call at once and still answers each at its index, a failed read failing the call', async () => {
    // More blocks than the server reads ahead, finishing out of order; every third one missing.
    const many = Array.from({ length: 40 }, (_, i) => randomBytes(100 + i));
    const hashes = many.map((b, i) => (i % 3 === 2 ? createHash('sha256').update(`none${i}`).digest('hex') : sha(b)));
    many.forEach((b, i) => {
      if (i % 3 !== 2) blocks.set(sha(b), b);
      delays.set(hashes[i]!, (i * 7) % 11);
    });
    maxReading = 0;
    const got = await fetcher.getBlocks('S', hashes);
    expect(maxReading).toBeGreaterThan(1);
    expect(got).toHaveLength(40);
    got.forEach((r, i) => {
      if (i % 3 === 2) expect(r).toBeNull();
      else expect(Buffer.from(r!).equals(many[i]!)).toBe(true);
    });
    await expect(fetcher.getBlocks('S', [sha(two), failing, sha(one)])).rejects.toMatchObject({ code: 'EUNAVAILABLE' });
  });

  it('small requests made together share calls and each gets its own blocks back', async () => {
    const asks = Array.from({ length: 150 }, (_, i) => (i % 3 === 0 ? [sha(two)] : i % 3 === 1 ? [sha(one), sha(two)] : ['e'.repeat(64)]));
    const got = await Promise.all(asks.map((hs) => fetcher.getBlocks('S', hs, undefined, 10_000)));
    got.forEach((r, i) => {
      expect(r).toHaveLength(asks[i]!.length);
      if (i % 3 === 0) expect(Buffer.from(r[0]!).equals(two)).toBe(true);
      if (i % 3 === 1) expect(Buffer.from(r[0]!).equals(one) && Buffer.from(r[1]!).equals(two)).toBe(true);
      if (i % 3 === 2) expect(r[0]).toBeNull();
    });
    // An aborted request rejects without failing the others of its call.
    const ac = new AbortController();
    const a = fetcher.getBlocks('S', [sha(one)], ac.signal, 10);
    const b = fetcher.getBlocks('S', [sha(two)], undefined, 10);
    ac.abort();
    await expect(a).rejects.toMatchObject({ code: 'EUNAVAILABLE' });
    expect(Buffer.from((await b)[0]!).equals(two)).toBe(true);
  });

  const raw = (hashes: unknown): Promise<{ code: number; details: string }> =>
    new Promise((resolve) => {
      const call = clients.dataClient('S').GetBlocks({ hashes }, { deadline: Date.now() + 5000 });
      call.on('data', () => {});
      call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
      call.on('end', () => resolve({ code: grpc.status.OK, details: '' }));
    });

  it('refuses hostile requests with INVALID_ARGUMENT without reading anything', async () => {
    const readsBefore = reads.length;
    const bad: [unknown, RegExp][] = [
      [[], /non-empty/],
      [['../../etc/passwd'], /hashes\[0\]/],
      [[sha(one), '/etc/shadow'], /hashes\[1\]/],
      [[sha(one).toUpperCase()], /not a SHA-256/],
      [['a'.repeat(63)], /not a SHA-256/],
      [['a'.repeat(64) + '\0'], /not a SHA-256/],
      [Array.from({ length: MAX_GET_BLOCKS + 1 }, () => sha(one)), /at most 256/],
      [Array.from({ length: 100_000 }, () => 'x'), /at most 256/],
    ];
    for (const [hashes, msg] of bad) {
      const r = await raw(hashes);
      expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.details).toMatch(msg);
    }
    expect(reads.length).toBe(readsBefore);
    // Through the client: the failure is a typed error.
    await expect(fetcher.getBlocks('S', ['../x'])).rejects.toMatchObject({ code: 'EUNAVAILABLE' });
    // The limit itself is accepted.
    const r = await raw(Array.from({ length: MAX_GET_BLOCKS }, () => sha(two)));
    expect(r.code).toBe(grpc.status.OK);
  });

  it('validateBlocksRequest names the first problem with a ValidationError', () => {
    expect(() => validateBlocksRequest({ hashes: 'abc' })).toThrow(ValidationError);
    expect(() => validateBlocksRequest({})).toThrow(/non-empty/);
    expect(() => validateBlocksRequest({ hashes: [sha(one), 7] })).toThrow(/hashes\[1\]/);
    expect(validateBlocksRequest({ hashes: [sha(one)] })).toEqual([sha(one)]);
  });

  it('a client to a node that is down fails with a typed error', async () => {
    await expect(fetcher.getBlocks('C', [sha(one)])).rejects.toMatchObject({ code: 'EUNAVAILABLE' });
  });
});

describe('GetObject of a kept version (restoring a committed version from a peer)', () => {
  let peer: TestPeer;
  let clients: PeerClients;
  let fetcher: GrpcBlobFetcher;
  let dir: string;
  const kept = Buffer.from('the bytes a change replaced');
  const lookups: { path: string; sha256: string }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cd-kept-'));
    await writeFile(join(dir, 'doc.txt~20261124-120000'), kept);
    peer = await startTestPeer({
      // As the engine's: the path is untrusted, so an invalid one throws PathError.
      keptVersionFile: async (path, sha256) => {
        lookups.push({ path, sha256 });
        const p = normalizePath(path);
        return p === 'doc.txt' && sha256 === sha(kept) ? join(dir, 'doc.txt~20261124-120000') : null;
      },
    });
    ({ clients, fetcher } = peer);
  });
  afterAll(async () => {
    await peer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams the kept version with that content, verified on the way', async () => {
    const dest = join(dir, 'fetched');
    await fetcher.fetchKept('S', 'doc.txt', sha(kept), dest);
    expect(await readFile(dest)).toEqual(kept);
    expect(lookups.at(-1)).toEqual({ path: 'doc.txt', sha256: sha(kept) });
  });

  it('answers NOT_FOUND (NotFoundError) when no kept version matches, and without a path does not look', async () => {
    const other = sha(Buffer.from('other'));
    await expect(fetcher.fetchKept('S', 'doc.txt', other, join(dir, 'x'))).rejects.toBeInstanceOf(NotFoundError);
    const before = lookups.length;
    await expect(fetcher.fetch(sha(kept), ['S'], join(dir, 'y'))).rejects.toThrow(/not found/);
    expect(lookups.length).toBe(before);
  });

  it('refuses paths that leave the folder, absolute or oversize paths, and bad hashes with INVALID_ARGUMENT', async () => {
    const ask = (req: Record<string, unknown>): Promise<grpc.StatusObject> =>
      new Promise((resolve) => {
        const call = clients.dataClient('S').GetObject(req);
        call.on('data', () => undefined);
        call.on('status', (st: grpc.StatusObject) => resolve(st));
        call.on('error', () => undefined);
      });
    for (const path of ['../etc/passwd', '/etc/passwd', 'a/../../x', 'x'.repeat(5000)]) {
      const st = await ask({ sha256: sha(kept), path });
      expect(st.code, path.slice(0, 40)).toBe(grpc.status.INVALID_ARGUMENT);
    }
    expect((await ask({ sha256: '../../x', path: 'doc.txt' })).code).toBe(grpc.status.INVALID_ARGUMENT);
    // Still serving.
    await fetcher.fetchKept('S', 'doc.txt', sha(kept), join(dir, 'again'));
    expect(await readFile(join(dir, 'again'))).toEqual(kept);
  });
});

describe('encodeBlockReply (the GetBlocks response serializer)', () => {
  it('is read back by the protobuf decoder as written, for every field shape', () => {
    const method = peerProto().Data.service.GetBlocks;
    const decode = (b: Buffer): { index: number; data: Buffer; missing: boolean } => method.responseDeserialize(b);
    const big = randomBytes(128 * 1024);
    for (const msg of [
      { index: 0, data: big },
      { index: 1, data: Buffer.from('x') },
      { index: 127, data: big },
      { index: 128, data: big.subarray(5, 300) },
      { index: 255, missing: true },
      { index: 0, missing: true },
      { index: 70_000, data: Buffer.alloc(0) },
    ]) {
      const got = decode(encodeBlockReply(msg));
      expect(got.index).toBe(msg.index);
      expect(got.missing).toBe(!!msg.missing);
      expect(Buffer.from(got.data ?? []).equals(Buffer.from(msg.data ?? []))).toBe(true);
      // The same bytes protobufjs would have written.
      expect(encodeBlockReply(msg).equals(method.responseSerialize(msg))).toBe(true);
    }
  });

  /** `bytes` placed BLOCK_REPLY_HEADROOM bytes into a buffer of their own, as readBlock(hash, headroom) returns them. */
  function withRoom(bytes: Buffer): Buffer {
    const buf = Buffer.allocUnsafeSlow(BLOCK_REPLY_HEADROOM + bytes.length).fill(0xee);
    bytes.copy(buf, BLOCK_REPLY_HEADROOM);
    return buf.subarray(BLOCK_REPLY_HEADROOM);
  }

  it('frames a block read with headroom in place: the same bytes protobufjs writes, the block not copied', () => {
    const method = peerProto().Data.service.GetBlocks;
    for (const [index, size] of [
      [0, 128 * 1024],
      [127, 4096],
      [128, 1],
      [MAX_GET_BLOCKS - 1, 16 << 20],
      [5, 0],
    ] as const) {
      const bytes = randomBytes(size);
      const data = withRoom(bytes);
      expect(hasReplyHeadroom(data)).toBe(true);
      const out = encodeBlockReply({ index, data, inPlace: true });
      expect(out.buffer).toBe(data.buffer); // a view of the read buffer: no copy of the block
      expect(out.equals(method.responseSerialize({ index, data: bytes }))).toBe(true);
      const got = method.responseDeserialize(out) as { index: number; data: Buffer };
      expect(got.index).toBe(index);
      expect(Buffer.from(got.data ?? []).equals(bytes)).toBe(true);
    }
  });

  it('only buffers that hold nothing but the room and the block count as having headroom', () => {
    const block = randomBytes(300);
    expect(hasReplyHeadroom(block)).toBe(false); // no room before it
    const pooled = Buffer.from('a small block'); // a slice of Node's shared pool
    expect(hasReplyHeadroom(pooled)).toBe(false);
    const shared = Buffer.allocUnsafeSlow(BLOCK_REPLY_HEADROOM + 400).subarray(BLOCK_REPLY_HEADROOM, BLOCK_REPLY_HEADROOM + 300);
    expect(hasReplyHeadroom(shared)).toBe(false); // more bytes after the block
    const offset = Buffer.allocUnsafeSlow(8 + 300).subarray(8);
    expect(hasReplyHeadroom(offset)).toBe(false); // room of another size
    expect(hasReplyHeadroom(new Uint8Array(new SharedArrayBuffer(BLOCK_REPLY_HEADROOM + 10), BLOCK_REPLY_HEADROOM))).toBe(false);
    // Without inPlace the block is copied and the bytes around it left alone.
    const data = withRoom(block);
    const out = encodeBlockReply({ index: 3, data });
    expect(out.buffer).not.toBe(data.buffer);
    expect(Buffer.from(data.buffer, 0, BLOCK_REPLY_HEADROOM).every((b) => b === 0xee)).toBe(true);
  });

  it("grpc-js's server writes an in-place reply with its gRPC message header in the same buffer; other messages as before", () => {
    expect(repliesFramedInPlace).toBe(true); // the grpc-js version we pin has the hook
    const { BaseServerInterceptingCall } = createRequire(import.meta.url)('@grpc/grpc-js/build/src/server-interceptors.js') as {
      BaseServerInterceptingCall: { prototype: { serializeMessage(this: unknown, value: unknown): Buffer } };
    };
    const call = { handler: { serialize: encodeBlockReply } };
    const bytes = randomBytes(128 * 1024);
    const protobuf = peerProto().Data.service.GetBlocks.responseSerialize({ index: 9, data: bytes }) as Buffer;
    const header = (n: number): Buffer => Buffer.from([0, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    const data = withRoom(bytes);
    const framed = BaseServerInterceptingCall.prototype.serializeMessage.call(call, { index: 9, data, inPlace: true });
    expect(framed.buffer).toBe(data.buffer); // no copy of the block
    expect(framed.equals(Buffer.concat([header(protobuf.length), protobuf]))).toBe(true);
    // Without inPlace (any other reply or RPC): grpc-js's own framing, a copy, the same bytes.
    const copied = BaseServerInterceptingCall.prototype.serializeMessage.call(call, { index: 9, data: bytes });
    expect(copied.buffer).not.toBe(bytes.buffer);
    expect(copied.equals(framed)).toBe(true);
    // inPlace on a block without room: framed by copying, still the same bytes.
    const plain = BaseServerInterceptingCall.prototype.serializeMessage.call(call, { index: 9, data: bytes, inPlace: true });
    expect(plain.equals(framed)).toBe(true);
  });
});


describe('GetBlocks with block buffers read into again once sent (releaseBlock)', () => {
  it('hands each served block back once, after it was written: scribbling over a handed-back buffer at once never reaches the client', async () => {
    // As the engine serves full blocks: from a BufferPool, with room for the framing. On release
    // the buffer is scribbled over at once and goes back to the pool for the next read, so a
    // release that came before the bytes left the buffer would send the scribble.
    const pool = new BufferPool({ maxBytes: 64 << 20, alloc: (n) => new ArrayBuffer(n) });
    const blocks = new Map<string, Buffer>();
    const list = Array.from({ length: 48 }, () => randomBytes(128 * 1024));
    for (const b of list) blocks.set(sha(b), b);
    const served = new Set<ArrayBuffer>();
    let reads = 0;
    let releases = 0;
    const peer = await startTestPeer({
      readBlock: async (hash, headroom = 0) => {
        const bytes = blocks.get(hash);
        if (!bytes) return null;
        reads++;
        const out = Buffer.from(pool.take(headroom + bytes.length), headroom, bytes.length);
        bytes.copy(out);
        served.add(out.buffer as ArrayBuffer);
        return out;
      },
      releaseBlock: (data) => {
        releases++;
        new Uint8Array(data.buffer).fill(0xff);
        expect(pool.give(data.buffer as ArrayBuffer)).toBe(true); // handed back once only
      },
    });
    const fetcher = peer.fetcher;
    try {
      // Four calls at once, each of every block in another order, twice over.
      for (let round = 0; round < 2; round++) {
        const orders = [0, 1, 2, 3].map((k) => list.map((_, i) => list[(i * (2 * k + 1) + k) % list.length]!));
        const got = await Promise.all(orders.map((o) => fetcher.getBlocks('S', o.map(sha))));
        got.forEach((g, k) => g.forEach((b, i) => expect(Buffer.from(b!).equals(orders[k]![i]!)).toBe(true)));
      }
      expect(reads).toBe(2 * 4 * list.length);
      await vi.waitFor(() => expect(releases).toBe(reads), { timeout: 10_000 }); // the last write callbacks
      expect(pool.reused).toBeGreaterThan(0); // buffers were read into again, not only allocated
      expect(served.size).toBeLessThan(reads);
    } finally {
      await peer.close();
    }
  });
});
