/**
 * Topology: the overlay as a graph (dagre, top to bottom from the Raft leader), nodes coloured and boxed
 * by team, down nodes greyed; hosts → nodes table; Raft membership with controls (promote a learner,
 * remove a member, transfer leadership; each asks for confirmation and shows the node's refusal);
 * "what happened" (leader changes, nodes up/down).
 */
import { useMemo, useState } from 'react';
import { Background, Handle, Position, ReactFlow, type Edge, type Node, type NodeHandle, type NodeProps } from '@xyflow/react';
import type { ClusterStatus, NodeStatus } from '../../../core/control/api';
import type { MemberOp } from '../actions';
import { useActions, useConsole } from '../context';
import { formatTime, teamColor } from '../lib/format';
import { NODE_HEIGHT, NODE_WIDTH, layoutTopology, type TopologyLayout } from './layout';

type ClusterNodeData = { node: NodeStatus; isLeader: boolean; color: string };
type TeamNodeData = { team: string; color: string };
type ClusterFlowNode = Node<ClusterNodeData, 'cluster'>;
type TeamFlowNode = Node<TeamNodeData, 'team'>;

function ClusterNodeCard({ data }: NodeProps<ClusterFlowNode>) {
  const { node, isLeader, color } = data;
  return (
    <div
      className={`topo-node${node.up ? '' : ' down'}${isLeader ? ' leader' : ''}`}
      data-testid={`topo-node-${node.id}`}
      data-up={node.up ? 'true' : 'false'}
      data-raft-state={node.raftState}
      style={{ borderColor: node.up ? color : undefined, width: NODE_WIDTH, height: NODE_HEIGHT }}
      title={`${node.id} on ${node.host} (${node.address})`}
    >
      <Handle type="target" position={Position.Top} className="topo-handle" isConnectable={false} />
      <div className="topo-node-head">
        <span className="topo-node-id">{node.id}</span>
        {isLeader && (
          <span className="leader-badge" data-testid="leader-badge" title="Raft leader">
            ♛ leader
          </span>
        )}
        {!node.up && <span className="down-badge">down</span>}
        {node.team && (
          <span className="team-tag" style={{ color: node.up ? color : undefined, borderColor: node.up ? color : undefined }}>
            {node.team}
          </span>
        )}
      </div>
      <div className="topo-node-host">{node.host}</div>
      <div className="topo-node-meta">
        <span className="role">{node.role}</span>
        <span className="sep">·</span>
        <span>{node.raftState}</span>
      </div>
      <Handle type="source" position={Position.Bottom} className="topo-handle" isConnectable={false} />
    </div>
  );
}

function TeamBox({ data }: NodeProps<TeamFlowNode>) {
  return (
    <div className="team-box" style={{ borderColor: data.color, background: `${data.color}12` }}>
      <span className="team-box-label" style={{ color: data.color }}>
        team {data.team}
      </span>
    </div>
  );
}

const nodeTypes = { cluster: ClusterNodeCard, team: TeamBox };

/** Handle geometry of a card (matches the rendered `<Handle>`s), so React Flow never has to measure. */
const CARD_HANDLES: NodeHandle[] = [
  { type: 'target', position: Position.Top, x: NODE_WIDTH / 2, y: 0 },
  { type: 'source', position: Position.Bottom, x: NODE_WIDTH / 2, y: NODE_HEIGHT },
];

/**
 * Declares a node's size and handles up front. The nodes are rebuilt on every status (about once a second);
 * without `measured` React Flow would hide and re-measure them each time, making the graph flicker.
 */
function fixedSize(width: number, height: number, handles: NodeHandle[]) {
  return { width, height, measured: { width, height }, handles, style: { width, height } };
}

/** Layout depends only on the shape (nodes, links, leader), not on each second's figures. */
function shapeKey(status: ClusterStatus): string {
  return JSON.stringify([status.nodes.map((n) => n.id), status.links, status.leaderId]);
}

let layoutCache: { key: string; layout: TopologyLayout } | null = null;

