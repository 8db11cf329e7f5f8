import { describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import { createRng } from '../common/rng';
import { RaftLog } from './log';
import { Raft } from './raft';
import { Network, type NetworkOptions } from './testing/network';
import type { Entry, Message } from './types';

const ids = ['A', 'B', 'C'];

function elected(opts: Partial<NetworkOptions> = {}) {
  const net = new Network({ voters: ids, seed: 1, preferred: 'A', ...opts });
  net.tickUntil(() => net.leaders().length === 1 && net.raft(net.leaders()[0]!).status().commitIndex > 0);
  return net;
}

function proposeMany(net: Network, leader: string, n: number, prefix = 'v'): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    net.propose(leader, `${prefix}${i}`);
    out.push(`${prefix}${i}`);
  }
  net.tick(3);
  return out;
}

const entry = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index]) });

describe('RaftLog with an offset (log compaction)', () => {
  it('compacts a prefix and keeps term lookups for the prefix and the tail', () => {
    const log = new RaftLog([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)], 4, 4);
    log.compact({ index: 3, term: 2, voters: ['A'], learners: [], data: new Uint8Array() }, 1);
    expect(log.firstIndex()).toBe(3);
    expect(log.term(1)).toBeUndefined();
    expect(log.term(2)).toBe(1);
    expect(log.term(3)).toBe(2);
    expect(log.lastIndex()).toBe(4);
    expect(log.slice(3, 4).map((e) => e.index)).toEqual([3, 4]);
    expect(() => log.slice(2, 4)).toThrow(/compacted/);
    expect(log.findConflictByTerm(4, 0)).toBe(2);
  });

  it('restarts from a snapshot plus the entries after it (entries at or below the snapshot are dropped)', () => {
    const snap = { index: 2, term: 1, voters: ['A'], learners: [], data: new Uint8Array() };
    const log = new RaftLog([entry(2, 1), entry(3, 2)], 0, 0, snap);
    expect(log.firstIndex()).toBe(3);
    expect(log.committed).toBe(2);
    expect(log.applied).toBe(2);
    expect(log.nextCommitted()).toEqual([]);
    expect(() => new RaftLog([entry(4, 2)], 0, 0, snap)).toThrow(/not contiguous/);
  });

  it('slice honours the byte limit but always returns at least one entry', () => {
    const big = (i: number): Entry => ({ index: i, term: 1, type: 'normal', data: new Uint8Array(100) });
    const log = new RaftLog([big(1), big(2), big(3)], 3, 3);
    expect(log.slice(1, 3, 10, 250).length).toBe(2);
    expect(log.slice(1, 3, 10, 50).length).toBe(1);
  });
});

