/**
 * Overlay routing (the "two-host leader–queue overlay" source system): messages move only along
 * configured neighbor links, one hop at a time, with hop tracking and loop prevention.
 *
 * A routed request travels in legs: entry node → Raft leader (stage "leader"), leader → team
 * leader (stage "team"), team leader → worker (stage "worker"). Within one leg a message must
 * never come back to a node it already visited; across legs a node may appear again (in the
 * two-host topology, pink worker D hangs off green team leader B, so E → D passes A and B).
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { RoutingError } from '../common/errors';

/** Default hop limit for a whole request (all legs). */
export const DEFAULT_HOP_LIMIT = 16;

/**
 * Next hop from `from` toward `to` on the shortest path through nodes for which `isUp` holds
 * (breadth-first; ties broken by neighbor order, so the result is deterministic).
 * @returns the neighbor to send to, `to` itself when adjacent, or null when unreachable.
 */
export function nextHop(adjacency: ReadonlyMap<string, readonly string[]>, from: string, to: string, isUp: (id: string) => boolean): string | null {
  if (from === to) return to;
  const parent = new Map<string, string>([[from, from]]);
  const queue = [from];
  while (queue.length) {
    const cur = queue.shift() as string;
    for (const n of adjacency.get(cur) ?? []) {
      if (parent.has(n) || (!isUp(n) && n !== to)) continue;
      parent.set(n, cur);
      if (n === to) {
        if (!isUp(to)) return null;
        let step = n;
        while (parent.get(step) !== from) step = parent.get(step) as string;
        return step;
      }
      queue.push(n);
    }
  }
  return null;
}

/** The routing header carried by every hop of a request. */
export interface RouteHeader {
  hopCount: number;
  hopLimit: number;
  /** All nodes visited, in order. */
  route: string[];
  /** Nodes visited on the current leg. */
  leg: string[];
}

/**
 * Records arrival at `self`: appends it to the route and leg and counts the hop.
 * @throws RoutingError when the hop limit is exceeded or `self` was already visited on this leg.
 */
export function arrive(header: RouteHeader, self: string): RouteHeader {
  if (header.leg.includes(self)) throw new RoutingError(`loop: request came back to ${self} (leg ${header.leg.join(' → ')})`);
  const hopCount = header.route.length === 0 ? 0 : header.hopCount + 1;
  if (hopCount > header.hopLimit) throw new RoutingError(`hop limit ${header.hopLimit} exceeded at ${self} (route ${header.route.join(' → ')})`);
  return { hopCount, hopLimit: header.hopLimit, route: [...header.route, self], leg: [...header.leg, self] };
}

/** Starts a new leg at `self` (after it was reached as a leg's destination). */
export function newLeg(header: RouteHeader, self: string): RouteHeader {
  return { ...header, leg: [self] };
}

/** Round-robin choice among candidates; `counter` is advanced by the caller. Returns null for none. */
export function pickRoundRobin<T>(candidates: readonly T[], counter: number): T | null {
  if (candidates.length === 0) return null;
  return candidates[counter % candidates.length] as T;
}
