/**
 * The pipelined KV session (`KV.Stream`) and its client `KvClient`, over a real gRPC server on
 * 127.0.0.1 and a MemoryKv: every operation round-trips, answers are matched by id when they
 * complete out of order, and malformed, duplicate, overflowing and hostile requests get a typed
 * StreamError each while the session goes on. The client turns answers into typed errors, times
 * requests out, and reports a broken session as an unknown outcome before opening a new one.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKv } from '../kv/memory-kv';
import type { ReplicatedKV } from '../kv/types';
import { KvClient } from './kv-client';
import { addKvService, kvProto, parseStreamRequest } from './kv-service';

type Obj = Record<string, unknown>;

/** A MemoryKv whose puts to keys under `hold/` wait until `release()` (to hold requests in flight). */
function holdingKv(): { kv: ReplicatedKV; store: MemoryKv; release: () => void; held: () => number } {
  const store = new MemoryKv();
  const waiting: (() => void)[] = [];
  const kv = Object.create(store) as ReplicatedKV;
  kv.put = (key: string, value: string, opts?: { lease?: number }): ReturnType<ReplicatedKV['put']> => {
    if (!key.startsWith('hold/')) return store.put(key, value, opts);
    return new Promise<void>((r) => waiting.push(r)).then(() => store.put(key, value, opts));
  };
  return {
    kv,
    store,
    release: () => {
      for (const r of waiting.splice(0)) r();
    },
    held: () => waiting.length,
  };
}

