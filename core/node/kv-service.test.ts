/**
 * The client KV gRPC service over a MemoryKv, with a real gRPC server on 127.0.0.1: round trips of
 * each RPC, and refusal of malformed, oversize and inconsistent requests with typed errors
 * (INVALID_ARGUMENT + `clusterdesk-code: EINVAL`), without harming the server.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKv } from '../kv/memory-kv';
import { ERROR_CODE_METADATA, KV_LIMITS, addKvService, kvProto, parseCompare, parseTxn } from './kv-service';

type Obj = Record<string, unknown>;
let server: grpc.Server;
let store: MemoryKv;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let kvc: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let lease: any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let maint: any;
let address = '';

beforeAll(async () => {
  store = new MemoryKv();
  server = new grpc.Server();
  addKvService(server, store, { member: 'T', status: () => ({ leaderId: 'T', role: 'leader', term: 3, commitIndex: 7, appliedIndex: 7 }) });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  address = `127.0.0.1:${port}`;
  const { KV, Lease, Maintenance } = kvProto();
  kvc = new KV(address, grpc.credentials.createInsecure());
  lease = new Lease(address, grpc.credentials.createInsecure());
  maint = new Maintenance(address, grpc.credentials.createInsecure());
});

afterAll(() => {
  kvc?.close();
  lease?.close();
  maint?.close();
  server?.forceShutdown();
  store?.close();
});

function call<T = Obj>(client: Obj, method: string, req: Obj): Promise<T> {
  return new Promise((res, rej) => (client[method] as (r: Obj, cb: (e: grpc.ServiceError | null, v: T) => void) => void)(req, (e, v) => (e ? rej(e) : res(v))));
}

/** Calls and expects a typed refusal; returns the error. */
async function refused(client: Obj, method: string, req: Obj, status = grpc.status.INVALID_ARGUMENT, code = 'EINVAL'): Promise<grpc.ServiceError> {
  const err = await call(client, method, req).then(
    () => null,
    (e: grpc.ServiceError) => e,
  );
  expect(err, `${method} ${JSON.stringify(req).slice(0, 200)} should be refused`).not.toBeNull();
  expect(err!.code).toBe(status);
  expect(err!.metadata.get(ERROR_CODE_METADATA)).toEqual([code]);
  return err!;
}

