import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RoutingError } from '../common/errors';
import { arrive, newLeg, nextHop } from './router';
import { parseClusterConfig } from '../config/schema';
import demo from '../../resources/clusters/two-hosts-local.json';

const topo = parseClusterConfig(demo);
const all = () => true;

/** Naive twin: enumerate every simple path and take the shortest (first in neighbor order). */
function naiveShortest(adj: ReadonlyMap<string, readonly string[]>, from: string, to: string, up: (n: string) => boolean): number | null {
  let best: number | null = null;
  const walk = (node: string, seen: Set<string>, len: number): void => {
    if (node === to) {
      best = best === null ? len : Math.min(best, len);
      return;
    }
    for (const n of adj.get(node) ?? []) if (!seen.has(n) && up(n)) walk(n, new Set([...seen, n]), len + 1);
  };
  walk(from, new Set([from]), 0);
  return best;
}

describe('overlay routing', () => {
  it('follows neighbor links of the two-host topology', () => {
    expect(nextHop(topo.adjacency, 'A', 'C', all)).toBe('B');
    expect(nextHop(topo.adjacency, 'E', 'D', all)).toBe('A');
    expect(nextHop(topo.adjacency, 'F', 'C', all)).toBe('E');
    expect(nextHop(topo.adjacency, 'B', 'A', all)).toBe('A');
  });

  it('returns null when the destination or every path is down', () => {
    expect(nextHop(topo.adjacency, 'E', 'C', (n) => n !== 'A')).toBeNull();
    expect(nextHop(topo.adjacency, 'A', 'C', (n) => n !== 'C')).toBeNull();
  });

  it('takes a shortest path (property test against a naive twin)', () => {
    const ids = [...topo.byId.keys()];
    fc.assert(
      fc.property(fc.constantFrom(...ids), fc.constantFrom(...ids), fc.subarray(ids), (from, to, down) => {
        const up = (n: string) => n === from || !down.includes(n);
        const expected = naiveShortest(topo.adjacency, from, to, up);
        let hops = 0;
        let cur = from;
        while (cur !== to) {
          const next = nextHop(topo.adjacency, cur, to, up);
          if (next === null) return expected === null;
          cur = next;
          if (++hops > ids.length) return false;
        }
        return expected === hops || (from === to && hops === 0);
      }),
    );
  });

  it('drops a message that loops back within a leg or exceeds its hop limit', () => {
    let h = arrive({ hopCount: 0, hopLimit: 3, route: [], leg: [] }, 'A');
    h = arrive(h, 'B');
    expect(() => arrive(h, 'A')).toThrow(RoutingError);
    const leg = newLeg(h, 'B');
    const again = arrive(leg, 'A');
    expect(again.route).toEqual(['A', 'B', 'A']);
    const far = arrive(again, 'E');
    expect(far.hopCount).toBe(3);
    expect(() => arrive(far, 'F')).toThrow(/hop limit 3 exceeded at F/);
  });
});
