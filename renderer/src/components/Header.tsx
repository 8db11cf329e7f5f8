import { useConsole } from '../context';

/** `host:port` of the WebSocket endpoint when it is not the page's own node, else null. */
function failedOverTo(endpoint: string | null): string | null {
  if (!endpoint || typeof location === 'undefined') return null;
  try {
    const host = new URL(endpoint).host;
    return host && host !== location.host ? host : null;
  } catch {
    return null;
  }
}

/** Cluster name, serving node, Raft leader and term, connection state. */
export function Header() {
  const status = useConsole((s) => s.status);
  const connection = useConsole((s) => s.connection);
  const endpoint = useConsole((s) => s.endpoint);
  const via = failedOverTo(endpoint);
  return (
    <header className="header">
      <div className="brand">ClusterDesk</div>
      <div className="header-fields">
        <span className="field">
          <span className="label">Cluster</span>
          <span data-testid="cluster-name">{status?.clusterName ?? '—'}</span>
        </span>
        <span className="field">
          <span className="label">Node</span>
          <span data-testid="self-id">{status?.self ?? '—'}</span>
        </span>
        <span className="field">
          <span className="label">Leader</span>
          <span data-testid="leader-id" className={status?.leaderId ? 'leader-id' : 'leader-id none'}>
            {status?.leaderId ?? 'none'}
          </span>
        </span>
        <span className="field">
          <span className="label">Term</span>
          <span data-testid="term">{status ? status.term : '—'}</span>
        </span>
      </div>
      {via && (
        <span className="via" data-testid="connection-via" title="The original node is unreachable; this console failed over">
          via {via}
        </span>
      )}
      <span className={`conn conn-${connection}`} title={endpoint ? `Connection to ${endpoint.replace(/token=[^&]*/, 'token=…')}` : 'Connection to the node'}>
        <span className="conn-dot" />
        <span data-testid="connection-state">{connection}</span>
      </span>
    </header>
  );
}
