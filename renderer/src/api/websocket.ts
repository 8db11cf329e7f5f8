/**
 * WebSocket transport for the browser console: `ws(s)://HOST/control?token=TOKEN`, JSON {@link ControlFrame}s.
 *
 * - Calls are `{kind:'call', id, method, params}`; replies `result` / `error` are paired by `id`. A `WireError`
 *   rejects the call with a {@link ControlCallError} carrying its `code` and `name`.
 * - Calls made while (re)connecting are queued and sent once the socket opens; every call times out after
 *   `callTimeoutMs`. Calls already sent when the socket drops reject with `ECONNLOST` (they may or may not
 *   have been applied).
 * - On close it reconnects with capped exponential backoff and jitter. After `attemptsPerEndpoint` failed tries
 *   on one endpoint it fails over to the consoles of the other up nodes of the last `status` event
 *   (`ws://${hostname}:${consolePort}/control?token=…`), round-robin, and stays on whichever answers.
 */
import type {
  ClusterStatus,
  ControlApi,
  ControlEvent,
  ControlFrame,
  ControlMethod,
  ParamsOf,
  ResultOf,
} from '../../../core/control/api';
import { ControlCallError, connectionError } from './errors';

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** The part of the DOM `WebSocket` this transport uses (so tests can pass a fake). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export interface WsApiOptions {
  /** First endpoint, e.g. `ws://127.0.0.1:7400/control?token=abc`. */
  url: string;
  /** Console token, reused for failover endpoints. */
  token: string;
  /** Host name failover endpoints are built on (the page's `location.hostname`). */
  hostname: string;
  /** `wss` instead of `ws` for failover endpoints. */
  secure?: boolean;
  /** Creates sockets; defaults to the global `WebSocket`. */
  createSocket?: WebSocketFactory;
  /** First reconnect delay in ms (default 250), doubled per failure up to `maxBackoffMs` (default 5000). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Failed tries on one endpoint before trying the next (default 2). */
  attemptsPerEndpoint?: number;
  /** Per-call deadline in ms, including time spent waiting for a connection (default 120 000). */
  callTimeoutMs?: number;
  /** Source of jitter in [0, 1) (default Math.random). */
  random?: () => number;
}

/** A {@link ControlApi} over WebSocket that also exposes its connection state and current endpoint. */
export interface WsControlApi extends ControlApi {
  readonly state: ConnectionState;
  /** The endpoint currently used (or being tried). */
  readonly endpoint: string;
  /** Closes the socket for good and rejects every pending call. */
  close(): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
  /** The serialized frame, kept until sent. */
  frame: string | null;
}

const OPEN = 1;

/** Builds a console endpoint URL for `host:port`. */
export function controlUrl(secure: boolean, hostPort: string, token: string): string {
  return `${secure ? 'wss' : 'ws'}://${hostPort}/control?token=${encodeURIComponent(token)}`;
}

/**
 * Endpoints to fail over to, from the last status: the consoles of up nodes other than the one serving us.
 * `consolePort` is read defensively (older nodes may not send it).
 */
export function failoverUrls(status: ClusterStatus | null, hostname: string, secure: boolean, token: string): string[] {
  if (!status) return [];
  const urls: string[] = [];
  for (const node of status.nodes) {
    const port = (node as { consolePort?: unknown }).consolePort;
    if (node.id === status.self || !node.up || typeof port !== 'number' || port <= 0) continue;
    urls.push(controlUrl(secure, `${hostname}:${port}`, token));
  }
  return urls;
}

