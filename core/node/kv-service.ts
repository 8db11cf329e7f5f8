/**
 * gRPC adapter of the client KV API (`core/proto/kv.proto`): etcd-shaped services `KV`
 * (Range/Put/DeleteRange/Txn), `Lease` (Grant/KeepAlive/Revoke), `Watch` (server-streaming, from a
 * revision; the resuming client is `./kv-client.ts`) and `Maintenance.Status`
 * over any {@link ReplicatedKV} (the node's `EmbeddedKv`; `MemoryKv` in tests).
 *
 * Every request is untrusted: {@link parseRange}, {@link parsePut}, {@link parseTxn}, … check
 * each field (types, sizes, enum values, the compare's union member matching its target, txn
 * size) and throw ValidationError before anything reaches the store. Typed errors become gRPC
 * statuses ({@link grpcStatusOf}) with trailing metadata `clusterdesk-code` = the error code,
 * so a client can tell a bad request (INVALID_ARGUMENT/EINVAL) from a retryable one
 * (UNAVAILABLE/ENOTLEADER, EUNAVAILABLE). A handler never throws into grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import { loadProtoPackage } from './proto';
import { OverloadedError, ValidationError, encodeWireError, toWire } from '../common/errors';
import type { Logger } from '../common/logger';
import { silentLogger } from '../common/logger';
import type { Compare, KeyValue, ReplicatedKV, RequestOp, ResponseOp, TxnRequest } from '../kv/types';

/** Limits on untrusted input (etcd: 1.5 MiB requests, 128 ops per txn). */
export const KV_LIMITS = {
  /** Longest key, in UTF-8 bytes. */
  maxKeyBytes: 4096,
  /** Longest value, in UTF-8 bytes. */
  maxValueBytes: 1 << 20,
  /** Most compares, and most ops per branch, in one txn. */
  maxTxnOps: 128,
  /** Longest lease TTL in seconds (about 31 years; etcd's own bound is similar in spirit). */
  maxLeaseTtl: 1_000_000_000,
} as const;


// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyService = any;
export interface KvProto {
  KV: AnyService;
  Lease: AnyService;
  Maintenance: AnyService;
  Watch: AnyService;
}
let loaded: KvProto | null = null;
/** Loads `kv.proto` once per process (clients use the same constructors). */
export function kvProto(): KvProto {
  if (!loaded) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const pkg = loadProtoPackage('kv.proto', 'clusterdesk.kv.v1') as any;
    loaded = { KV: pkg.KV, Lease: pkg.Lease, Maintenance: pkg.Maintenance, Watch: pkg.Watch };
  }
  return loaded;
}

// ---- Validation (pure) ---------------------------------------------------------------------

type Obj = Record<string, unknown>;
const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ValidationError(`${what} must be a message`);
  return v as Obj;
}
function key(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new ValidationError(`${what} must be a string`);
  if (v.length === 0) throw new ValidationError(`${what} must not be empty`);
  if (utf8Bytes(v) > KV_LIMITS.maxKeyBytes) throw new ValidationError(`${what} is longer than ${KV_LIMITS.maxKeyBytes} bytes`);
  return v;
}
function value(v: unknown, what: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ValidationError(`${what} must be a string`);
  if (v.length > KV_LIMITS.maxValueBytes || utf8Bytes(v) > KV_LIMITS.maxValueBytes) {
    throw new ValidationError(`${what} is longer than ${KV_LIMITS.maxValueBytes} bytes`, { detail: { limit: KV_LIMITS.maxValueBytes } });
  }
  return v;
}
function count(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ValidationError(`${what} must be a non-negative integer`);
  return v;
}
function bool(v: unknown, what: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new ValidationError(`${what} must be a boolean`);
  return v;
}

