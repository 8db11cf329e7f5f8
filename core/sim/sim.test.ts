import { describe, expect, it } from 'vitest';
import type { RaftLog } from '../raft/log';
import type { Entry } from '../raft/types';
import { checkLinearizable, inspectLog, kvModel, runSimulation, sweepOptions, type KvOperation, type Simulation } from './index';

/** Seeds run in CI (`npm test`); `npm run sim -- --seeds 10000` runs more. Voters cycle 3/5/7, learners 0/1/2. */
const SEEDS = 210;

describe('deterministic simulator', () => {
  it(`${SEEDS} seeds: Raft safety after every step, liveness after healing, linearizable KV history`, () => {
    const failures: string[] = [];
    let ops = 0;
    const shapes = new Set<string>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const opts = sweepOptions(seed);
      shapes.add(`${opts.voters}+${opts.learners}`);
      const r = runSimulation(opts);
      ops += r.ops;
      if (!r.ok) failures.push(`${r.failure!.message} (tick ${r.failure!.tick}, step ${r.failure!.step})\n${r.trace.join('\n')}`);
    }
    expect(failures).toEqual([]);
    expect(shapes.size).toBe(9);
    expect(ops).toBeGreaterThan(SEEDS * 20);
  });

  it('lease-based reads: seeds with transfers that deafen the old leader stay linearizable, and leaders answer reads on their lease', () => {
    let leaseReads = 0;
    let deafened = 0;
    const failures: string[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const r = runSimulation(sweepOptions(seed, { readOnly: 'lease-based', checkQuorum: true }));
      leaseReads += r.leaseReads;
      deafened += r.trace.filter((l) => l.includes('TimeoutNow reaches')).length;
      if (!r.ok) failures.push(r.failure!.message);
    }
    expect(failures).toEqual([]);
    expect(leaseReads).toBeGreaterThan(200);
    expect(deafened).toBeGreaterThan(5);
  });

  it('also passes with unknown outcomes kept as a client alone sees them (no narrowing from the log)', () => {
    let unknownWrites = 0;
    for (let seed = 1000; seed < 1020; seed++) {
      const r = runSimulation(sweepOptions(seed, { resolveUnknown: false, faultRate: 0.1 }));
      expect(r.failure?.message).toBeUndefined();
      unknownWrites += r.history.filter((op) => op.input.kind !== 'get' && op.returnTick === null).length;
    }
    expect(unknownWrites).toBeGreaterThan(0);
  });

  it('is deterministic: the same seed gives the identical full trace and history twice', () => {
    const a = runSimulation(sweepOptions(17, { fullTrace: true }));
    const b = runSimulation(sweepOptions(17, { fullTrace: true }));
    expect(a.ok).toBe(true);
    expect(a.trace.length).toBeGreaterThan(1000);
    expect(b.trace).toEqual(a.trace);
    expect(b.history).toEqual(a.history);
    const c = runSimulation(sweepOptions(18, { fullTrace: true }));
    expect(c.trace).not.toEqual(a.trace);
  });

  it('the safety check catches a deliberately corrupted log and reports the seed', () => {
    const corrupt = (sim: Simulation) => {
      if (sim.now !== 120) return;
      const follower = sim.voters.find((id) => sim.raft(id)?.status().role === 'follower')!;
      const log = inspectLog(sim.raft(follower)!) as RaftLog;
      const entries = (log as unknown as { entries: Entry[] }).entries;
      const i = entries.length - 1;
      entries[i] = { ...entries[i]!, data: new TextEncoder().encode('{"op":"put","key":"k0","value":"corrupt"}') };
    };
    const r = runSimulation({ seed: 3, faultRate: 0, workloadTicks: 150, afterTick: corrupt });
    expect(r.ok).toBe(false);
    expect(r.failure!.name).toBe('SafetyViolation');
    expect(r.failure!.message).toMatch(/^seed 3: (log-matching|committed-agreement|state-machine-safety)/);
  });

  it('the linearizability check rejects a deliberately broken history from a real run', () => {
    const r = runSimulation(sweepOptions(5));
    expect(r.ok).toBe(true);
    const h = r.history;
    expect(checkLinearizable(kvModel, h).result).toBe('ok');
    // A stale read: a put p1 completed, a later put p2 (invoked after p1 returned) completed,
    // then a read issued after everything returned the value of p1.
    const done = h.filter((op) => op.ret !== Infinity);
    const puts = done.filter((op) => op.input.kind === 'put');
    let stale: KvOperation | undefined;
    const end = Math.max(...done.map((op) => op.ret)) + 1;
    for (const p1 of puts) {
      const p2 = puts.find((p) => p.input.key === p1.input.key && p.call > p1.ret);
      if (p2 && p1.input.kind === 'put') {
        stale = { client: 99, input: { kind: 'get', key: p1.input.key }, output: { value: p1.input.value }, call: end, ret: end + 1 };
        break;
      }
    }
    expect(stale).toBeDefined();
    expect(checkLinearizable(kvModel, [...h, stale!]).result).toBe('illegal');
    // A read of a value nobody wrote.
    const read = done.find((op) => op.input.kind === 'get')!;
    const forged = h.map((op) => (op === read ? { ...op, output: { value: 'never-written' } } : op));
    expect(checkLinearizable(kvModel, forged).result).toBe('illegal');
  });

  it('membership changes and log compaction together: new and re-added members catch up by InstallSnapshot, which carries the configuration', () => {
    const failures: string[] = [];
    let confEntries = 0;
    let spareInstalls = 0;
    let compactions = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = runSimulation(sweepOptions(seed, { membershipRate: 0.4, snapshotEvery: 3, snapshotCatchUpEntries: seed % 2 === 0 ? 0 : 2, fullTrace: true }));
      if (!r.ok) failures.push(r.failure!.message);
      confEntries += r.membership.confEntries;
      spareInstalls += r.trace.filter((l) => / s\d installed snapshot/.test(l)).length;
      compactions += r.trace.filter((l) => l.includes(' compacted at ')).length;
    }
    expect(failures).toEqual([]);
    expect(confEntries).toBeGreaterThan(30);
    expect(compactions).toBeGreaterThan(100);
    // Spares start with an empty log after the leader compacted: they get the state as a snapshot.
    expect(spareInstalls).toBeGreaterThan(5);
  });

  it('log compaction under faults: a follower down past compaction catches up by InstallSnapshot, restarts recover from snapshot + log', () => {
    let follower = '';
    let firstIndexAfterRestart = 0;
    const script = (sim: Simulation) => {
      if (sim.now === 30) {
        follower = sim.voters.find((id) => sim.raft(id)?.status().role === 'follower')!;
        sim.inject({ kind: 'crash', node: follower, restartAt: 200 });
      }
      if (sim.now === 150) for (const id of sim.voters) if (id !== follower) sim.inject({ kind: 'snapshot', node: id });
      if (sim.now === 260) sim.inject({ kind: 'crash', node: follower, restartAt: 262 });
      if (sim.now === 262) firstIndexAfterRestart = sim.raft(follower)!.firstIndex();
    };
    const r = runSimulation({ seed: 11, faultRate: 0, workloadTicks: 300, snapshotEvery: 0, fullTrace: true, afterTick: script });
    expect(r.failure?.message).toBeUndefined();
    const installs = r.trace.filter((l) => l.includes(`${follower} installed snapshot`));
    expect(installs.length).toBeGreaterThanOrEqual(1);
    // After the second restart the follower starts from its durable snapshot, not from index 1.
    expect(firstIndexAfterRestart).toBeGreaterThan(1);
    expect(r.ops).toBeGreaterThan(50);
  });

  it('aggressive compaction (every 2 entries, no catch-up window) with a high fault rate stays safe and linearizable', () => {
    const failures: string[] = [];
    let installs = 0;
    for (let seed = 500; seed < 530; seed++) {
      const r = runSimulation(sweepOptions(seed, { snapshotEvery: 2, snapshotCatchUpEntries: 0, faultRate: 0.1, fullTrace: true }));
      if (!r.ok) failures.push(r.failure!.message);
      installs += r.trace.filter((l) => l.includes('installed snapshot')).length;
    }
    expect(failures).toEqual([]);
    expect(installs).toBeGreaterThan(30);
  });
});