/** Opens the WebSocket transport (connecting immediately). */
export function createWsApi(options: WsApiOptions): WsControlApi {
  const createSocket: WebSocketFactory =
    options.createSocket ?? ((url) => new WebSocket(url) as unknown as WebSocketLike);
  const initialBackoff = options.initialBackoffMs ?? 250;
  const maxBackoff = options.maxBackoffMs ?? 5000;
  const perEndpoint = Math.max(1, options.attemptsPerEndpoint ?? 2);
  const callTimeout = options.callTimeoutMs ?? 120_000;
  const random = options.random ?? Math.random;
  const secure = options.secure ?? options.url.startsWith('wss:');

  const eventListeners = new Set<(event: ControlEvent) => void>();
  const connectionListeners = new Set<(state: ConnectionState) => void>();
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let state: ConnectionState = 'connecting';
  let socket: WebSocketLike | null = null;
  /** The endpoint that last worked (initially the page's own). */
  let home = options.url;
  let endpoint = options.url;
  let failures = 0;
  let lastStatus: ClusterStatus | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let disposed = false;

  function setState(next: ConnectionState): void {
    if (state === next) return;
    state = next;
    for (const l of [...connectionListeners]) l(next);
  }

  function flush(): void {
    if (!socket || socket.readyState !== OPEN) return;
    for (const p of pending.values()) {
      if (p.frame !== null) {
        socket.send(p.frame);
        p.frame = null;
      }
    }
  }

  function settle(id: number): Pending | undefined {
    const p = pending.get(id);
    if (p) {
      clearTimeout(p.timer);
      pending.delete(id);
    }
    return p;
  }

  function onFrame(raw: unknown): void {
    let frame: ControlFrame;
    try {
      frame = JSON.parse(typeof raw === 'string' ? raw : String(raw)) as ControlFrame;
    } catch {
      console.warn('clusterdesk: ignoring a malformed frame');
      return;
    }
    switch (frame.kind) {
      case 'result':
        settle(frame.id)?.resolve(frame.result);
        break;
      case 'error':
        settle(frame.id)?.reject(new ControlCallError(frame.error));
        break;
      case 'event':
        if (frame.event.type === 'status') lastStatus = frame.event.status;
        for (const l of [...eventListeners]) l(frame.event);
        break;
      default:
        break;
    }
  }

  /** Order of endpoints to try: the last good one first, then the other nodes' consoles. */
  function candidates(): string[] {
    const list = [home, ...failoverUrls(lastStatus, options.hostname, secure, options.token)];
    return [...new Set(list)];
  }

  function connect(url: string): void {
    if (disposed) return;
    endpoint = url;
    setState('connecting');
    let ws: WebSocketLike;
    try {
      ws = createSocket(url);
    } catch {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = () => {
      if (socket !== ws) return;
      failures = 0;
      home = url;
      setState('open');
      flush();
    };
    ws.onmessage = (ev) => {
      if (socket === ws) onFrame(ev.data);
    };
    ws.onerror = () => {};
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      for (const [id, p] of [...pending]) {
        if (p.frame === null) settle(id)?.reject(connectionError('ECONNLOST', 'connection to the node was lost; the call may or may not have been applied'));
      }
      setState('closed');
      scheduleReconnect();
    };
  }

  function scheduleReconnect(): void {
    if (disposed || retryTimer) return;
    failures += 1;
    const exp = Math.min(maxBackoff, initialBackoff * 2 ** Math.min(failures - 1, 16));
    const delay = Math.round(exp * (0.5 + random() * 0.5));
    const list = candidates();
    const url = list[Math.floor(failures / perEndpoint) % list.length] ?? home;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect(url);
    }, delay);
  }

  connect(options.url);

  return {
    get state() {
      return state;
    },
    get endpoint() {
      return endpoint;
    },
    call<M extends ControlMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
      if (disposed) return Promise.reject(connectionError('ECONNCLOSED', 'the console connection is closed'));
      const id = nextId++;
      const frame = JSON.stringify({ kind: 'call', id, method, params } satisfies ControlFrame);
      return new Promise<ResultOf<M>>((resolve, reject) => {
        const timer = setTimeout(() => {
          settle(id)?.reject(connectionError('ETIMEDOUT', `${method} got no answer within ${Math.round(callTimeout / 1000)} s`));
        }, callTimeout);
        // A `status` answer also feeds failover, so a node killed before its first status event
        // (pushed once a second) still leaves the other consoles to reconnect to.
        const onResult = (v: unknown): void => {
          if (method === 'status' && v && typeof v === 'object') lastStatus = v as ClusterStatus;
          resolve(v as ResultOf<M>);
        };
        pending.set(id, { resolve: onResult, reject, timer, frame });
        flush();
      });
    },
    onEvent(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    onConnection(listener) {
      connectionListeners.add(listener);
      listener(state);
      return () => connectionListeners.delete(listener);
    },
    close() {
      disposed = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      const ws = socket;
      socket = null;
      ws?.close();
      for (const id of [...pending.keys()]) settle(id)?.reject(connectionError('ECONNCLOSED', 'the console connection is closed'));
      setState('closed');
    },
  };
}

const TOKEN_KEY = 'clusterdesk.token';

/**
 * The console token: from the page URL's `?token=` (remembered in sessionStorage so reloads keep working),
 * else the remembered one, else ''.
 */
export function pageToken(loc: Pick<Location, 'search'>, storage: Pick<Storage, 'getItem' | 'setItem'> | null): string {
  const fromUrl = new URLSearchParams(loc.search).get('token');
  try {
    if (fromUrl) {
      storage?.setItem(TOKEN_KEY, fromUrl);
      return fromUrl;
    }
    return storage?.getItem(TOKEN_KEY) ?? '';
  } catch {
    return fromUrl ?? '';
  }
}

/** Creates the transport for a page served by a node's console (uses `location` and `sessionStorage`). */
export function createPageWsApi(): WsControlApi {
  let storage: Storage | null = null;
  try {
    storage = window.sessionStorage;
  } catch {
    storage = null;
  }
  const token = pageToken(location, storage);
  const secure = location.protocol === 'https:';
  return createWsApi({ url: controlUrl(secure, location.host, token), token, hostname: location.hostname, secure });
}
