/**
 * Clients of the client KV API (`core/proto/kv.proto`) of a remote node:
 * - {@link KvClient}: Range/Put/DeleteRange/Txn pipelined over one `KV.Stream` session;
 * - {@link watchRemote}: a watch that survives lost connections (server restart, node restart,
 *   network loss).
 *
 * Watch:
 *
 * Like etcd's clientv3 watcher, it remembers the last revision it delivered and, when the stream
 * breaks, opens a new one with `start_revision = last + 1` (backing off 100 ms → 2 s while the
 * server is unreachable). The server replays the events it kept from that revision, so no event
 * is lost; a batch whose revision is not above the last delivered one is dropped, so none is
 * delivered twice. When the resume revision has been compacted away on the server (its watch
 * history no longer reaches back that far: etcd's `ErrCompacted`), the watch ends and `onError`
 * receives a {@link CompactedError} whose `detail` names `requested` and `compactRevision` (the
 * oldest revision still available); the caller re-reads the range and watches from there.
 */
import * as grpc from '@grpc/grpc-js';
import { CompactedError, TimeoutError, UnavailableError, ValidationError, decodeWireError } from '../common/errors';
import type { KeyValue, WatchEvent } from '../kv/types';
import { ERROR_CODE_METADATA, STREAM_MAX_IN_FLIGHT, kvProto } from './kv-service';

export interface RemoteWatchOptions {
  /** Deliver events with revision >= this first (0/absent: only events after the watch starts). */
  fromRevision?: number;
  /** Also deliver `prevKv` on each event. */
  prevKv?: boolean;
  /** Terminal errors: CompactedError (resume revision compacted), ValidationError (refused request). The watch is over after it. */
  onError?: (err: Error) => void;
  /** Connection changes: `connected` when a stream is established, `disconnected` (with the cause) when it broke and a retry is scheduled; `address` is the node concerned. */
  onConnection?: (state: 'connected' | 'disconnected', detail: { resumeFrom: number; cause?: string; address?: string }) => void;
  /** Retry back-off bounds in ms (default 100 and 2000). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface RemoteWatcher {
  /** Stops the watch and closes its channel. Idempotent. */
  cancel(): void;
  /** The last revision delivered (or known to be covered), 0 before the first stream started. */
  lastRevision(): number;
}

type Obj = Record<string, unknown>;

function kvIn(o: Obj): KeyValue {
  return {
    key: String(o.key ?? ''),
    value: String(o.value ?? ''),
    createRevision: Number(o.createRevision ?? 0),
    modRevision: Number(o.modRevision ?? 0),
    version: Number(o.version ?? 0),
    lease: Number(o.lease ?? 0),
  };
}

/** Validated endpoint list of a client: one `host:port` or several (nodes of one cluster). */
function endpointsOf(address: string | readonly string[]): string[] {
  const list = typeof address === 'string' ? [address] : [...address];
  if (list.length === 0 || list.some((a) => typeof a !== 'string' || !/^[^\s/]+:\d{1,5}$/.test(a))) {
    throw new ValidationError(`address must be host:port or a non-empty list of them, got ${JSON.stringify(address)}`);
  }
  return list;
}

/**
 * Watches keys under `prefix` on the node at `address` (`host:port`, its peer/gRPC port) — or on
 * any of several nodes of one cluster: the watch resumes on the next one when a stream breaks —
 * calling `listener(events, revision)` once per revision, in revision order, exactly once per
 * revision across reconnects. See the module comment for resume and compaction; with several
 * nodes, a resume revision one node no longer keeps (it caught up by a snapshot, or compacted)
 * is asked of the others, and the watch ends with a CompactedError only when every node says so.
 * @throws ValidationError for an empty prefix, a negative/non-integer fromRevision, or a malformed address.
 */