/** Recomputes the layout only when the shape changed. */
function cachedLayout(key: string, status: ClusterStatus): TopologyLayout {
  if (!layoutCache || layoutCache.key !== key) layoutCache = { key, layout: layoutTopology(status) };
  return layoutCache.layout;
}

function TopologyGraph({ status }: { status: ClusterStatus }) {
  const key = shapeKey(status);
  const layout = cachedLayout(key, status);

  const nodes = useMemo(() => {
    const teamBoxes: TeamFlowNode[] = [];
    const pad = 14;
    for (const team of new Set(status.nodes.map((n) => n.team).filter((t): t is string => !!t))) {
      const members = status.nodes.filter((n) => n.team === team && layout.positions[n.id]);
      if (members.length === 0) continue;
      const xs = members.map((n) => layout.positions[n.id]!.x);
      const ys = members.map((n) => layout.positions[n.id]!.y);
      const x = Math.min(...xs) - pad;
      const y = Math.min(...ys) - pad - 14;
      const width = Math.max(...xs) + NODE_WIDTH + pad - x;
      const height = Math.max(...ys) + NODE_HEIGHT + pad - y;
      // Box a team only when its box holds no other team's node; otherwise colour alone groups it.
      const intrudes = status.nodes.some((n) => {
        const p = layout.positions[n.id];
        return n.team !== team && !!p && p.x < x + width && p.x + NODE_WIDTH > x && p.y < y + height && p.y + NODE_HEIGHT > y;
      });
      if (intrudes) continue;
      teamBoxes.push({
        id: `team-${team}`,
        type: 'team',
        position: { x, y },
        data: { team, color: teamColor(team) },
        ...fixedSize(width, height, []),
        selectable: false,
        draggable: false,
        focusable: false,
        zIndex: -1,
      });
    }
    const cards: ClusterFlowNode[] = status.nodes.map((n) => ({
      id: n.id,
      type: 'cluster',
      position: layout.positions[n.id] ?? { x: 0, y: 0 },
      data: { node: n, isLeader: status.leaderId === n.id, color: teamColor(n.team) },
      draggable: false,
      ...fixedSize(NODE_WIDTH, NODE_HEIGHT, CARD_HANDLES),
    }));
    return [...teamBoxes, ...cards] as Node[];
  }, [status, layout]);

  const edges = useMemo<Edge[]>(() => {
    const up = new Map(status.nodes.map((n) => [n.id, n.up]));
    return layout.edges.map((e) => {
      const live = up.get(e.source) !== false && up.get(e.target) !== false;
      return {
        id: e.id,
        source: e.source,
        target: e.target,
        type: 'straight',
        className: live ? 'topo-edge' : 'topo-edge down',
        style: live ? { stroke: '#7b8799', strokeWidth: 1.5 } : { stroke: '#c5cad3', strokeDasharray: '4 4' },
      };
    });
  }, [status, layout]);

  return (
    <div className="topology-graph" data-testid="topology-graph">
      <ReactFlow
        key={key}
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ padding: 0.15 }}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        proOptions={{ hideAttribution: true }}
        minZoom={0.2}
      >
        <Background gap={20} size={1} color="#e3e6eb" />
      </ReactFlow>
    </div>
  );
}