/** Resolves once `cond()` holds (polling every 5 ms); the test's own timeout bounds it. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

async function startServer(kv: ReplicatedKV, maxStreamInFlight?: number): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  addKvService(server, kv, { member: 'S', ...(maxStreamInFlight ? { maxStreamInFlight } : {}) });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { server, address: `127.0.0.1:${port}` };
}

/** A raw Stream session: write requests (each its own batch, or several as one), collect answers and count the answer batches. */
function rawSession(address: string): { write: (m: Obj) => void; writeBatch: (ms: Obj[]) => void; answers: Obj[]; batches: () => number; next: (n: number) => Promise<Obj[]>; close: () => void; ended: Promise<void> } {
  const { KV } = kvProto();
  const c = new KV(address, grpc.credentials.createInsecure());
  const s = c.Stream() as grpc.ClientDuplexStream<Obj, Obj>;
  const answers: Obj[] = [];
  let batches = 0;
  const waiters: (() => void)[] = [];
  s.on('data', (m: Obj) => {
    batches++;
    answers.push(...(m.responses as Obj[]));
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<void>((r) => {
    s.on('end', () => r());
    s.on('error', () => r());
  });
  return {
    write: (m) => s.write({ requests: [m] }),
    writeBatch: (ms) => s.write({ requests: ms }),
    answers,
    batches: () => batches,
    next: async (n) => {
      while (answers.length < n) await new Promise<void>((r) => waiters.push(r));
      return answers.slice(0, n);
    },
    close: () => {
      s.end();
      c.close();
    },
    ended,
  };
}

describe('KV.Stream (server)', () => {
  let h: ReturnType<typeof holdingKv>;
  let server: grpc.Server;
  let address: string;
  beforeAll(async () => {
    h = holdingKv();
    ({ server, address } = await startServer(h.kv, 8));
  });
  afterAll(() => {
    server.forceShutdown();
    h.store.close();
  });

  it('answers each operation by id, in completion order, and finishes in-flight requests after a half-close', async () => {
    const s = rawSession(address);
    s.write({ id: 1, put: { key: 'hold/a', value: 'held' } });
    s.write({ id: 2, put: { key: 'x', value: '1' } });
    s.write({ id: 3, range: { key: 'x' } });
    s.write({ id: 4, txn: { compare: [{ key: 'x', target: 'VALUE', result: 'EQUAL', value: '1' }], success: [{ requestPut: { key: 'x', value: '2' } }], failure: [] } });
    s.write({ id: 5, deleteRange: { key: 'nothing/', prefix: true } });
    const first = await s.next(4);
    // id 1 is held: the later requests are answered first.
    expect(first.map((a) => a.id)).toEqual([2, 3, 4, 5]);
    expect(first[0]).toMatchObject({ response: 'put', put: { header: { member: 'S' } } });
    expect((first[1]!.range as { kvs: { value: string }[] }).kvs[0]!.value).toBe('1');
    expect(first[2]).toMatchObject({ response: 'txn', txn: { succeeded: true } });
    expect(first[3]).toMatchObject({ response: 'deleteRange', deleteRange: { deleted: 0 } });
    s.close(); // half-close with id 1 in flight: it is still answered, then the server ends
    await new Promise((r) => setTimeout(r, 50));
    expect(h.held()).toBe(1);
    h.release();
    await s.ended;
    expect(s.answers.map((a) => a.id)).toEqual([2, 3, 4, 5, 1]);
    expect((await h.store.range('hold/a')).kvs[0]!.value).toBe('held');
  });

  it('answers a batch of requests with few answer batches, each request once', async () => {
    const big = await startServer(h.kv);
    const s = rawSession(big.address);
    s.writeBatch(Array.from({ length: 100 }, (_, i) => ({ id: i + 1, put: { key: `b/${i}`, value: String(i) } })));
    const got = await s.next(100);
    expect(got.map((a) => a.id).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(got.every((a) => a.response === 'put')).toBe(true);
    // MemoryKv completes them in one turn: far fewer answer messages than answers.
    expect(s.batches()).toBeLessThan(10);
    expect((await h.store.range('b/', { prefix: true })).count).toBe(100);
    s.close();
    big.server.forceShutdown();
  });

  it('answers malformed, duplicate and overflowing requests with a typed StreamError and goes on', async () => {
    const s = rawSession(address);
    s.write({ id: 0, put: { key: 'a', value: 'b' } }); // id 0
    s.write({ id: 7 }); // no operation
    s.write({ id: 8, put: { key: '', value: 'b' } }); // empty key
    s.write({ id: 9, txn: { compare: [{ key: 'a', target: 'MOD', result: 'EQUAL' }], success: [], failure: [] } }); // compare without its value
    const bad = await s.next(4);
    expect(bad.map((a) => [a.id, a.response, (a.error as Obj).code, (a.error as Obj).status])).toEqual([
      [0, 'error', 'EINVAL', grpc.status.INVALID_ARGUMENT],
      [7, 'error', 'EINVAL', grpc.status.INVALID_ARGUMENT],
      [8, 'error', 'EINVAL', grpc.status.INVALID_ARGUMENT],
      [9, 'error', 'EINVAL', grpc.status.INVALID_ARGUMENT],
    ]);
    expect(String((bad[1]!.error as Obj).message)).toMatch(/exactly one of range, put, deleteRange, txn/);
    // Hold 8 requests (the limit), then one more and a duplicate of a held id.
    for (let i = 0; i < 8; i++) s.write({ id: 100 + i, put: { key: `hold/${i}`, value: 'v' } });
    await new Promise((r) => setTimeout(r, 50));
    s.write({ id: 100, put: { key: 'dup', value: 'v' } });
    s.write({ id: 200, put: { key: 'over', value: 'v' } });
    const more = await s.next(6);
    expect(more.slice(4).map((a) => [a.id, (a.error as Obj).code])).toEqual([
      [100, 'EINVAL'],
      [200, 'EOVERLOADED'],
    ]);
    expect(String((more[5]!.error as Obj).message)).toMatch(/8 requests already in flight/);
    expect((more[5]!.error as Obj).name).toBe('OverloadedError');
    expect((await h.store.range('over')).count).toBe(0);
    expect((await h.store.range('dup')).count).toBe(0);
    h.release();
    const all = await s.next(14);
    expect(all.slice(6).map((a) => a.id).sort()).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
    // The session still serves.
    s.write({ id: 300, put: { key: 'after', value: 'ok' } });
    expect((await s.next(15))[14]).toMatchObject({ id: 300, response: 'put' });
    s.close();
  });

  it('ends a session whose bytes are not protobuf without harming the server', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest('/clusterdesk.kv.v1.KV/Stream', (b: Buffer) => b, (b: Buffer) => b);
    const status = new Promise<number>((r) => call.on('status', (st: grpc.StatusObject) => r(st.code)));
    call.on('error', () => undefined);
    call.on('data', () => undefined);
    call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x99]));
    expect(await status).not.toBe(grpc.status.OK);
    raw.close();
    const c = new KvClient(address);
    await c.put('still', 'alive');
    expect((await c.range('still')).kvs[0]!.value).toBe('alive');
    c.close();
  });

  it('parseStreamRequest refuses what the wire can carry but a client must not send', () => {
    expect(parseStreamRequest(null)).toMatchObject({ id: 0, error: { code: 'EINVAL' } });
    expect(parseStreamRequest({ id: 1.5, request: 'put', put: {} })).toMatchObject({ id: 0 });
    expect(parseStreamRequest({ id: 2 ** 53, request: 'put', put: {} })).toMatchObject({ id: 0 });
    expect(parseStreamRequest({ id: 3, request: 'constructor', constructor: {} })).toMatchObject({ id: 3, error: { code: 'EINVAL' } });
    expect(parseStreamRequest({ id: 4, request: 'put', put: null })).toMatchObject({ id: 4, error: { code: 'EINVAL' } });
    expect(parseStreamRequest({ id: 5, request: 'range', range: { key: 'k' } })).toEqual({ id: 5, op: 'range', body: { key: 'k' } });
  });
});

