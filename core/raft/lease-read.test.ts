import { describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import { createRng } from '../common/rng';
import { Raft } from './raft';
import { Network } from './testing/network';
import type { Message } from './types';

const E = 10;
const ctx = (n: number) => new Uint8Array([n]);

function leaseNetwork(seed = 1) {
  const net = new Network({ voters: ['A', 'B', 'C'], seed, preferred: 'A', readOnly: 'lease-based', electionTicks: E });
  net.tickUntil(() => net.leaders().length === 1 && net.raft(net.leaders()[0]!).status().commitIndex > 0);
  net.tick(2); // heartbeats acknowledged by the followers
  return net;
}

/** Raw Raft nodes with a hand-driven network: `pump` drains every Ready and delivers the messages `deliver` accepts. */
function rawCluster() {
  const ids = ['A', 'B', 'C'];
  const nodes = new Map(ids.map((id) => [id, new Raft({ id, voters: ids, learners: [], rng: createRng(`lease/${id}`), preferred: id === 'A', electionTicks: E, readOnly: 'lease-based' })]));
  const readStates: number[] = [];
  const pump = (deliver: (m: Message) => boolean = () => true) => {
    for (let round = 0; round < 50; round++) {
      const out: Message[] = [];
      for (const r of nodes.values()) {
        while (r.hasReady()) {
          const rd = r.ready();
          if (r.id === 'A') readStates.push(...rd.readStates.map((s) => s.index));
          out.push(...rd.messages);
          r.advance();
        }
      }
      if (out.length === 0) return;
      for (const m of out) if (deliver(m)) nodes.get(m.to)!.step(m);
    }
  };
  return { nodes, pump, readStates, a: nodes.get('A')! };
}

describe('lease-based reads (readOnly: lease-based, thesis §6.4.1)', () => {
  it('a leader with a lease answers readIndex at once, without a heartbeat round', () => {
    const net = leaseNetwork();
    const leader = net.raft(net.leaders()[0]!);
    net.propose(leader.id, 'v');
    net.tick(1);
    expect(leader.hasLease()).toBe(true);
    leader.readIndex(ctx(1));
    const rd = leader.ready();
    expect(rd.readStates.map((s) => s.index)).toEqual([leader.status().commitIndex]);
    expect(rd.messages.filter((m) => m.type === 'Heartbeat' && m.context.length > 0)).toEqual([]);
    leader.advance();
  });

  it('the default (safe) mode never holds a lease and confirms every read with a round', () => {
    const net = new Network({ voters: ['A', 'B', 'C'], seed: 2, preferred: 'A', electionTicks: E });
    net.tickUntil(() => net.leaders().length === 1 && net.raft(net.leaders()[0]!).status().commitIndex > 0);
    net.tick(2);
    const leader = net.raft(net.leaders()[0]!);
    expect(leader.hasLease()).toBe(false);
    leader.readIndex(ctx(2));
    const rd = leader.ready();
    expect(rd.readStates).toEqual([]);
    expect(rd.messages.filter((m) => m.type === 'Heartbeat' && m.context[0] === 2).length).toBe(2);
    leader.advance();
  });

  it('no lease before the leader commits an entry of its term, even with heartbeats acknowledged', () => {
    const { nodes, pump, readStates, a } = rawCluster();
    for (let i = 0; i < E && a.status().role !== 'leader'; i++) {
      for (const r of nodes.values()) r.tick();
      pump((m) => m.type !== 'AppendEntriesResponse');
    }
    expect(a.status().role).toBe('leader');
    // Heartbeats go out and come back, but the no-op of the term is not acknowledged yet.
    a.tick();
    pump((m) => m.type !== 'AppendEntriesResponse');
    expect(a.status().commitIndex).toBe(0);
    expect(a.hasLease()).toBe(false);
    a.readIndex(ctx(3));
    pump((m) => m.type !== 'AppendEntriesResponse');
    expect(readStates).toEqual([]);
    // Once acknowledgements flow, the no-op commits: the waiting read completes and the lease holds.
    a.tick();
    pump();
    expect(a.status().commitIndex).toBeGreaterThan(0);
    expect(readStates).toEqual([a.status().commitIndex]);
    expect(a.hasLease()).toBe(true);
  });

  it('the lease ends electionTicks - 2 ticks after the last acknowledged heartbeat, before another leader can be elected', () => {
    const net = leaseNetwork(3);
    const leader = net.leaders()[0]!;
    const raft = net.raft(leader);
    expect(raft.hasLease()).toBe(true);
    net.isolate(leader);
    let held = 0;
    while (raft.hasLease()) {
      net.tick(1);
      held++;
    }
    // Acknowledged heartbeats were sent at most one tick before isolation.
    expect(held).toBeLessThanOrEqual(E - 2);
    expect(held).toBeGreaterThanOrEqual(E - 4);
    // No other node has become leader while the lease was held.
    expect(net.leaders()).toEqual([leader]);
  });

  it('a leader that started a leadership transfer holds no lease for the rest of its term, also after the transfer timed out', () => {
    const net = leaseNetwork(4);
    const leader = net.leaders()[0]!;
    const raft = net.raft(leader);
    const term = raft.status().term;
    const target = ['A', 'B', 'C'].find((x) => x !== leader)!;
    expect(raft.hasLease()).toBe(true);
    // The target misses everything: the transfer cannot complete and times out on the leader.
    net.isolate(target);
    net.propose(leader, 'behind'); // so the target's log is behind and TimeoutNow waits
    raft.transferLeadership(target);
    expect(raft.hasLease()).toBe(false);
    net.tickUntil(() => raft.transferee() === null, 4 * E);
    expect(raft.status()).toMatchObject({ role: 'leader', term });
    net.tick(3);
    expect(raft.hasLease()).toBe(false);
    // Reads still work, through a ReadIndex round.
    raft.readIndex(ctx(5));
    const rd = raft.ready();
    expect(rd.readStates).toEqual([]);
    expect(rd.messages.some((m) => m.type === 'Heartbeat' && m.context[0] === 5)).toBe(true);
    raft.advance();
  });

  it('a HeartbeatResponse echoing a tick from the future does not extend the lease', () => {
    const net = leaseNetwork(5);
    const leader = net.leaders()[0]!;
    const raft = net.raft(leader);
    const followers = ['A', 'B', 'C'].filter((x) => x !== leader);
    net.isolate(leader);
    while (raft.hasLease()) net.tick(1);
    const term = raft.status().term;
    for (const f of followers) raft.step({ type: 'HeartbeatResponse', from: f, to: leader, term, logTerm: 0, index: 1e9, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0) });
    expect(raft.status().role).toBe('leader');
    expect(raft.hasLease()).toBe(false);
  });

  it('a freshly started node ignores vote requests for its first electionTicks ticks, except a transfer election', () => {
    const make = () =>
      new Raft({ id: 'B', voters: ['A', 'B', 'C'], learners: [], rng: createRng('b'), electionTicks: E, readOnly: 'lease-based', storage: { hardState: { term: 1, vote: 'A', commit: 0 }, entries: [] } });
    const vote = (context: Uint8Array): Message => ({ type: 'RequestVote', from: 'C', to: 'B', term: 2, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context });
    const answer = (r: Raft) => {
      const out: Message[] = [];
      while (r.hasReady()) {
        out.push(...r.ready().messages);
        r.advance();
      }
      return out.filter((m) => m.type === 'RequestVoteResponse').map((m) => m.reject);
    };
    const b = make();
    b.step(vote(new Uint8Array(0)));
    expect(answer(b)).toEqual([]);
    expect(b.status().term).toBe(1);
    for (let i = 0; i < E; i++) b.tick();
    b.step(vote(new Uint8Array(0)));
    expect(answer(b)).toEqual([false]);
    // TimeoutNow's election (context "transfer") bypasses the lease, as with a leader's lease.
    const b2 = make();
    b2.step(vote(new TextEncoder().encode('transfer')));
    expect(answer(b2)).toEqual([false]);
  });

  it('rejects lease-based reads without check-quorum and unknown modes (ValidationError)', () => {
    const base = { id: 'A', voters: ['A'], learners: [], rng: createRng(1) };
    expect(() => new Raft({ ...base, readOnly: 'lease-based', checkQuorum: false })).toThrow(ValidationError);
    expect(() => new Raft({ ...base, readOnly: 'fast' as never })).toThrow(ValidationError);
    expect(new Raft({ ...base, readOnly: 'lease-based' }).hasLease()).toBe(false);
  });
});