export function watchRemote(address: string | readonly string[], prefix: string, listener: (events: WatchEvent[], revision: number) => void, options: RemoteWatchOptions = {}): RemoteWatcher {
  const endpoints = endpointsOf(address);
  if (typeof prefix !== 'string' || prefix.length === 0) throw new ValidationError('watch prefix must be a non-empty string');
  const from = options.fromRevision ?? 0;
  if (!Number.isSafeInteger(from) || from < 0) throw new ValidationError(`fromRevision must be a non-negative integer, got ${from}`);
  const minMs = options.retryMinMs ?? 100;
  const maxMs = options.retryMaxMs ?? 2000;
  const { Watch } = kvProto();
  const clients = new Map<string, { Watch: (req: Obj) => grpc.ClientReadableStream<Obj>; close(): void }>();
  const clientOf = (a: string) => {
    let c = clients.get(a);
    if (!c) clients.set(a, (c = new Watch(a, grpc.credentials.createInsecure())));
    return c!;
  };
  /** Endpoint the next stream opens on. */
  let at = 0;
  /** Oldest revision each endpoint still keeps, for endpoints that answered "compacted" for the current resume revision. */
  const compactedAt = new Map<string, number>();
  /** Last revision delivered; null = unknown yet (fromRevision 0 and no stream created). */
  let last: number | null = from > 0 ? from - 1 : null;
  let stream: grpc.ClientReadableStream<Obj> | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let delay = minMs;
  let done = false;

  const finish = (err?: Error): void => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    stream?.cancel();
    stream = null;
    for (const c of clients.values()) c.close();
    if (err) options.onError?.(err);
  };

  const retry = (cause: string): void => {
    if (done || timer) return;
    options.onConnection?.('disconnected', { resumeFrom: last === null ? from : last + 1, cause, address: endpoints[at]! });
    at = (at + 1) % endpoints.length;
    timer = setTimeout(() => {
      timer = null;
      open();
    }, delay);
    // Back off once every endpoint failed in a row.
    if (at === 0) delay = Math.min(maxMs, delay * 2);
  };

  const open = (): void => {
    if (done) return;
    const start = last === null ? 0 : last + 1;
    const address = endpoints[at]!;
    const s = clientOf(address).Watch({ prefix, startRevision: start, prevKv: !!options.prevKv });
    stream = s;
    let ended = false;
    const over = (cause: string): void => {
      if (ended) return;
      ended = true;
      if (stream === s) stream = null;
      retry(cause);
    };
    s.on('data', (res: Obj) => {
      if (done || stream !== s) return;
      const header = (res.header ?? {}) as Obj;
      const revision = Number(header.revision ?? 0);
      const compact = Number(res.compactRevision ?? 0);
      if (compact > 0) {
        ended = true;
        if (stream === s) stream = null;
        compactedAt.set(address, compact);
        const untried = endpoints.findIndex((e) => !compactedAt.has(e));
        if (untried < 0) {
          finish(new CompactedError(start, Math.min(...compactedAt.values())));
          return;
        }
        // Another node may still keep that history (this one caught up by a snapshot).
        options.onConnection?.('disconnected', { resumeFrom: start, cause: `${address} no longer keeps revision ${start} (oldest ${compact})`, address });
        at = untried;
        s.cancel();
        open();
        return;
      }
      if (res.created) {
        delay = minMs;
        if (last === null) last = revision;
        options.onConnection?.('connected', { resumeFrom: start, address });
        return;
      }
      // Already delivered (a replay overlapping what we saw): drop, never deliver twice.
      if (last !== null && revision <= last) return;
      const events = ((res.events ?? []) as Obj[]).map((e): WatchEvent => ({ type: e.type === 'DELETE' ? 'delete' : 'put', kv: kvIn((e.kv ?? {}) as Obj), ...(e.prevKv ? { prevKv: kvIn(e.prevKv as Obj) } : {}) }));
      last = revision;
      compactedAt.clear(); // a new resume revision: every node may keep it again
      listener(events, revision);
    });
    s.on('error', (err: grpc.ServiceError) => {
      if (done || ended) return;
      const code = err.metadata?.get(ERROR_CODE_METADATA)?.[0];
      if (err.code === grpc.status.INVALID_ARGUMENT) {
        ended = true;
        finish(new ValidationError(`watch refused by ${address}: ${err.details}`, { detail: { code } }));
      } else if (err.code === grpc.status.CANCELLED && !stream) {
        ended = true; // our own cancel
      } else {
        over(`${grpc.status[err.code] ?? err.code}: ${err.details}`);
      }
    });
    s.on('end', () => over('stream ended by the server'));
  };

  open();
  return {
    cancel: () => finish(),
    lastRevision: () => last ?? 0,
  };
}

