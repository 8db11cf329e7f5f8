/**
 * Files: the synchronized folder as committed in the replicated index — versions, replicas per node,
 * locks (click to lock / unlock), rename, delete — and a drop zone covering the view for uploads.
 * Long lists (from {@link VIRTUALIZE_AT} files; a folder may hold 100,000) are virtualized with
 * @tanstack/react-virtual: only the rows in view (plus an overscan) are in the DOM.
 */
import { useVirtualizer } from '@tanstack/react-virtual';
import { useRef, useState, type DragEvent, type Ref, type RefObject } from 'react';
import type { ConflictEntry, FileEntry, HistoryEntry, KeptVersion, LockInfo, NodeStatus, SyncProblem } from '../../../core/control/api';
import { MAX_UPLOAD_BYTES } from '../actions';
import { useActions, useConsole } from '../context';
import { formatBytes, formatDateTime, formatTime } from '../lib/format';
import type { UploadItem } from '../stores';

/** `unlocked` or `locked by <node> since <time>`. */
export function lockText(lock: LockInfo | null): string {
  if (!lock) return 'unlocked';
  return `locked by ${lock.holders.join(', ') || lock.host} since ${formatTime(lock.since)}`;
}

function Replicas({ file, nodes }: { file: FileEntry; nodes: NodeStatus[] }) {
  const ids = nodes.length > 0 ? nodes.map((n) => n.id) : Object.keys(file.replicas).sort();
  const up = new Map(nodes.map((n) => [n.id, n.up]));
  return (
    <span className="replicas" data-testid={`replicas-${file.path}`}>
      {ids.map((id) => {
        const v = file.replicas[id];
        const state = v === file.version ? 'current' : v === null || v === undefined ? 'missing' : 'behind';
        const mark = state === 'current' ? '✓' : state === 'missing' ? '–' : `v${v}`;
        return (
          <span
            key={id}
            className={`replica ${state}${up.get(id) === false ? ' down' : ''}`}
            title={`${id}: ${state === 'current' ? 'up to date' : state === 'missing' ? 'no copy yet' : `holds version ${v} of ${file.version}`}`}
            data-testid={`replica-${file.path}-${id}`}
          >
            <span className="replica-node">{id}</span>
            <span className="replica-mark">{mark}</span>
          </span>
        );
      })}
    </span>
  );
}

/** From this many files on, the table renders only the rows in view. */
export const VIRTUALIZE_AT = 200;
/** Estimated row height in px (rows are measured once rendered; a rename form makes one taller). */
const ROW_PX = 33;

interface RowProps {
  file: FileEntry;
  nodes: NodeStatus[];
  self: string | null;
  /** Set by the virtual list to measure the row. */
  rowRef?: Ref<HTMLTableRowElement>;
  index?: number;
}

