/**
 * Property test against a naive twin (the etcd `quorum/quick_test.go` idea): single-server changes
 * (thesis §4.1) keep every majority of consecutive configurations overlapping, which is why no
 * joint consensus is needed. The twin enumerates every majority of both voter sets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyConfChange, type ConfChange, type ConfState } from './confchange';

/** Every subset of `xs` with more than half of its members (naive: enumerate all subsets). */
function majorities(xs: string[]): string[][] {
  const out: string[][] = [];
  for (let mask = 0; mask < 1 << xs.length; mask++) {
    const set = xs.filter((_, i) => mask & (1 << i));
    if (set.length > xs.length / 2) out.push(set);
  }
  return out;
}

const IDS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'];
const change = fc.record({ type: fc.constantFrom<ConfChange['type']>('add-learner', 'promote', 'remove'), node: fc.constantFrom(...IDS) });

describe('single-server configuration changes', () => {
  it('every majority of the old voters meets every majority of the new ones, and the voter set never empties', () => {
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 40 }), (changes) => {
        let conf: ConfState = { voters: ['A', 'B', 'C'], learners: [], context: {} };
        for (const c of changes) {
          let next: ConfState;
          try {
            next = applyConfChange(conf, c);
          } catch {
            continue; // refused (already a member, not a learner, last voter…): the configuration stays
          }
          expect(next.voters.length).toBeGreaterThan(0);
          expect(next.voters.filter((v) => next.learners.includes(v))).toEqual([]);
          for (const a of majorities(conf.voters)) for (const b of majorities(next.voters)) expect(a.some((x) => b.includes(x))).toBe(true);
          conf = next;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a two-server jump (what single-server changes rule out) can split majorities: the twin notices', () => {
    expect(majorities(['A', 'B', 'C']).some((a) => majorities(['A', 'B', 'C', 'D', 'E']).some((b) => !a.some((x) => b.includes(x))))).toBe(true);
  });
});
