/**
 * Cluster slice: the latest {@link ClusterStatus} and a short history of what changed between statuses
 * (Raft leader changes, nodes going up or down), for the "what happened" list.
 */
import type { ClusterStatus } from '../../../core/control/api';
import type { SliceCreator } from './types';

/** One change seen between two consecutive statuses. */
export interface StatusChange {
  /** Milliseconds since the Unix epoch (the status's `at`). */
  at: number;
  kind: 'leader' | 'node';
  /** Leader id (kind 'leader', null = none) or node id (kind 'node'). */
  subject: string | null;
  /** Previous leader (kind 'leader'). */
  previous?: string | null;
  /** Raft term of the status that showed the change. */
  term: number;
  /** Node state after the change (kind 'node'). */
  up?: boolean;
  message: string;
}

/** Most recent changes kept. */
export const STATUS_HISTORY_LIMIT = 100;

export interface ClusterSlice {
  status: ClusterStatus | null;
  /** Newest last. */
  statusHistory: StatusChange[];
  applyStatus(status: ClusterStatus): void;
}

/** The changes between two statuses (pure; exported for tests). */
export function diffStatus(prev: ClusterStatus | null, next: ClusterStatus): StatusChange[] {
  const changes: StatusChange[] = [];
  if (!prev || prev.leaderId !== next.leaderId) {
    if (prev || next.leaderId !== null) {
      changes.push({
        at: next.at,
        kind: 'leader',
        subject: next.leaderId,
        previous: prev ? prev.leaderId : null,
        term: next.term,
        message: next.leaderId
          ? prev?.leaderId
            ? `Leader changed ${prev.leaderId} → ${next.leaderId} (term ${next.term})`
            : `${next.leaderId} is leader (term ${next.term})`
          : `No leader (term ${next.term}${prev?.leaderId ? `, was ${prev.leaderId}` : ''})`,
      });
    }
  }
  if (prev) {
    const before = new Map(prev.nodes.map((n) => [n.id, n.up]));
    for (const node of next.nodes) {
      const was = before.get(node.id);
      if (was === undefined || was === node.up) continue;
      changes.push({
        at: next.at,
        kind: 'node',
        subject: node.id,
        term: next.term,
        up: node.up,
        message: `${node.id} (${node.host}) went ${node.up ? 'up' : 'down'}`,
      });
    }
  }
  return changes;
}

export const createClusterSlice: SliceCreator<ClusterSlice> = (set, get) => ({
  status: null,
  statusHistory: [],
  applyStatus(status) {
    const prev = get().status;
    if (prev && status.at < prev.at && status.self === prev.self) return; // stale (an answer overtaken by an event)
    const changes = diffStatus(prev, status);
    if (changes.length === 0) {
      set({ status });
      return;
    }
    set({ status, statusHistory: [...get().statusHistory, ...changes].slice(-STATUS_HISTORY_LIMIT) });
  },
});
