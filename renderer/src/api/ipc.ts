/**
 * Electron transport: wraps the narrow bridge the preload exposes as `window.clusterdesk`
 * (channels `cd:call` / `cd:event`). The bridge lives as long as the window, so the connection is always 'open'.
 *
 * Defensive about the bridge's shapes: a call may resolve with the bare result, with a `result` / `error`
 * {@link ControlFrame}, or with an `{ ok, result | error }` envelope; events may arrive bare or wrapped in an
 * `event` frame. (Resolving with the error is the reliable path: Electron's contextBridge keeps only the
 * message of a thrown Error, dropping `code` and `name`.)
 */
import type { ControlApi, ControlEvent, ControlFrame, ControlMethod, ParamsOf, ResultOf } from '../../../core/control/api';
import { ControlCallError, toCallError } from './errors';

/** What the preload exposes through `contextBridge.exposeInMainWorld('clusterdesk', …)`. */
export interface ClusterDeskBridge {
  call(method: string, params: unknown): Promise<unknown>;
  onEvent(cb: (event: ControlEvent) => void): () => void;
}

declare global {
  interface Window {
    /** Present only inside the Electron window (set by the preload). */
    clusterdesk?: ClusterDeskBridge;
  }
}

function isFrame(value: unknown): value is ControlFrame {
  return !!value && typeof value === 'object' && !Array.isArray(value) && typeof (value as { kind?: unknown }).kind === 'string' && typeof (value as { id?: unknown }).id === 'number';
}

function isEnvelope(value: unknown): value is { ok: true; result: unknown } | { ok: false; error: unknown } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as { ok?: unknown };
  return typeof v.ok === 'boolean' && (v.ok ? 'result' in value : 'error' in value);
}

/** Adapts the preload bridge to {@link ControlApi}. Rejections become `ControlCallError`s with `code`/`name`. */
export function createIpcApi(bridge: ClusterDeskBridge): ControlApi {
  return {
    async call<M extends ControlMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
      let value: unknown;
      try {
        value = await bridge.call(method, params);
      } catch (err) {
        throw toCallError(err);
      }
      if (isEnvelope(value)) {
        if (value.ok) return value.result as ResultOf<M>;
        throw toCallError(value.error);
      }
      if (isFrame(value)) {
        if (value.kind === 'error') throw new ControlCallError(value.error);
        if (value.kind === 'result') return value.result as ResultOf<M>;
      }
      return value as ResultOf<M>;
    },
    onEvent(listener) {
      return bridge.onEvent((raw) => {
        const wrapped = raw as unknown as { kind?: unknown; event?: ControlEvent };
        listener(wrapped.kind === 'event' && wrapped.event ? wrapped.event : raw);
      });
    },
    onConnection(listener) {
      listener('open');
      return () => {};
    },
  };
}
