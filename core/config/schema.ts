/**
 * Cluster configuration: the processes of a cluster with id, role, team, host, port and overlay
 * neighbors (the "two-host leader–queue overlay" source system). Parsed with zod, then checked
 * for cross-field rules that a schema cannot express.
 *
 * File shape (see `resources/clusters/two-hosts.json`):
 * ```json
 * { "name": "two-hosts",
 *   "hosts": { "host1": { "address": "192.168.1.10" } },
 *   "processes": [ { "id": "A", "role": "leader", "team": "green", "host": "host1", "port": 50051,
 *                    "consolePort": 51051, "neighbors": ["B", "E"] } ] }
 * ```
 * Errors: every problem is reported as a {@link ConfigError} whose message lists each issue with
 * its JSON path, e.g. `processes[2].neighbors[0]: unknown neighbor "Z"`.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { z } from 'zod';
import { ConfigError } from '../common/errors';

const idSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'must start with a letter and use only letters, digits, "_" or "-" (at most 32)');
const portSchema = z.number().int().min(1).max(65535);

/** One cluster process (node). */
export const processSchema = z.strictObject({
  /** Unique node id, e.g. "A". */
  id: idSchema,
  /** `leader` (preferred Raft leader, voter), `team-leader` (voter) or `worker` (learner). */
  role: z.enum(['leader', 'team-leader', 'worker']),
  /** Team name (e.g. "green"); workers and team leaders must have one. */
  team: idSchema.nullable().optional(),
  /** Key into `hosts`. */
  host: idSchema,
  /** gRPC peer port. */
  port: portSchema,
  /** Browser console / ControlApi port; defaults to `port + 1000`. */
  consolePort: portSchema.optional(),
  /** Overlay neighbors (links are undirected: listing one side is enough). */
  neighbors: z.array(idSchema).default([]),
});

/**
 * Folder sync options (optional; every field has a default). `versioning` is the retention of
 * versions kept before a remote change replaces or deletes a file (Syncthing "simple
 * versioning": `keep` versions per file, `maxAgeDays` like its `cleanoutDays`; 0 = no age limit).
 */
export const syncSchema = z.strictObject({
  versioning: z
    .strictObject({
      /** Versions kept per file; 0 turns versioning off. Default 5. */
      keep: z.number().int().min(0).max(1000).default(5),
      /** Kept versions older than this are removed; 0 = never. Default 30. */
      maxAgeDays: z.number().int().min(0).max(36_500).default(30),
    })
    .default({ keep: 5, maxAgeDays: 30 }),
});

/** Folder sync options with defaults applied. */
export type SyncConfig = z.infer<typeof syncSchema>;

/**
 * Raft options shared by every node (optional). `readOnly`: how a leader confirms a linearizable
 * read, etcd's `ReadOnlyOption`: `safe` (default) = ReadIndex, a heartbeat round per read (thesis
 * §6.4); `lease-based` = no round while the leader holds its lease (thesis §6.4.1; relies on
 * bounded clock drift between hosts). A node's `--read-only` flag overrides it.
 */
export const raftSchema = z.strictObject({
  readOnly: z.enum(['safe', 'lease-based']).default('safe'),
});

export type RaftOptions = z.infer<typeof raftSchema>;

export const clusterSchema = z.strictObject({
  $comment: z.string().optional(),
  /** Cluster name; also the Raft cluster id written into every WAL. */
  name: idSchema,
  /** Host name → network address the host's nodes listen on and are reached at. */
  hosts: z.record(idSchema, z.strictObject({ address: z.string().min(1).max(253) })),
  processes: z.array(processSchema).min(1).max(64),
  sync: syncSchema.default({ versioning: { keep: 5, maxAgeDays: 30 } }),
  raft: raftSchema.default({ readOnly: 'safe' }),
});

export type ProcessConfig = z.infer<typeof processSchema> & { consolePort: number; team: string | null };
export interface ClusterConfig {
  name: string;
  hosts: Record<string, { address: string }>;
  processes: ProcessConfig[];
  sync: SyncConfig;
  raft: RaftOptions;
}

/** Derived view of a config: voters, learners, teams and undirected links. */
export interface Topology {
  config: ClusterConfig;
  byId: Map<string, ProcessConfig>;
  /** Raft voters: the leader and team leaders. */
  voters: string[];
  /** Raft learners: workers. */
  learners: string[];
  /** The configured (preferred) leader. */
  preferredLeader: string;
  teams: { name: string; leader: string; workers: string[] }[];
  /** Undirected overlay links, each once, sorted. */
  links: [string, string][];
  /** Adjacency (undirected). */
  adjacency: Map<string, string[]>;
}

/**
 * Parses and validates a config object (already JSON-parsed).
 * @throws ConfigError listing every problem (schema errors first, then cross-field rules).
 */
