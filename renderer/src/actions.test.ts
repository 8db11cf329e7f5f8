import { describe, expect, it } from 'vitest';
import { MAX_UPLOAD_BYTES, createActions } from './actions';
import { createConsoleStore } from './stores';
import { createFakeApi } from './testing/fakeApi';
import { file, job } from './testing/fixtures';

const source = (name: string, bytes: Uint8Array, size = bytes.length) => ({
  name,
  size,
  arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
});

describe('actions', () => {
  it('uploads files as base64 under their names and tracks progress', async () => {
    const api = createFakeApi();
    api.handle('upload', (p) => ({ path: p.path, size: 3, sha256: 'x' }));
    const store = createConsoleStore();
    await createActions(api, store).uploadFiles([source('hello.txt', new TextEncoder().encode('hi!'))]);
    expect(api.calls).toEqual([{ method: 'upload', params: { path: 'hello.txt', dataBase64: 'aGkh' } }]);
    expect(store.getState().uploads[0]).toMatchObject({ path: 'hello.txt', phase: 'done' });
  });

  it('refuses files over 64 MiB without calling the node', async () => {
    const api = createFakeApi();
    const store = createConsoleStore();
    await createActions(api, store).uploadFiles([source('big.iso', new Uint8Array(0), MAX_UPLOAD_BYTES + 1)]);
    expect(api.calls).toHaveLength(0);
    expect(store.getState().uploads[0]).toMatchObject({ phase: 'error' });
    expect(store.getState().uploads[0]?.error).toContain('64 MiB');
  });

  it('shows upload errors with their code', async () => {
    const api = createFakeApi();
    api.fail('upload', 'EPATH', 'name is reserved on Windows', 'PathError');
    const store = createConsoleStore();
    await createActions(api, store).uploadFiles([source('CON', new Uint8Array([1]))]);
    expect(store.getState().uploads[0]?.error).toBe('name is reserved on Windows (EPATH)');
    expect(store.getState().toasts).toHaveLength(1);
  });

  it('locks an unlocked file and unlocks a locked one; refusals become toasts', async () => {
    const api = createFakeApi();
    api.fail('lock', 'ELOCKED', 'locked by B', 'LockConflictError');
    api.handle('unlock', (p) => ({ path: p.path, released: true }));
    const store = createConsoleStore();
    const actions = createActions(api, store);
    await actions.toggleLock(file('a.txt'));
    await actions.toggleLock(file('a.txt', { lock: { path: 'a.txt', mode: 'exclusive', holders: ['A'], host: 'h', user: 'u', since: 1, fencingToken: 1 } }));
    expect(api.calls.map((c) => c.method)).toEqual(['lock', 'unlock']);
    expect(store.getState().toasts[0]?.message).toBe('locked by B (ELOCKED)');
  });

  it('records request results and errors; omits team "any"', async () => {
    const api = createFakeApi();
    api.handle('request', (p) => ({ op: p.op, result: [...p.values].sort((a, b) => a - b), route: ['A', 'B', 'C'], durationMs: 4 }));
    const store = createConsoleStore();
    const actions = createActions(api, store);
    await actions.request('sort', [3, 1, 2], null);
    expect(api.calls[0]?.params).toEqual({ op: 'sort', values: [3, 1, 2] });
    expect(store.getState().lastResult?.result).toEqual([1, 2, 3]);
    api.fail('request', 'EOVERLOADED', 'queue full');
    await actions.request('add', [1], 'green');
    expect(api.calls[1]?.params).toEqual({ op: 'add', values: [1], team: 'green' });
    expect(store.getState().lastError).toBe('queue full (EOVERLOADED)');
    expect(store.getState().computeBusy).toBe(false);
  });

  it('adds a submitted job to the jobs map', async () => {
    const api = createFakeApi();
    api.handle('submit', job('j9'));
    const store = createConsoleStore();
    await createActions(api, store).submit('add', [1, 2], null);
    expect(store.getState().jobs['j9']?.state).toBe('queued');
  });

  it('opens a file history, restores a version (then reloads the panel) and turns refusals into toasts', async () => {
    const api = createFakeApi();
    const entry = { path: 'a.txt', version: 1, sha256: 'a'.repeat(64), size: 3, deleted: false, modifiedBy: 'B', host: 'host2', modifiedAt: 1, committedAt: 2 };
    let restored = false;
    api.handle('fileHistory', (p) => ({ path: p.path, history: restored ? [{ ...entry, version: 2, modifiedBy: 'A' }, entry] : [entry], versions: [], locks: [] }));
    api.handle('restoreVersion', (p) => {
      restored = true;
      return { path: p.path, size: 3, sha256: 'b'.repeat(64) };
    });
    const store = createConsoleStore();
    const actions = createActions(api, store);
    await actions.openHistory('a.txt');
    expect(store.getState().historyPath).toBe('a.txt');
    expect(store.getState().history?.history).toHaveLength(1);
    expect(await actions.restoreVersion('a.txt', 'v1')).toBe(true);
    expect(api.calls.map((c) => [c.method, c.params])).toEqual([
      ['fileHistory', { path: 'a.txt' }],
      ['restoreVersion', { path: 'a.txt', versionId: 'v1' }],
      ['fileHistory', { path: 'a.txt' }],
    ]);
    expect(store.getState().history?.history.map((h) => h.version)).toEqual([2, 1]);
    expect(store.getState().toasts.at(-1)).toMatchObject({ level: 'success', title: 'Restored a.txt' });

    api.fail('restoreVersion', 'ELOCKED', 'a.txt is locked by B', 'LockConflictError');
    expect(await actions.restoreVersion('a.txt', '20260101-000000')).toBe(false);
    expect(store.getState().toasts.at(-1)).toMatchObject({ level: 'error', message: 'a.txt is locked by B (ELOCKED)' });

    api.fail('fileHistory', 'EPATH', 'bad path', 'PathError');
    await actions.openHistory('CON');
    expect(store.getState().historyError).toBe('bad path (EPATH)');
    actions.closeHistory();
    expect(store.getState().historyPath).toBeNull();
  });

  it('resolves a conflict and reloads the conflict list', async () => {
    const api = createFakeApi();
    const copy = 'a.sync-conflict-20260101-000000-B.txt';
    api.handle('resolveConflict', (p) => ({ original: 'a.txt', kept: p.keep }));
    api.handle('listConflicts', []);
    api.handle('listProblems', []);
    const store = createConsoleStore();
    store.getState().setConflicts([{ copy, original: 'a.txt', originalExists: true, copyBy: 'B', copyModifiedAt: 1, copySize: 1 }]);
    const actions = createActions(api, store);
    expect(await actions.resolveConflict(copy, 'copy')).toBe(true);
    expect(api.calls[0]).toEqual({ method: 'resolveConflict', params: { path: copy, keep: 'copy' } });
    expect(api.calls.map((c) => c.method)).toContain('listConflicts');
    expect(store.getState().conflicts).toEqual([]);
    api.fail('resolveConflict', 'ENOENT', 'no such conflict copy', 'NotFoundError');
    expect(await actions.resolveConflict(copy, 'original')).toBe(false);
    expect(store.getState().toasts.at(-1)?.message).toBe('no such conflict copy (ENOENT)');
  });
});
