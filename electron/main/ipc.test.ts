import { describe, expect, it } from 'vitest';
import { parseCall } from '../../core/control/schema';
import { answerIpcCall } from './ipc';

// The node's own validation (parseCall) in front of a handler that records what got through.
const seen: unknown[] = [];
const node = {
  async call(method: never, params: unknown) {
    const c = parseCall(method, params);
    seen.push(c);
    return { echoed: c.method };
  },
};

describe('IPC answers from the main process', () => {
  it('refuses calls from frames that are not our window', async () => {
    const r = await answerIpcCall(false, node as never, 'status', {});
    expect(r).toEqual({ ok: false, error: expect.objectContaining({ code: 'EAUTH' }) });
    expect(seen).toEqual([]);
  });
  it('says the node is starting when it is not up yet', async () => {
    expect(await answerIpcCall(true, null, 'status', {})).toEqual({ ok: false, error: expect.objectContaining({ code: 'EUNAVAILABLE' }) });
  });
  it('turns malformed calls into typed errors, never exceptions', async () => {
    for (const [method, params] of [
      ['eval', {}],
      [{ toString: 1 }, {}],
      ['request', { op: 'sort', values: [1, 'x'] }],
      ['upload', { path: 'a', dataBase64: '@@@' }],
      ['lock', null],
    ] as const) {
      const r = await answerIpcCall(true, node as never, method, params);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('EINVAL');
    }
    expect(seen).toEqual([]);
  });
  it('passes valid calls through', async () => {
    expect(await answerIpcCall(true, node as never, 'status', {})).toEqual({ ok: true, result: { echoed: 'status' } });
  });
});
