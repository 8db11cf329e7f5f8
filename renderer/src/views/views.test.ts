/**
 * Smoke test of the views without a browser: server-renders each view from a populated store and checks
 * the `data-testid`s the e2e tests rely on.
 */
import { createElement, type ReactNode } from 'react';
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { createActions } from '../actions';
import { App } from '../App';
import { ConsoleContext } from '../context';
import { createConsoleStore, type ConsoleStore } from '../stores';
import { createFakeApi } from '../testing/fakeApi';
import { file, job, node, status } from '../testing/fixtures';
import { ComputeView } from './ComputeView';
import { FilesView, VIRTUALIZE_AT } from './FilesView';
import { HealthView } from './HealthView';
import { TopologyView } from './TopologyView';

function populated(): ConsoleStore {
  const store = createConsoleStore();
  const s = store.getState();
  s.setConnection('open');
  s.applyStatus(status({ nodes: [node('A', { role: 'leader', team: null, raftState: 'leader', consolePort: 7400 }), node('B', { role: 'team-leader' }), node('C', { up: false })] }));
  s.setFiles([
    file('docs/a.txt', { version: 2, replicas: { A: 2, B: 1, C: null } }),
    file('b.bin', { lock: { path: 'b.bin', mode: 'exclusive', holders: ['B'], host: 'host1', user: 'ann', since: 0, fencingToken: 5 } }),
  ]);
  s.setJobs([job('j1', { state: 'done', result: [1, 2, 3], op: 'sort', route: ['A', 'B', 'C'] })]);
  s.setRequestResult({ op: 'sort', result: [1, 2, 3], route: ['A', 'B', 'C'], durationMs: 7 });
  // Server rendering reads the store's initial state; serve the populated one.
  return { ...store, getInitialState: () => store.getState() };
}

function render(view: () => ReactNode, store = populated()): string {
  return renderToString(createElement(ConsoleContext.Provider, { value: { store, actions: createActions(createFakeApi(), store) } }, createElement(view)));
}