function HostsTable({ status }: { status: ClusterStatus }) {
  const byId = new Map(status.nodes.map((n) => [n.id, n]));
  // Fall back to grouping nodes by their `host` when the status carries no host list.
  const hosts =
    status.hosts.length > 0
      ? status.hosts
      : [...new Set(status.nodes.map((n) => n.host))].map((name) => ({ name, nodes: status.nodes.filter((n) => n.host === name).map((n) => n.id) }));
  return (
    <table className="table compact" data-testid="hosts-table">
      <thead>
        <tr>
          <th>Host</th>
          <th>Nodes</th>
        </tr>
      </thead>
      <tbody>
        {hosts.map((h) => (
          <tr key={h.name} data-testid={`host-row-${h.name}`}>
            <td className="mono">{h.name}</td>
            <td>
              {h.nodes.map((id) => {
                const n = byId.get(id);
                return (
                  <span
                    key={id}
                    className={`chip${n?.up === false ? ' down' : ''}`}
                    style={{ borderColor: teamColor(n?.team ?? null) }}
                    title={n ? `${n.role}${n.team ? `, team ${n.team}` : ''}, ${n.up ? 'up' : 'down'}` : id}
                  >
                    {id}
                    {status.leaderId === id && ' ♛'}
                    <span className="chip-sub">{n?.role ?? '?'}</span>
                  </span>
                );
              })}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A node's place in the Raft configuration in effect (thesis §4.1). */
export type MemberKind = 'voter' | 'learner' | 'not a member';

/**
 * The controls a node gets: a learner can be promoted; a voter other than the leader can be made
 * leader (thesis §3.10); any member can be removed, except the last voter (the node refuses it too).
 */
export function memberOps(id: string, kind: MemberKind, voters: number, leaderId: string | null): MemberOp[] {
  if (kind === 'learner') return ['promote', 'remove'];
  if (kind === 'voter') return [...(id !== leaderId ? (['transfer'] as const) : []), ...(voters > 1 ? (['remove'] as const) : [])];
  return [];
}

const OP_LABEL: Record<MemberOp, string> = { promote: 'Promote', remove: 'Remove', transfer: 'Make leader' };
const OP_QUESTION: Record<MemberOp, (id: string) => string> = {
  promote: (id) => `Promote ${id} to voter?`,
  remove: (id) => `Remove ${id} from the cluster?`,
  transfer: (id) => `Transfer leadership to ${id}?`,
};

export interface MemberControlsProps {
  id: string;
  ops: MemberOp[];
  /** The control waiting for confirmation, if any. */
  confirming: MemberOp | null;
  busy: boolean;
  /** The node's last refusal for this member (shown until the next attempt). */
  error: string | null;
  onAsk(op: MemberOp): void;
  onConfirm(): void;
  onCancel(): void;
}

/** The buttons of one member row: first a click asks, then Confirm runs it (stateless; the panel keeps the state). */
export function MemberControls({ id, ops, confirming, busy, error, onAsk, onConfirm, onCancel }: MemberControlsProps) {
  return (
    <div className="member-controls">
      {confirming ? (
        <>
          <span className="member-question" data-testid={`member-question-${id}`}>
            {OP_QUESTION[confirming](id)}
          </span>
          <button type="button" className={confirming === 'remove' ? 'btn small danger' : 'btn small primary'} data-testid={`member-confirm-${id}`} disabled={busy} onClick={onConfirm}>
            {busy ? 'Working…' : `Confirm ${OP_LABEL[confirming].toLowerCase()}`}
          </button>
          <button type="button" className="btn small" data-testid={`member-cancel-${id}`} disabled={busy} onClick={onCancel}>
            Cancel
          </button>
        </>
      ) : (
        ops.map((op) => (
          <button key={op} type="button" className={op === 'remove' ? 'btn small danger-outline' : 'btn small'} data-testid={`member-${op}-${id}`} disabled={busy} onClick={() => onAsk(op)}>
            {OP_LABEL[op]}
          </button>
        ))
      )}
      {error && (
        <div className="error-text member-error" data-testid={`member-error-${id}`} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

function MembershipPanel({ status }: { status: ClusterStatus }) {
  const actions = useActions();
  const [confirming, setConfirming] = useState<{ id: string; op: MemberOp } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const m = status.membership;
  if (!m) return null;
  const others = status.nodes.map((n) => n.id).filter((id) => !m.voters.includes(id) && !m.learners.includes(id));
  const rows: { id: string; kind: MemberKind }[] = [
    ...m.voters.map((id) => ({ id, kind: 'voter' as const })),
    ...m.learners.map((id) => ({ id, kind: 'learner' as const })),
    ...others.map((id) => ({ id, kind: 'not a member' as const })),
  ];
  const run = async (id: string, op: MemberOp) => {
    setBusy(id);
    setErrors((e) => ({ ...e, [id]: '' }));
    try {
      const error = await actions.membership(op, id);
      setErrors((e) => ({ ...e, [id]: error ?? '' }));
    } finally {
      setBusy(null);
      setConfirming(null);
    }
  };
  return (
    <section className="panel">
      <h3>Raft membership</h3>
      <table className="table compact" data-testid="membership-table">
        <tbody>
          {rows.map(({ id, kind }) => (
            <tr key={id} data-testid={`member-row-${id}`} data-kind={kind}>
              <td className="mono">
                {id}
                {status.leaderId === id && ' ♛'}
              </td>
              <td className="muted">{kind}</td>
              <td>
                <MemberControls
                  id={id}
                  ops={memberOps(id, kind, m.voters.length, status.leaderId)}
                  confirming={confirming?.id === id ? confirming.op : null}
                  busy={busy === id}
                  error={errors[id] || null}
                  onAsk={(op) => setConfirming({ id, op })}
                  onConfirm={() => confirming && void run(id, confirming.op)}
                  onCancel={() => setConfirming(null)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="muted small">
        Add a node with <code>clusterdesk member add ID HOST:PORT</code>, then start it with <code>clusterdesk node --join</code>.
      </div>
    </section>
  );
}

interface Happening {
  at: number;
  source: 'status' | 'activity';
  level: 'info' | 'warn' | 'error';
  message: string;
}

function WhatHappened() {
  const history = useConsole((s) => s.statusHistory);
  const activity = useConsole((s) => s.activity);
  const items = useMemo<Happening[]>(() => {
    const fromStatus: Happening[] = history.map((h) => ({
      at: h.at,
      source: 'status',
      level: h.kind === 'node' && h.up === false ? 'warn' : h.kind === 'leader' && h.subject === null ? 'warn' : 'info',
      message: h.message,
    }));
    const fromActivity: Happening[] = activity
      .filter((a) => a.kind === 'leader' || a.kind === 'node')
      .map((a) => ({ at: a.at, source: 'activity', level: a.level, message: `${a.node}: ${a.message}` }));
    return [...fromStatus, ...fromActivity].sort((a, b) => b.at - a.at).slice(0, 40);
  }, [history, activity]);
  return (
    <section className="panel">
      <h3>What happened</h3>
      {items.length === 0 ? (
        <div className="empty">No leader changes or node failures seen yet.</div>
      ) : (
        <ul className="happenings" data-testid="what-happened">
          {items.map((item, i) => (
            <li key={`${item.at}-${i}`} className={`happening level-${item.level}`} data-testid="happened-item">
              <span className="time mono">{formatTime(item.at)}</span>
              <span className="message">{item.message}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function TopologyView() {
  const status = useConsole((s) => s.status);
  if (!status) return <div className="empty">Waiting for the cluster status…</div>;
  const teams = [...new Set(status.nodes.map((n) => n.team).filter((t): t is string => !!t))];
  const up = status.nodes.filter((n) => n.up).length;
  return (
    <div className="view topology-view" data-testid="view-topology">
      <div className="view-head">
        <h2>Topology</h2>
        <span className="muted">
          {up}/{status.nodes.length} nodes up · {status.links.length} links
        </span>
        <span className="legend">
          {teams.map((t) => (
            <span key={t} className="legend-item">
              <span className="swatch" style={{ background: teamColor(t) }} />
              {t}
            </span>
          ))}
          <span className="legend-item">
            <span className="swatch" style={{ background: teamColor(null) }} />
            no team
          </span>
        </span>
      </div>
      <div className="topology-layout">
        <TopologyGraph status={status} />
        <aside className="topology-side">
          <section className="panel">
            <h3>Hosts</h3>
            <HostsTable status={status} />
          </section>
          <MembershipPanel status={status} />
          <WhatHappened />
        </aside>
      </div>
    </div>
  );
}
