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