describe('Raft snapshots (paper §7, thesis ch. 5)', () => {
  it('compact() keeps a snapshot and drops entries; bad indexes are a ValidationError', () => {
    const net = elected();
    const leader = net.leaders()[0]!;
    proposeMany(net, leader, 10);
    const raft = net.raft(leader);
    const applied = raft.status().appliedIndex;
    expect(() => raft.compact(applied + 1, new Uint8Array())).toThrow(ValidationError);
    expect(() => raft.compact(-1, new Uint8Array())).toThrow(ValidationError);
    expect(net.compact(leader)).toBe(applied);
    expect(raft.firstIndex()).toBe(applied + 1);
    expect(raft.snapshot()).toMatchObject({ index: applied, voters: ids, learners: [] });
    expect(raft.snapshot()!.term).toBe(raft.status().term);
    // Older or equal index: ignored.
    expect(raft.compact(applied, new Uint8Array())).toBeNull();
    expect(net.node(leader).storage.entries).toEqual([]);
  });

  it('a follower that was down past compaction catches up through InstallSnapshot and applies the rest', () => {
    const net = elected();
    const leader = net.leaders()[0]!;
    const f = ids.find((x) => x !== leader)!;
    const before = proposeMany(net, leader, 3, 'a');
    net.crash(f);
    const during = proposeMany(net, leader, 20, 'b');
    const snapIndex = net.compact(leader);
    expect(snapIndex).toBeGreaterThan(20);
    const after = proposeMany(net, leader, 2, 'c');
    net.restart(f);
    net.tickUntil(() => net.appliedData(f).length === 25);
    expect(net.appliedData(f)).toEqual([...before, ...during, ...after]);
    expect(net.node(f).installed.map((s) => s.index)).toEqual([snapIndex]);
    expect(net.delivered.filter((m) => m.type === 'InstallSnapshot' && m.to === f).length).toBeGreaterThanOrEqual(1);
    // The follower persisted the snapshot and only the entries after it.
    expect(net.node(f).storage.snapshot?.index).toBe(snapIndex);
    expect(Math.min(...net.node(f).storage.entries.map((e) => e.index))).toBe(snapIndex + 1);
    const s = net.raft(f).status();
    expect(s.commitIndex).toBe(net.raft(leader).status().commitIndex);
    // And it survives a restart from snapshot + remaining log.
    net.crash(f);
    net.restart(f);
    expect(net.appliedData(f)).toEqual([...before, ...during]);
    expect(net.raft(f).firstIndex()).toBe(snapIndex + 1);
    net.tick(3);
    expect(net.appliedData(f)).toEqual([...before, ...during, ...after]);
  });

  it('a restarted leader recovers from its own snapshot and still serves lagging followers', () => {
    const net = elected({ seed: 4 });
    const leader = net.leaders()[0]!;
    proposeMany(net, leader, 5, 'x');
    net.compact(leader);
    for (const id of ids) net.crash(id);
    for (const id of ids) net.restart(id);
    net.tickUntil(() => net.leaders().length === 1);
    const l2 = net.leaders()[0]!;
    net.propose(l2, 'y');
    net.tick(3);
    for (const id of ids) expect(net.appliedData(id)).toEqual(['x0', 'x1', 'x2', 'x3', 'x4', 'y']);
  });

  it('with snapshotCatchUpEntries a slightly lagging follower gets AppendEntries, not a snapshot', () => {
    const net = elected({ snapshotCatchUpEntries: 50 });
    const leader = net.leaders()[0]!;
    const f = ids.find((x) => x !== leader)!;
    net.isolate(f);
    proposeMany(net, leader, 10);
    net.compact(leader);
    expect(net.raft(leader).firstIndex()).toBe(1);
    net.heal();
    net.tickUntil(() => net.appliedData(f).length === 10);
    expect(net.delivered.some((m) => m.type === 'InstallSnapshot')).toBe(false);
  });

  it('a follower whose log already holds the snapshot index only fast-forwards its commit', () => {
    const r = new Raft({ id: 'B', voters: ['A', 'B'], learners: [], rng: createRng(1) });
    const base = { from: 'A', to: 'B', term: 1, reject: false, rejectHint: 0, context: new Uint8Array(), commit: 0 };
    r.step({ ...base, type: 'AppendEntries', index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1)] });
    let rd = r.ready();
    r.advance();
    rd = r.ready();
    r.advance();
    expect(rd.messages[0]).toMatchObject({ type: 'AppendEntriesResponse', index: 2 });
    r.step({ ...base, type: 'InstallSnapshot', index: 2, logTerm: 1, entries: [], snapshot: { index: 2, term: 1, voters: ['A', 'B'], learners: [], data: new Uint8Array() } });
    rd = r.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    r.advance();
    expect(r.status()).toMatchObject({ commitIndex: 2, lastIndex: 2 });
  });

  it('replaces a conflicting log with the snapshot; a malformed InstallSnapshot is ignored', () => {
    const r = new Raft({ id: 'B', voters: ['A', 'B'], learners: [], rng: createRng(1) });
    const base = { from: 'A', to: 'B', reject: false, rejectHint: 0, context: new Uint8Array(), commit: 0, entries: [] };
    r.step({ ...base, term: 1, type: 'AppendEntries', index: 0, logTerm: 0, entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    r.ready();
    r.advance();
    r.ready();
    r.advance();
    // Malformed: index does not match the snapshot.
    r.step({ ...base, term: 2, type: 'InstallSnapshot', index: 9, logTerm: 2, snapshot: { index: 5, term: 2, voters: ['A', 'B'], learners: [], data: new Uint8Array() } });
    r.step({ ...base, term: 2, type: 'InstallSnapshot', index: 5, logTerm: 2 });
    expect(r.status().lastIndex).toBe(3);
    const snap = { index: 5, term: 2, voters: ['A', 'B'], learners: [], data: new Uint8Array([42]) };
    r.step({ ...base, term: 2, type: 'InstallSnapshot', index: 5, logTerm: 2, snapshot: snap });
    const rd = r.ready();
    expect(rd.snapshot).toEqual(snap);
    expect(rd.messages).toEqual([]); // the acknowledgement waits for persistence
    r.advance();
    const rd2 = r.ready();
    expect(rd2.messages.map((m) => [m.type, m.index, m.reject])).toEqual([['AppendEntriesResponse', 5, false]]);
    r.advance();
    expect(r.status()).toMatchObject({ commitIndex: 5, appliedIndex: 5, lastIndex: 5 });
    expect(r.firstIndex()).toBe(6);
  });
});

