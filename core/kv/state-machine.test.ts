import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CompactedError, CorruptionError, NotFoundError } from '../common/errors';
import { MemoryKv } from './memory-kv';
import { KvStateMachine, compareKeys, decodeCommand, encodeCommand, type KvCommand } from './state-machine';
import type { Compare, KeyValue, RequestOp, TxnRequest, WatchEvent } from './types';

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('KvStateMachine', () => {
  it('tracks revisions, versions and create/mod revisions like etcd', () => {
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'put', key: 'a', value: '1' });
    sm.apply(2, { op: 'put', key: 'a', value: '2' });
    sm.apply(3, { op: 'put', key: 'b', value: 'x' });
    const a = sm.range('a').kvs[0];
    expect(a).toEqual({ key: 'a', value: '2', createRevision: 1, modRevision: 2, version: 2, lease: 0 });
    expect(sm.revision).toBe(3);
    const del = sm.apply(4, { op: 'delete', key: 'a' });
    expect(del).toEqual({ op: 'delete', revision: 4, deleted: 1 });
    // Deleting nothing does not advance the revision.
    expect(sm.apply(5, { op: 'delete', key: 'zzz' })).toEqual({ op: 'delete', revision: 4, deleted: 0 });
    sm.apply(6, { op: 'put', key: 'a', value: 'again' });
    expect(sm.range('a').kvs[0]).toMatchObject({ createRevision: 5, modRevision: 5, version: 1 });
  });

  it('ranges by prefix in byte order with limit', () => {
    const sm = new KvStateMachine();
    for (const k of ['p/b', 'p/a', 'p/\u{1F600}', 'p/\uFFFD', 'q']) sm.apply(1, { op: 'put', key: k, value: k });
    const r = sm.range('p/', { prefix: true, limit: 3 });
    expect(r.kvs.map((kv) => kv.key)).toEqual(['p/a', 'p/b', 'p/\uFFFD']);
    expect(r.count).toBe(4);
    expect(r.more).toBe(true);
  });

  it('runs txn branches by compares and shares one revision', () => {
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'put', key: 'k', value: 'v' });
    const ok = sm.apply(2, {
      op: 'txn',
      request: { compare: [{ key: 'k', target: 'modRevision', result: '=', value: 1 }], success: [{ type: 'put', key: 'k', value: 'w' }, { type: 'put', key: 'j', value: 'x' }], failure: [] },
    });
    expect(ok).toMatchObject({ op: 'txn', response: { succeeded: true, revision: 2 } });
    const fail = sm.apply(3, {
      op: 'txn',
      request: { compare: [{ key: 'k', target: 'modRevision', result: '=', value: 1 }], success: [], failure: [{ type: 'range', key: 'k' }] },
    });
    expect(fail).toMatchObject({ op: 'txn', response: { succeeded: false, revision: 2 } });
    expect(sm.range('j').kvs[0]?.modRevision).toBe(2);
  });

  it('grants leases with index-derived ids and revokes attached keys', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(7, { op: 'leaseGrant', ttl: 5 })).toEqual({ op: 'leaseGrant', id: 7, ttl: 5 });
    sm.apply(8, { op: 'put', key: 'a', value: '1', lease: 7 });
    sm.apply(9, { op: 'put', key: 'b', value: '1', lease: 7 });
    expect(() => sm.apply(10, { op: 'put', key: 'c', value: '1', lease: 99 })).toThrow(NotFoundError);
    expect(sm.revision).toBe(2);
    sm.apply(11, { op: 'leaseRevoke', id: 7 });
    expect(sm.range('', { prefix: true }).count).toBe(0);
    expect(sm.revision).toBe(3);
    expect(() => sm.apply(12, { op: 'leaseRevoke', id: 7 })).toThrow(NotFoundError);
  });

  it('replays watch history from a revision, streams live events, and reports compaction', async () => {
    const sm = new KvStateMachine({ historyEvents: 3 });
    for (let i = 1; i <= 5; i++) sm.apply(i, { op: 'put', key: `w/${i}`, value: String(i) });
    expect(() => sm.watch('w/', () => {}, { fromRevision: 1 })).toThrow(CompactedError);
    const seen: number[] = [];
    sm.watch('w/', (events, rev) => seen.push(rev, ...events.map((e) => (e.type === 'put' ? 1 : -1))), { fromRevision: 4 });
    sm.apply(6, { op: 'delete', key: 'w/1' });
    sm.apply(7, { op: 'put', key: 'other', value: '' });
    await flush();
    expect(seen).toEqual([4, 1, 5, 1, 6, -1]);
  });

  it('round-trips command encoding', () => {
    const cmd: KvCommand = { op: 'txn', request: { compare: [], success: [{ type: 'put', key: 'é', value: '{"a":1}' }], failure: [] } };
    expect(decodeCommand(encodeCommand(cmd))).toEqual(cmd);
  });
});

