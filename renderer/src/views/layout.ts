/**
 * Topology layout (pure): orients the undirected overlay links away from the Raft leader (breadth-first)
 * and lets dagre place the nodes top to bottom.
 */
import dagre from '@dagrejs/dagre';
import type { ClusterStatus } from '../../../core/control/api';

export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 74;

export interface LayoutEdge {
  id: string;
  source: string;
  target: string;
}

export interface TopologyLayout {
  positions: Record<string, { x: number; y: number }>;
  edges: LayoutEdge[];
}

/** Root of the drawing: the Raft leader, else the configured leader, else the first node. */
export function layoutRoot(status: ClusterStatus): string | null {
  if (status.leaderId && status.nodes.some((n) => n.id === status.leaderId)) return status.leaderId;
  return status.nodes.find((n) => n.role === 'leader')?.id ?? status.nodes[0]?.id ?? null;
}

export function layoutTopology(status: ClusterStatus): TopologyLayout {
  const ids = status.nodes.map((n) => n.id);
  const known = new Set(ids);
  const links = status.links.filter(([a, b]) => known.has(a) && known.has(b) && a !== b);
  const adjacency = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [a, b] of links) {
    adjacency.get(a)?.push(b);
    adjacency.get(b)?.push(a);
  }
  // Breadth-first distances from the root; nodes it cannot reach start their own trees.
  const depth = new Map<string, number>();
  const root = layoutRoot(status);
  const starts = root ? [root, ...ids.filter((id) => id !== root)] : ids;
  for (const start of starts) {
    if (depth.has(start)) continue;
    depth.set(start, 0);
    const queue = [start];
    while (queue.length > 0) {
      const cur = queue.shift() as string;
      for (const next of adjacency.get(cur) ?? []) {
        if (!depth.has(next)) {
          depth.set(next, (depth.get(cur) ?? 0) + 1);
          queue.push(next);
        }
      }
    }
  }

  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 36, ranksep: 64, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of ids) g.setNode(id, { width: NODE_WIDTH, height: NODE_HEIGHT });

  const edges: LayoutEdge[] = [];
  const seen = new Set<string>();
  for (const [a, b] of links) {
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const da = depth.get(a) ?? 0;
    const db = depth.get(b) ?? 0;
    const [source, target] = da <= db ? [a, b] : [b, a];
    edges.push({ id: `link-${key}`, source, target });
    if (da !== db) g.setEdge(source, target); // same-depth links are drawn but do not shape the ranks
  }
  dagre.layout(g);

  const positions: Record<string, { x: number; y: number }> = {};
  for (const id of ids) {
    const n = g.node(id) as { x: number; y: number } | undefined;
    positions[id] = n ? { x: n.x - NODE_WIDTH / 2, y: n.y - NODE_HEIGHT / 2 } : { x: 0, y: 0 };
  }
  return { positions, edges };
}
