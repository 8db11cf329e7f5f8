/** Health: one row per node with its Raft and load figures; refreshed by each `status` event. */
import { useMemo } from 'react';
import { useConsole } from '../context';
import { formatAge, formatTime, teamColor } from '../lib/format';

/** The node's activity log (last 200 entries), newest first. */
function ActivityLog() {
  const activity = useConsole((s) => s.activity);
  const rows = useMemo(() => [...activity].reverse(), [activity]);
  return (
    <section className="panel">
      <h3>Activity ({activity.length})</h3>
      {rows.length === 0 ? (
        <div className="empty">Nothing recorded yet.</div>
      ) : (
        <div className="activity-scroll">
          <table className="table compact" data-testid="activity-log">
            <tbody>
              {rows.map((a, i) => (
                <tr key={`${a.at}-${i}`} className={`level-${a.level}`}>
                  <td className="mono muted">{formatTime(a.at)}</td>
                  <td>
                    <span className={`level level-${a.level}`}>{a.level}</span>
                  </td>
                  <td className="mono">{a.node}</td>
                  <td className="muted">{a.kind}</td>
                  <td className="activity-message">{a.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function HealthView() {
  const status = useConsole((s) => s.status);
  if (!status) return <div className="empty">Waiting for the cluster status…</div>;
  const maxCommit = Math.max(0, ...status.nodes.filter((n) => n.up).map((n) => n.commitIndex));
  return (
    <div className="view health-view" data-testid="view-health">
      <div className="view-head">
        <h2>Health</h2>
        <span className="muted">
          as seen by {status.self} at {formatTime(status.at)}
        </span>
      </div>
      <table className="table health-table" data-testid="health-table">
        <thead>
          <tr>
            <th>Node</th>
            <th>Host</th>
            <th>Role</th>
            <th>State</th>
            <th>Raft</th>
            <th className="num">Term</th>
            <th className="num">Commit</th>
            <th className="num">Applied</th>
            <th className="num">Queue</th>
            <th className="num">In flight</th>
            <th className="num">Req/s</th>
            <th className="num">Sync backlog</th>
            <th className="num">PID</th>
            <th>Last seen</th>
          </tr>
        </thead>
        <tbody>
          {status.nodes.map((n) => {
            const isLeader = status.leaderId === n.id;
            const lagging = n.up && maxCommit - n.appliedIndex > 100;
            return (
              <tr
                key={n.id}
                data-testid={`health-row-${n.id}`}
                data-up={n.up ? 'true' : 'false'}
                data-leader={isLeader ? 'true' : 'false'}
                className={`${isLeader ? 'leader-row' : ''}${n.up ? '' : ' down'}`}
              >
                <td className="mono">
                  <span className="swatch" style={{ background: teamColor(n.team) }} /> {n.id}
                  {isLeader && (
                    <span className="leader-badge small" title="Raft leader">
                      ♛
                    </span>
                  )}
                  {n.id === status.self && <span className="muted"> (this)</span>}
                </td>
                <td className="mono">{n.host}</td>
                <td>
                  {n.role}
                  {n.team && <span className="muted"> · {n.team}</span>}
                </td>
                <td>
                  <span className={n.up ? 'pill up' : 'pill down'} data-testid={`health-up-${n.id}`}>
                    {n.up ? 'up' : 'down'}
                  </span>
                </td>
                <td data-testid={`health-raft-${n.id}`}>{n.raftState}</td>
                <td className="num">{n.term}</td>
                <td className="num">{n.commitIndex}</td>
                <td className={lagging ? 'num warn' : 'num'}>{n.appliedIndex}</td>
                <td className={n.queueDepth >= 150 ? 'num warn' : 'num'}>{n.queueDepth}</td>
                <td className={n.inFlight >= 90 ? 'num warn' : 'num'}>{n.inFlight}</td>
                <td className="num">{n.requestsPerSec.toFixed(1)}</td>
                <td className={n.syncBacklog > 0 ? 'num warn' : 'num'}>{n.syncBacklog}</td>
                <td className="num mono">{n.pid ?? '—'}</td>
                <td title={n.lastSeen ? new Date(n.lastSeen).toISOString() : undefined}>{formatAge(n.lastSeen, status.at)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <ActivityLog />
    </div>
  );
}