/** A validated Range request. */
export function parseRange(raw: unknown, what = 'range'): { key: string; prefix: boolean; limit: number; serializable: boolean } {
  const o = obj(raw, what);
  return { key: key(o.key, `${what}.key`), prefix: bool(o.prefix, `${what}.prefix`), limit: count(o.limit, `${what}.limit`), serializable: bool(o.serializable, `${what}.serializable`) };
}
/** A validated Put request. */
export function parsePut(raw: unknown, what = 'put'): { key: string; value: string; lease: number; prevKv: boolean } {
  const o = obj(raw, what);
  return { key: key(o.key, `${what}.key`), value: value(o.value, `${what}.value`), lease: count(o.lease, `${what}.lease`), prevKv: bool(o.prevKv, `${what}.prevKv`) };
}
/** A validated DeleteRange request. */
export function parseDelete(raw: unknown, what = 'deleteRange'): { key: string; prefix: boolean; prevKv: boolean } {
  const o = obj(raw, what);
  return { key: key(o.key, `${what}.key`), prefix: bool(o.prefix, `${what}.prefix`), prevKv: bool(o.prevKv, `${what}.prevKv`) };
}

const RESULTS: Record<string, Compare['result']> = { EQUAL: '=', GREATER: '>', LESS: '<', NOT_EQUAL: '!=' };
const TARGETS: Record<string, { target: Compare['target']; member: string }> = {
  VERSION: { target: 'version', member: 'version' },
  CREATE: { target: 'createRevision', member: 'createRevision' },
  MOD: { target: 'modRevision', member: 'modRevision' },
  VALUE: { target: 'value', member: 'value' },
  LEASE: { target: 'lease', member: 'lease' },
};

/** A validated txn compare: known result/target, and the union member set must match the target. */
export function parseCompare(raw: unknown, what = 'compare'): Compare {
  const o = obj(raw, what);
  const result = RESULTS[String(o.result)];
  if (!result) throw new ValidationError(`${what}.result: unknown comparison ${JSON.stringify(o.result)}`);
  const t = TARGETS[String(o.target)];
  if (!t) throw new ValidationError(`${what}.target: unknown target ${JSON.stringify(o.target)}`);
  const k = key(o.key, `${what}.key`);
  const member = o.targetUnion;
  if (member === undefined || member === null) throw new ValidationError(`${what}: target ${String(o.target)} needs the "${t.member}" field set`);
  if (member !== t.member) throw new ValidationError(`${what}: target ${String(o.target)} does not match the "${String(member)}" field`);
  const v = t.target === 'value' ? value(o[t.member], `${what}.value`) : count(o[t.member], `${what}.${t.member}`);
  return { key: k, target: t.target, result, value: v };
}

function parseOp(raw: unknown, what: string): RequestOp {
  const o = obj(raw, what);
  switch (o.request) {
    case 'requestRange': {
      const r = parseRange(o.requestRange, `${what}.requestRange`);
      if (r.serializable) throw new ValidationError(`${what}.requestRange: serializable is not allowed inside a txn`);
      return { type: 'range', key: r.key, prefix: r.prefix, limit: r.limit };
    }
    case 'requestPut': {
      const p = parsePut(o.requestPut, `${what}.requestPut`);
      return { type: 'put', key: p.key, value: p.value, lease: p.lease, prevKv: p.prevKv };
    }
    case 'requestDeleteRange': {
      const d = parseDelete(o.requestDeleteRange, `${what}.requestDeleteRange`);
      return { type: 'deleteRange', key: d.key, prefix: d.prefix, prevKv: d.prevKv };
    }
    default:
      throw new ValidationError(`${what}: exactly one of requestRange, requestPut, requestDeleteRange must be set`);
  }
}

function list(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ValidationError(`${what} must be a list`);
  if (v.length > KV_LIMITS.maxTxnOps) throw new ValidationError(`${what} has ${v.length} items; at most ${KV_LIMITS.maxTxnOps} are allowed`, { detail: { limit: KV_LIMITS.maxTxnOps } });
  return v;
}

/** A validated Txn request (at most {@link KV_LIMITS.maxTxnOps} compares and ops per branch). */
export function parseTxn(raw: unknown): TxnRequest {
  const o = obj(raw, 'txn');
  const req: TxnRequest = {
    compare: list(o.compare, 'txn.compare').map((c, i) => parseCompare(c, `txn.compare[${i}]`)),
    success: list(o.success, 'txn.success').map((op, i) => parseOp(op, `txn.success[${i}]`)),
    failure: list(o.failure, 'txn.failure').map((op, i) => parseOp(op, `txn.failure[${i}]`)),
  };
  // etcd refuses a branch that writes the same key twice (ErrDuplicateKey); so do we.
  for (const branch of ['success', 'failure'] as const) {
    const seen = new Set<string>();
    for (const op of req[branch]) {
      if (op.type !== 'put') continue;
      if (seen.has(op.key)) throw new ValidationError(`txn.${branch}: key ${JSON.stringify(op.key.slice(0, 64))} is put twice`);
      seen.add(op.key);
    }
  }
  return req;
}

