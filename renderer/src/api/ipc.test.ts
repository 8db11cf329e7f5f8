import { describe, expect, it } from 'vitest';
import type { ControlEvent } from '../../../core/control/api';
import { createIpcApi, type ClusterDeskBridge } from './ipc';

function bridge(answer: (method: string) => Promise<unknown>): ClusterDeskBridge & { fire(e: unknown): void } {
  let cb: ((e: ControlEvent) => void) | null = null;
  return {
    call: (method) => answer(method),
    onEvent(listener) {
      cb = listener;
      return () => (cb = null);
    },
    fire(e) {
      cb?.(e as ControlEvent);
    },
  };
}

describe('ipc transport', () => {
  it('passes bare results and unwraps frames', async () => {
    const api = createIpcApi(bridge(async (m) => (m === 'status' ? { self: 'A' } : { kind: 'result', id: 1, result: [] })));
    await expect(api.call('status', {})).resolves.toEqual({ self: 'A' });
    await expect(api.call('listFiles', {})).resolves.toEqual([]);
  });

  it('rejects with code and name from error frames and thrown wire errors', async () => {
    const wire = { name: 'LockConflictError', code: 'ELOCKED', message: 'held' };
    const a = createIpcApi(bridge(async () => ({ kind: 'error', id: 1, error: wire })));
    await expect(a.call('lock', { path: 'x' })).rejects.toMatchObject(wire);
    const b = createIpcApi(
      bridge(async () => {
        throw wire;
      }),
    );
    await expect(b.call('lock', { path: 'x' })).rejects.toMatchObject(wire);
  });

  it('unwraps { ok, result | error } envelopes', async () => {
    const ok = createIpcApi(bridge(async () => ({ ok: true, result: 5 })));
    await expect(ok.call('status', {})).resolves.toBe(5);
    const wire = { name: 'PathError', code: 'EPATH', message: 'bad path' };
    const bad = createIpcApi(bridge(async () => ({ ok: false, error: wire })));
    await expect(bad.call('upload', { path: '../x', dataBase64: '' })).rejects.toMatchObject(wire);
  });

  it('is always open and forwards events, bare or framed', () => {
    const br = bridge(async () => null);
    const api = createIpcApi(br);
    const states: string[] = [];
    api.onConnection((s) => states.push(s));
    const events: ControlEvent[] = [];
    api.onEvent((e) => events.push(e));
    br.fire({ type: 'files', files: [] });
    br.fire({ kind: 'event', event: { type: 'files', files: [] } });
    expect(states).toEqual(['open']);
    expect(events).toEqual([
      { type: 'files', files: [] },
      { type: 'files', files: [] },
    ]);
  });
});
