/**
 * ControlApi over WebSocket for Node callers (the CLI, tests). The browser console has its own
 * client in `renderer/src/api/ws.ts`; both speak the JSON `ControlFrame`s of `api.ts`.
 */
import WebSocket from 'ws';
import { fromWire, UnavailableError } from '../common/errors';
import type { ControlApi, ControlEvent, ControlFrame, ControlMethod, ParamsOf, ResultOf } from './api';

export interface WsControlClient extends ControlApi {
  close(): void;
}

/**
 * Opens `ws://host:port/control?token=…` and resolves when connected.
 * @throws UnavailableError when the connection is refused, times out (default 3 s) or is unauthorized.
 */
export function connectControl(url: string, options: { timeoutMs?: number } = {}): Promise<WsControlClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: options.timeoutMs ?? 3000, maxPayload: 256 << 20 });
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    const listeners = new Set<(e: ControlEvent) => void>();
    const conn = new Set<(s: 'connecting' | 'open' | 'closed') => void>();
    let nextId = 1;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      resolve(client);
    });
    ws.on('unexpected-response', (_req, res) => {
      reject(new UnavailableError(`console at ${redact(url)} refused the connection (HTTP ${res.statusCode}); check the token`));
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!opened) reject(new UnavailableError(`cannot reach console at ${redact(url)}: ${err.message}`, { cause: err }));
    });
    ws.on('close', () => {
      for (const p of pending.values()) p.reject(new UnavailableError('connection to the node was lost'));
      pending.clear();
      for (const l of conn) l('closed');
    });
    ws.on('message', (data) => {
      let frame: ControlFrame;
      try {
        frame = JSON.parse(data.toString()) as ControlFrame;
      } catch {
        return;
      }
      if (frame.kind === 'event') for (const l of listeners) l(frame.event);
      else if (frame.kind === 'result' || frame.kind === 'error') {
        const p = pending.get(frame.id);
        if (!p) return;
        pending.delete(frame.id);
        if (frame.kind === 'result') p.resolve(frame.result);
        else p.reject(fromWire(frame.error));
      }
    });
    const client: WsControlClient = {
      call<M extends ControlMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
        return new Promise<ResultOf<M>>((res, rej) => {
          if (ws.readyState !== WebSocket.OPEN) return rej(new UnavailableError('not connected'));
          const id = nextId++;
          pending.set(id, { resolve: res as (v: unknown) => void, reject: rej });
          ws.send(JSON.stringify({ kind: 'call', id, method, params }));
        });
      },
      onEvent(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      onConnection(listener) {
        conn.add(listener);
        return () => conn.delete(listener);
      },
      close() {
        ws.close();
      },
    };
  });
}

function redact(url: string): string {
  return url.replace(/token=[^&]+/, 'token=…');
}