/** A `WatchRequest`: prefix (a non-empty key), start revision (>= 0), prevKv. */
export function parseWatch(raw: unknown): { prefix: string; startRevision: number; prevKv: boolean } {
  const o = obj(raw, 'watch');
  return { prefix: key(o.prefix, 'watch.prefix'), startRevision: count(o.startRevision, 'watch.startRevision'), prevKv: bool(o.prevKv, 'watch.prevKv') };
}

function ttl(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > KV_LIMITS.maxLeaseTtl) throw new ValidationError(`lease ttl must be an integer in [1, ${KV_LIMITS.maxLeaseTtl}] seconds`);
  return v;
}
function leaseId(v: unknown): number {
  const id = count(v, 'lease id');
  if (id === 0) throw new ValidationError('lease id must be positive');
  return id;
}

// ---- Errors --------------------------------------------------------------------------------

/** gRPC status of a typed error code. */
export function grpcStatusOf(code: string): grpc.status {
  switch (code) {
    case 'EINVAL':
      return grpc.status.INVALID_ARGUMENT;
    case 'ENOENT':
      return grpc.status.NOT_FOUND;
    case 'ENOTLEADER':
    case 'EUNAVAILABLE':
      return grpc.status.UNAVAILABLE;
    case 'ETIMEDOUT':
      return grpc.status.DEADLINE_EXCEEDED;
    case 'ECANCELED':
      return grpc.status.CANCELLED;
    case 'ECOMPACTED':
      return grpc.status.OUT_OF_RANGE;
    case 'EAUTH':
      return grpc.status.PERMISSION_DENIED;
    case 'EOVERLOADED':
      return grpc.status.RESOURCE_EXHAUSTED;
    default:
      return grpc.status.INTERNAL;
  }
}

/** Trailing-metadata key carrying the ClusterDesk error code. */
export const ERROR_CODE_METADATA = 'clusterdesk-code';