// ---- Property test against a naive twin -------------------------------------------------

type ModelKv = KeyValue;
class NaiveModel {
  rev = 0;
  items: ModelKv[] = [];
  get(key: string) {
    return this.items.find((i) => i.key === key);
  }
  byteSorted(list: ModelKv[]) {
    return [...list].sort((a, b) => Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8')));
  }
  range(key: string, prefix: boolean, limit: number) {
    const all = this.byteSorted(this.items.filter((i) => (prefix ? i.key.startsWith(key) : i.key === key)));
    const kvs = limit > 0 ? all.slice(0, limit) : all;
    return { kvs: kvs.map((k) => ({ ...k })), count: all.length, more: kvs.length < all.length };
  }
  holds(c: Compare) {
    const kv = this.get(c.key);
    const actual = c.target === 'value' ? (kv?.value ?? '') : (kv?.[c.target] ?? 0);
    const e = c.value;
    if (c.result === '=') return actual === e;
    if (c.result === '!=') return actual !== e;
    if (typeof actual === 'string') {
      const cmp = Buffer.compare(Buffer.from(actual), Buffer.from(String(e)));
      return c.result === '<' ? cmp < 0 : cmp > 0;
    }
    return c.result === '<' ? actual < (e as number) : actual > (e as number);
  }
  txn(req: TxnRequest) {
    const succeeded = req.compare.every((c) => this.holds(c));
    const next = this.rev + 1;
    let wrote = false;
    const responses: unknown[] = [];
    for (const op of succeeded ? req.success : req.failure) {
      if (op.type === 'range') responses.push({ type: 'range', ...this.range(op.key, !!op.prefix, op.limit ?? 0) });
      else if (op.type === 'put') {
        const prev = this.get(op.key);
        wrote = true;
        this.items = this.items.filter((i) => i.key !== op.key);
        this.items.push({ key: op.key, value: op.value, createRevision: prev?.createRevision ?? next, modRevision: next, version: (prev?.version ?? 0) + 1, lease: 0 });
        responses.push(op.prevKv && prev ? { type: 'put', prevKv: prev } : { type: 'put' });
      } else {
        const gone = this.byteSorted(this.items.filter((i) => (op.prefix ? i.key.startsWith(op.key) : i.key === op.key)));
        if (gone.length) wrote = true;
        this.items = this.items.filter((i) => !gone.includes(i));
        responses.push({ type: 'deleteRange', deleted: gone.length });
      }
    }
    if (wrote) this.rev = next;
    return { succeeded, revision: this.rev, responses };
  }
}

const keyArb = fc.constantFrom('a', 'ab', 'b', 'b/1', 'b/2', '\u{1F600}', '\uFFFD', '');
const opArb: fc.Arbitrary<RequestOp> = fc.oneof(
  fc.record({ type: fc.constant('range' as const), key: keyArb, prefix: fc.boolean(), limit: fc.nat(3) }),
  fc.record({ type: fc.constant('put' as const), key: keyArb, value: fc.string({ maxLength: 3 }), prevKv: fc.boolean() }),
  fc.record({ type: fc.constant('deleteRange' as const), key: keyArb, prefix: fc.boolean() }),
);
const compareArb: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ key: keyArb, target: fc.constantFrom('version' as const, 'createRevision' as const, 'modRevision' as const, 'lease' as const), result: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), value: fc.nat(6) }),
  fc.record({ key: keyArb, target: fc.constant('value' as const), result: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), value: fc.string({ maxLength: 2 }) }),
);
const txnArb: fc.Arbitrary<TxnRequest> = fc.record({ compare: fc.array(compareArb, { maxLength: 2 }), success: fc.array(opArb, { maxLength: 3 }), failure: fc.array(opArb, { maxLength: 3 }) });

