import { describe, expect, it, vi } from 'vitest';
import { connectStore, createConsoleStore, ISSUES_RELOAD_MS } from './index';
import { ACTIVITY_LIMIT } from './activity';
import { diffStatus } from './cluster';
import { createFakeApi, flush } from '../testing/fakeApi';
import { entry, file, job, node, status } from '../testing/fixtures';

function setup(initial: 'connecting' | 'open' = 'open') {
  const api = createFakeApi(initial);
  api.handle('status', status());
  api.handle('listFiles', [file('a.txt'), file('gone.txt', { deleted: true })]);
  api.handle('listJobs', [job('j1', { state: 'done', result: 3 })]);
  api.handle('activity', [entry('started')]);
  const store = createConsoleStore();
  const off = connectStore(store, api);
  return { api, store, off };
}

describe('connectStore', () => {
  it('loads status, files, jobs and activity once open', async () => {
    const { api, store } = setup();
    await flush();
    expect(api.calls.map((c) => c.method).sort()).toEqual(['activity', 'listConflicts', 'listFiles', 'listJobs', 'listProblems', 'status']);
    const s = store.getState();
    expect(s.connection).toBe('open');
    expect(s.status?.leaderId).toBe('A');
    expect(s.files.map((f) => f.path)).toEqual(['a.txt']); // deleted entries hidden
    expect(s.jobs['j1']?.state).toBe('done');
    expect(s.toasts).toHaveLength(0); // already-finished jobs raise no toast
    expect(s.activity).toHaveLength(1);
  });

  it('waits for the connection, and reloads after a reconnect', async () => {
    const { api, store } = setup('connecting');
    await flush();
    expect(api.calls).toHaveLength(0);
    expect(store.getState().connection).toBe('connecting');
    api.setConnection('open');
    await flush();
    expect(api.calls).toHaveLength(6);
    api.setConnection('closed');
    expect(store.getState().connection).toBe('closed');
    api.setConnection('connecting');
    api.setConnection('open');
    await flush();
    expect(api.calls).toHaveLength(12);
  });

  it('drops a snapshot answer overtaken by an event', async () => {
    const api = createFakeApi('open');
    let answer: (files: ReturnType<typeof file>[]) => void = () => {};
    api.handle('listFiles', () => new Promise((r) => (answer = r)));
    api.handle('status', status());
    api.handle('listJobs', []);
    api.handle('activity', []);
    const store = createConsoleStore();
    connectStore(store, api);
    api.emit({ type: 'files', files: [file('new.txt')] });
    answer([file('old.txt')]);
    await flush();
    expect(store.getState().files.map((f) => f.path)).toEqual(['new.txt']);
  });

  it('reports failed loads as toasts', async () => {
    const api = createFakeApi('open');
    api.fail('status', 'EUNAVAILABLE', 'no quorum');
    api.handle('listFiles', []);
    api.handle('listJobs', []);
    api.handle('activity', []);
    const store = createConsoleStore();
    connectStore(store, api);
    await flush();
    expect(store.getState().toasts[0]?.message).toContain('EUNAVAILABLE');
  });

  it('stops following after unsubscribe', async () => {
    const { api, store, off } = setup();
    await flush();
    off();
    api.emit({ type: 'files', files: [] });
    expect(store.getState().files).toHaveLength(1);
  });
});

describe('cluster slice', () => {
  it('records leader changes and nodes going down and up', async () => {
    const { api, store } = setup();
    await flush();
    const down = status({ at: 2000, term: 2, leaderId: null, nodes: [node('A', { up: false }), node('B'), node('C')] });
    api.emit({ type: 'status', status: down });
    api.emit({ type: 'status', status: status({ at: 3000, term: 2, leaderId: 'B', nodes: [node('A', { up: false }), node('B', { raftState: 'leader' }), node('C')] }) });
    api.emit({ type: 'status', status: status({ at: 4000, term: 2, leaderId: 'B', nodes: [node('A'), node('B'), node('C')] }) });
    const s = store.getState();
    expect(s.status?.leaderId).toBe('B');
    expect(s.statusHistory.map((h) => h.message)).toEqual([
      'A is leader (term 1)',
      'No leader (term 2, was A)',
      'A (host1) went down',
      'B is leader (term 2)',
      'A (host1) went up',
    ]);
  });

  it('ignores an older status from the same node', () => {
    const store = createConsoleStore();
    store.getState().applyStatus(status({ at: 5000, term: 3 }));
    store.getState().applyStatus(status({ at: 4000, term: 2 }));
    expect(store.getState().status?.term).toBe(3);
  });

  it('diffStatus reports nothing when nothing changed', () => {
    expect(diffStatus(status(), status({ at: 2000 }))).toEqual([]);
  });
});

describe('files slice', () => {
  it('follows files events, sorted, without deleted entries', async () => {
    const { api, store } = setup();
    await flush();
    api.emit({
      type: 'files',
      files: [
        file('z.txt'),
        file('b.txt', { lock: { path: 'b.txt', mode: 'exclusive', holders: ['B'], host: 'h', user: 'u', since: 1, fencingToken: 7 } }),
        file('a.txt', { deleted: true, version: 2 }),
      ],
    });
    const files = store.getState().files;
    expect(files.map((f) => f.path)).toEqual(['b.txt', 'z.txt']);
    expect(files[0]?.lock?.holders).toEqual(['B']);
  });

  it('tracks upload progress', () => {
    const store = createConsoleStore();
    const id = store.getState().startUpload('x.bin', 10);
    store.getState().updateUpload(id, { phase: 'uploading', progress: 1 });
    expect(store.getState().uploads[0]).toMatchObject({ path: 'x.bin', phase: 'uploading', progress: 1 });
    store.getState().updateUpload(id, { phase: 'done' });
    store.getState().clearFinishedUploads();
    expect(store.getState().uploads).toHaveLength(0);
  });
});