describe('membership changes and leadership transfers in the simulator', () => {
  it('adds, promotes, removes and re-adds members and transfers leadership during faults, safely', () => {
    let confEntries = 0;
    let transfersDone = 0;
    const kinds = new Set<string>();
    let readded = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = runSimulation(sweepOptions(seed, { membershipRate: 0.4 }));
      expect(r.failure?.message).toBeUndefined();
      confEntries += r.membership.confEntries;
      transfersDone += r.membership.transfersDone;
      const removed = new Set<string>();
      for (const line of r.trace) {
        const m = / membership (\S+) (\S+)$/.exec(line);
        if (!m) continue;
        kinds.add(m[1]!);
        if (m[1] === 'remove') removed.add(m[2]!);
        if (m[1] === 'add-learner' && removed.has(m[2]!)) readded++;
      }
    }
    expect([...kinds].sort()).toEqual(['add-learner', 'promote', 'remove']);
    expect(confEntries).toBeGreaterThan(40);
    expect(readded).toBeGreaterThan(3);
    expect(transfersDone).toBeGreaterThan(5);
  });

  it('the commit-quorum check uses the configuration and catches a commit not held by a majority', () => {
    // Corrupt the followers' "disks" (durable logs) after the leader has been elected: the
    // next commit is then held durably only by the leader, which the check must report.
    const wipe = (sim: Simulation) => {
      if (sim.now < 60) return;
      for (const id of sim.voters) {
        if (sim.raft(id)?.status().role === 'leader') continue;
        const node = (sim.nodes as Map<string, { durable: { entries: Entry[] } }>).get(id)!;
        node.durable.entries.length = Math.min(node.durable.entries.length, 1);
      }
    };
    const r = runSimulation({ seed: 4, faultRate: 0, workloadTicks: 150, afterTick: wipe });
    expect(r.ok).toBe(false);
    expect(r.failure!.message).toMatch(/^seed 4: commit-quorum: leader n\d of term \d+ committed index \d+ held durably only by n\d of voters n1,n2,n3/);
  });
});
