import { describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types';
import { encodeConfEntry } from '../raft/confchange';
import { SafetyViolation } from './errors';
import { SafetyChecker, type LogView, type NodeView } from './safety';

const bytes = (s: string) => new TextEncoder().encode(s);
function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data: bytes(data) };
}
function logOf(entries: Entry[]): LogView {
  return {
    firstIndex: () => 1,
    lastIndex: () => entries.length,
    term: (i) => (i === 0 ? 0 : entries[i - 1]?.term),
    slice: (lo, hi) => entries.slice(lo - 1, Math.min(hi, entries.length)),
  };
}
function node(id: string, role: NodeView['role'], term: number, commitIndex: number, entries: Entry[]): NodeView {
  return { id, role, term, commitIndex, log: logOf(entries) };
}
function violation(f: () => void): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(SafetyViolation);
    return (err as SafetyViolation).property;
  }
  throw new Error('no violation');
}

describe('SafetyChecker', () => {
  const common = [entry(1, 1), entry(2, 1), entry(3, 2)];

  it('accepts consistent nodes', () => {
    const c = new SafetyChecker();
    c.checkNode(node('A', 'leader', 2, 3, common));
    c.checkNode(node('B', 'follower', 2, 2, common.slice(0, 2)));
    c.checkNode(node('C', 'follower', 2, 0, [...common, entry(4, 2)]));
    for (const e of common) c.onApply('A', e);
    c.onApply('B', common[0]!);
    expect(c.commitIndex).toBe(3);
  });

  it('election safety: two leaders in one term', () => {
    const c = new SafetyChecker();
    c.checkNode(node('A', 'leader', 2, 0, common));
    expect(violation(() => c.checkNode(node('B', 'leader', 2, 0, common)))).toBe('election-safety');
  });

  it('log matching: same index and term, different data (a corrupted log)', () => {
    const c = new SafetyChecker();
    c.checkNode(node('A', 'follower', 2, 0, common));
    expect(violation(() => c.checkNode(node('B', 'follower', 2, 0, [entry(1, 1), entry(2, 1, 'corrupt'), entry(3, 2)])))).toBe('log-matching');
  });

  it('log matching: same index and term after a different previous term', () => {
    const c = new SafetyChecker();
    c.checkNode(node('A', 'follower', 2, 0, common));
    expect(violation(() => c.checkNode(node('B', 'follower', 2, 0, [entry(1, 1), entry(2, 2), entry(3, 2, 'e3')])))).toBe('log-matching');
  });

  it('leader completeness: a later leader lacks a committed entry', () => {
    const c = new SafetyChecker();
    c.checkNode(node('A', 'leader', 2, 3, common));
    expect(violation(() => c.checkNode(node('B', 'leader', 3, 2, [entry(1, 1), entry(2, 1)])))).toBe('leader-completeness');
  });

  it('state machine safety: different entries applied at one index', () => {
    const c = new SafetyChecker();
    c.onApply('A', entry(1, 1));
    expect(violation(() => c.onApply('B', entry(1, 2)))).toBe('state-machine-safety');
    expect(violation(() => c.onApply('A', entry(3, 1)))).toBe('apply-order');
  });
});

describe('SafetyChecker with snapshots', () => {
  const common = [entry(1, 1), entry(2, 1), entry(3, 2)];
  const snap = (index: number, term: number, data = 'state') => ({ index, term, voters: ['A'], learners: [], data: bytes(data) });

  it('accepts snapshots matching what was applied and moves the apply point of an installing node', () => {
    const c = new SafetyChecker();
    for (const e of common) c.onApply('A', e);
    c.onSnapshot('A', snap(3, 2), 'made');
    c.onSnapshot('B', snap(3, 2), 'installed');
    c.onApply('B', entry(4, 2));
    c.onRestart('C', snap(3, 2));
    c.onApply('C', entry(4, 2));
  });

  it('rejects a snapshot with the wrong term, an unapplied index, or a diverging state', () => {
    const c = new SafetyChecker();
    for (const e of common) c.onApply('A', e);
    for (const e of common) c.onApply('B', e);
    expect(violation(() => c.onSnapshot('B', snap(3, 1), 'installed'))).toBe('snapshot');
    expect(violation(() => c.onSnapshot('B', snap(5, 2), 'installed'))).toBe('snapshot');
    c.onSnapshot('A', snap(3, 2, 'x'), 'made');
    expect(violation(() => c.onSnapshot('B', snap(3, 2, 'y'), 'made'))).toBe('state-machine-safety');
    expect(violation(() => c.onSnapshot('B', snap(2, 1), 'installed'))).toBe('apply-order');
  });

  it('checks only the entries a compacted log still holds', () => {
    const c = new SafetyChecker();
    c.checkNode(node('A', 'leader', 2, 3, common));
    const tail = [entry(3, 2), entry(4, 2)];
    const compacted: LogView = {
      firstIndex: () => 3,
      lastIndex: () => 4,
      term: (i) => (i === 2 ? 1 : tail.find((e) => e.index === i)?.term),
      slice: (lo, hi) => tail.filter((e) => e.index >= lo && e.index <= hi),
    };
    c.checkNode({ id: 'B', role: 'leader', term: 3, commitIndex: 4, log: compacted }, true);
    expect(c.commitIndex).toBe(4);
    const wrong: LogView = { ...compacted, slice: (lo, hi) => [entry(3, 2, 'other'), entry(4, 2)].filter((e) => e.index >= lo && e.index <= hi) };
    expect(violation(() => c.checkNode({ id: 'C', role: 'follower', term: 3, commitIndex: 4, log: wrong }, true))).toBe('log-matching');
  });
});

describe('SafetyChecker configuration check', () => {
  const conf = (index: number, term: number, voters: string[], learners: string[]): Entry => ({
    index,
    term,
    type: 'config',
    data: encodeConfEntry({ change: { type: 'add-learner', node: 'D' }, state: { voters, learners, context: {} } }),
  });
  const log = [entry(1, 1), conf(2, 1, ['A', 'B', 'C'], ['D']), entry(3, 1)];

  it('accepts the committed configuration, a pending change, and a joining node booted as a learner', () => {
    const c = new SafetyChecker({ initialConf: { voters: ['A', 'B', 'C'], learners: [] } });
    c.checkNode({ ...node('A', 'leader', 1, 3, log), voters: ['A', 'B', 'C'], learners: ['D'] });
    // Commit 1 (before the change): the initial configuration; E booted itself as a learner.
    c.checkNode({ ...node('E', 'learner', 1, 1, log.slice(0, 1)), voters: ['A', 'B', 'C'], learners: ['E'] });
    // The change is in the log beyond the commit index: not checked yet.
    c.checkNode({ ...node('B', 'follower', 1, 1, log), voters: ['A', 'B', 'C'], learners: ['D'] });
  });

  it('reports a node that uses another configuration than the committed one (e.g. a snapshot whose configuration was not applied)', () => {
    const c = new SafetyChecker({ initialConf: { voters: ['A', 'B', 'C'], learners: [] } });
    c.checkNode({ ...node('A', 'leader', 1, 3, log), voters: ['A', 'B', 'C'], learners: ['D'] });
    expect(violation(() => c.checkNode({ ...node('C', 'follower', 1, 3, log), voters: ['A', 'B', 'C'], learners: [] }))).toBe('configuration');
  });
});