function FileRow({ file, nodes, self, rowRef, index }: RowProps) {
  const actions = useActions();
  const [renaming, setRenaming] = useState(false);
  const [newName, setNewName] = useState(file.path);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [busy, setBusy] = useState(false);
  const lock = file.lock;
  const heldByOther = !!lock && !!self && !lock.holders.includes(self);

  const run = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    try {
      await fn();
    } finally {
      setBusy(false);
    }
  };

  const submitRename = () =>
    run(async () => {
      const to = newName.trim();
      if (!to || to === file.path) {
        setRenaming(false);
        return;
      }
      if (await actions.renameFile(file.path, to)) setRenaming(false);
    });

  return (
    <tr ref={rowRef} data-index={index} data-testid={`file-row-${file.path}`} className={lock ? 'locked' : undefined}>
      <td className="mono path">
        {renaming ? (
          <form
            className="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              void submitRename();
            }}
          >
            <input
              autoFocus
              value={newName}
              data-testid={`rename-input-${file.path}`}
              onChange={(e) => setNewName(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') setRenaming(false);
              }}
            />
            <button type="submit" className="btn small primary" disabled={busy} data-testid={`rename-save-${file.path}`}>
              Save
            </button>
            <button type="button" className="btn small" onClick={() => setRenaming(false)}>
              Cancel
            </button>
          </form>
        ) : (
          file.path
        )}
      </td>
      <td className="num">{formatBytes(file.size)}</td>
      <td className="num">{file.version}</td>
      <td>
        <span className="mono">{file.modifiedBy}</span>
        <span className="muted"> · {formatDateTime(file.modifiedAt)}</span>
      </td>
      <td>
        <Replicas file={file} nodes={nodes} />
      </td>
      <td>
        <span
          className={lock ? 'lock-state locked' : 'lock-state'}
          data-testid={`lock-state-${file.path}`}
          title={lock ? `${lock.mode} lock by ${lock.user}@${lock.host}, fencing token ${lock.fencingToken}` : undefined}
        >
          {lockText(lock)}
        </span>
        {lock && lock.mode === 'shared' && <span className="muted"> (shared)</span>}
      </td>
      <td className="actions">
        <button
          type="button"
          className={lock ? 'btn small lock-btn locked' : 'btn small lock-btn'}
          data-testid={`lock-${file.path}`}
          disabled={busy}
          onClick={() => void run(() => actions.toggleLock(file))}
          title={lock ? 'Release the lock' : 'Lock this file for this host'}
        >
          {lock ? 'Unlock' : 'Lock'}
        </button>
        {heldByOther && (
          <button
            type="button"
            className="btn small danger-outline"
            data-testid={`break-lock-${file.path}`}
            disabled={busy}
            onClick={() => void run(() => actions.breakLock(file.path))}
            title="Break another host's lock (recorded)"
          >
            Break
          </button>
        )}
        <button
          type="button"
          className="btn small"
          data-testid={`history-${file.path}`}
          onClick={() => void actions.openHistory(file.path)}
          title="Who changed this file, when, from which host; restore an old version"
        >
          History
        </button>
        <button
          type="button"
          className="btn small"
          data-testid={`rename-${file.path}`}
          disabled={busy || renaming}
          onClick={() => {
            setNewName(file.path);
            setRenaming(true);
          }}
        >
          Rename
        </button>
        {confirmDelete ? (
          <>
            <button
              type="button"
              className="btn small danger"
              data-testid={`delete-confirm-${file.path}`}
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  await actions.deleteFile(file.path);
                  setConfirmDelete(false);
                })
              }
            >
              Confirm delete
            </button>
            <button type="button" className="btn small" onClick={() => setConfirmDelete(false)}>
              Keep
            </button>
          </>
        ) : (
          <button
            type="button"
            className="btn small danger-outline"
            data-testid={`delete-${file.path}`}
            disabled={busy}
            onClick={() => setConfirmDelete(true)}
          >
            Delete
          </button>
        )}
      </td>
    </tr>
  );
}

/** A Restore button that asks for confirmation first (restoring commits a new version). */
function RestoreButton({ path, versionId, label, disabled }: { path: string; versionId: string; label: string; disabled?: boolean }) {
  const actions = useActions();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!confirming) {
    return (
      <button type="button" className="btn small" data-testid={`restore-${versionId}`} disabled={disabled || busy} onClick={() => setConfirming(true)}>
        Restore
      </button>
    );
  }
  return (
    <span className="confirm" data-testid={`restore-confirm-box-${versionId}`}>
      <span className="muted">Restore {label}? It becomes a new version of {path} on every node. </span>
      <button
        type="button"
        className="btn small primary"
        data-testid={`restore-confirm-${versionId}`}
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void actions.restoreVersion(path, versionId).finally(() => {
            setBusy(false);
            setConfirming(false);
          });
        }}
      >
        Confirm restore
      </button>
      <button type="button" className="btn small" data-testid={`restore-cancel-${versionId}`} onClick={() => setConfirming(false)}>
        Cancel
      </button>
    </span>
  );
}