describe('KvStateMachine vs naive model (property)', () => {
  it('txn and range results match', () => {
    fc.assert(
      fc.property(fc.array(txnArb, { maxLength: 25 }), fc.tuple(keyArb, fc.boolean(), fc.nat(3)), (txns, [key, prefix, limit]) => {
        const sm = new KvStateMachine();
        const model = new NaiveModel();
        txns.forEach((t, i) => {
          const r = sm.apply(i + 1, { op: 'txn', request: t });
          expect(r).toEqual({ op: 'txn', response: model.txn(t) });
        });
        const { revision, ...got } = sm.range(key, { prefix, limit });
        expect(got).toEqual(model.range(key, prefix, limit));
        expect(revision).toBe(model.rev);
      }),
      { numRuns: 300 },
    );
  });

  it('compareKeys agrees with UTF-8 byte order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
  });
});

describe('MemoryKv', () => {
  it('implements put/range/txn/watch and expires leases', async () => {
    const kv = new MemoryKv({ leaseTimeScale: 0.01 });
    const events: WatchEvent[] = [];
    kv.watch('x/', (evs) => events.push(...evs));
    const { id } = await kv.leaseGrant(1);
    await kv.put('x/1', 'a', { lease: id });
    await kv.put('x/2', 'b');
    expect((await kv.range('x/', { prefix: true })).count).toBe(2);
    for (let i = 0; i < 200 && (await kv.range('x/1')).count > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await kv.range('x/1')).count).toBe(0);
    await expect(kv.leaseKeepAlive(id)).rejects.toThrow(NotFoundError);
    await flush();
    expect(events.map((e) => `${e.type}:${e.kv.key}`)).toEqual(['put:x/1', 'put:x/2', 'delete:x/1']);
    kv.close();
  });
});

describe('KvStateMachine snapshots (serialize / restore)', () => {
  function populated(): KvStateMachine {
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'leaseGrant', ttl: 30 });
    sm.apply(2, { op: 'put', key: 'b', value: 'x', lease: 1 });
    sm.apply(3, { op: 'put', key: 'a', value: '1' });
    sm.apply(4, { op: 'put', key: 'a', value: '2' });
    sm.apply(5, { op: 'put', key: 'c', value: 'gone' });
    sm.apply(6, { op: 'delete', key: 'c' });
    return sm;
  }

  it('round-trips revision, keys (create/mod revision, version, lease) and leases; equal states give equal bytes', () => {
    const sm = populated();
    const copy = new KvStateMachine();
    copy.restore(sm.serialize());
    expect(copy.revision).toBe(sm.revision);
    expect(copy.range('', { prefix: true }).kvs).toEqual(sm.range('', { prefix: true }).kvs);
    expect(copy.leaseTtls()).toEqual(sm.leaseTtls());
    expect(copy.serialize()).toEqual(sm.serialize());
    // Lease attachments survive: revoking the lease deletes its key on the copy too.
    copy.apply(7, { op: 'leaseRevoke', id: 1 });
    expect(copy.range('b').kvs).toEqual([]);
    // Watch history before the snapshot is gone.
    expect(() => copy.watch('a', () => {}, { fromRevision: 2 })).toThrow(CompactedError);
  });

  it('live watchers see the difference a restored snapshot makes', async () => {
    const target = populated();
    const sm = new KvStateMachine();
    sm.apply(1, { op: 'put', key: 'c', value: 'old' });
    sm.apply(2, { op: 'put', key: 'a', value: '2' });
    const seen: WatchEvent[] = [];
    sm.watch('', (evs) => seen.push(...evs));
    sm.restore(target.serialize());
    await flush();
    const summary = seen.map((e) => `${e.type} ${e.kv.key}`).sort();
    expect(summary).toEqual(['delete c', 'put a', 'put b']);
  });

  it('rejects malformed snapshots with CorruptionError and leaves the state unchanged', () => {
    const sm = populated();
    const before = sm.serialize();
    const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    const good = JSON.parse(new TextDecoder().decode(before)) as Record<string, unknown>;
    const bad = [
      new Uint8Array([0xff, 0xfe]),
      new TextEncoder().encode('{"v":1'),
      enc(null),
      enc({ ...good, v: 2 }),
      enc({ ...good, revision: -1 }),
      enc({ ...good, kvs: [['k', 'v', 1, 99, 1, 0]] }),
      enc({ ...good, kvs: [['k', 'v', 1, 1, 1, 777]] }),
      enc({ ...good, kvs: [['k', 1, 1, 1, 1, 0]] }),
      enc({ ...good, leases: [[0, 5]] }),
      enc({ ...good, kvs: [['k', 'v', 1, 1, 1, 0], ['k', 'v', 1, 1, 1, 0]] }),
    ];
    for (const b of bad) {
      expect(() => sm.restore(b)).toThrow(CorruptionError);
      expect(sm.serialize()).toEqual(before);
    }
  });
});