// ---- KvClient: pipelined requests over KV.Stream ------------------------------------------------

export interface KvClientOptions {
  /** Default deadline of a request in ms (10,000); checked every 100 ms. A queued request's deadline runs while it waits. */
  timeoutMs?: number;
  /**
   * Requests sent and not yet answered, at most (default 4,096: the node's bound,
   * `STREAM_MAX_IN_FLIGHT`); later ones wait in the client, in order, until answers arrive.
   */
  maxInFlight?: number;
}

/** `header` of every answer: the store revision after the operation and the node that served it. */
export interface ResponseHeader {
  revision: number;
  member: string;
}

/** A batch of requests is sent early once this many estimated bytes are pending (the node accepts 4 MiB messages). */
const BATCH_BYTES = 1 << 20;

interface Pending {
  resolve: (v: Obj) => void;
  reject: (e: Error) => void;
  deadline: number;
  op: string;
}

/**
 * A client of one node's KV API that pipelines requests over one `KV.Stream` session (one
 * HTTP/2 stream): each request is tagged with an id and answered by id, and the requests made in
 * one turn of the event loop travel as one message (the node batches its answers the same way),
 * so concurrent callers share messages instead of each paying a unary call's HTTP/2 stream,
 * headers and deadline timer (compare `npm run bench -- kv-put` with `--unary`).
 * Semantics are those of the unary RPCs; a follower forwards writes to the Raft leader.
 *
 * Errors (promise rejections): the node's typed error rebuilt with `decodeWireError` (its `code`, `name` and `detail`:
 * EINVAL for a refused request, ENOTLEADER/EUNAVAILABLE when there is no leader, ...);
 * TimeoutError (ETIMEDOUT) after `timeoutMs` — the request may still take effect;
 * UnavailableError (EUNAVAILABLE, `detail.outcome = 'unknown'`) when the session broke with the
 * request in flight — it may or may not have taken effect (as for a unary call whose connection
 * broke); the next request opens a new session. ValidationError for arguments refused locally.
 */
export class KvClient {
  private stream: grpc.ClientDuplexStream<Obj, Obj> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Ids sent on the current session and not answered yet (timed-out ones too: the node still counts them). */
  private readonly sent = new Set<number>();
  /** Requests waiting for the in-flight bound, oldest first. */
  private readonly queued: { id: number; op: string; body: Obj }[] = [];
  private readonly maxInFlight: number;
  /** Requests of this turn not yet sent, and the session they are for. */
  private batch: { stream: grpc.ClientDuplexStream<Obj, Obj>; requests: Obj[]; bytes: number } | null = null;
  private sweep: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private readonly timeoutMs: number;

  private readonly endpoints: string[];
  private at = 0;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly channels = new Map<string, any>();

