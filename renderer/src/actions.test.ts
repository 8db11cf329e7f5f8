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
});
