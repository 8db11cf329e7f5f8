import { describe, expect, it } from 'vitest';
import { planPath } from './planner';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

describe('planPath', () => {
  it('records a match as synced', () => {
    expect(planPath({ local: A, synced: null, index: { sha256: A, deleted: false, modRevision: 3 }, lockedByOther: false })).toEqual({ kind: 'synced' });
    expect(planPath({ local: null, synced: null, index: { sha256: A, deleted: true, modRevision: 3 }, lockedByOther: false })).toEqual({ kind: 'synced' });
  });
  it('commits new and changed local files', () => {
    expect(planPath({ local: A, synced: null, index: null, lockedByOther: false })).toEqual({ kind: 'commit' });
    expect(planPath({ local: B, synced: { sha256: A, modRevision: 3 }, index: { sha256: A, deleted: false, modRevision: 3 }, lockedByOther: false })).toEqual({ kind: 'commit' });
    expect(planPath({ local: null, synced: { sha256: A, modRevision: 3 }, index: { sha256: A, deleted: false, modRevision: 3 }, lockedByOther: false })).toEqual({ kind: 'commit' });
  });
  it('applies remote changes to an unchanged local file', () => {
    expect(planPath({ local: A, synced: { sha256: A, modRevision: 3 }, index: { sha256: B, deleted: false, modRevision: 5 }, lockedByOther: false })).toEqual({ kind: 'apply' });
    expect(planPath({ local: null, synced: null, index: { sha256: B, deleted: false, modRevision: 5 }, lockedByOther: true })).toEqual({ kind: 'apply' });
    expect(planPath({ local: A, synced: { sha256: A, modRevision: 3 }, index: { sha256: A, deleted: true, modRevision: 5 }, lockedByOther: false })).toEqual({ kind: 'apply' });
  });
  it('makes a conflict copy when both sides changed', () => {
    expect(planPath({ local: C, synced: { sha256: A, modRevision: 3 }, index: { sha256: B, deleted: false, modRevision: 5 }, lockedByOther: false })).toEqual({ kind: 'conflict' });
    expect(planPath({ local: C, synced: null, index: { sha256: B, deleted: false, modRevision: 5 }, lockedByOther: false })).toEqual({ kind: 'conflict' });
  });
  it('lets an edit beat a concurrent delete, and a remote change beat a local delete', () => {
    expect(planPath({ local: C, synced: { sha256: A, modRevision: 3 }, index: { sha256: A, deleted: true, modRevision: 5 }, lockedByOther: false })).toEqual({ kind: 'commit' });
    expect(planPath({ local: null, synced: { sha256: A, modRevision: 3 }, index: { sha256: B, deleted: false, modRevision: 5 }, lockedByOther: false })).toEqual({ kind: 'apply' });
  });
  it('refuses local edits and deletes of a path locked by another node', () => {
    expect(planPath({ local: C, synced: { sha256: A, modRevision: 3 }, index: { sha256: A, deleted: false, modRevision: 3 }, lockedByOther: true })).toEqual({ kind: 'refuse', copy: true });
    expect(planPath({ local: null, synced: { sha256: A, modRevision: 3 }, index: { sha256: A, deleted: false, modRevision: 3 }, lockedByOther: true })).toEqual({ kind: 'refuse', copy: false });
  });
});
