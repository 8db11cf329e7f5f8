/**
 * A scriptable in-memory {@link ControlApi} for store and action tests: answers calls from handlers,
 * records them, and lets the test push events and connection changes.
 */
import type { ControlApi, ControlEvent, ControlMethod, ParamsOf, ResultOf } from '../../../core/control/api';
import { ControlCallError } from '../api/errors';

type Handler<M extends ControlMethod> = (params: ParamsOf<M>) => ResultOf<M> | Promise<ResultOf<M>>;

export interface FakeApi extends ControlApi {
  /** Calls made, in order. */
  calls: { method: ControlMethod; params: unknown }[];
  /** Sets the answer of a method (a value or a function of params). Unset methods reject with ENOSYS. */
  handle<M extends ControlMethod>(method: M, handler: Handler<M> | ResultOf<M>): void;
  /** Makes a method reject with a wire-style error. */
  fail(method: ControlMethod, code: string, message: string, name?: string): void;
  emit(event: ControlEvent): void;
  setConnection(state: 'connecting' | 'open' | 'closed'): void;
}

export function createFakeApi(initial: 'connecting' | 'open' | 'closed' = 'open'): FakeApi {
  const handlers = new Map<ControlMethod, (params: unknown) => unknown>();
  const events = new Set<(e: ControlEvent) => void>();
  const conns = new Set<(s: 'connecting' | 'open' | 'closed') => void>();
  let state = initial;
  const api: FakeApi = {
    calls: [],
    async call<M extends ControlMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
      api.calls.push({ method, params });
      const h = handlers.get(method);
      if (!h) throw new ControlCallError({ name: 'NotImplemented', code: 'ENOSYS', message: `${method} not scripted` });
      return (await h(params)) as ResultOf<M>;
    },
    onEvent(l) {
      events.add(l);
      return () => events.delete(l);
    },
    onConnection(l) {
      conns.add(l);
      l(state);
      return () => conns.delete(l);
    },
    handle(method, handler) {
      handlers.set(method, typeof handler === 'function' ? (handler as (p: unknown) => unknown) : () => handler);
    },
    fail(method, code, message, name = 'RemoteError') {
      handlers.set(method, () => {
        throw new ControlCallError({ name, code, message });
      });
    },
    emit(event) {
      for (const l of [...events]) l(event);
    },
    setConnection(next) {
      state = next;
      for (const l of [...conns]) l(next);
    },
  };
  return api;
}

/** Lets pending promise callbacks run. */
export const flush = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
