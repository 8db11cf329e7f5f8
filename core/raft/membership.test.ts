import { describe, expect, it } from 'vitest';
import { NotLeaderError, UnavailableError, ValidationError } from '../common/errors';
import { createRng } from '../common/rng';
import { applyConfChange, decodeConfEntry, validateConfChange } from './confchange';
import { Raft } from './raft';
import { Network } from './testing/network';

const ABC = ['A', 'B', 'C'];

function elected(seed = 1, voters = ABC, learners: string[] = []) {
  const net = new Network({ voters, learners, seed, preferred: voters[0]! });
  net.tickUntil(() => net.leaders().length === 1 && net.raft(net.leaders()[0]!).status().commitIndex > 0);
  return { net, leader: net.leaders()[0]! };
}

function vote(from: string, to: string, term: number, index: number, logTerm: number) {
  return { type: 'RequestVote' as const, from, to, term, logTerm, index, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array() };
}

/** Proposes a change on the leader and delivers until quiet. */
function change(net: Network, leader: string, type: 'add-learner' | 'promote' | 'remove', node: string, context?: string): number {
  const i = net.raft(leader).proposeConfChange({ type, node, ...(context ? { context } : {}) });
  net.stabilize();
  return i;
}

describe('single-server membership changes (thesis §4.1)', () => {
  it('adds a learner that catches up, promotes it, and the larger quorum is then required', () => {
    const { net, leader } = elected(1);
    net.propose(leader, 'before');
    net.join('D');
    const idx = change(net, leader, 'add-learner', 'D', '127.0.0.1:7004');
    net.tick(3);
    expect(net.raft(leader).status().commitIndex).toBeGreaterThanOrEqual(idx);
    expect(net.appliedData('D')).toEqual(['before']);
    expect(net.raft('D').status().role).toBe('learner');
    expect(net.raft('D').confState()).toEqual({ voters: ABC, learners: ['D'], context: { D: '127.0.0.1:7004' } });
    change(net, leader, 'promote', 'D');
    net.tick(3);
    for (const id of [...ABC, 'D']) expect(net.raft(id).status().voters).toEqual([...ABC, 'D']);
    expect(net.raft('D').status().role).toBe('follower');
    // 4 voters: quorum 3. With two voters other than the leader down, nothing commits.
    const down = ['A', 'B', 'C', 'D'].filter((x) => x !== leader).slice(0, 2);
    for (const d of down) net.crash(d);
    const before = net.raft(leader).status().commitIndex;
    net.propose(leader, 'stuck');
    net.tick(3);
    expect(net.raft(leader).status().commitIndex).toBe(before);
    net.restart(down[0]!);
    net.tickUntil(() => net.appliedData(leader).includes('stuck'));
  });

  it('rejects a second change while one is uncommitted, and changes that make no sense', () => {
    const { net, leader } = elected(2);
    const raft = net.raft(leader);
    expect(() => raft.proposeConfChange({ type: 'promote', node: 'B' })).toThrow(ValidationError);
    expect(() => raft.proposeConfChange({ type: 'promote', node: 'Z' })).toThrow(/not a learner/);
    expect(() => raft.proposeConfChange({ type: 'add-learner', node: 'B' })).toThrow(/already a voter/);
    expect(() => raft.proposeConfChange({ type: 'remove', node: 'Z' })).toThrow(/not a member/);
    expect(() => raft.proposeConfChange({ type: 'bogus', node: 'Z' } as never)).toThrow(ValidationError);
    expect(() => raft.proposeConfChange({ type: 'add-learner', node: '' })).toThrow(ValidationError);
    expect(() => raft.proposeConfChange({ type: 'add-learner', node: 'a b' })).toThrow(ValidationError);
    const follower = ABC.find((x) => x !== leader)!;
    expect(() => net.raft(follower).proposeConfChange({ type: 'add-learner', node: 'D' })).toThrow(NotLeaderError);
    // Cut the leader off: the first change stays uncommitted, the second is refused.
    net.isolate(leader);
    raft.proposeConfChange({ type: 'add-learner', node: 'D' });
    expect(raft.status().learners).toEqual(['D']); // in effect at once, uncommitted
    expect(() => raft.proposeConfChange({ type: 'add-learner', node: 'E' })).toThrow(UnavailableError);
    expect(() => raft.proposeConfChange({ type: 'add-learner', node: 'E' })).toThrow(/not committed yet/);
  });

  it('writes only the validated fields of a change into the log', () => {
    const { net, leader } = elected(17);
    const index = net.raft(leader).proposeConfChange({ type: 'add-learner', node: 'D', context: 'h:1', junk: 'x'.repeat(1000) } as never);
    const entry = net.node(leader).storage.entries[index - 1] ?? (net.stabilize(), net.node(leader).storage.entries[index - 1])!;
    expect(entry.type).toBe('config');
    expect(decodeConfEntry(entry.data).change).toEqual({ type: 'add-learner', node: 'D', context: 'h:1' });
    expect(new TextDecoder().decode(entry.data)).not.toContain('junk');
  });

  it('never removes the last voter', () => {
    expect(() => applyConfChange({ voters: ['A'], learners: ['L'], context: {} }, { type: 'remove', node: 'A' })).toThrow(/last voter/);
    expect(applyConfChange({ voters: ['A'], learners: ['L'], context: { L: 'x' } }, { type: 'remove', node: 'L' })).toEqual({ voters: ['A'], learners: [], context: {} });
  });

  it('refuses to promote a learner that has not caught up', () => {
    const { net, leader } = elected(3);
    net.join('D');
    net.isolate('D');
    change(net, leader, 'add-learner', 'D');
    net.tick(2);
    for (let i = 0; i < 70; i++) net.propose(leader, `x${i}`);
    expect(() => net.raft(leader).proposeConfChange({ type: 'promote', node: 'D' })).toThrow(/has not caught up/);
    net.heal();
    net.tickUntil(() => net.raft('D').status().commitIndex === net.raft(leader).status().commitIndex);
    change(net, leader, 'promote', 'D');
    expect(net.raft(leader).status().voters).toContain('D');
  });

  it('an uncommitted config entry that is truncated reverts to the previous configuration', () => {
    const { net, leader } = elected(4);
    const old = leader;
    net.isolate(old);
    net.raft(old).proposeConfChange({ type: 'add-learner', node: 'D' });
    expect(net.raft(old).status().learners).toEqual(['D']);
    const rest = ABC.filter((x) => x !== old);
    net.tickUntil(() => rest.some((x) => net.raft(x).status().role === 'leader'));
    const neu = rest.find((x) => net.raft(x).status().role === 'leader')!;
    net.propose(neu, 'after');
    net.heal();
    net.tickUntil(() => net.appliedData(old).includes('after'));
    expect(net.raft(old).status().learners).toEqual([]);
    expect(net.raft(old).confState().voters).toEqual(ABC);
  });

  it('a leader that removes itself steps down once the removal commits; the rest elect a leader and ignore it', () => {
    const { net, leader } = elected(5);
    const idx = change(net, leader, 'remove', leader);
    // Still leading (not counting itself) until the entry commits, then a follower outside the configuration.
    net.tick(2);
    const s = net.raft(leader).status();
    expect(s.role).toBe('follower');
    expect(s.commitIndex).toBeGreaterThanOrEqual(idx);
    expect(s.voters).toEqual(ABC.filter((x) => x !== leader));
    const rest = ABC.filter((x) => x !== leader);
    net.tickUntil(() => net.leaders().length === 1);
    const neu = net.leaders()[0]!;
    expect(rest).toContain(neu);
    net.propose(neu, 'two voters');
    net.tick(2);
    for (const x of rest) expect(net.appliedData(x)).toContain('two voters');
    // The removed node never campaigns again.
    const from = net.delivered.length;
    net.tick(100);
    expect(net.delivered.slice(from).some((m) => m.from === leader && /Vote$/.test(m.type))).toBe(false);
  });

  it('a removed follower receives its removal entry and its commit, then is no longer replicated to', () => {
    const { net, leader } = elected(16);
    const victim = ABC.find((x) => x !== leader)!;
    const idx = change(net, leader, 'remove', victim);
    net.tick(3);
    expect(net.raft(victim).confState().voters).toEqual(ABC.filter((x) => x !== victim));
    expect(net.raft(victim).status().commitIndex).toBeGreaterThanOrEqual(idx);
    const from = net.delivered.length;
    net.propose(leader, 'without the victim');
    net.tick(30);
    expect(net.delivered.slice(from).some((m) => m.to === victim || m.from === victim)).toBe(false);
    expect(net.raft(victim).status().role).toBe('follower');
  });

  it('a removed server that missed its removal cannot disrupt the cluster (thesis §4.2.3)', () => {
    const net = new Network({ voters: ABC, seed: 6, preferred: 'A', preVote: false });
    net.tickUntil(() => net.leaders().length === 1 && net.raft(net.leaders()[0]!).status().commitIndex > 0);
    const leader = net.leaders()[0]!;
    const victim = ABC.find((x) => x !== leader)!;
    net.isolate(victim);
    change(net, leader, 'remove', victim);
    net.tick(2);
    expect(net.raft(leader).status().voters).not.toContain(victim);
    const term = net.raft(leader).status().term;
    net.tick(60); // the isolated victim campaigns and bumps its term
    expect(net.raft(victim).status().term).toBeGreaterThan(term);
    net.heal();
    net.tick(60);
    expect(net.leaders()).toEqual([leader]);
    expect(net.raft(leader).status().term).toBe(term);
  });

  it('re-adds a removed node as a learner and promotes it again', () => {
    const { net, leader } = elected(7);
    const victim = ABC.find((x) => x !== leader)!;
    change(net, leader, 'remove', victim);
    net.tick(2);
    net.propose(leader, 'while out');
    change(net, leader, 'add-learner', victim);
    net.tick(3);
    expect(net.raft(victim).status().role).toBe('learner');
    expect(net.appliedData(victim)).toContain('while out');
    change(net, leader, 'promote', victim);
    net.tick(2);
    expect(net.raft(victim).status().voters).toEqual(expect.arrayContaining(ABC));
  });

  it('derives the configuration from the log after a restart', () => {
    const { net, leader } = elected(8);
    net.join('D');
    change(net, leader, 'add-learner', 'D', 'host:1');
    net.tick(3);
    change(net, leader, 'promote', 'D');
    net.tick(3);
    const f = ABC.find((x) => x !== leader)!;
    net.crash(f);
    net.crash('D');
    net.restart(f);
    net.restart('D');
    expect(net.raft(f).confState()).toEqual({ voters: [...ABC, 'D'], learners: [], context: { D: 'host:1' } });
    expect(net.raft('D').status().role).toBe('follower');
  });

  it('reports a changed configuration in Ready.confState', () => {
    const r = new Raft({ id: 'A', voters: ['A'], learners: [], rng: createRng(1), preferred: true });
    const drain = () => {
      const out = [];
      for (let i = 0; i < 20 && r.hasReady(); i++) {
        const rd = r.ready();
        if (rd.confState) out.push(rd.confState);
        r.advance();
      }
      return out;
    };
    for (let i = 0; i < 12; i++) r.tick();
    drain();
    expect(r.status().role).toBe('leader');
    const idx = r.proposeConfChange({ type: 'add-learner', node: 'B', context: 'h:2' });
    expect(drain()).toEqual([{ voters: ['A'], learners: ['B'], context: { B: 'h:2' } }]);
    expect(r.status().commitIndex).toBe(idx);
    expect(drain()).toEqual([]);
  });

  it('a learner votes when asked (it may have been promoted by an entry it has not received)', () => {
    const d = new Raft({ id: 'D', voters: ABC, learners: ['D'], rng: createRng(1) });
    d.step(vote('A', 'D', 2, 0, 0));
    d.ready();
    d.advance();
    const rd = d.ready();
    expect(rd.messages.map((m) => [m.type, m.to, m.reject])).toEqual([['RequestVoteResponse', 'A', false]]);
    // It still never campaigns.
    for (let i = 0; i < 100; i++) d.tick();
    expect(d.status().role).toBe('learner');
  });

  it('answers a vote request from a non-member only when its log is at least as up to date (thesis §4.1 vs §4.2.3)', () => {
    const b = new Raft({ id: 'B', voters: ['A', 'B'], learners: [], rng: createRng(1), storage: { hardState: { term: 3, vote: '', commit: 0 }, entries: [{ term: 3, index: 1, type: 'normal', data: new Uint8Array() }] } });
    // E (unknown: maybe removed, maybe added in an entry B lacks) with an older log, while B follows
    // leader A: ignored, B's term unchanged.
    b.step({ ...vote('A', 'B', 3, 1, 3), type: 'Heartbeat' });
    b.ready();
    b.advance();
    expect(b.status().leaderId).toBe('A');
    b.step(vote('E', 'B', 9, 0, 0));
    expect(b.status().term).toBe(3);
    expect(b.hasReady()).toBe(false);
    // E with a log at least as up to date: processed (it may be in a newer configuration), once
    // B's leader lease has run out.
    for (let t = 0; t < 40 && b.status().role === 'follower'; t++) b.tick();
    if (b.hasReady()) {
      b.ready();
      b.advance();
    }
    b.step(vote('E', 'B', 9, 1, 3));
    expect(b.status().term).toBe(9);
    b.ready();
    b.advance();
    expect(b.ready().messages.map((m) => [m.type, m.to, m.reject])).toEqual([['RequestVoteResponse', 'E', false]]);
  });

  it('without a leader, takes a stale candidate\'s newer term (non-member or not) but refuses its vote and keeps its own election timeout running (paper Fig. 2)', () => {
    const make = () => new Raft({ id: 'B', voters: ['A', 'B', 'C'], learners: [], electionTicks: 10, preVote: false, rng: createRng(2), storage: { hardState: { term: 3, vote: '', commit: 0 }, entries: [{ term: 3, index: 1, type: 'normal', data: new Uint8Array() }] } });
    // Ticks until B campaigns, with nothing else happening.
    const ticksToCampaign = (r: Raft): number => {
      for (let t = 1; t <= 40; t++) {
        r.tick();
        if (r.status().role !== 'follower') return t;
      }
      return -1;
    };
    const alone = ticksToCampaign(make());
    expect(alone).toBeGreaterThan(0);
    for (const from of ['E', 'C']) {
      const b = make();
      for (let t = 1; t < alone; t++) b.tick();
      b.step(vote(from, 'B', 9, 0, 0)); // an older log than B's
      expect(b.status().term).toBe(9);
      b.ready();
      b.advance();
      const out = b.ready().messages.map((m) => [m.type, m.to, m.reject]);
      expect(out).toEqual([['RequestVoteResponse', from, true]]);
      b.advance();
      // The refusal did not restart B's timeout: it campaigns on the very next tick, at term 10.
      expect(ticksToCampaign(b)).toBe(1);
      expect(b.status().term).toBe(10);
    }
  });

  it('a candidate asked in its own term by a server with a more up-to-date log refuses but restarts its election timeout as a follower', () => {
    const b = new Raft({ id: 'B', voters: ['A', 'B', 'C'], learners: [], electionTicks: 10, preVote: false, rng: createRng(3), storage: { hardState: { term: 3, vote: '', commit: 0 }, entries: [{ term: 3, index: 1, type: 'normal', data: new Uint8Array() }] } });
    let t = 0;
    while (b.status().role !== 'candidate' && t++ < 40) b.tick();
    expect(b.status().role).toBe('candidate');
    const term = b.status().term;
    b.step(vote('C', 'B', term, 5, 3)); // same term, longer log
    expect(b.status().role).toBe('follower');
    expect(b.status().term).toBe(term);
    // Its vote for itself stands: C's request was refused.
    const sent = [];
    while (b.hasReady()) {
      sent.push(...b.ready().messages);
      b.advance();
    }
    expect(sent.filter((m) => m.type === 'RequestVoteResponse').map((m) => [m.to, m.reject])).toEqual([['C', true]]);
  });

  it('validates and decodes config entries defensively', () => {
    expect(() => validateConfChange(null)).toThrow(ValidationError);
    expect(() => validateConfChange({ type: 'add-learner', node: 'x'.repeat(65) })).toThrow(ValidationError);
    expect(() => validateConfChange({ type: 'add-learner', node: 'X', context: 5 })).toThrow(ValidationError);
    expect(() => decodeConfEntry(new TextEncoder().encode('{"change":1}'))).toThrow(/does not decode/);
    expect(() => decodeConfEntry(new Uint8Array([0xff]))).toThrow(/does not decode/);
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  it('hands leadership to an up-to-date voter; proposals are refused meanwhile', () => {
    const { net, leader } = elected(11);
    const to = ABC.find((x) => x !== leader)!;
    const term = net.raft(leader).status().term;
    net.raft(leader).transferLeadership(to);
    expect(net.raft(leader).transferee()).toBe(to);
    expect(() => net.raft(leader).propose(new Uint8Array([1]))).toThrow(UnavailableError);
    expect(() => net.raft(leader).proposeConfChange({ type: 'add-learner', node: 'D' })).toThrow(/transfer/);
    net.stabilize();
    expect(net.leaders()).toEqual([to]);
    expect(net.raft(to).status().term).toBe(term + 1);
    // Check-quorum's leader lease did not stop the election (etcd campaignTransfer), and no pre-vote was used.
    expect(net.delivered.some((m) => m.from === to && m.type === 'PreVote')).toBe(false);
    net.propose(to, 'after transfer');
    net.tick(2);
    for (const x of ABC) expect(net.appliedData(x)).toContain('after transfer');
  });

  it('brings a lagging transferee up to date before TimeoutNow', () => {
    const { net, leader } = elected(12);
    const to = ABC.find((x) => x !== leader)!;
    net.isolate(to);
    for (let i = 0; i < 10; i++) net.propose(leader, `v${i}`);
    net.heal();
    net.raft(leader).transferLeadership(to);
    net.stabilize();
    net.tickUntil(() => net.leaders().length === 1 && net.leaders()[0] === to, 30);
    expect(net.appliedData(to).length).toBeGreaterThanOrEqual(10);
    const timeoutNow = net.delivered.filter((m) => m.type === 'TimeoutNow');
    expect(timeoutNow.length).toBeGreaterThan(0);
    // Sent only once the transferee's log matched the leader's.
    const appendsToTarget = net.delivered.filter((m) => m.to === to && m.type === 'AppendEntries' && m.entries.length > 0);
    expect(net.delivered.indexOf(timeoutNow[0]!)).toBeGreaterThan(net.delivered.indexOf(appendsToTarget[appendsToTarget.length - 1]!));
  });

  it('aborts after an election timeout when the transferee is unreachable; proposals resume', () => {
    const { net, leader } = elected(13);
    const to = ABC.find((x) => x !== leader)!;
    net.isolate(to);
    net.raft(leader).transferLeadership(to);
    expect(() => net.raft(leader).propose(new Uint8Array([1]))).toThrow(UnavailableError);
    net.tick(10);
    expect(net.raft(leader).transferee()).toBeNull();
    expect(net.leaders()).toEqual([leader]);
    net.propose(leader, 'resumed');
    net.tick(2);
    expect(net.appliedData(leader)).toContain('resumed');
  });

  it('rejects transfers to learners, non-members, and from followers', () => {
    const { net, leader } = elected(14, ABC, ['L']);
    expect(() => net.raft(leader).transferLeadership('L')).toThrow(/learner/);
    expect(() => net.raft(leader).transferLeadership('Z')).toThrow(ValidationError);
    const f = ABC.find((x) => x !== leader)!;
    expect(() => net.raft(f).transferLeadership(leader)).toThrow(NotLeaderError);
    net.raft(leader).transferLeadership(leader); // no-op
    expect(net.raft(leader).transferee()).toBeNull();
    // A learner ignores TimeoutNow.
    net.raft('L').step({ type: 'TimeoutNow', from: leader, to: 'L', term: net.raft(leader).status().term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array() });
    net.stabilize();
    expect(net.raft('L').status().role).toBe('learner');
    expect(net.leaders()).toEqual([leader]);
  });

  it('a transfer to a node being removed is aborted', () => {
    const { net, leader } = elected(15);
    const to = ABC.find((x) => x !== leader)!;
    net.isolate(to);
    change(net, leader, 'remove', to);
    net.tick(2);
    expect(() => net.raft(leader).transferLeadership(to)).toThrow(/not a member/);
  });
});

describe('membership changes with snapshots (thesis §5.1: a snapshot carries the configuration as of its index)', () => {
  it('a member added after compaction catches up by InstallSnapshot and adopts the snapshot configuration, with addresses', () => {
    const { net, leader } = elected(21);
    net.propose(leader, 'one');
    net.join('D');
    change(net, leader, 'add-learner', 'D', '10.0.0.4:7000');
    net.tick(3);
    net.propose(leader, 'two');
    net.tick(3);
    // Every voter compacts past the config entry that added D; E joins afterwards.
    for (const id of ABC) net.compact(id);
    expect(net.raft(leader).snapshot()!.learners).toEqual(['D']);
    expect(net.raft(leader).snapshot()!.context).toEqual({ D: '10.0.0.4:7000' });
    net.join('E');
    change(net, leader, 'add-learner', 'E', '10.0.0.5:7000');
    net.tick(5);
    expect(net.node('E').installed.length).toBe(1);
    expect(net.appliedData('E')).toEqual(['one', 'two']);
    // E's log holds E's own config entry only after the snapshot; before it, the snapshot's configuration counted.
    expect(net.raft('E').confState()).toEqual({ voters: ABC, learners: ['D', 'E'], context: { D: '10.0.0.4:7000', E: '10.0.0.5:7000' } });
  });

  it('a follower whose log lacks the change adopts the configuration of the installed snapshot', () => {
    const { net, leader } = elected(22);
    const other = ABC.filter((x) => x !== leader);
    net.crash(other[1]!);
    net.join('D');
    change(net, leader, 'add-learner', 'D', 'd:1');
    net.tick(3);
    net.propose(leader, 'x');
    net.tick(3);
    net.compact(leader);
    net.restart(other[1]!);
    net.tick(5);
    expect(net.node(other[1]!).installed.length).toBe(1);
    expect(net.raft(other[1]!).confState()).toEqual({ voters: ABC, learners: ['D'], context: { D: 'd:1' } });
  });

  it('a restart from a snapshot that covers the config entries keeps the configuration and addresses', () => {
    const { net, leader } = elected(23);
    net.join('D');
    change(net, leader, 'add-learner', 'D', 'd:1');
    net.tick(3);
    change(net, leader, 'promote', 'D');
    net.tick(3);
    net.propose(leader, 'y');
    net.tick(3);
    const follower = ABC.find((x) => x !== leader)!;
    net.compact(follower);
    expect(net.node(follower).storage.entries.some((e) => e.type === 'config')).toBe(false);
    net.crash(follower);
    net.restart(follower);
    expect(net.raft(follower).confState()).toEqual({ voters: [...ABC, 'D'], learners: [], context: { D: 'd:1' } });
  });

  it('a snapshot records the configuration at its index, not a later uncommitted change', () => {
    const { net, leader } = elected(24);
    net.propose(leader, 'z');
    net.tick(3);
    const applied = net.raft(leader).status().appliedIndex;
    // Cut off, the leader appends a change that cannot commit; its snapshot must not contain it.
    net.isolate(leader);
    net.join('D');
    net.raft(leader).proposeConfChange({ type: 'add-learner', node: 'D', context: 'd:1' });
    net.stabilize();
    expect(net.raft(leader).confState().learners).toEqual(['D']);
    const snap = net.raft(leader).compact(applied, new TextEncoder().encode('[]'))!;
    expect(snap.index).toBe(applied);
    expect(snap.learners).toEqual([]);
    expect(snap.context).toEqual({});
  });
});
