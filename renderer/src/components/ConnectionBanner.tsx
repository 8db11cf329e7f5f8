import { useConsole } from '../context';
import { formatTime } from '../lib/format';

/** Full-width warning while the console is not connected to a node. */
export function ConnectionBanner() {
  const connection = useConsole((s) => s.connection);
  const since = useConsole((s) => s.connectionSince);
  const hasStatus = useConsole((s) => s.status !== null);
  const hint = useConsole((s) => s.connectionHint);
  if (connection === 'open') return null;
  const text =
    connection === 'connecting'
      ? hasStatus
        ? 'Reconnecting to the cluster… figures below are the last ones received.'
        : 'Connecting to the node…'
      : 'Disconnected from the node. Retrying; figures below may be out of date.';
  return (
    <div className={`banner banner-${connection}`} data-testid="connection-banner" role="status">
      {text}
      {since > 0 && <span className="muted"> (since {formatTime(since)})</span>}
      {hint && <strong className="banner-hint"> {hint}</strong>}
    </div>
  );
}

/** Full-width error once the node serving this console learned it was removed from the cluster. */
export function RemovedBanner() {
  const removed = useConsole((s) => s.status?.removed ?? null);
  const self = useConsole((s) => s.status?.self ?? '');
  if (!removed) return null;
  return (
    <div className="banner banner-closed" data-testid="removed-banner" role="alert">
      {self} was removed from the cluster (leader {removed.leader} said so at {formatTime(removed.at)}): its folder is no longer
      synced and file changes here are refused. Use another node&apos;s console, or add this node again with a fresh data directory.
    </div>
  );
}