function HistoryRow({ entry, current }: { entry: HistoryEntry; current: number | null }) {
  const restorable = !entry.deleted && entry.version !== current;
  return (
    <tr data-testid={`history-row-${entry.version}`} data-deleted={entry.deleted}>
      <td className="num">{entry.version}</td>
      <td>{entry.deleted ? <span className="muted">deleted</span> : formatBytes(entry.size)}</td>
      <td>
        <span className="mono" data-testid={`history-by-${entry.version}`}>
          {entry.modifiedBy}
        </span>
        <span className="muted"> on {entry.host || '?'}</span>
      </td>
      <td>{formatDateTime(entry.committedAt)}</td>
      <td className="mono muted" title={entry.sha256}>
        {entry.deleted ? '' : entry.sha256.slice(0, 12)}
      </td>
      <td className="actions">{restorable ? <RestoreButton path={entry.path} versionId={`v${entry.version}`} label={`version ${entry.version}`} /> : entry.version === current ? <span className="muted">current</span> : null}</td>
    </tr>
  );
}

function KeptRow({ v }: { v: KeptVersion }) {
  return (
    <tr data-testid={`kept-row-${v.id}`}>
      <td className="mono">{v.id}</td>
      <td>{formatBytes(v.size)}</td>
      <td>{formatDateTime(v.keptAt)}</td>
      <td className="actions">
        <RestoreButton path={v.path} versionId={v.id} label={`the version kept at ${formatDateTime(v.keptAt)}`} />
      </td>
    </tr>
  );
}

