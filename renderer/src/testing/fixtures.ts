/** Builders of contract objects with sensible defaults, for tests. */
import type { ActivityEntry, ClusterStatus, FileEntry, JobInfo, NodeStatus } from '../../../core/control/api';

export function node(id: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return {
    id,
    host: 'host1',
    role: 'worker',
    team: 'green',
    address: '127.0.0.1:50051',
    consolePort: null,
    up: true,
    raftState: 'follower',
    term: 1,
    commitIndex: 0,
    appliedIndex: 0,
    queueDepth: 0,
    inFlight: 0,
    requestsPerSec: 0,
    syncBacklog: 0,
    pid: null,
    folder: '/tmp/sync',
    lastSeen: 1000,
    ...over,
  };
}

export function status(over: Partial<ClusterStatus> = {}): ClusterStatus {
  const nodes = over.nodes ?? [node('A', { role: 'leader', team: null, raftState: 'leader' }), node('B'), node('C')];
  return {
    self: 'A',
    clusterName: 'demo',
    leaderId: 'A',
    term: 1,
    nodes,
    links: [
      ['A', 'B'],
      ['B', 'C'],
    ],
    teams: [{ name: 'green', leader: 'B', workers: ['C'] }],
    hosts: [{ name: 'host1', nodes: nodes.map((n) => n.id) }],
    at: 1000,
    ...over,
  };
}

export function file(path: string, over: Partial<FileEntry> = {}): FileEntry {
  return {
    path,
    size: 10,
    sha256: '0'.repeat(64),
    version: 1,
    deleted: false,
    modifiedBy: 'A',
    modifiedAt: 1000,
    lock: null,
    replicas: { A: 1 },
    ...over,
  };
}

export function job(id: string, over: Partial<JobInfo> = {}): JobInfo {
  return {
    id,
    op: 'add',
    values: [1, 2],
    team: null,
    state: 'queued',
    result: null,
    error: null,
    route: [],
    submittedBy: 'A',
    submittedAt: 1000,
    finishedAt: null,
    ...over,
  };
}

export function entry(message: string, over: Partial<ActivityEntry> = {}): ActivityEntry {
  return { at: 1000, level: 'info', node: 'A', kind: 'node', message, ...over };
}
