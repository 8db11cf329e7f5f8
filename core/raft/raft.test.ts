import { describe, expect, it } from 'vitest';
import { NotLeaderError } from '../common/errors';
import { createRng } from '../common/rng';
import { Raft } from './raft';
import { Network } from './testing/network';

function electedNetwork(seed: string | number = 1, learners: string[] = []) {
  const net = new Network({ voters: ['A', 'B', 'C'], learners, seed, preferred: 'A' });
  net.tickUntil(() => net.leaders().length === 1 && net.node(net.leaders()[0]!).raft!.status().commitIndex > 0);
  return net;
}

/** Asserts at most one leader per term across everything ever observed. */
function leadersPerTerm(net: Network, seen: Map<number, Set<string>>) {
  for (const n of net.nodes.values()) {
    const s = n.raft?.status();
    if (s?.role === 'leader') {
      const set = seen.get(s.term) ?? new Set();
      set.add(s.id);
      seen.set(s.term, set);
    }
  }
}

describe('Raft (pure) in a simulated network', () => {
  it('elects exactly one leader per term, across seeds', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const net = new Network({ voters: ['A', 'B', 'C', 'D', 'E'], seed });
      const seen = new Map<number, Set<string>>();
      for (let i = 0; i < 200; i++) {
        net.tick();
        leadersPerTerm(net, seen);
        if (i === 100) net.drop(0.2);
      }
      expect(seen.size).toBeGreaterThan(0);
      for (const [, ids] of seen) expect(ids.size).toBe(1);
    }
  });

  it('the preferred node wins the first election', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const net = new Network({ voters: ['A', 'B', 'C'], seed, preferred: 'B' });
      net.tickUntil(() => net.leaders().length === 1);
      expect(net.leaders()).toEqual(['B']);
    }
  });

  it('replicates and commits entries on all nodes; followers reject proposals', () => {
    const net = electedNetwork();
    const leader = net.leaders()[0]!;
    const follower = ['A', 'B', 'C'].find((x) => x !== leader)!;
    expect(() => net.raft(follower).propose(new Uint8Array([1]))).toThrow(NotLeaderError);
    for (let i = 0; i < 5; i++) net.propose(leader, `x${i}`);
    net.tick(3);
    for (const id of ['A', 'B', 'C']) expect(net.appliedData(id)).toEqual(['x0', 'x1', 'x2', 'x3', 'x4']);
    const idx = net.raft(leader).status().commitIndex;
    for (const id of ['A', 'B', 'C']) expect(net.raft(id).status().commitIndex).toBe(idx);
  });

  it('isolated old leader steps down (check-quorum), majority elects and commits, old uncommitted entries are overwritten after heal', () => {
    const net = electedNetwork(3);
    const old = net.leaders()[0]!;
    const oldTerm = net.raft(old).status().term;
    net.propose(old, 'committed');
    net.tick(2);
    net.isolate(old);
    net.propose(old, 'lost-1');
    net.propose(old, 'lost-2');
    net.tickUntil(() => net.raft(old).status().role !== 'leader');
    const rest = ['A', 'B', 'C'].filter((x) => x !== old);
    net.tickUntil(() => rest.some((x) => net.raft(x).status().role === 'leader'));
    const neu = rest.find((x) => net.raft(x).status().role === 'leader')!;
    expect(net.raft(neu).status().term).toBeGreaterThan(oldTerm);
    net.propose(neu, 'new-1');
    net.tick(3);
    for (const x of rest) expect(net.appliedData(x)).toEqual(['committed', 'new-1']);
    net.heal();
    net.tickUntil(() => net.appliedData(old).length === 2 && net.raft(old).status().lastIndex === net.raft(neu).status().lastIndex);
    expect(net.appliedData(old)).toEqual(['committed', 'new-1']);
    const dec = new TextDecoder();
    expect(net.node(old).storage.entries.map((e) => dec.decode(e.data)).filter(Boolean)).toEqual(['committed', 'new-1']);
  });

  it('pre-vote: an isolated follower rejoining does not bump the leader term', () => {
    const net = electedNetwork(5);
    const leader = net.leaders()[0]!;
    const term = net.raft(leader).status().term;
    const f = ['A', 'B', 'C'].find((x) => x !== leader)!;
    net.isolate(f);
    net.tick(100);
    expect(net.raft(f).status().term).toBe(term); // pre-votes never bump the term
    net.heal();
    net.tick(30);
    expect(net.leaders()).toEqual([leader]);
    expect(net.raft(leader).status().term).toBe(term);
    expect(net.raft(f).status().leaderId).toBe(leader);
  });

  it('without pre-vote the same scenario disrupts the leader (control)', () => {
    const net = new Network({ voters: ['A', 'B', 'C'], seed: 5, preferred: 'A', preVote: false, checkQuorum: false });
    net.tickUntil(() => net.leaders().length === 1);
    const leader = net.leaders()[0]!;
    const term = net.raft(leader).status().term;
    const f = ['A', 'B', 'C'].find((x) => x !== leader)!;
    net.isolate(f);
    net.tick(100);
    expect(net.raft(f).status().term).toBeGreaterThan(term);
    net.heal();
    net.tick(50);
    expect(Math.max(...['A', 'B', 'C'].map((x) => net.raft(x).status().term))).toBeGreaterThan(term);
  });

  it('a learner receives entries but never votes or campaigns', () => {
    const net = electedNetwork(7, ['L']);
    const leader = net.leaders()[0]!;
    net.propose(leader, 'hello');
    net.tick(3);
    expect(net.appliedData('L')).toEqual(['hello']);
    expect(net.raft('L').status().role).toBe('learner');
    // Isolate the learner for a long time: it never campaigns.
    net.isolate('L');
    net.tick(200);
    expect(net.raft('L').status().role).toBe('learner');
    expect(net.delivered.some((m) => m.from === 'L' && /Vote/.test(m.type) && m.type !== 'PreVoteResponse' && m.type !== 'RequestVoteResponse')).toBe(false);
    expect(net.delivered.some((m) => m.to === 'L' && (m.type === 'RequestVote' || m.type === 'PreVote'))).toBe(false);
    // With two voters down, voters + learner cannot elect: the learner does not count.
    net.heal();
    const others = ['A', 'B', 'C'].filter((x) => x !== leader);
    net.crash(others[0]!);
    net.crash(leader);
    net.tick(200);
    expect(net.leaders()).toEqual([]);
  });

  it('a restarted node rebuilds from persisted state and catches up', () => {
    const net = electedNetwork(9);
    const leader = net.leaders()[0]!;
    const f = ['A', 'B', 'C'].find((x) => x !== leader)!;
    net.propose(leader, 'a');
    net.tick(2);
    net.crash(f);
    net.propose(leader, 'b');
    net.propose(leader, 'c');
    net.tick(2);
    const before = net.node(f).storage.hardState.term;
    net.restart(f);
    expect(net.raft(f).status().term).toBe(before);
    net.tickUntil(() => net.appliedData(f).length === 3);
    expect(net.appliedData(f)).toEqual(['a', 'b', 'c']);
  });

  it('holds replies to votes until advance() (persist before respond, paper Fig. 2)', () => {
    const r = new Raft({ id: 'B', voters: ['A', 'B', 'C'], learners: [], rng: createRng(1) });
    r.step({ type: 'RequestVote', from: 'A', to: 'B', term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array() });
    const rd = r.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'A', commit: 0 });
    expect(rd.messages).toEqual([]);
    r.advance();
    const rd2 = r.ready();
    expect(rd2.messages.map((m) => [m.type, m.to, m.reject])).toEqual([['RequestVoteResponse', 'A', false]]);
    r.advance();
  });

  it('ReadIndex confirms leadership with a quorum before releasing a read state', () => {
    const net = electedNetwork(11);
    const leader = net.leaders()[0]!;
    net.propose(leader, 'v');
    net.tick(2);
    const raft = net.raft(leader);
    raft.readIndex(new Uint8Array([7]));
    // Drain manually to capture readStates.
    const states: number[] = [];
    for (let i = 0; i < 20; i++) {
      for (const node of net.nodes.values()) {
        const r = node.raft!;
        while (r.hasReady()) {
          const rd = r.ready();
          if (node.id === leader) states.push(...rd.readStates.map((s) => s.index));
          if (rd.hardState) node.storage.hardState = rd.hardState;
          for (const m of rd.messages) net.nodes.get(m.to)!.raft!.step(m);
          r.advance();
        }
      }
    }
    expect(states).toEqual([raft.status().commitIndex]);
  });
});

