import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, UnavailableError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { Message } from '../raft/types';
import { SNAP_FILE, WAL_FILE } from '../raft/wal';
import { decodeRecords } from '../raft/wal-codec';
import { EmbeddedKv, type EmbeddedKvOptions } from './embedded-kv';
import { MemoryTransport } from './testing/memory-transport';
import { waitFor } from './testing/wait-for';
import type { WatchEvent } from './types';

const VOTERS = ['A', 'B', 'C'];
const LEARNERS = ['L'];
const ALL = [...VOTERS, ...LEARNERS];


let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function makeCluster(dir = mkdtempSync(join(tmpdir(), 'cd-ekv-')), hub = new MemoryTransport(1), extra: Partial<EmbeddedKvOptions> = {}) {
  const nodes = new Map<string, EmbeddedKv>();
  const create = (id: string, more: Partial<EmbeddedKvOptions> = {}) => {
    const kv = new EmbeddedKv({ id, voters: VOTERS, learners: LEARNERS, dataDir: join(dir, id), transport: hub.transport(id), clusterId: 'test', tickMs: 10, preferred: id === 'A', seed: `s/${id}`, requestTimeoutMs: 10_000, ...extra, ...more });
    nodes.set(id, kv);
    return kv;
  };
  for (const id of ALL) create(id);
  cleanup.push(async () => {
    for (const kv of nodes.values()) await kv.stop();
  });
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const leader = () => waitFor('a leader', () => [...nodes.entries()].find(([, kv]) => kv.status().role === 'leader')?.[0]);
  return { dir, hub, nodes, create, leader, kv: (id: string) => nodes.get(id)! };
}

