/** Shell: header (cluster, leader, term, connection), nav, the active view, toasts. */
import { useState } from 'react';
import { ConnectionBanner, RemovedBanner } from './components/ConnectionBanner';
import { Header } from './components/Header';
import { Toasts } from './components/Toasts';
import { useConsole } from './context';
import { ComputeView } from './views/ComputeView';
import { FilesView } from './views/FilesView';
import { HealthView } from './views/HealthView';
import { TopologyView } from './views/TopologyView';

type ViewId = 'topology' | 'files' | 'compute' | 'health';

const VIEWS: { id: ViewId; label: string }[] = [
  { id: 'topology', label: 'Topology' },
  { id: 'files', label: 'Files' },
  { id: 'compute', label: 'Compute' },
  { id: 'health', label: 'Health' },
];

/** The view named by the URL hash (`#files`), so reloads keep the current view. */
function viewFromHash(): ViewId {
  const hash = typeof location === 'undefined' ? '' : location.hash.slice(1);
  return VIEWS.some((v) => v.id === hash) ? (hash as ViewId) : 'topology';
}

/** Small counts next to the nav labels: files, unfinished jobs, nodes down. */
function NavBadge({ view }: { view: ViewId }) {
  const files = useConsole((s) => s.files.length);
  const pending = useConsole((s) => Object.values(s.jobs).filter((j) => j.state === 'queued' || j.state === 'running').length);
  const down = useConsole((s) => s.status?.nodes.filter((n) => !n.up).length ?? 0);
  if (view === 'files' && files > 0) return <span className="nav-badge">{files}</span>;
  if (view === 'compute' && pending > 0) return <span className="nav-badge busy">{pending}</span>;
  if (view === 'health' && down > 0) return <span className="nav-badge">{down} down</span>;
  return null;
}

export function App() {
  const [view, setViewState] = useState<ViewId>(viewFromHash);
  const setView = (next: ViewId) => {
    setViewState(next);
    if (typeof history !== 'undefined') history.replaceState(null, '', `#${next}`);
  };
  return (
    <div className="app">
      <Header />
      <ConnectionBanner />
      <RemovedBanner />
      <nav className="nav">
        {VIEWS.map((v) => (
          <button
            key={v.id}
            type="button"
            data-testid={`nav-${v.id}`}
            className={view === v.id ? 'nav-button active' : 'nav-button'}
            aria-current={view === v.id ? 'page' : undefined}
            onClick={() => setView(v.id)}
          >
            {v.label}
            <NavBadge view={v.id} />
          </button>
        ))}
      </nav>
      <main className="main">
        {view === 'topology' && <TopologyView />}
        {view === 'files' && <FilesView />}
        {view === 'compute' && <ComputeView />}
        {view === 'health' && <HealthView />}
      </main>
      <Toasts />
    </div>
  );
}