  /**
   * `address`: a node's peer/gRPC `host:port`, or several nodes of one cluster: each session
   * opens on one of them, and the next session (after a break) on the next one.
   * @throws ValidationError for a malformed address, timeout or bound.
   */
  constructor(
    address: string | readonly string[],
    options: KvClientOptions = {},
  ) {
    this.endpoints = endpointsOf(address);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxInFlight = options.maxInFlight ?? STREAM_MAX_IN_FLIGHT;
    if (!Number.isSafeInteger(this.maxInFlight) || this.maxInFlight < 1) throw new ValidationError(`maxInFlight must be a positive integer, got ${options.maxInFlight}`);
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) throw new ValidationError(`timeoutMs must be a positive number, got ${options.timeoutMs}`);
  }

  /** The node the current (or next) session is with. */
  get address(): string {
    return this.endpoints[this.at]!;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private channel(address: string): any {
    let c = this.channels.get(address);
    if (!c) {
      const { KV } = kvProto();
      c = new KV(address, grpc.credentials.createInsecure(), {
        'grpc.initial_reconnect_backoff_ms': 50,
        'grpc.min_reconnect_backoff_ms': 50,
        'grpc.max_reconnect_backoff_ms': 500,
        'grpc.enable_channelz': 0,
        // Answers of one turn share a message: a large range must not break the session (grpc-js's
        // default limit is 4 MiB; etcd's client accepts up to 2 GiB).
        'grpc.max_receive_message_length': 256 << 20,
      });
      this.channels.set(address, c);
    }
    return c;
  }

  /** Puts `value` at `key`; resolves with the revision of the write (and the previous pair when `prevKv`). */
  async put(key: string, value: string, options: { lease?: number; prevKv?: boolean; timeoutMs?: number } = {}): Promise<{ header: ResponseHeader; prevKv?: KeyValue }> {
    const res = await this.request('put', { key, value, lease: options.lease ?? 0, prevKv: !!options.prevKv }, options.timeoutMs);
    return { header: headerIn(res.header), ...(res.prevKv ? { prevKv: kvIn(res.prevKv as Obj) } : {}) };
  }

  /** Reads `key` (or every key under it with `prefix`); linearizable unless `serializable`. */
  async range(key: string, options: { prefix?: boolean; limit?: number; serializable?: boolean; timeoutMs?: number } = {}): Promise<{ header: ResponseHeader; kvs: KeyValue[]; more: boolean; count: number }> {
    const res = await this.request('range', { key, prefix: !!options.prefix, limit: options.limit ?? 0, serializable: !!options.serializable }, options.timeoutMs);
    return { header: headerIn(res.header), kvs: ((res.kvs ?? []) as Obj[]).map(kvIn), more: !!res.more, count: Number(res.count ?? 0) };
  }

  /** Deletes `key` (or every key under it with `prefix`); resolves with how many were deleted. */
  async deleteRange(key: string, options: { prefix?: boolean; timeoutMs?: number } = {}): Promise<{ header: ResponseHeader; deleted: number }> {
    const res = await this.request('deleteRange', { key, prefix: !!options.prefix }, options.timeoutMs);
    return { header: headerIn(res.header), deleted: Number(res.deleted ?? 0) };
  }

  /**
   * A txn in the wire shape of `TxnRequest` (camelCase: `{ compare: [{ key, target, result,
   * version | createRevision | modRevision | value | lease }], success: [{ requestPut: {...} }, ...],
   * failure: [...] }`); resolves with `succeeded` and the wire-shaped `ResponseOp`s.
   */
  async txn(req: { compare?: Obj[]; success?: Obj[]; failure?: Obj[] }, options: { timeoutMs?: number } = {}): Promise<{ header: ResponseHeader; succeeded: boolean; responses: Obj[] }> {
    const res = await this.request('txn', { compare: req.compare ?? [], success: req.success ?? [], failure: req.failure ?? [] }, options.timeoutMs);
    return { header: headerIn(res.header), succeeded: !!res.succeeded, responses: (res.responses ?? []) as Obj[] };
  }

  /** Requests not answered yet (sent, or queued behind `maxInFlight`). */
  inFlight(): number {
    return this.pending.size;
  }

  /** Ends the session (requests in flight are rejected with UnavailableError) and closes the channel. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.breakSession('the client was closed');
    for (const c of this.channels.values()) c.close();
  }

  private request(op: string, body: Obj, timeoutMs = this.timeoutMs): Promise<Obj> {
    if (this.closed) return Promise.reject(new UnavailableError(`KV client of ${this.address} is closed`));
    const id = this.nextId++;
    return new Promise<Obj>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + timeoutMs, op });
      this.sweep ??= setInterval(() => this.expire(), 100);
      if (this.sent.size >= this.maxInFlight) this.queued.push({ id, op, body });
      else this.send(id, op, body);
    });
  }

  /** Adds a request to this turn's batch of the session (opening one if needed). */
  private send(id: number, op: string, body: Obj): void {
    const stream = this.stream ?? this.open();
    this.sent.add(id);
    let batch = this.batch;
    if (!batch) {
      const b = (batch = this.batch = { stream, requests: [], bytes: 0 });
      // After the other requests of this turn (callers resuming from the same answers are microtasks of one turn).
      process.nextTick(() => this.flush(b));
    }
    batch.requests.push({ id, [op]: body });
    batch.bytes += 32 + String(body.key ?? '').length + String(body.value ?? '').length + (op === 'txn' ? JSON.stringify(body).length : 0);
    if (batch.bytes >= BATCH_BYTES) this.flush(batch);
  }

  /** Sends queued requests (those still waiting for an answer) while the node's in-flight bound allows. */
  private dequeue(): void {
    while (this.queued.length > 0 && this.sent.size < this.maxInFlight) {
      const q = this.queued.shift()!;
      if (this.pending.has(q.id)) this.send(q.id, q.op, q.body);
    }
  }

  /** Sends a batch of requests as one StreamRequestBatch (once; a batch of a broken session is dropped: its requests were rejected). */
  private flush(batch: { stream: grpc.ClientDuplexStream<Obj, Obj>; requests: Obj[] }): void {
    if (this.batch === batch) this.batch = null;
    if (batch.requests.length === 0 || this.stream !== batch.stream) return;
    const requests = batch.requests;
    batch.requests = [];
    batch.stream.write({ requests });
  }

  private open(): grpc.ClientDuplexStream<Obj, Obj> {
    const s = this.channel(this.address).Stream() as grpc.ClientDuplexStream<Obj, Obj>;
    this.stream = s;
    s.on('data', (batch: Obj) => {
      for (const res of (batch.responses ?? []) as Obj[]) {
        const id = Number(res.id ?? 0);
        this.sent.delete(id);
        const p = this.pending.get(id);
        if (!p) continue; // timed out meanwhile, or a stray answer
        this.pending.delete(id);
        const err = res.response === 'error' ? decodeWireError(res.error as Obj) : null;
        if (err) p.reject(err);
        else p.resolve((res[p.op] ?? {}) as Obj);
      }
      if (this.pending.size === 0) this.stopSweep();
      this.dequeue();
    });
    const broke = (cause: string): void => {
      if (this.stream !== s) return;
      this.breakSession(cause);
    };
    s.on('error', (err: grpc.ServiceError) => broke(`${grpc.status[err.code] ?? err.code}: ${err.details}`));
    s.on('end', () => broke('the node ended the session'));
    return s;
  }

  /** Rejects every request in flight (outcome unknown) and forgets the session; the next request opens a new one. */
  private breakSession(cause: string): void {
    const s = this.stream;
    const address = this.address;
    this.stream = null;
    if (s) this.at = (this.at + 1) % this.endpoints.length; // the next session tries the next node
    this.batch = null;
    this.sent.clear();
    this.queued.length = 0;
    if (s) {
      s.removeAllListeners('data');
      s.on('error', () => undefined);
      s.cancel();
    }
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.stopSweep();
    for (const p of pending) p.reject(new UnavailableError(`KV session with ${address} broke with the ${p.op} in flight (${cause}); it may or may not have taken effect`, { detail: { outcome: 'unknown', address } }));
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      p.reject(new TimeoutError(`${p.op} on ${this.address} not answered within its deadline; it may still take effect`, { detail: { address: this.address } }));
    }
    if (this.pending.size === 0) this.stopSweep();
  }

  private stopSweep(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
  }
}

function headerIn(h: unknown): ResponseHeader {
  const o = (h ?? {}) as Obj;
  return { revision: Number(o.revision ?? 0), member: String(o.member ?? '') };
}