describe('flow control (etcd Progress: probe / replicate / snapshot)', () => {
  it('a follower down since the election gets one probe, not every proposal; after restart it catches up', () => {
    const net = elected({ seed: 2 });
    const old = net.leaders()[0]!;
    const f = ids.find((x) => x !== old)!;
    net.crash(f);
    net.crash(old);
    net.restart(old);
    net.tickUntil(() => net.leaders().length === 1);
    const leader = net.leaders()[0]!;
    const sentBefore = countSent(net, leader, f);
    for (let i = 0; i < 300; i++) net.raft(leader).propose(new TextEncoder().encode(`p${i}`));
    net.tick(20);
    // Probe state: one AppendEntries in flight until the follower answers (a heartbeat response re-arms it).
    expect(countSent(net, leader, f) - sentBefore).toBeLessThanOrEqual(1);
    net.restart(f);
    net.tickUntil(() => net.appliedData(f).length === 300);
  });

  it('a follower that crashes in replicate state gets at most the in-flight window (default 256)', () => {
    const net = elected({ seed: 2 });
    const leader = net.leaders()[0]!;
    const f = ids.find((x) => x !== leader)!;
    net.crash(f);
    const sentBefore = countSent(net, leader, f);
    for (let i = 0; i < 1000; i++) net.raft(leader).propose(new TextEncoder().encode(`p${i}`));
    net.tick(50);
    const sent = countSent(net, leader, f) - sentBefore;
    expect(sent).toBeGreaterThanOrEqual(4); // 1000 entries / 256 per message
    expect(sent).toBeLessThanOrEqual(256 + 2);
    net.restart(f);
    net.tickUntil(() => net.appliedData(f).length === 1000);
  });

  it('an unreachable follower in replicate state receives at most maxInflightMessages appends, then probes', () => {
    const net = elected({ seed: 3, maxInflightMessages: 4 });
    const leader = net.leaders()[0]!;
    const f = ids.find((x) => x !== leader)!;
    net.isolate(f);
    const sentBefore = countSent(net, leader, f);
    for (let i = 0; i < 50; i++) net.raft(leader).propose(new TextEncoder().encode(`p${i}`));
    net.stabilize();
    expect(countSent(net, leader, f) - sentBefore).toBe(4);
    net.heal();
    net.tickUntil(() => net.appliedData(f).length === 50);
    expect(net.appliedData(f)).toEqual(net.appliedData(leader));
  });

  it('pipelines several appends per round and respects maxBytesPerMessage', () => {
    const net = elected({ seed: 5, maxBytesPerMessage: 1000, maxEntriesPerMessage: 100 });
    const leader = net.leaders()[0]!;
    const f = ids.find((x) => x !== leader)!;
    net.isolate(f);
    for (let i = 0; i < 40; i++) net.raft(leader).propose(new Uint8Array(300).fill(i));
    net.stabilize();
    const mark = net.delivered.length;
    net.heal();
    net.tickUntil(() => net.raft(f).status().commitIndex === net.raft(leader).status().commitIndex);
    const appends = net.delivered.slice(mark).filter((m) => m.type === 'AppendEntries' && m.to === f && m.entries.length > 0);
    for (const m of appends) expect(bytes(m)).toBeLessThanOrEqual(1000);
    expect(appends.length).toBeGreaterThanOrEqual(14);
    expect(appends.length).toBeLessThanOrEqual(30);
  });
});

function bytes(m: Message): number {
  return m.entries.reduce((n, e) => n + e.data.length, 0);
}

function countSent(net: Network, from: string, to: string): number {
  return net.appendsEmitted(from, to);
}
