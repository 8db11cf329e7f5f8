import { describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types';
import { SafetyViolation } from './errors';
import { SafetyChecker, type LogView, type NodeView } from './safety';

const bytes = (s: string) => new TextEncoder().encode(s);
function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data: bytes(data) };
}
function logOf(entries: Entry[]): LogView {
  return {
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