/** The History panel of one file: committed changes (who, when, host) and the versions this node kept. */
export function HistoryPanel() {
  const path = useConsole((s) => s.historyPath);
  const history = useConsole((s) => s.history);
  const error = useConsole((s) => s.historyError);
  const files = useConsole((s) => s.files);
  const actions = useActions();
  if (!path) return null;
  const current = files.find((f) => f.path === path)?.version ?? null;
  return (
    <section className="panel history-panel" data-testid="history-panel" data-path={path}>
      <div className="panel-head">
        <h3>
          History of <span className="mono">{path}</span>
        </h3>
        <button type="button" className="btn small" data-testid="history-close" onClick={() => actions.closeHistory()}>
          Close
        </button>
      </div>
      {error && (
        <p className="error" data-testid="history-error">
          {error}
        </p>
      )}
      {!history && !error && <p className="muted">Loading…</p>}
      {history && (
        <>
          <table className="table" data-testid="history-table">
            <thead>
              <tr>
                <th className="num">Ver.</th>
                <th>Size</th>
                <th>Changed by</th>
                <th>Committed</th>
                <th>SHA-256</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {history.history.map((e) => (
                <HistoryRow key={e.version} entry={e} current={current} />
              ))}
              {history.history.length === 0 && (
                <tr>
                  <td colSpan={6} className="empty">
                    No recorded changes.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          {history.locks.length > 0 && (
            <>
              <h4>Lock events</h4>
              <ul className="lock-events" data-testid="lock-events">
                {history.locks.map((e, i) => (
                  <li key={`${e.at}-${i}`} data-testid={`lock-event-${i}`} data-action={e.action}>
                    <span className="muted">{formatDateTime(e.at)}</span> <span className="mono">{e.node}</span>
                    <span className="muted">
                      {' '}
                      ({e.user}@{e.host})
                    </span>{' '}
                    {e.action === 'lock' ? `locked (${e.mode})` : e.action === 'unlock' ? 'unlocked' : 'broke the lock'}
                  </li>
                ))}
              </ul>
            </>
          )}
          <h4>Versions kept on this node</h4>
          {history.versions.length === 0 ? (
            <p className="muted" data-testid="kept-empty">
              None: a version is kept here when a change from another node replaces or deletes the file.
            </p>
          ) : (
            <table className="table" data-testid="kept-table">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>Size</th>
                  <th>Kept</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {history.versions.map((v) => (
                  <KeptRow key={v.id} v={v} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

function ConflictRow({ c }: { c: ConflictEntry }) {
  const actions = useActions();
  const [busy, setBusy] = useState(false);
  const keep = (side: 'original' | 'copy') => {
    setBusy(true);
    void actions.resolveConflict(c.copy, side).finally(() => setBusy(false));
  };
  return (
    <tr data-testid={`conflict-row-${c.copy}`}>
      <td className="mono">{c.original}</td>
      <td className="mono">{c.copy}</td>
      <td>
        <span className="mono">{c.copyBy}</span>
        <span className="muted"> · {formatDateTime(c.copyModifiedAt)} · {formatBytes(c.copySize)}</span>
      </td>
      <td className="actions">
        <button type="button" className="btn small" data-testid={`conflict-keep-original-${c.copy}`} disabled={busy} onClick={() => keep('original')} title={c.originalExists ? 'Keep the original; delete the copy' : 'The original was deleted; this deletes the copy too'}>
          Keep original
        </button>
        <button type="button" className="btn small primary" data-testid={`conflict-keep-copy-${c.copy}`} disabled={busy} onClick={() => keep('copy')} title="Replace the original with the copy's bytes; delete the copy">
          Keep copy
        </button>
      </td>
    </tr>
  );
}

/** Conflict copies with their originals and keep-this-side buttons (hidden when there are none). */
export function ConflictsSection() {
  const conflicts = useConsole((s) => s.conflicts);
  if (conflicts.length === 0) return null;
  return (
    <section className="panel conflicts" data-testid="conflicts">
      <div className="panel-head">
        <h3>Conflicts ({conflicts.length})</h3>
        <span className="muted">Both sides were kept; choose the one to keep.</span>
      </div>
      <table className="table">
        <thead>
          <tr>
            <th>Original</th>
            <th>Conflict copy</th>
            <th>Copy from</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {conflicts.map((c) => (
            <ConflictRow key={c.copy} c={c} />
          ))}
        </tbody>
      </table>
    </section>
  );
}

const PROBLEM_LABEL: Record<SyncProblem['kind'], string> = {
  'invalid-name': 'invalid name',
  'too-long': 'path too long',
  'case-collision': 'case collision',
  nfc: 'Unicode (NFC) collision',
  symlink: 'symbolic link',
};

/** Paths this node refuses to sync, with the reason (hidden when there are none). */
export function ProblemsSection() {
  const problems = useConsole((s) => s.problems);
  if (problems.length === 0) return null;
  return (
    <section className="panel problems" data-testid="problems">
      <div className="panel-head">
        <h3>Not synced ({problems.length})</h3>
        <span className="muted">This node refuses these paths; rename or remove them.</span>
      </div>
      <table className="table">
        <thead>
          <tr>
            <th>Path</th>
            <th>Problem</th>
            <th>Reason</th>
            <th>Seen in</th>
          </tr>
        </thead>
        <tbody>
          {problems.map((p) => (
            <tr key={`${p.source}:${p.path}`} data-testid={`problem-row-${p.path}`} data-kind={p.kind}>
              <td className="mono">{p.path}</td>
              <td>{PROBLEM_LABEL[p.kind] ?? p.kind}</td>
              <td data-testid={`problem-reason-${p.path}`}>{p.reason}</td>
              <td className="muted">{p.source === 'local' ? 'this folder' : 'the index'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function UploadRow({ item }: { item: UploadItem }) {
  const pct = Math.round(item.progress * 100);
  const label =
    item.phase === 'reading' ? `reading ${pct}%` : item.phase === 'uploading' ? 'uploading…' : item.phase === 'done' ? 'uploaded' : 'failed';
  return (
    <li className={`upload upload-${item.phase}`} data-testid={`upload-${item.path}`} data-phase={item.phase}>
      <span className="mono upload-name">{item.path}</span>
      <span className="muted">{formatBytes(item.size)}</span>
      <span className="progress">
        <span
          className="progress-bar"
          style={{ width: item.phase === 'reading' ? `${pct}%` : '100%' }}
        />
      </span>
      <span className="upload-phase">{label}</span>
      {item.error && (
        <span className="upload-error" data-testid={`upload-error-${item.path}`}>
          {item.error}
        </span>
      )}
    </li>
  );
}

export function FilesView() {
  const files = useConsole((s) => s.files);
  const uploads = useConsole((s) => s.uploads);
  const nodes = useConsole((s) => s.status?.nodes ?? EMPTY_NODES);
  const self = useConsole((s) => s.status?.self ?? null);
  const clearFinished = useConsole((s) => s.clearFinishedUploads);
  const actions = useActions();
  const [dragging, setDragging] = useState(false);
  const depth = useRef(0);
  const input = useRef<HTMLInputElement>(null);
  const scroller = useRef<HTMLDivElement>(null);

  const accept = (list: FileList | null) => {
    if (!list || list.length === 0) return;
    void actions.uploadFiles(Array.from(list));
  };

  const onDragEnter = (e: DragEvent) => {
    e.preventDefault();
    depth.current += 1;
    setDragging(true);
  };
  const onDragLeave = (e: DragEvent) => {
    e.preventDefault();
    depth.current = Math.max(0, depth.current - 1);
    if (depth.current === 0) setDragging(false);
  };
  const onDragOver = (e: DragEvent) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    depth.current = 0;
    setDragging(false);
    accept(e.dataTransfer.files);
  };

  return (
    <div
      className={`view files-view drop-zone${dragging ? ' dragging' : ''}`}
      data-testid="file-drop"
      onDragEnter={onDragEnter}
      onDragLeave={onDragLeave}
      onDragOver={onDragOver}
      onDrop={onDrop}
    >
      <div className="view-head">
        <h2>Files</h2>
        <span className="muted">
          {files.length} file{files.length === 1 ? '' : 's'} · drop files anywhere here to upload (max {MAX_UPLOAD_BYTES / 1024 / 1024} MiB each)
        </span>
        <span className="spacer" />
        <input
          ref={input}
          type="file"
          multiple
          data-testid="file-input"
          className="file-input"
          onChange={(e) => {
            accept(e.target.files);
            e.target.value = '';
          }}
        />
        <button type="button" className="btn primary" onClick={() => input.current?.click()}>
          Upload…
        </button>
      </div>
      {uploads.length > 0 && (
        <section className="panel uploads">
          <div className="panel-head">
            <h3>Uploads</h3>
            <button type="button" className="btn small" onClick={clearFinished}>
              Clear finished
            </button>
          </div>
          <ul className="upload-list" data-testid="uploads">
            {uploads.map((u) => (
              <UploadRow key={u.id} item={u} />
            ))}
          </ul>
        </section>
      )}
      <ConflictsSection />
      <ProblemsSection />
      <HistoryPanel />
      <div className="files-scroll" ref={scroller} data-testid="files-scroll">
      <table className="table files-table" data-testid="files-table">
        <thead>
          <tr>
            <th>Path</th>
            <th className="num">Size</th>
            <th className="num">Ver.</th>
            <th>Modified</th>
            <th>Replicas</th>
            <th>Lock</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {files.length < VIRTUALIZE_AT ? (
            files.map((f) => <FileRow key={f.path} file={f} nodes={nodes} self={self} />)
          ) : (
            <VirtualRows files={files} nodes={nodes} self={self} scroller={scroller} />
          )}
          {files.length === 0 && (
            <tr>
              <td colSpan={7} className="empty">
                The synchronized folder is empty. Drop files here to upload them.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      </div>
      {dragging && <div className="drop-overlay">Drop to upload to the cluster</div>}
    </div>
  );
}

const EMPTY_NODES: NodeStatus[] = [];

/**
 * The rows in view of a long file list, between two spacer rows that keep the scroll height of
 * the whole list. Before the scroller is measured (first paint, server rendering) it assumes an
 * 800 px viewport.
 */
function VirtualRows({ files, nodes, self, scroller }: { files: FileEntry[]; nodes: NodeStatus[]; self: string | null; scroller: RefObject<HTMLDivElement | null> }) {
  const virtualizer = useVirtualizer({
    count: files.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_PX,
    overscan: 15,
    initialRect: { width: 1000, height: 800 },
    getItemKey: (i) => files[i]!.path,
  });
  const items = virtualizer.getVirtualItems();
  const before = items[0]?.start ?? 0;
  const after = virtualizer.getTotalSize() - (items[items.length - 1]?.end ?? 0);
  return (
    <>
      {before > 0 && <tr className="spacer" aria-hidden="true" style={{ height: before }} />}
      {items.map((it) => (
        <FileRow key={it.key} file={files[it.index]!} nodes={nodes} self={self} index={it.index} rowRef={virtualizer.measureElement} />
      ))}
      {after > 0 && <tr className="spacer" aria-hidden="true" data-testid="files-spacer-after" style={{ height: after }} />}
    </>
  );
}