describe('Raft safety under random faults', () => {
  it('never commits different entries at the same index and elects at most one leader per term', () => {
    const ids = ['A', 'B', 'C', 'D', 'E'];
    for (let seed = 1; seed <= 15; seed++) {
      const net = new Network({ voters: ids, learners: ['L'], seed });
      const rng = createRng(`faults/${seed}`);
      const seen = new Map<number, Set<string>>();
      let n = 0;
      for (let step = 0; step < 400; step++) {
        const r = rng.next();
        if (r < 0.03) {
          net.heal();
          const a = ids.filter(() => rng.next() < 0.5);
          net.partition(a, ids.filter((x) => !a.includes(x)).concat('L'));
        } else if (r < 0.06) net.heal();
        else if (r < 0.08) net.drop(0.3);
        else if (r < 0.1) {
          const victim = ids[rng.int(0, ids.length)]!;
          if (net.node(victim).raft) net.crash(victim);
          else net.restart(victim);
        }
        for (const l of net.leaders()) {
          try {
            net.propose(l, `v${n++}`);
          } catch {
            /* lost leadership meanwhile */
          }
        }
        net.tick();
        leadersPerTerm(net, seen);
      }
      for (const id of ids) if (!net.node(id).raft) net.restart(id);
      net.heal();
      net.tick(100);
      for (const [, s] of seen) expect(s.size).toBe(1);
      // State machine safety (paper §5.4.3): applied sequences are prefixes of one another.
      const seqs = [...ids, 'L'].map((id) => net.node(id).storage.entries.slice(0, net.raft(id).status().commitIndex).map((e) => `${e.term}/${e.index}`));
      const longest = seqs.reduce((a, b) => (b.length > a.length ? b : a));
      expect(longest.length).toBeGreaterThan(20);
      for (const s of seqs) expect(s).toEqual(longest.slice(0, s.length));
      // After healing everything converges on one leader and a common commit index.
      expect(net.leaders().length).toBe(1);
      expect(new Set([...ids, 'L'].map((id) => net.raft(id).status().commitIndex)).size).toBe(1);
    }
  });
});
