/** Connection slice: the transport's state ('connecting' | 'open' | 'closed'). */
import type { SliceCreator } from './types';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface ConnectionSlice {
  connection: ConnectionState;
  /** Milliseconds since the Unix epoch of the last change. */
  connectionSince: number;
  /** Endpoint the transport uses, when it has one (WebSocket), e.g. after failing over to another node. */
  endpoint: string | null;
  /** Advice shown while not connected (e.g. the console token is missing). */
  connectionHint: string | null;
  setConnectionHint(hint: string | null): void;
  setConnection(state: ConnectionState, at?: number): void;
  setEndpoint(endpoint: string | null): void;
}

export const createConnectionSlice: SliceCreator<ConnectionSlice> = (set, get) => ({
  connection: 'connecting',
  connectionSince: 0,
  endpoint: null,
  connectionHint: null,
  setConnectionHint(hint) {
    set({ connectionHint: hint });
  },
  setConnection(state, at = Date.now()) {
    if (get().connection === state) return;
    set({ connection: state, connectionSince: at });
  },
  setEndpoint(endpoint) {
    if (get().endpoint !== endpoint) set({ endpoint });
  },
});
