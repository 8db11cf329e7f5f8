/**
 * The client KV `Watch` over real gRPC servers on 127.0.0.1, and the resuming client
 * (`watchRemote`): the server is shut down mid-watch, writes happen while the client is
 * disconnected, a new server starts on the same port, and the client sees every event exactly
 * once in revision order; a resume revision that was compacted ends the watch with a
 * CompactedError naming the compact revision; malformed watch requests are refused (EINVAL).
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { CompactedError, ValidationError } from '../common/errors';
import { MemoryKv } from '../kv/memory-kv';
import { waitFor } from '../kv/testing/wait-for';
import type { WatchEvent } from '../kv/types';
import { ERROR_CODE_METADATA, addKvService, kvProto } from './kv-service';
import { watchRemote, type RemoteWatcher } from './kv-client';

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});

async function serve(store: MemoryKv, port = 0, watchBufferBytes?: number): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  addKvService(server, store, { member: 'T', ...(watchBufferBytes ? { watchBufferBytes } : {}) });
  const bound = await new Promise<number>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanup.push(() => server.forceShutdown());
  return { server, port: bound };
}

function collector() {
  const got: Array<{ revision: number; key: string; type: string; value: string }> = [];
  const listener = (events: WatchEvent[], revision: number) => {
    for (const e of events) got.push({ revision, key: e.kv.key, type: e.type, value: e.kv.value });
  };
  return { got, listener };
}

describe('remote watch over gRPC (kv.proto Watch + watchRemote)', () => {
  it('resumes from the last seen revision + 1 after the server goes away: every event once, in order', async () => {
    const store = new MemoryKv();
    cleanup.push(() => store.close());
    await store.put('other', 'x'); // revision 1, outside the prefix
    const first = await serve(store);
    const { got, listener } = collector();
    const states: string[] = [];
    const w: RemoteWatcher = watchRemote(`127.0.0.1:${first.port}`, 'w/', listener, { retryMinMs: 20, retryMaxMs: 100, onConnection: (s, d) => states.push(`${s}@${d.resumeFrom}`) });
    cleanup.push(() => w.cancel());
    await waitFor('connected', () => states.includes('connected@0'));
    for (let i = 1; i <= 3; i++) await store.put(`w/${i}`, `v${i}`);
    await waitFor('3 events', () => got.length === 3);
    const seen = w.lastRevision();

    first.server.forceShutdown();
    await waitFor('disconnected', () => states.some((s) => s.startsWith('disconnected')));
    // Written while the client cannot reach the server.
    for (let i = 4; i <= 6; i++) await store.put(`w/${i}`, `v${i}`);
    await store.delete('w/1');
    await store.put('other', 'y');
    await new Promise((r) => setTimeout(r, 150)); // a few failed reconnects
    await serve(store, first.port);
    await waitFor('reconnected', () => states.includes(`connected@${seen + 1}`), 10_000);
    for (let i = 7; i <= 8; i++) await store.put(`w/${i}`, `v${i}`);
    await waitFor('all events', () => got.length === 9, 10_000);

    expect(got.map((e) => `${e.type} ${e.key}`)).toEqual(['put w/1', 'put w/2', 'put w/3', 'put w/4', 'put w/5', 'put w/6', 'delete w/1', 'put w/7', 'put w/8']);
    const revs = got.map((e) => e.revision);
    expect(revs).toEqual([...revs].sort((a, b) => a - b));
    expect(new Set(revs).size).toBe(revs.length);
    expect(w.lastRevision()).toBe(store.localRevision());
  });

  it('reports a compacted resume revision as CompactedError naming the compact revision, and stops', async () => {
    const store = new MemoryKv({ historyEvents: 4 });
    cleanup.push(() => store.close());
    const first = await serve(store);
    const { got, listener } = collector();
    const errors: Error[] = [];
    const states: string[] = [];
    const w = watchRemote(`127.0.0.1:${first.port}`, 'c/', listener, { retryMinMs: 20, retryMaxMs: 100, onError: (e) => errors.push(e), onConnection: (s) => states.push(s) });
    cleanup.push(() => w.cancel());
    await waitFor('connected', () => states.includes('connected'));
    await store.put('c/a', '1');
    await waitFor('1 event', () => got.length === 1);
    const seen = w.lastRevision();
    first.server.forceShutdown();
    await waitFor('disconnected', () => states.includes('disconnected'));
    for (let i = 0; i < 10; i++) await store.put(`c/${i}`, 'x'); // more than the 4 events kept
    await serve(store, first.port);
    await waitFor('the compaction error', () => errors.length === 1, 10_000);
    const err = errors[0]!;
    expect(err).toBeInstanceOf(CompactedError);
    expect(err.message).toMatch(/has been compacted/);
    const detail = (err as CompactedError).detail as { requested: number; compactRevision: number };
    expect(detail.requested).toBe(seen + 1);
    expect(detail.compactRevision).toBeGreaterThan(seen + 1);
    // Nothing of the missed range was delivered, and the watch does not come back.
    expect(got.length).toBe(1);
    await store.put('c/late', 'z');
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(1);
    expect(errors.length).toBe(1);
  });

  it('with several nodes, resumes on another node when one goes away or no longer keeps the resume revision; CompactedError only when none does', async () => {
    const store = new MemoryKv();
    cleanup.push(() => store.close());
    // Node "C" no longer keeps history before `floor` (as a node that caught up by a snapshot); "A" keeps it all.
    let floor = 0;
    const kvC = Object.create(store) as MemoryKv;
    kvC.watch = (prefix, l, opts) => {
      if (opts?.fromRevision && opts.fromRevision < floor) throw new CompactedError(opts.fromRevision, floor);
      return store.watch(prefix, l, opts);
    };
    const serveKv = async (kv: MemoryKv) => {
      const server = new grpc.Server();
      addKvService(server, kv, { member: kv === store ? 'A' : 'C' });
      const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
      cleanup.push(() => server.forceShutdown());
      return { server, address: `127.0.0.1:${port}` };
    };
    const C = await serveKv(kvC);
    const A = await serveKv(store);
    for (let i = 1; i <= 3; i++) await store.put(`m/${i}`, `v${i}`);

    // Resume revision 1 is gone on C: the watch goes to A at once, and gets everything from 1.
    floor = 3;
    const { got, listener } = collector();
    const states: string[] = [];
    const errors: Error[] = [];
    const w = watchRemote([C.address, A.address], 'm/', listener, { fromRevision: 1, retryMinMs: 20, retryMaxMs: 100, onError: (e) => errors.push(e), onConnection: (st, d) => states.push(`${st} ${d.address === A.address ? 'A' : 'C'}`) });
    cleanup.push(() => w.cancel());
    await waitFor('3 events', () => got.length === 3);
    // (C accepts the stream, then answers that revision 1 is compacted.)
    expect(states.slice(0, 3)).toEqual(['connected C', 'disconnected C', 'connected A']);

    // A goes away: the watch moves on to C, from the next revision, which C keeps.
    A.server.forceShutdown();
    await store.put('m/4', 'v4');
    await waitFor('4 events', () => got.length === 4, 10_000);
    expect(states.at(-1)).toBe('connected C');
    expect(got.map((e) => e.key)).toEqual(['m/1', 'm/2', 'm/3', 'm/4']);
    expect(errors).toEqual([]);

    // Every node lost the resume revision: CompactedError, naming the oldest revision any keeps.
    const D = await serveKv(kvC);
    floor = 100;
    const w2 = watchRemote([C.address, D.address], 'm/', () => undefined, { fromRevision: 2, retryMinMs: 20, retryMaxMs: 100, onError: (e) => errors.push(e) });
    cleanup.push(() => w2.cancel());
    await waitFor('the compaction error', () => errors.length === 1, 10_000);
    expect(errors[0]).toBeInstanceOf(CompactedError);
    expect((errors[0] as CompactedError).detail).toMatchObject({ requested: 2, compactRevision: 100 });
    expect(() => watchRemote([], 'm/', () => undefined)).toThrow(ValidationError);
    expect(() => watchRemote(['127.0.0.1:1', 'not an address'], 'm/', () => undefined)).toThrow(/host:port/);
  });

  it('refuses malformed watch requests with INVALID_ARGUMENT / EINVAL, and the client refuses bad arguments', async () => {
    const store = new MemoryKv();
    cleanup.push(() => store.close());
    const { port } = await serve(store);
    const { Watch } = kvProto();
    const raw = new Watch(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanup.push(() => raw.close());
    const refused = (req: Record<string, unknown>) =>
      new Promise<grpc.ServiceError>((resolve, reject) => {
        const s = raw.Watch(req) as grpc.ClientReadableStream<unknown>;
        s.on('data', () => undefined);
        s.on('error', resolve);
        s.on('end', () => reject(new Error(`${JSON.stringify(req)} was accepted`)));
      });
    for (const req of [{}, { prefix: '' }, { prefix: 'k'.repeat(5000) }]) {
      const err = await refused(req);
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.metadata.get(ERROR_CODE_METADATA)).toEqual(['EINVAL']);
    }
    // The server still serves watches after the refusals.
    const { got, listener } = collector();
    const states: string[] = [];
    const w = watchRemote(`127.0.0.1:${port}`, 'ok/', listener, { onConnection: (s) => states.push(s) });
    cleanup.push(() => w.cancel());
    await waitFor('connected', () => states.includes('connected'));
    await store.put('ok/1', '1');
    await waitFor('event', () => got.length === 1);
    expect(() => watchRemote(`127.0.0.1:${port}`, '', listener)).toThrow(ValidationError);
    expect(() => watchRemote(`127.0.0.1:${port}`, 'a', listener, { fromRevision: -1 })).toThrow(ValidationError);
    expect(() => watchRemote(`127.0.0.1:${port}`, 'a', listener, { fromRevision: 1.5 })).toThrow(ValidationError);
  });
  it('cancels a watcher that stops reading once its unsent bytes pass the limit (RESOURCE_EXHAUSTED / EOVERLOADED, naming the resume revision); other watchers are unaffected', async () => {
    const store = new MemoryKv();
    cleanup.push(() => store.close());
    const { port } = await serve(store, 0, 256 << 10);
    const { Watch } = kvProto();
    const raw = new Watch(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanup.push(() => raw.close());
    const slow = raw.Watch({ prefix: 's/', startRevision: 0 }) as grpc.ClientReadableStream<{ created?: boolean }>;
    let created = false;
    let events = 0;
    const ended = new Promise<grpc.ServiceError | null>((resolve) => {
      slow.on('error', resolve);
      slow.on('end', () => resolve(null));
    });
    slow.on('data', (res: { created?: boolean }) => {
      if (res.created) {
        created = true;
        slow.pause(); // a client that stops reading
      } else events++;
    });
    await waitFor('created', () => created);
    const { got, listener } = collector();
    const states: string[] = [];
    const healthy = watchRemote(`127.0.0.1:${port}`, 's/', listener, { onConnection: (s) => states.push(s) });
    cleanup.push(() => healthy.cancel());
    await waitFor('healthy watcher connected', () => states.includes('connected'));
    const value = 'v'.repeat(16 << 10);
    for (let i = 0; i < 200; i++) await store.put(`s/${i}`, value); // 3.2 MiB, far beyond HTTP/2 windows + 256 KiB
    slow.resume();
    const err = await ended;
    expect(err).not.toBeNull();
    expect(err!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err!.metadata.get(ERROR_CODE_METADATA)).toEqual(['EOVERLOADED']);
    expect(err!.details).toMatch(/fell \d+ bytes behind .*resume from revision \d+/);
    expect(events).toBeLessThan(200);
    // The reading watcher got every event once, in order.
    await waitFor('all 200 events', () => got.length === 200, 10_000);
    expect(got.map((e) => e.key)).toEqual(Array.from({ length: 200 }, (_, i) => `s/${i}`));
  });
});