function toServiceError(err: unknown): Partial<grpc.StatusObject> & { name: string; message: string } {
  const w = toWire(err);
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA, w.code);
  // Header values must be printable ASCII; keep the message readable but safe.
  const details = `${w.code}: ${w.message}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 1024);
  return { code: grpcStatusOf(w.code), details, metadata, name: w.name, message: details };
}

// ---- Service --------------------------------------------------------------------------------

export interface KvServiceOptions {
  /** Node id reported in response headers. */
  member: string;
  /** Raft status for `Maintenance.Status` (default: no leader info). */
  status?: () => { leaderId: string | null; role: string; term: number; commitIndex: number; appliedIndex: number };
  logger?: Logger;
  /**
   * Bytes a `Watch` stream may hold unsent (a client that stops reading) before the server ends it
   * with RESOURCE_EXHAUSTED (`EOVERLOADED`), as etcd cancels a slow watcher; default 16 MiB. The
   * client resumes from its last revision + 1 (`watchRemote`), so nothing is lost.
   */
  watchBufferBytes?: number;
  /** Requests a `KV.Stream` session may have in flight; more are answered EOVERLOADED (default 4,096). */
  maxStreamInFlight?: number;
}

/** Default {@link KvServiceOptions.maxStreamInFlight}. */
export const STREAM_MAX_IN_FLIGHT = 4096;

/** Default {@link KvServiceOptions.watchBufferBytes}. */
export const WATCH_BUFFER_BYTES = 16 << 20;

function kvOut(kv: KeyValue): Obj {
  return { key: kv.key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
}
function responseOpOut(r: ResponseOp): Obj {
  if (r.type === 'range') return { responseRange: { kvs: r.kvs.map(kvOut), count: r.count, more: r.more } };
  if (r.type === 'put') return { responsePut: r.prevKv ? { prevKv: kvOut(r.prevKv) } : {} };
  return { responseDeleteRange: { deleted: r.deleted, prevKvs: (r.prevKvs ?? []).map(kvOut) } };
}

/** The operations a `KV.Stream` request may carry (the `request` oneof's members). */
type StreamOps = Record<'range' | 'put' | 'deleteRange' | 'txn', (req: Obj) => Promise<Obj>>;
const STREAM_OPS = ['range', 'put', 'deleteRange', 'txn'] as const;

/**
 * Validates a `StreamRequest`'s envelope: `{ id, op, body }`, or a ValidationError naming what is
 * wrong (the id, when it is usable, so the answer can carry it; 0 otherwise).
 */
export function parseStreamRequest(raw: unknown): { id: number; op: (typeof STREAM_OPS)[number]; body: Obj } | { id: number; error: ValidationError } {
  if (typeof raw !== 'object' || raw === null) return { id: 0, error: new ValidationError('stream request must be a message') };
  const o = raw as Obj;
  const id = typeof o.id === 'number' && Number.isSafeInteger(o.id) && o.id > 0 ? o.id : 0;
  if (id === 0) return { id: 0, error: new ValidationError(`stream request id must be an integer in 1..2^53-1, got ${JSON.stringify(o.id)}`) };
  const op = o.request;
  if (typeof op !== 'string' || !(STREAM_OPS as readonly string[]).includes(op)) {
    return { id, error: new ValidationError(`stream request ${id}: exactly one of range, put, deleteRange, txn must be set`) };
  }
  const body = o[op];
  if (typeof body !== 'object' || body === null) return { id, error: new ValidationError(`stream request ${id}: ${op} must be a message`) };
  return { id, op: op as (typeof STREAM_OPS)[number], body: body as Obj };
}

/** Answers of one session are sent together once this many estimated bytes are pending (and at the end of each turn). */
const STREAM_BATCH_BYTES = 1 << 20;

/** Rough encoded size of an operation's result, for batching (keys and values dominate). */
function resultBytes(res: Obj): number {
  let n = 32;
  const kvs = (res.kvs ?? res.responses) as unknown[] | undefined;
  if (Array.isArray(kvs) && kvs.length > 0) n += JSON.stringify(kvs).length; // ranges and txns: rare, so the exact count is affordable
  const prev = res.prevKv as { key?: string; value?: string } | undefined;
  if (prev) n += (prev.key?.length ?? 0) + (prev.value?.length ?? 0);
  return n;
}

/**
 * One `KV.Stream` session: each request of each arriving batch runs as its unary twin would and
 * is answered by id as soon as it completes; answers completed in one turn of the event loop go
 * out as one `StreamResponseBatch` (earlier once 1 MiB is pending). A failed request is answered
 * with a `StreamError`. Bounded: at most `maxInFlight` requests run at once (further ones are
 * answered EOVERLOADED, not queued), and a client that stops reading its answers stops having
 * its requests read (grpc-js backpressure on the duplex stream). Answers to a cancelled stream
 * are dropped.
 */
function serveStream(call: grpc.ServerDuplexStream<Obj, Obj>, ops: StreamOps, log: Logger, maxInFlight: number): void {
  const inFlight = new Set<number>();
  let paused = false;
  let out: Obj[] | null = null;
  let outBytes = 0;
  let ended = false;
  const flush = (): void => {
    const batch = out;
    out = null;
    outBytes = 0;
    if (!batch || call.cancelled || call.writableEnded || call.destroyed) return;
    if (!call.write({ responses: batch }) && !paused) {
      // The client is not reading: stop reading its requests until the answers drain.
      paused = true;
      call.pause();
      call.once('drain', () => {
        paused = false;
        call.resume();
      });
    }
    maybeEnd();
  };
  const answer = (msg: Obj, bytes: number): void => {
    if (!out) {
      out = [];
      // After this turn's other completions (they resolve as microtasks of the same apply).
      process.nextTick(flush);
    }
    out.push(msg);
    outBytes += bytes;
    if (outBytes >= STREAM_BATCH_BYTES) flush();
  };
  const fail = (id: number, err: unknown, what: string): void => {
    const se = toServiceError(err);
    if (se.code === grpc.status.INTERNAL) log.warn({ rpc: `Stream.${what}`, err: (err as Error)?.message }, 'kv request failed');
    else if (se.code === grpc.status.INVALID_ARGUMENT) log.debug({ rpc: `Stream.${what}`, err: (err as Error)?.message }, 'kv request refused');
    const w = encodeWireError(err);
    answer({ id, error: { ...w, status: se.code } }, 64 + w.message.length + w.detailJson.length);
  };
  const maybeEnd = (): void => {
    if (ended && inFlight.size === 0 && !out && !call.writableEnded && !call.cancelled) call.end();
  };
  const one = (raw: unknown): void => {
    const req = parseStreamRequest(raw);
    if ('error' in req) return fail(req.id, req.error, 'request');
    const { id, op, body } = req;
    if (inFlight.has(id)) return fail(id, new ValidationError(`stream request id ${id} is already in flight on this stream`), op);
    if (inFlight.size >= maxInFlight) return fail(id, new OverloadedError(`stream request ${id} refused: ${maxInFlight} requests already in flight on this stream`), op);
    inFlight.add(id);
    let p: Promise<Obj>;
    try {
      p = ops[op](body);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (res) => answer({ id, [op]: res }, resultBytes(res)),
      (err: unknown) => fail(id, err, op),
    ).finally(() => {
      inFlight.delete(id);
      maybeEnd();
    });
  };
  call.on('data', (batch: Obj) => {
    const requests = batch?.requests;
    if (!Array.isArray(requests)) return; // proto3 decoding always yields a list
    for (const r of requests) one(r);
  });
  // The client half-closed: finish the requests in flight, then end.
  call.on('end', () => {
    ended = true;
    maybeEnd();
  });
  call.on('error', () => undefined); // a reset stream; answers in flight are dropped
}

type Handler = (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => void;

/**
 * Registers `KV`, `Lease` and `Maintenance` on `server` (before or after bind; grpc-js
 * accepts services until start).
 */
export function addKvService(server: grpc.Server, kv: ReplicatedKV, options: KvServiceOptions): void {
  const log = (options.logger ?? silentLogger).child({ mod: 'kv-service' });
  const header = (revision?: number): Obj => ({ revision: revision ?? kv.localRevision(), member: options.member });
  const watchBufferBytes = options.watchBufferBytes ?? WATCH_BUFFER_BYTES;
  const maxStreamInFlight = options.maxStreamInFlight ?? STREAM_MAX_IN_FLIGHT;
  const unary =
    (name: string, fn: (req: Obj) => Promise<Obj>): Handler =>
    (call, cb) => {
      let p: Promise<Obj>;
      try {
        p = fn(call.request ?? {});
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (reply) => cb(null, reply),
        (err: unknown) => {
          const se = toServiceError(err);
          if (se.code === grpc.status.INTERNAL) log.warn({ rpc: name, err: (err as Error)?.message }, 'kv request failed');
          else if (se.code === grpc.status.INVALID_ARGUMENT) log.debug({ rpc: name, err: (err as Error)?.message }, 'kv request refused');
          cb(se);
        },
      );
    };
  const ops = {
    range: async (req: Obj): Promise<Obj> => {
      const r = parseRange(req);
      const res = await kv.range(r.key, { prefix: r.prefix, limit: r.limit, serializable: r.serializable });
      return { header: header(res.revision), kvs: res.kvs.map(kvOut), more: res.more, count: res.count };
    },
    put: async (req: Obj): Promise<Obj> => {
      const p = parsePut(req);
      const res = await kv.put(p.key, p.value, p.lease ? { lease: p.lease } : {});
      return { header: header(res.revision), ...(p.prevKv && res.prevKv ? { prevKv: kvOut(res.prevKv) } : {}) };
    },
    deleteRange: async (req: Obj): Promise<Obj> => {
      const d = parseDelete(req);
      const res = await kv.delete(d.key, { prefix: d.prefix });
      return { header: header(res.revision), deleted: res.deleted };
    },
    txn: async (req: Obj): Promise<Obj> => {
      const t = parseTxn(req);
      const res = await kv.txn(t);
      return { header: header(res.revision), succeeded: res.succeeded, responses: res.responses.map(responseOpOut) };
    },
  };
  const { KV, Lease, Maintenance, Watch } = kvProto();
  server.addService(KV.service, {
    Range: unary('Range', ops.range),
    Put: unary('Put', ops.put),
    DeleteRange: unary('DeleteRange', ops.deleteRange),
    Txn: unary('Txn', ops.txn),
    Stream: (call: grpc.ServerDuplexStream<Obj, Obj>) => serveStream(call, ops, log, maxStreamInFlight),
  });
  server.addService(Lease.service, {
    LeaseGrant: unary('LeaseGrant', async (req) => {
      const r = await kv.leaseGrant(ttl(req.ttl));
      return { header: header(), id: r.id, ttl: r.ttl };
    }),
    LeaseKeepAlive: unary('LeaseKeepAlive', async (req) => {
      const id = leaseId(req.id);
      const r = await kv.leaseKeepAlive(id);
      return { header: header(), id, ttl: r.ttl };
    }),
    LeaseRevoke: unary('LeaseRevoke', async (req) => {
      await kv.leaseRevoke(leaseId(req.id));
      return { header: header() };
    }),
  });
  server.addService(Watch.service, {
    Watch: (call: grpc.ServerWritableStream<Obj, Obj>) => {
      let watcher: { cancel(): void } | null = null;
      let unsent = 0;
      const end = (err?: unknown): void => {
        watcher?.cancel();
        watcher = null;
        if (call.cancelled || call.writableEnded) return;
        if (err === undefined) call.end();
        else call.emit('error', toServiceError(err)); // grpc-js: ends the call with this status
      };
      call.on('cancelled', () => end());
      call.on('error', () => end());
      try {
        const w = parseWatch(call.request ?? {});
        call.write({ header: header(), created: true });
        watcher = kv.watch(
          w.prefix,
          (events, revision) => {
            if (call.cancelled || call.writableEnded) return;
            // Unsent bytes (an estimate: keys and values plus framing) of messages whose HTTP/2
            // write has not completed: a client that stops reading must not grow this node's
            // memory without bound (grpc-js buffers the messages in objectMode).
            let bytes = 0;
            for (const e of events) bytes += 64 + e.kv.key.length + e.kv.value.length + (e.prevKv ? 64 + e.prevKv.key.length + e.prevKv.value.length : 0);
            unsent += bytes;
            call.write(
              {
                header: header(revision),
                events: events.map((e) => ({ type: e.type === 'put' ? 'PUT' : 'DELETE', kv: kvOut(e.kv), ...(e.prevKv ? { prevKv: kvOut(e.prevKv) } : {}) })),
              },
              () => {
                unsent -= bytes;
              },
            );
            if (unsent > watchBufferBytes) {
              log.warn({ rpc: 'Watch', prefix: w.prefix, revision, unsentBytes: unsent }, 'slow watcher cancelled');
              end(new OverloadedError(`watch on ${JSON.stringify(w.prefix)} cancelled: the client fell ${unsent} bytes behind (limit ${watchBufferBytes}); resume from revision ${revision + 1}`, { detail: { resumeRevision: revision + 1 } }));
            }
          },
          {
            ...(w.startRevision > 0 ? { fromRevision: w.startRevision } : {}),
            prevKv: w.prevKv,
            onError: (err) => {
              const compact = (err as { detail?: { compactRevision?: number } }).detail?.compactRevision;
              if (compact) call.write({ header: header(), compactRevision: compact });
              end(err);
            },
          },
        );
      } catch (err) {
        const compact = (err as { detail?: { compactRevision?: number } }).detail?.compactRevision;
        if (compact && !call.writableEnded) call.write({ header: header(), compactRevision: compact });
        if (toServiceError(err).code === grpc.status.INVALID_ARGUMENT) log.debug({ rpc: 'Watch', err: (err as Error)?.message }, 'kv request refused');
        end(err);
      }
    },
  });
  server.addService(Maintenance.service, {
    Status: unary('Status', async () => {
      const s = options.status?.() ?? { leaderId: null, role: 'unknown', term: 0, commitIndex: 0, appliedIndex: 0 };
      return { header: header(), member: options.member, leader: s.leaderId ?? '', role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex };
    }),
  });
}