describe('compute slice', () => {
  it('updates jobs from events and toasts once when one finishes', async () => {
    const { api, store } = setup();
    await flush();
    store.getState().applyJob(job('j2'));
    api.emit({ type: 'job', job: job('j2', { state: 'running' }) });
    expect(store.getState().jobs['j2']?.state).toBe('running');
    api.emit({ type: 'job', job: job('j2', { state: 'done', result: [1, 2, 3], op: 'sort' }) });
    api.emit({ type: 'job', job: job('j2', { state: 'done', result: [1, 2, 3], op: 'sort' }) });
    const s = store.getState();
    expect(s.jobs['j2']?.result).toEqual([1, 2, 3]);
    expect(s.toasts).toHaveLength(1);
    expect(s.toasts[0]).toMatchObject({ level: 'success', title: 'Job j2 done', message: 'sort → [1,2,3]' });
  });

  it('never moves a finished job back, and toasts failures', () => {
    const store = createConsoleStore();
    store.getState().applyJob(job('j3', { state: 'failed', error: { name: 'RoutingError', code: 'EROUTE', message: 'hop limit' } }));
    store.getState().applyJob(job('j3', { state: 'running' }));
    expect(store.getState().jobs['j3']?.state).toBe('failed');
    expect(store.getState().toasts[0]).toMatchObject({ level: 'error', message: 'hop limit (EROUTE)' });
  });

  it('toasts a known job that finished while disconnected', () => {
    const store = createConsoleStore();
    store.getState().applyJob(job('j4'));
    store.getState().setJobs([job('j4', { state: 'done', result: 9 }), job('old', { state: 'done', result: 1 })]);
    expect(store.getState().toasts.map((t) => t.title)).toEqual(['Job j4 done']);
  });
});

describe('activity slice', () => {
  it('keeps the last 200 entries', async () => {
    const { api, store } = setup();
    await flush();
    for (let i = 0; i < ACTIVITY_LIMIT + 10; i++) api.emit({ type: 'activity', entry: entry(`e${i}`, { at: 2000 + i }) });
    const log = store.getState().activity;
    expect(log).toHaveLength(ACTIVITY_LIMIT);
    expect(log[log.length - 1]?.message).toBe(`e${ACTIVITY_LIMIT + 9}`);
  });
});

describe('sync issues (conflicts, problems, history)', () => {
  const conflict = { copy: 'a.sync-conflict-20260101-000000-B.txt', original: 'a.txt', originalExists: true, copyBy: 'B', copyModifiedAt: 1, copySize: 3 };
  const problem = { path: 'bad:name.txt', kind: 'invalid-name' as const, reason: 'character ":" is not allowed on Windows', source: 'local' as const, since: 1 };

  it('loads conflicts and problems on open and reloads them after files events', async () => {
    vi.useFakeTimers();
    try {
      const api = createFakeApi('connecting');
      api.handle('listConflicts', [conflict]);
      api.handle('listProblems', [problem]);
      const store = createConsoleStore();
      connectStore(store, api);
      api.setConnection('open');
      await vi.advanceTimersByTimeAsync(0);
      expect(store.getState().conflicts).toEqual([conflict]);
      expect(store.getState().problems).toEqual([problem]);
      api.handle('listConflicts', []);
      api.emit({ type: 'files', files: [file('a.txt')] });
      api.emit({ type: 'files', files: [file('a.txt')] });
      await vi.advanceTimersByTimeAsync(ISSUES_RELOAD_MS + 10);
      expect(store.getState().conflicts).toEqual([]);
      expect(api.calls.filter((c) => c.method === 'listConflicts')).toHaveLength(2); // two events, one reload
      expect(api.calls.some((c) => c.method === 'fileHistory')).toBe(false); // no panel open
      // With the History panel open, files events refresh it too (a restore commits after its call returns).
      api.handle('fileHistory', (p) => ({ path: p.path, history: [], versions: [{ id: '20260101-000000', path: p.path, size: 1, keptAt: 0 }], locks: [] }));
      store.getState().openHistory('a.txt');
      api.emit({ type: 'files', files: [file('a.txt')] });
      await vi.advanceTimersByTimeAsync(ISSUES_RELOAD_MS + 10);
      expect(store.getState().history?.versions).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the lists when the node does not know the calls, without a toast', async () => {
    const { store } = setup(); // listConflicts/listProblems unscripted: ENOSYS
    store.getState().setProblems([problem]);
    await flush();
    expect(store.getState().problems).toEqual([problem]);
    expect(store.getState().toasts).toHaveLength(0);
  });

  it('drops a history answer for a panel switched meanwhile', () => {
    const store = createConsoleStore();
    store.getState().openHistory('a.txt');
    store.getState().openHistory('b.txt');
    store.getState().setHistory({ path: 'a.txt', history: [], versions: [], locks: [] });
    expect(store.getState().history).toBeNull();
    store.getState().setHistory({ path: 'b.txt', history: [], versions: [], locks: [] });
    expect(store.getState().history?.path).toBe('b.txt');
    store.getState().closeHistory();
    expect(store.getState().historyPath).toBeNull();
  });
});