describe('EmbeddedKv cluster (3 voters + 1 learner, MemoryTransport, real WALs)', () => {
  it('lease-based reads: linearizable reads everywhere, served on the leader lease without a heartbeat round', async () => {
    // The lease lasts electionTicks − 2 ticks after a quorum acknowledged a heartbeat: with 10 ticks
    // of 10 ms, an event loop stalled 80 ms on a loaded machine lapses it and the read (correctly)
    // takes a ReadIndex round. 100 ticks leave 980 ms of margin; the tick-exact rules are proven in
    // core/raft/lease-read.test.ts.
    const c = makeCluster(undefined, undefined, { readOnly: 'lease-based', electionTicks: 100 });
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    const rounds: Message[] = [];
    c.hub.observe = (m) => {
      if (m.type === 'Heartbeat' && m.context.length > 0) rounds.push(m);
    };
    for (let i = 0; i < 5; i++) {
      const put = await c.kv(ALL[i % ALL.length]!).put('lease/k', `v${i}`);
      for (const id of ALL) {
        const r = await c.kv(id).range('lease/k');
        expect(r.kvs[0]?.value).toBe(`v${i}`);
        expect(r.revision).toBeGreaterThanOrEqual(put.revision);
      }
    }
    expect(c.kv(leader).status().role).toBe('leader');
    expect(rounds).toEqual([]);
  });

  it('forwards writes from followers and learners, runs txns, serves linearizable reads everywhere', async () => {
    const c = makeCluster();
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    const follower = VOTERS.find((x) => x !== leader)!;
    const p1 = await c.kv(follower).put('cfg/a', '1');
    // The forwarding node has applied its own write (read-your-writes, serializable).
    expect((await c.kv(follower).range('cfg/a', { serializable: true })).kvs[0]?.value).toBe('1');
    const p2 = await c.kv('L').put('cfg/b', '2');
    expect(p2.revision).toBe(p1.revision + 1);
    for (const id of ALL) {
      const r = await c.kv(id).range('cfg/', { prefix: true });
      expect(r.kvs.map((kv) => `${kv.key}=${kv.value}`)).toEqual(['cfg/a=1', 'cfg/b=2']);
    }
    const ok = await c.kv(follower).txn({ compare: [{ key: 'cfg/a', target: 'modRevision', result: '=', value: p1.revision }], success: [{ type: 'put', key: 'cfg/a', value: 'x' }], failure: [] });
    expect(ok.succeeded).toBe(true);
    const stale = await c.kv('L').txn({ compare: [{ key: 'cfg/a', target: 'modRevision', result: '=', value: p1.revision }], success: [{ type: 'put', key: 'cfg/a', value: 'y' }], failure: [{ type: 'range', key: 'cfg/a' }] });
    expect(stale.succeeded).toBe(false);
    expect(stale.responses[0]).toMatchObject({ type: 'range', kvs: [{ value: 'x', modRevision: ok.revision }] });
    const del = await c.kv(leader).delete('cfg/', { prefix: true });
    expect(del.deleted).toBe(2);
  });

  it('watch replays from a revision then streams live, on a follower and on the learner', async () => {
    const c = makeCluster();
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    await c.leader();
    const r1 = await c.kv('A').put('w/1', 'a');
    await c.kv('B').put('w/2', 'b');
    await c.kv('C').put('other', 'z');
    const seen = new Map<string, string[]>();
    for (const id of ['B', 'L']) {
      seen.set(id, []);
      // Make sure the local replica caught up before watching from a revision.
      await c.kv(id).range('w/', { prefix: true });
      c.kv(id).watch('w/', (evs: WatchEvent[], rev) => seen.get(id)!.push(...evs.map((e) => `${rev}:${e.type}:${e.kv.key}`)), { fromRevision: r1.revision });
    }
    const r3 = await c.kv('L').put('w/3', 'c');
    const r4 = await c.kv('A').delete('w/1');
    const expected = [`${r1.revision}:put:w/1`, `${r1.revision + 1}:put:w/2`, `${r3.revision}:put:w/3`, `${r4.revision}:delete:w/1`];
    for (const id of ['B', 'L']) await waitFor(`watch on ${id}`, () => seen.get(id)!.length >= 4);
    for (const id of ['B', 'L']) expect(seen.get(id)).toEqual(expected);
  });

  it('lease expiry deletes attached keys; keep-alive on an expired lease is NotFoundError', async () => {
    const c = makeCluster();
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    const follower = VOTERS.find((x) => x !== leader)!;
    const { id } = await c.kv(follower).leaseGrant(1);
    await c.kv(follower).put('lock/x', 'held', { lease: id });
    await c.kv(follower).put('plain', 'stays');
    expect((await c.kv(follower).leaseKeepAlive(id)).ttl).toBe(1);
    await waitFor('lease expiry', async () => (await c.kv('L').range('lock/x')).count === 0);
    expect((await c.kv('L').range('plain')).count).toBe(1);
    await expect(c.kv(follower).leaseKeepAlive(id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('after the leader stops another voter leads and writes work again', async () => {
    const c = makeCluster();
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    const old = await c.leader();
    await c.kv(old).put('k', 'v1');
    await c.kv(old).stop();
    const rest = ALL.filter((x) => x !== old);
    const neu = await waitFor('new leader', () => rest.find((x) => c.kv(x).status().role === 'leader'));
    expect(neu).not.toBe('L');
    const w = await c.kv('L').put('k', 'v2');
    expect(w.revision).toBeGreaterThan(1);
    for (const id of rest) expect((await c.kv(id).range('k')).kvs[0]?.value).toBe('v2');
  });

  it('stop all, restart from the WALs: data and revisions are intact', async () => {
    const c = makeCluster();
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    await c.leader();
    for (let i = 0; i < 10; i++) await c.kv(ALL[i % 4]!).put(`d/${i}`, String(i));
    const before = await c.kv('A').range('d/', { prefix: true });
    await Promise.all(ALL.map((id) => c.kv(id).stop()));

    const c2 = makeCluster(c.dir, new MemoryTransport(2));
    await Promise.all(ALL.map((id) => c2.kv(id).start()));
    // Each replica rebuilt its state from its own WAL before any leader exists.
    for (const id of ALL) expect(c2.kv(id).localRevision()).toBeGreaterThan(0);
    await c2.leader();
    for (const id of ALL) {
      const r = await c2.kv(id).range('d/', { prefix: true });
      expect(r.kvs).toEqual(before.kvs);
    }
    const after = await c2.kv('B').put('d/new', 'x');
    expect(after.revision).toBe(before.revision + 1);
  });
});

describe('EmbeddedKv without quorum', () => {
  it('rejects writes and linearizable reads with UnavailableError, still serves serializable reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cd-ekv-'));
    const hub = new MemoryTransport(3);
    const nodes = ['A', 'L'].map((id) => new EmbeddedKv({ id, voters: VOTERS, learners: LEARNERS, dataDir: join(dir, id), transport: hub.transport(id), clusterId: 'test', tickMs: 10, requestTimeoutMs: 300 }));
    cleanup.push(async () => {
      for (const n of nodes) await n.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await Promise.all(nodes.map((n) => n.start()));
    await expect(nodes[1]!.put('k', 'v')).rejects.toBeInstanceOf(UnavailableError);
    await expect(nodes[0]!.range('k')).rejects.toBeInstanceOf(UnavailableError);
    expect(await nodes[1]!.range('k', { serializable: true })).toMatchObject({ count: 0, revision: 0 });
    expect(nodes.map((n) => n.status().leaderId)).toEqual([null, null]);
  });
});

/** A logger that records warn lines (message and fields). */
function recordingLogger(lines: Array<{ msg: string; fields: Record<string, unknown> }>): Logger {
  const noop = () => {};
  const self: Logger = {
    debug: noop,
    info: noop,
    error: noop,
    warn: (a: object | string, b?: string) => lines.push(typeof a === 'string' ? { msg: a, fields: {} } : { msg: b ?? '', fields: a as Record<string, unknown> }),
    child: () => self,
  };
  return self;
}

describe('EmbeddedKv log compaction (snapshots)', () => {
  it('a follower down past compaction catches up via InstallSnapshot; WALs stay bounded; restart recovers from snapshot + WAL tail', async () => {
    const c = makeCluster(undefined, undefined, { snapshotEntries: 20, snapshotCatchUpEntries: 0 });
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    const lagging = VOTERS.find((x) => x !== leader)!;
    await c.kv(leader).put('s/0', 'v0');
    await c.kv(lagging).stop();
    for (let i = 1; i <= 80; i++) await c.kv(leader).put(`s/${i}`, `v${i}`);
    await c.kv(leader).delete('s/0');
    const expected = (await c.kv(leader).range('s/', { prefix: true })).kvs;
    expect(expected.length).toBe(80);
    // The leader compacted: snapshot file present, WAL holds fewer than 20 entries' worth.
    expect(existsSync(join(c.dir, leader, SNAP_FILE))).toBe(true);
    // Restart the lagging follower: its log ends far below the leader's first index.
    const logs: Array<{ msg: string; fields: Record<string, unknown> }> = [];
    const back = c.create(lagging, { logger: recordingLogger(logs) });
    const seen: string[] = [];
    await back.start();
    back.watch('s/', (evs) => seen.push(...evs.map((e) => `${e.type}:${e.kv.key}`)));
    await waitFor('catch-up', async () => (await back.range('s/', { prefix: true, serializable: true })).kvs.length === 80 && back.localRevision() >= expected[expected.length - 1]!.modRevision);
    expect((await back.range('s/', { prefix: true, serializable: true })).kvs).toEqual(expected);
    expect(existsSync(join(c.dir, lagging, SNAP_FILE))).toBe(true);
    // The watcher saw the snapshot's difference: the deleted key and the new ones.
    await waitFor('watch events', () => seen.includes('delete:s/0') && seen.filter((x) => x.startsWith('put:')).length >= 80);
    // A write after the catch-up reaches it through plain AppendEntries.
    const w = await back.put('s/after', 'x');
    expect((await c.kv(leader).range('s/after')).kvs[0]?.modRevision).toBe(w.revision);
    // Bytes of records in the leader's WAL (the file also holds its preallocated zero tail).
    const walBytes = decodeRecords(readFileSync(join(c.dir, leader, WAL_FILE))).validBytes;
    expect(walBytes).toBeLessThan(20_000);

    await Promise.all(ALL.map((id) => c.kv(id).stop()));
    const c2 = makeCluster(c.dir, new MemoryTransport(2), { snapshotEntries: 20, snapshotCatchUpEntries: 0 });
    await Promise.all(ALL.map((id) => c2.kv(id).start()));
    for (const id of ALL) expect(c2.kv(id).localRevision()).toBe(w.revision);
    await c2.leader();
    const all = await c2.kv(lagging).range('s/', { prefix: true });
    expect(all.kvs.length).toBe(81);
  });

  it('a malformed InstallSnapshot is dropped with a CorruptionError log line and changes nothing', async () => {
    const c = makeCluster();
    const logs: Array<{ msg: string; fields: Record<string, unknown> }> = [];
    c.create('L', { logger: recordingLogger(logs) });
    await Promise.all(ALL.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    await c.kv(leader).put('k', 'v');
    await waitFor('L applied', async () => (await c.kv('L').range('k', { serializable: true })).count === 1);
    const term = c.kv(leader).status().term;
    const base = { from: leader, to: 'L', term, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array() };
    const forged: Message[] = [
      { ...base, type: 'InstallSnapshot', index: 500, logTerm: term, snapshot: { index: 500, term, voters: VOTERS, learners: LEARNERS, data: new TextEncoder().encode('{"v":1,"revision":"x"}') } },
      { ...base, type: 'InstallSnapshot', index: 500, logTerm: term, snapshot: { index: 500, term, voters: VOTERS, learners: LEARNERS, data: new Uint8Array([0xff, 0x00, 0x13]) } },
      { ...base, type: 'InstallSnapshot', index: 500, logTerm: term },
    ];
    c.hub.transport('intruder').send(forged);
    await waitFor('log lines', () => logs.filter((l) => l.msg === 'malformed snapshot dropped').length === 3);
    expect(logs.every((l) => l.msg !== 'malformed snapshot dropped' || l.fields.code === 'ECORRUPT')).toBe(true);
    expect(c.kv('L').status().commitIndex).toBeLessThan(500);
    expect((await c.kv('L').range('k', { serializable: true })).kvs[0]?.value).toBe('v');
    await c.kv(leader).put('k2', 'v2');
    await waitFor('L still replicates', async () => (await c.kv('L').range('k2', { serializable: true })).count === 1);
  });
});
