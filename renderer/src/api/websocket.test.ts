import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ControlEvent } from '../../../core/control/api';
import { status, node } from '../testing/fixtures';
import { ControlCallError } from './errors';
import { createWsApi, failoverUrls, pageToken, type WebSocketLike } from './websocket';

class FakeSocket implements WebSocketLike {
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.drop();
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({});
  }
  receive(frame: unknown) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}

describe('ws transport', () => {
  let sockets: FakeSocket[];
  const last = () => sockets[sockets.length - 1]!;
  const make = () =>
    createWsApi({
      url: 'ws://127.0.0.1:7400/control?token=t0k',
      token: 't0k',
      hostname: '127.0.0.1',
      createSocket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      random: () => 0,
    });

  beforeEach(() => {
    sockets = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it('queues calls until open, pairs results and rejects wire errors with code and name', async () => {
    const api = make();
    const states: string[] = [];
    api.onConnection((s) => states.push(s));
    const p1 = api.call('status', {});
    const p2 = api.call('lock', { path: 'a' });
    expect(last().sent).toHaveLength(0);
    last().open();
    expect(last().sent).toEqual([
      { kind: 'call', id: 1, method: 'status', params: {} },
      { kind: 'call', id: 2, method: 'lock', params: { path: 'a' } },
    ]);
    last().receive({ kind: 'error', id: 2, error: { name: 'LockConflictError', code: 'ELOCKED', message: 'held by B' } });
    last().receive({ kind: 'result', id: 1, result: 42 });
    await expect(p1).resolves.toBe(42);
    const err = await p2.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlCallError);
    expect(err).toMatchObject({ code: 'ELOCKED', name: 'LockConflictError', message: 'held by B' });
    expect(states).toEqual(['connecting', 'open']);
  });

  it('delivers events and rejects in-flight calls when the socket drops, then reconnects', async () => {
    const api = make();
    const events: ControlEvent[] = [];
    api.onEvent((e) => events.push(e));
    last().open();
    last().receive({ kind: 'event', event: { type: 'files', files: [] } });
    expect(events).toEqual([{ type: 'files', files: [] }]);
    const p = api.call('listJobs', {});
    last().drop();
    await expect(p).rejects.toMatchObject({ code: 'ECONNLOST' });
    expect(api.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(200);
    expect(sockets).toHaveLength(2);
    expect(api.state).toBe('connecting');
    last().open();
    expect(api.state).toBe('open');
  });

  it('fails over to other up nodes with a console port', async () => {
    const api = make();
    last().open();
    last().receive({
      kind: 'event',
      event: {
        type: 'status',
        status: status({ self: 'A', nodes: [node('A', { consolePort: 7400 }), node('B', { consolePort: 7401 }), node('C', { consolePort: 7402, up: false }), node('D')] }),
      },
    });
    last().drop();
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(10_000);
      if (last().url.includes(':7401')) break;
      last().drop();
    }
    expect(last().url).toBe('ws://127.0.0.1:7401/control?token=t0k');
    last().open();
    expect(api.endpoint).toBe('ws://127.0.0.1:7401/control?token=t0k');
    api.close();
    expect(api.state).toBe('closed');
  });

  it('fails over using a status call result when no status event came yet', async () => {
    const api = make();
    last().open();
    const answered = api.call('status', {});
    const call = last().sent[0] as { id: number };
    last().receive({
      kind: 'result',
      id: call.id,
      result: status({ self: 'A', nodes: [node('A', { consolePort: 7400 }), node('B', { consolePort: 7401 })] }),
    });
    await answered;
    last().drop();
    for (let i = 0; i < 6; i++) {
      await vi.advanceTimersByTimeAsync(10_000);
      if (last().url.includes(':7401')) break;
      last().drop();
    }
    expect(last().url).toBe('ws://127.0.0.1:7401/control?token=t0k');
    api.close();
  });

  it('times out calls that get no answer', async () => {
    const api = createWsApi({ url: 'ws://x/control?token=a', token: 'a', hostname: 'x', createSocket: (u) => new FakeSocket(u), callTimeoutMs: 1000 });
    const p = api.call('status', {});
    const check = expect(p).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await vi.advanceTimersByTimeAsync(1001);
    await check;
    api.close();
  });
});

describe('failoverUrls and pageToken', () => {
  it('ignores self, down nodes and nodes without consolePort', () => {
    const s = status({ self: 'A', nodes: [node('A', { consolePort: 1 }), node('B', { consolePort: 2 }), node('C', { up: false, consolePort: 3 })] });
    expect(failoverUrls(s, 'h', true, 'a b')).toEqual(['wss://h:2/control?token=a%20b']);
    expect(failoverUrls(null, 'h', false, 't')).toEqual([]);
  });

  it('takes the token from the URL and remembers it', () => {
    const mem = new Map<string, string>();
    const storage = { getItem: (k: string) => mem.get(k) ?? null, setItem: (k: string, v: string) => void mem.set(k, v) };
    expect(pageToken({ search: '?token=abc' }, storage)).toBe('abc');
    expect(pageToken({ search: '' }, storage)).toBe('abc');
  });
});