export function parseClusterConfig(input: unknown, source = 'config'): Topology {
  const parsed = clusterSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
    throw new ConfigError(`${source} is invalid:\n  ${lines.join('\n  ')}`, { detail: { issues: lines } });
  }
  const raw = parsed.data;
  const problems: string[] = [];
  const processes: ProcessConfig[] = raw.processes.map((p) => ({ ...p, team: p.team ?? null, consolePort: p.consolePort ?? p.port + 1000 }));
  const byId = new Map<string, ProcessConfig>();
  processes.forEach((p, i) => {
    if (byId.has(p.id)) problems.push(`processes[${i}].id: duplicate id "${p.id}"`);
    byId.set(p.id, p);
    if (!raw.hosts[p.host]) problems.push(`processes[${i}].host: unknown host "${p.host}"`);
    if (p.role !== 'leader' && !p.team) problems.push(`processes[${i}].team: a ${p.role} must belong to a team`);
    if (p.consolePort === p.port) problems.push(`processes[${i}].consolePort: must differ from port ${p.port}`);
  });
  // Ports must be unique per network address (two hosts may share 127.0.0.1 in a local variant).
  const used = new Map<string, string>();
  processes.forEach((p, i) => {
    const address = raw.hosts[p.host]?.address ?? p.host;
    for (const [what, port] of [['port', p.port], ['consolePort', p.consolePort]] as const) {
      const key = `${address}:${port}`;
      const other = used.get(key);
      if (other) problems.push(`processes[${i}].${what}: duplicate port ${port} on ${address} (also used by ${other})`);
      else used.set(key, `${p.id}.${what}`);
    }
  });
  const linkSet = new Set<string>();
  processes.forEach((p, i) => {
    p.neighbors.forEach((n, j) => {
      if (n === p.id) problems.push(`processes[${i}].neighbors[${j}]: a node cannot be its own neighbor`);
      else if (!byId.has(n)) problems.push(`processes[${i}].neighbors[${j}]: unknown neighbor "${n}"`);
      else linkSet.add([p.id, n].sort().join('\u0000'));
    });
  });
  const leaders = processes.filter((p) => p.role === 'leader');
  if (leaders.length !== 1) problems.push(`processes: exactly one process must have role "leader" (found ${leaders.length})`);
  const teamNames = [...new Set(processes.map((p) => p.team).filter((t): t is string => !!t))].sort();
  const teams: Topology['teams'] = [];
  for (const name of teamNames) {
    const tls = processes.filter((p) => p.team === name && p.role === 'team-leader');
    const workers = processes.filter((p) => p.team === name && p.role === 'worker').map((p) => p.id);
    if (tls.length === 0 && workers.length > 0) problems.push(`team "${name}": has workers (${workers.join(', ')}) but no team leader`);
    if (tls.length > 1) problems.push(`team "${name}": has ${tls.length} team leaders (${tls.map((t) => t.id).join(', ')}); one is allowed`);
    if (tls[0]) teams.push({ name, leader: tls[0].id, workers });
  }
  const links = [...linkSet].map((k) => k.split('\u0000') as [string, string]).sort((a, b) => (a[0] + a[1]).localeCompare(b[0] + b[1]));
  const adjacency = new Map<string, string[]>(processes.map((p) => [p.id, []]));
  for (const [a, b] of links) {
    adjacency.get(a)?.push(b);
    adjacency.get(b)?.push(a);
  }
  // Every node must be reachable over the overlay from the leader.
  if (leaders[0] && problems.length === 0) {
    const seen = new Set([leaders[0].id]);
    const queue = [leaders[0].id];
    while (queue.length) {
      for (const n of adjacency.get(queue.shift() as string) ?? []) {
        if (seen.has(n)) continue;
        seen.add(n);
        queue.push(n);
      }
    }
    const unreachable = processes.filter((p) => !seen.has(p.id)).map((p) => p.id);
    if (unreachable.length) problems.push(`neighbors: ${unreachable.join(', ')} cannot be reached from the leader over the overlay`);
  }
  if (problems.length) throw new ConfigError(`${source} is invalid:\n  ${problems.join('\n  ')}`, { detail: { issues: problems } });
  return {
    config: { name: raw.name, hosts: raw.hosts, processes, sync: raw.sync, raft: raw.raft },
    byId,
    voters: processes.filter((p) => p.role !== 'worker').map((p) => p.id),
    learners: processes.filter((p) => p.role === 'worker').map((p) => p.id),
    preferredLeader: (leaders[0] as ProcessConfig).id,
    teams,
    links,
    adjacency,
  };
}

/** The address a process listens on and is reached at. */
export function addressOf(topology: Topology, id: string): { host: string; port: number; consolePort: number } {
  const p = topology.byId.get(id);
  if (!p) throw new ConfigError(`unknown node "${id}"`);
  return { host: topology.config.hosts[p.host]?.address ?? '127.0.0.1', port: p.port, consolePort: p.consolePort };
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}