describe('KV gRPC service', () => {
  it('serves Put, Range, Txn, DeleteRange, leases and Status', async () => {
    const put = await call<{ header: { revision: number; member: string } }>(kvc, 'Put', { key: 'a/1', value: 'x' });
    expect(put.header.member).toBe('T');
    const range = await call<{ kvs: { key: string; value: string; version: number }[]; count: number }>(kvc, 'Range', { key: 'a/', prefix: true });
    expect(range.kvs.map((k) => [k.key, k.value, k.version])).toEqual([['a/1', 'x', 1]]);
    const txn = await call<{ succeeded: boolean; responses: Obj[] }>(kvc, 'Txn', {
      compare: [{ key: 'a/1', target: 'VALUE', result: 'EQUAL', value: 'x' }],
      success: [{ requestPut: { key: 'a/1', value: 'y' } }, { requestRange: { key: 'a/1' } }],
      failure: [],
    });
    expect(txn.succeeded).toBe(true);
    expect((txn.responses[1] as { responseRange: { kvs: { value: string }[] } }).responseRange.kvs[0]!.value).toBe('y');
    const miss = await call<{ succeeded: boolean }>(kvc, 'Txn', { compare: [{ key: 'a/1', target: 'CREATE', result: 'EQUAL', createRevision: 0 }], success: [], failure: [] });
    expect(miss.succeeded).toBe(false);
    const g = await call<{ id: number; ttl: number }>(lease, 'LeaseGrant', { ttl: 30 });
    expect(g.ttl).toBe(30);
    await call(kvc, 'Put', { key: 'a/leased', value: 'v', lease: g.id });
    expect((await call<{ ttl: number }>(lease, 'LeaseKeepAlive', { id: g.id })).ttl).toBe(30);
    await call(lease, 'LeaseRevoke', { id: g.id });
    expect((await call<{ count: number }>(kvc, 'Range', { key: 'a/leased' })).count).toBe(0);
    const del = await call<{ deleted: number }>(kvc, 'DeleteRange', { key: 'a/', prefix: true });
    expect(del.deleted).toBe(1);
    const st = await call<{ leader: string; term: number }>(maint, 'Status', {});
    expect(st).toMatchObject({ leader: 'T', term: 3 });
  });

  it('refuses missing, empty and oversize keys and values', async () => {
    await refused(kvc, 'Put', { value: 'x' });
    await refused(kvc, 'Range', { key: '' });
    await refused(kvc, 'DeleteRange', {});
    await refused(kvc, 'Put', { key: 'k'.repeat(KV_LIMITS.maxKeyBytes + 1), value: 'x' });
    const err = await refused(kvc, 'Put', { key: 'big', value: 'v'.repeat(KV_LIMITS.maxValueBytes + 1) });
    expect(err.details).toMatch(/longer than/);
    // Multi-byte characters count in UTF-8 bytes.
    await refused(kvc, 'Put', { key: 'é'.repeat(KV_LIMITS.maxKeyBytes / 2 + 1), value: 'x' });
    expect((await call<{ count: number }>(kvc, 'Range', { key: 'big' })).count).toBe(0);
  });

  it('refuses negative limits, zero or huge TTLs and lease id 0, and reports an unknown lease as NOT_FOUND', async () => {
    await refused(kvc, 'Range', { key: 'a', limit: -1 });
    await refused(lease, 'LeaseGrant', { ttl: 0 });
    await refused(lease, 'LeaseGrant', { ttl: -5 });
    await refused(lease, 'LeaseGrant', { ttl: KV_LIMITS.maxLeaseTtl + 1 });
    await refused(lease, 'LeaseRevoke', { id: 0 });
    await refused(lease, 'LeaseKeepAlive', { id: 0 });
    await refused(lease, 'LeaseKeepAlive', { id: 987654 }, grpc.status.NOT_FOUND, 'ENOENT');
    await refused(kvc, 'Put', { key: 'k', value: 'v', lease: 424242 }, grpc.status.NOT_FOUND, 'ENOENT');
  });

  it('refuses bad compares: unknown enum values, a missing or mismatched target field', async () => {
    await refused(kvc, 'Txn', { compare: [{ key: 'a', target: 'MOD', result: 'EQUAL' }], success: [], failure: [] });
    await refused(kvc, 'Txn', { compare: [{ key: 'a', target: 'MOD', result: 'EQUAL', value: 'x' }], success: [], failure: [] });
    await refused(kvc, 'Txn', { compare: [{ key: 'a', target: 'VALUE', result: 'EQUAL', version: 3 }], success: [], failure: [] });
    await refused(kvc, 'Txn', { compare: [{ key: '', target: 'VERSION', result: 'EQUAL', version: 0 }], success: [], failure: [] });
    await refused(kvc, 'Txn', { compare: [{ key: 'a', target: 9, result: 'EQUAL', version: 0 }], success: [], failure: [] });
    await refused(kvc, 'Txn', { compare: [{ key: 'a', target: 'VERSION', result: 17, version: 0 }], success: [], failure: [] });
    // Pure checks of what the wire cannot express.
    expect(() => parseCompare({ key: 'a', target: 'LEASE', result: 'LESS', targetUnion: 'lease', lease: 1.5 })).toThrow(/non-negative integer/);
    expect(() => parseCompare(null)).toThrow(/must be a message/);
  });

  it('refuses malformed txn ops, oversize txns and duplicate puts, and leaves the store untouched', async () => {
    const before = store.localRevision();
    await refused(kvc, 'Txn', { compare: [], success: [{}], failure: [] });
    await refused(kvc, 'Txn', { compare: [], success: [{ requestPut: { key: 'd', value: '1' } }, { requestPut: { key: 'd', value: '2' } }], failure: [] });
    await refused(kvc, 'Txn', { compare: [], success: [{ requestRange: { key: 'r', serializable: true } }], failure: [] });
    const many = Array.from({ length: KV_LIMITS.maxTxnOps + 1 }, (_, i) => ({ requestPut: { key: `m/${i}`, value: 'v' } }));
    await refused(kvc, 'Txn', { compare: [], success: many, failure: [] });
    await refused(kvc, 'Txn', { compare: [], success: [], failure: [{ requestPut: { key: 'f', value: 'v'.repeat(KV_LIMITS.maxValueBytes + 1) } }] });
    expect(store.localRevision()).toBe(before);
    expect(() => parseTxn({ compare: 'x' })).toThrow(/must be a list/);
  });

  it('survives bytes that are not a protobuf message and keeps serving', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x99]);
    const code = await new Promise<number>((res) => {
      raw.makeUnaryRequest('/clusterdesk.kv.v1.KV/Put', (b: Buffer) => b, (b: Buffer) => b, garbage, (e) => res(e?.code ?? grpc.status.OK));
    });
    raw.close();
    expect(code).not.toBe(grpc.status.OK);
    await call(kvc, 'Put', { key: 'still', value: 'alive' });
    expect((await call<{ count: number }>(kvc, 'Range', { key: 'still' })).count).toBe(1);
  });
});