describe('KvClient', () => {
  let h: ReturnType<typeof holdingKv>;
  let server: grpc.Server;
  let address: string;
  const clients: KvClient[] = [];
  const client = (opts?: { timeoutMs?: number }): KvClient => {
    const c = new KvClient(address, opts);
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    h = holdingKv();
    ({ server, address } = await startServer(h.kv));
  });
  afterEach(() => {
    h.release();
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => {
    server.forceShutdown();
    h.store.close();
  });

  it('puts, reads, deletes and runs txns, many in flight on one session', async () => {
    const c = client();
    const puts = await Promise.all(Array.from({ length: 200 }, (_, i) => c.put(`p/${i}`, `v${i}`)));
    const revisions = puts.map((p) => p.header.revision);
    expect(new Set(revisions).size).toBe(200);
    expect(puts.every((p) => p.header.member === 'S')).toBe(true);
    const r = await c.range('p/', { prefix: true, limit: 5 });
    expect(r.count).toBe(200);
    expect(r.kvs).toHaveLength(5);
    expect(r.more).toBe(true);
    const prev = await c.put('p/0', 'new', { prevKv: true });
    expect(prev.prevKv).toMatchObject({ key: 'p/0', value: 'v0', version: 1 });
    const t = await c.txn({ compare: [{ key: 'p/0', target: 'VALUE', result: 'EQUAL', value: 'new' }], success: [{ requestRange: { key: 'p/0' } }] });
    expect(t.succeeded).toBe(true);
    expect((t.responses[0] as { responseRange: { kvs: { version: number }[] } }).responseRange.kvs[0]!.version).toBe(2);
    expect((await c.deleteRange('p/', { prefix: true })).deleted).toBe(200);
    expect(c.inFlight()).toBe(0);
  });

  it('reads a range of more than 4 MiB through the session (answers share messages; the default gRPC limit is 4 MiB)', async () => {
    const c = client();
    const big = 'x'.repeat(512 * 1024);
    await Promise.all(Array.from({ length: 12 }, (_, i) => c.put(`big/${i}`, big)));
    const r = await c.range('big/', { prefix: true });
    expect(r.kvs).toHaveLength(12);
    expect(r.kvs.every((kv) => kv.value.length === big.length)).toBe(true);
    await c.deleteRange('big/', { prefix: true });
  });

  it('rejects with the typed error the node answered, and the session goes on', async () => {
    const c = client();
    const err = await c.put('', 'x').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'EINVAL', name: 'ValidationError' });
    const missing = await c.put('k', 'v', { lease: 4242 }).catch((e: Error) => e);
    expect(missing).toMatchObject({ code: 'ENOENT', name: 'NotFoundError' });
    await c.put('k', 'v');
    expect((await c.range('k')).count).toBe(1);
  });

  it('times a request out (it may still take effect) and ignores its late answer', async () => {
    const c = client({ timeoutMs: 150 });
    const err = await c.put('hold/late', 'v').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'ETIMEDOUT' });
    expect(c.inFlight()).toBe(0);
    h.release();
    await c.put('after-timeout', 'v');
    expect((await c.range('hold/late')).kvs[0]!.value).toBe('v');
  });

  it('reports a broken session as an unknown outcome and opens a new one for the next request', async () => {
    const h2 = holdingKv();
    const s2 = await startServer(h2.kv);
    const c = new KvClient(s2.address);
    try {
      await c.put('first', '1');
      const inFlight = c.put('hold/x', 'v').catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 50));
      s2.server.forceShutdown();
      const err = await inFlight;
      expect(err).toMatchObject({ code: 'EUNAVAILABLE', detail: { outcome: 'unknown' } });
      // Same port, new server: the next request opens a new session.
      const port = Number(s2.address.split(':')[1]);
      const s3 = new grpc.Server();
      addKvService(s3, h2.kv, { member: 'S3' });
      await new Promise<number>((res, rej) => s3.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
      let put: Awaited<ReturnType<KvClient['put']>> | null = null;
      for (let i = 0; i < 50 && !put; i++) {
        put = await c.put('second', '2').catch(() => null); // the channel reconnects with back-off
        if (!put) await new Promise((r) => setTimeout(r, 50));
      }
      expect(put?.header.member).toBe('S3');
      s3.forceShutdown();
    } finally {
      c.close();
      h2.release();
      h2.store.close();
    }
  });

  it('keeps at most maxInFlight requests on the node and sends the rest, in order, as answers arrive', async () => {
    const c = new KvClient(address, { maxInFlight: 4 });
    clients.push(c);
    const all = Promise.all(Array.from({ length: 10 }, (_, i) => c.put(`hold/q${i}`, String(i))));
    // The ten are made in one turn: had the client sent them all, they would arrive in one batch.
    await until(() => h.held() > 0);
    expect(h.held()).toBe(4);
    expect(c.inFlight()).toBe(10);
    while (c.inFlight() > 0) {
      if (h.held() > 0) h.release();
      await new Promise((r) => setTimeout(r, 5));
    }
    const puts = await all;
    // Sent in call order: revisions ascend with the index.
    const revs = puts.map((p) => p.header.revision);
    expect([...revs].sort((x, y) => x - y)).toEqual(revs);
    expect((await c.range('hold/q', { prefix: true })).count).toBe(10);
  });

  it('with several nodes, opens the next session on the next node after one broke', async () => {
    const c = new KvClient(['127.0.0.1:1', address]);
    clients.push(c);
    expect(c.address).toBe('127.0.0.1:1');
    await expect(c.put('multi', '1')).rejects.toMatchObject({ code: 'EUNAVAILABLE', detail: { outcome: 'unknown', address: '127.0.0.1:1' } });
    expect(c.address).toBe(address);
    expect((await c.put('multi', '2')).header.member).toBe('S');
    expect(() => new KvClient([])).toThrow(/host:port/);
    expect(() => new KvClient('no-port')).toThrow(/host:port/);
  });

  it('refuses a bad timeout or bound, and requests after close', async () => {
    expect(() => new KvClient(address, { timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new KvClient(address, { maxInFlight: 0 })).toThrow(/maxInFlight/);
    const c = new KvClient(address);
    c.close();
    await expect(c.put('a', 'b')).rejects.toMatchObject({ code: 'EUNAVAILABLE' });
  });
});
