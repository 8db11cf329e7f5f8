/**
 * The browser console server of a headless node (Syncthing-style): HTTP on 127.0.0.1 by default,
 * serving the built React console (`out/renderer`), the ControlApi over WebSocket at
 * `/control?token=TOKEN`, Prometheus metrics at `/metrics` and `/healthz`.
 *
 * Security: the WebSocket needs the cluster's console token (compared in constant time) and, when
 * a browser sends an Origin header, an origin on the same interface (127.0.0.1 / localhost /
 * the bound address). Frames are limited to `MAX_FRAME_BYTES`; malformed frames get an error
 * frame and the connection stays open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { Registry, Gauge } from 'prom-client';
import { toWire, ValidationError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { ControlFrame } from '../control/api';
import { MAX_FRAME_BYTES, parseCallFrame } from '../control/schema';
import type { ClusterNode } from './node';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** Where the built console lives: $CLUSTERDESK_RENDERER_DIR, else `out/renderer` of the checkout. */
export function rendererDir(): string | null {
  const candidates = [
    process.env.CLUSTERDESK_RENDERER_DIR,
    fileURLToPath(new URL('../../out/renderer', import.meta.url)),
    fileURLToPath(new URL('../renderer', import.meta.url)),
  ].filter((x): x is string => !!x);
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? null;
}

function tokenMatches(given: string | null, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface ConsoleServerOptions {
  node: ClusterNode;
  host: string;
  port: number;
  token: string;
  logger: Logger;
}

export async function startConsoleServer(opts: ConsoleServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const { node, token, logger } = opts;
  const staticDir = rendererDir();
  const registry = buildMetrics(node);
  const server = createServer((req, res) => {
    handleHttp(req, res, staticDir, registry).catch((err: Error) => {
      logger.warn({ err: err.message }, 'http request failed');
      if (!res.headersSent) res.writeHead(500).end('internal error');
    });
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const origin = req.headers.origin;
    const originOk = !origin || isLocalOrigin(origin, opts.host);
    if (url.pathname !== '/control' || !tokenMatches(url.searchParams.get('token'), token) || !originOk) {
      logger.warn({ path: url.pathname, origin }, 'console connection refused (bad path, token or origin)');
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws, node, logger));
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const url = `http://${opts.host}:${opts.port}/?token=${token}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

function isLocalOrigin(origin: string, host: string): boolean {
  try {
    const u = new URL(origin);
    return ['127.0.0.1', 'localhost', '[::1]', host].includes(u.hostname);
  } catch {
    return false;
  }
}

function serveSocket(ws: WebSocket, node: ClusterNode, logger: Logger): void {
  const send = (frame: ControlFrame): void => {
    // A console that does not read its events is not allowed to grow our memory without bound.
    if (ws.readyState === ws.OPEN && (frame.kind !== 'event' || ws.bufferedAmount < 8 << 20)) ws.send(JSON.stringify(frame));
  };
  const off = node.onEvent((event) => send({ kind: 'event', event }));
  ws.on('close', off);
  ws.on('error', (err) => logger.debug({ err: err.message }, 'console socket error'));
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      send({ kind: 'error', id: -1, error: toWire(new ValidationError('binary frames are not accepted; send JSON text')) });
      return;
    }
    let id = -1;
    try {
      const frame = parseCallFrame(data.toString());
      id = frame.id;
      node
        .call(frame.method as never, frame.params)
        .then((result) => send({ kind: 'result', id, result }))
        .catch((err: unknown) => send({ kind: 'error', id, error: toWire(err) }));
    } catch (err) {
      send({ kind: 'error', id, error: toWire(err) });
    }
  });
}

async function handleHttp(req: IncomingMessage, res: ServerResponse, staticDir: string | null, registry: Registry): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD' }).end('method not allowed');
    return;
  }
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
    return;
  }
  if (url.pathname === '/metrics') {
    res.writeHead(200, { 'Content-Type': registry.contentType }).end(await registry.metrics());
    return;
  }
  if (!staticDir) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('The console is not built. Run `npm run build` (npm start does it for you).\n');
    return;
  }
  let rel: string;
  try {
    rel = decodeURIComponent(url.pathname);
  } catch {
    res.writeHead(400).end('bad path');
    return;
  }
  if (rel === '/' || rel === '') rel = '/index.html';
  const root = resolve(staticDir);
  const file = resolve(root, normalize('.' + rel));
  if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  });
  res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
}

/** Prometheus metrics of this node (names follow Prometheus conventions; units in the name). */
function buildMetrics(node: ClusterNode): Registry {
  const registry = new Registry();
  const g = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  g('clusterdesk_raft_term', 'Current Raft term.', () => node.kv.status().term);
  g('clusterdesk_raft_commit_index', 'Raft commit index.', () => node.kv.status().commitIndex);
  g('clusterdesk_raft_applied_index', 'Raft applied index.', () => node.kv.status().appliedIndex);
  g('clusterdesk_raft_is_leader', '1 when this node is the Raft leader.', () => (node.kv.status().role === 'leader' ? 1 : 0));
  g('clusterdesk_request_queue_depth', 'Requests waiting in the bounded queue.', () => node.compute.queue.depth);
  g('clusterdesk_requests_in_flight', 'Requests running on this node.', () => node.compute.running);
  g('clusterdesk_sync_indexed_files', 'Live files in the replicated index, as this node has seen it.', () => node.sync.indexedFiles());
  g('clusterdesk_sync_scans_completed', 'Full folder scans finished since start (startup scan and periodic rescans).', () => node.sync.scansCompleted);
  g('clusterdesk_sync_backlog_files', 'Files waiting to be downloaded or committed.', () => node.sync.backlog());
  g('clusterdesk_sync_problem_paths', 'Paths this node refuses to sync (invalid names, collisions, symlinks, too long).', () => node.sync.listProblems().length);
  g('clusterdesk_sync_conflict_copies', 'Conflict copies in the file index.', () => node.sync.listConflicts().length);
  return registry;
}