describe('views', () => {
  it('shell: nav, header and connection state', () => {
    const html = render(App);
    for (const id of ['nav-topology', 'nav-files', 'nav-compute', 'nav-health', 'connection-state', 'leader-id', 'term']) {
      expect(html).toContain(`data-testid="${id}"`);
    }
    expect(html).toMatch(/data-testid="leader-id"[^>]*>A</);
    expect(html).toMatch(/data-testid="connection-state">open</);
  });

  it('shell: a removed node says so in a banner; a member shows none', () => {
    expect(render(App)).not.toContain('data-testid="removed-banner"');
    const store = populated();
    store.getState().applyStatus({ ...store.getState().status!, removed: { leader: 'B', at: Date.UTC(2026, 10, 24, 12, 0, 0) } });
    const html = render(App, store);
    expect(html).toContain('data-testid="removed-banner"');
    expect(html).toMatch(/A<!-- --> was removed from the cluster \(leader <!-- -->B<!-- -->/);
  });

  it('topology: a card per node with up and raft state, leader badge, hosts table', () => {
    const html = render(TopologyView);
    expect(html).toMatch(/data-testid="topo-node-A" data-up="true" data-raft-state="leader"/);
    expect(html).toMatch(/data-testid="topo-node-C" data-up="false" data-raft-state="follower"/);
    expect(html).toContain('data-testid="leader-badge"');
    expect(html).toContain('data-testid="hosts-table"');
    expect(html).toContain('A is leader (term 1)');
  });

  it('files: rows, lock state, lock toggle, replicas, drop zone and input', () => {
    const html = render(FilesView);
    for (const id of ['file-drop', 'file-input', 'file-row-docs/a.txt', 'lock-docs/a.txt', 'file-row-b.bin', 'lock-b.bin']) {
      expect(html).toContain(`data-testid="${id}"`);
    }
    expect(html).toMatch(/data-testid="lock-state-docs\/a.txt"[^>]*>unlocked</);
    expect(html).toMatch(/data-testid="lock-state-b.bin"[^>]*>locked by B since \d\d:\d\d:\d\d</);
    expect(html).toContain('data-testid="break-lock-b.bin"');
  });

  it('files: a 100,000-file list renders only the rows in view, with spacers for the rest', () => {
    const store = populated();
    const n = 100_000;
    store.getState().setFiles(Array.from({ length: n }, (_, i) => file(`d/f${String(i).padStart(6, '0')}.dat`)));
    const html = render(FilesView, store);
    const rows = html.match(/data-testid="file-row-/g)?.length ?? 0;
    expect(rows).toBeGreaterThan(10); // a screenful
    expect(rows).toBeLessThan(100); // not the whole list
    expect(html).toContain('data-testid="file-row-d/f000000.dat"');
    expect(html).not.toContain('data-testid="file-row-d/f099999.dat"');
    expect(html).toContain('100000<!-- --> file');
    const spacer = /data-testid="files-spacer-after" style="height:(\d+)px"/.exec(html);
    expect(Number(spacer?.[1])).toBeGreaterThan((n - 100) * 30); // keeps the scroll height of the whole list
  });

  it('files: a short list is rendered whole, without spacers', () => {
    const store = populated();
    store.getState().setFiles(Array.from({ length: VIRTUALIZE_AT - 1 }, (_, i) => file(`f${i}`)));
    const html = render(FilesView, store);
    expect(html.match(/data-testid="file-row-/g)?.length).toBe(VIRTUALIZE_AT - 1);
    expect(html).not.toContain('files-spacer-after');
  });

  it('compute: form, result, route and jobs', () => {
    const html = render(ComputeView);
    for (const id of ['compute-op', 'compute-values', 'compute-team', 'compute-request', 'compute-submit', 'job-row-j1']) {
      expect(html).toContain(`data-testid="${id}"`);
    }
    expect(html).toMatch(/data-testid="compute-result">\[1,2,3\]</);
    expect(html).toMatch(/data-testid="compute-route">A → B → C</);
    expect(html).toContain('<option value="green">green</option>');
  });

  it('health: a row per node, leader highlighted', () => {
    const html = render(HealthView);
    expect(html).toMatch(/data-testid="health-row-A" data-up="true" data-leader="true"/);
    expect(html).toMatch(/data-testid="health-row-C" data-up="false" data-leader="false"/);
  });

  it('files: history panel (who, when, host, restore buttons), conflicts and problems sections', () => {
    const store = populated();
    const s = store.getState();
    s.openHistory('docs/a.txt');
    const h = (version: number, extra = {}) => ({ path: 'docs/a.txt', version, sha256: 'c'.repeat(64), size: 10, deleted: false, modifiedBy: 'B', host: 'host2', modifiedAt: 0, committedAt: 0, ...extra });
    s.setHistory({ path: 'docs/a.txt', history: [h(2, { modifiedBy: 'A', host: 'host1' }), h(1)], versions: [{ id: '20261124-142500', path: 'docs/a.txt', size: 9, keptAt: 0 }], locks: [{ at: 0, action: 'break', mode: 'exclusive', node: 'C', host: 'host2', user: 'bob' }] });
    s.setConflicts([{ copy: 'docs/a.sync-conflict-20261124-142500-B.txt', original: 'docs/a.txt', originalExists: true, copyBy: 'B', copyModifiedAt: 0, copySize: 4 }]);
    s.setProblems([{ path: 'bad:name.txt', kind: 'invalid-name', reason: 'character ":" is not allowed on Windows', source: 'local', since: 0 }]);
    const html = render(FilesView, store);
    for (const id of ['history-docs/a.txt', 'history-panel', 'history-row-2', 'history-row-1', 'kept-row-20261124-142500', 'restore-20261124-142500', 'restore-v1', 'conflicts', 'problems']) {
      expect(html, id).toContain(`data-testid="${id}"`);
    }
    expect(html).not.toContain('data-testid="restore-v2"'); // the current version
    expect(html).toMatch(/data-testid="history-by-1"[^>]*>B</);
    expect(html).toContain('on <!-- -->host2');
    expect(html).toContain('data-testid="conflict-keep-copy-docs/a.sync-conflict-20261124-142500-B.txt"');
    expect(html).toContain('data-testid="conflict-keep-original-docs/a.sync-conflict-20261124-142500-B.txt"');
    expect(html).toMatch(/data-testid="problem-row-bad:name.txt" data-kind="invalid-name"/);
    expect(html).toContain('is not allowed on Windows');
    expect(html).toMatch(/data-testid="lock-event-0" data-action="break"/);
    expect(html).toContain('broke the lock');
  });

  it('files: no issue sections and no history panel when there is nothing to show', () => {
    const html = render(FilesView);
    for (const id of ['history-panel', 'conflicts', 'problems']) expect(html).not.toContain(`data-testid="${id}"`);
  });
});
