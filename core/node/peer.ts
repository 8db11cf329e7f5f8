/**
 * gRPC adapter for the peer protocol (`core/proto/peer.proto`): one server per node, one lazily
 * created client per peer. Implements the Raft transport and the blob fetcher over it.
 *
 * Incoming messages are checked before they reach any core module: the cluster name must match,
 * the sender must be a configured node, and every field must have its declared type. A bad
 * message is answered with INVALID_ARGUMENT / PERMISSION_DENIED and logged; it never crashes the node.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { loadProtoPackage } from './proto';
import { NotFoundError, UnavailableError, ValidationError, AuthError, decodeWireError, encodeWireError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { Entry, Message, MessageType, RaftTransport } from '../raft/types';
import { isSha256 } from '../sync/blocks';
import { SnapshotAssembler, splitSnapshotMessage, type SnapshotChunk } from './snapshot-chunks';
import { BLOCK_REPLY_HEADROOM, GRPC_PREFIX_BYTES, releaseReceivedBlock } from './block-receive';


// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyService = any;
let loaded: { Peer: AnyService; Data: AnyService } | null = null;
/** Loads the proto once per process. */
export function peerProto(): { Peer: AnyService; Data: AnyService } {
  if (!loaded) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const pkg = loadProtoPackage('peer.proto', 'clusterdesk.peer.v1') as any;
    loaded = { Peer: pkg.Peer, Data: pkg.Data };
  }
  return loaded;
}

const TYPE_TO_PROTO: Record<MessageType, string> = {
  AppendEntries: 'APPEND_ENTRIES',
  AppendEntriesResponse: 'APPEND_ENTRIES_RESPONSE',
  RequestVote: 'REQUEST_VOTE',
  RequestVoteResponse: 'REQUEST_VOTE_RESPONSE',
  PreVote: 'PRE_VOTE',
  PreVoteResponse: 'PRE_VOTE_RESPONSE',
  Heartbeat: 'HEARTBEAT',
  HeartbeatResponse: 'HEARTBEAT_RESPONSE',
  InstallSnapshot: 'INSTALL_SNAPSHOT',
  TimeoutNow: 'TIMEOUT_NOW',
  ReadIndex: 'READ_INDEX',
  ReadIndexResponse: 'READ_INDEX_RESPONSE',
};
const PROTO_TO_TYPE = new Map(Object.entries(TYPE_TO_PROTO).map(([k, v]) => [v, k as MessageType]));

/** Raft message → proto object (`chunk` marks one slice of a chunked InstallSnapshot). */
export function encodeRaftMessage(m: Message, chunk?: SnapshotChunk): Record<string, unknown> {
  return {
    ...(chunk ? { snapshotChunk: { offset: chunk.offset, total: chunk.total } } : {}),
    type: TYPE_TO_PROTO[m.type],
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    // Views, not copies: entry data is immutable once in the log.
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type === 'config' ? 'ENTRY_CONFIG' : 'ENTRY_NORMAL', data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) })),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    snapshot: m.snapshot
      ? { index: m.snapshot.index, term: m.snapshot.term, voters: m.snapshot.voters, learners: m.snapshot.learners, context: m.snapshot.context ?? {}, data: Buffer.from(m.snapshot.data) }
      : null,
    context: Buffer.from(m.context),
  };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Proto object → Raft message, validating every field.
 * @throws ValidationError naming the first bad field.
 */
export function decodeRaftMessage(o: Record<string, unknown>): Message {
  const type = PROTO_TO_TYPE.get(String(o.type));
  if (!type) throw new ValidationError(`raft message: unknown type ${JSON.stringify(o.type)}`);
  for (const f of ['term', 'logTerm', 'index', 'commit', 'rejectHint'] as const) {
    if (!isCount(o[f])) throw new ValidationError(`raft message: ${f} must be a non-negative integer`);
  }
  if (typeof o.from !== 'string' || typeof o.to !== 'string') throw new ValidationError('raft message: from/to must be strings');
  const rawEntries = Array.isArray(o.entries) ? (o.entries as Record<string, unknown>[]) : [];
  const entries: Entry[] = rawEntries.map((e, i) => {
    if (!isCount(e.term) || !isCount(e.index)) throw new ValidationError(`raft message: entries[${i}] term/index must be non-negative integers`);
    // A view of the decoded message's bytes (a fresh buffer per message), not a copy.
    const d = e.data;
    const data = d instanceof Uint8Array ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array((d as ArrayLike<number> | undefined) ?? []);
    return { term: e.term, index: e.index, type: e.type === 'ENTRY_CONFIG' ? 'config' : 'normal', data };
  });
  const s = o.snapshot as Record<string, unknown> | null | undefined;
  const msg: Message = {
    type,
    from: o.from,
    to: o.to,
    term: o.term as number,
    logTerm: o.logTerm as number,
    index: o.index as number,
    entries,
    commit: o.commit as number,
    reject: o.reject === true,
    rejectHint: o.rejectHint as number,
    context: new Uint8Array((o.context as Buffer | undefined) ?? new Uint8Array()),
  };
  if (s) {
    if (!isCount(s.index) || !isCount(s.term)) throw new ValidationError('raft message: snapshot index/term must be non-negative integers');
    const ids = (v: unknown): string[] => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : []);
    const ctx = s.context;
    if (ctx !== undefined && ctx !== null && (typeof ctx !== 'object' || Array.isArray(ctx) || !Object.values(ctx).every((x) => typeof x === 'string' && x.length <= 256))) {
      throw new ValidationError('raft message: snapshot context must map ids to strings of at most 256 characters');
    }
    const context = ctx ? { ...(ctx as Record<string, string>) } : {};
    msg.snapshot = { index: s.index, term: s.term, voters: ids(s.voters), learners: ids(s.learners), context, data: new Uint8Array((s.data as Buffer | undefined) ?? new Uint8Array()) };
  }
  return msg;
}

/** The `snapshot_chunk` of a proto RaftMessage, if present. @throws ValidationError for non-integer fields. */
export function decodeSnapshotChunk(o: Record<string, unknown>): SnapshotChunk | undefined {
  const c = o.snapshotChunk as Record<string, unknown> | null | undefined;
  if (!c) return undefined;
  if (!isCount(c.offset) || !isCount(c.total)) throw new ValidationError('raft message: snapshot_chunk offset/total must be non-negative integers');
  return { offset: c.offset, total: c.total };
}

export { decodeWireError, encodeWireError } from '../common/errors';

export interface PeerDirectory {
  /** Cluster name; peers of another cluster are refused. */
  cluster: string;
  self: string;
  /** node id → "host:port" */
  addresses: Map<string, string>;
}

/** Channel options: reconnect quickly after a peer restarts (the default backoff grows to 120 s). */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.max_receive_message_length': 64 << 20,
  'grpc.max_send_message_length': 64 << 20,
  // HTTP/2 receive window of 16 MiB (default 64 KiB): block streams are not throttled to one
  // window per event-loop turn of the receiver (measured ~3× faster for 64 MiB of blocks on loopback).
  'grpc-node.flow_control_window': 16 << 20,
  // No channelz bookkeeping (per-call counters and timestamps); nothing here reads it.
  'grpc.enable_channelz': 0,
};

/** Lazily created gRPC clients, one Peer and one Data client per node. */
export class PeerClients {
  private readonly peer = new Map<string, AnyService>();
  private readonly data = new Map<string, AnyService>();
  constructor(private readonly dir: PeerDirectory) {}

  private address(id: string): string {
    const a = this.dir.addresses.get(id);
    if (!a) throw new ValidationError(`unknown node "${id}"`);
    return a;
  }
  peerClient(id: string): AnyService {
    let c = this.peer.get(id);
    if (!c) {
      c = new (peerProto().Peer)(this.address(id), grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      this.peer.set(id, c);
    }
    return c;
  }
  dataClient(id: string): AnyService {
    let c = this.data.get(id);
    if (!c) {
      c = new (peerProto().Data)(this.address(id), grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      this.data.set(id, c);
    }
    return c;
  }
  /** Unary call with a deadline; gRPC failures become UnavailableError, remote typed errors are rethrown as such. */
  unary<T>(id: string, method: string, request: unknown, timeoutMs: number): Promise<T> {
    const client = this.peerClient(id);
    return new Promise<T>((resolve, reject) => {
      client[method](request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, reply: T) => {
        if (err) reject(new UnavailableError(`${method} to ${id} failed: ${err.details || err.message}`, { cause: err, detail: { node: id, grpcCode: err.code } }));
        else resolve(reply);
      });
    });
  }
  close(): void {
    for (const c of [...this.peer.values(), ...this.data.values()]) c.close();
    this.peer.clear();
    this.data.clear();
  }
}

/** Handlers the node provides to the peer server. Each may throw typed errors. */
export interface PeerHandlers {
  raft(messages: Message[]): void;
  kvForward(from: string, payload: Uint8Array): Promise<Uint8Array>;
  forward(request: Record<string, unknown>): Promise<{ resultJson: string; route: string[] }>;
  metrics(): Record<string, unknown>;
  localFiles(): Record<string, number>;
  /** Opens a readable stream of an object, or null when this node does not have it. */
  openObject(sha256: string): NodeJS.ReadableStream | null;
  /**
   * Bytes of the block with this SHA-256 (already validated as 64 hex digits), or null when this
   * node has none. With `headroom` (bytes), the handler may return the block as a view starting
   * `headroom` bytes into an ArrayBuffer of exactly `headroom` + block size bytes, this call's
   * alone until handed to {@link releaseBlock}: `GetBlocks` then writes the reply's framing into
   * that room instead of copying the block (see {@link encodeBlockReply}). Any other buffer is
   * copied as before.
   */
  readBlock?(hash: string, headroom?: number): Promise<Uint8Array | null>;
  /**
   * Called by `GetBlocks` with a block {@link readBlock} returned, once the reply holding it has
   * been written to the connection (grpc-js calls back after HTTP/2 wrote it), so its buffer may
   * be read into again; never for a reply that was not sent (a cancelled call).
   */
  releaseBlock?(data: Uint8Array): void;
  /**
   * The file of an old version of folder path `path` this node kept whose content hashes to
   * `sha256`, or null. Throws PathError for an invalid path (`path` is untrusted).
   */
  keptVersionFile?(path: string, sha256: string): Promise<string | null>;
}

/** Appends `n` (a non-negative safe integer) as a protobuf varint at `buf[at]`; returns the next offset. */
function putVarint(buf: Buffer, at: number, n: number): number {
  while (n > 0x7f) {
    buf[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[at++] = n;
  return at;
}

function varintLength(n: number): number {
  let len = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/**
 * Wire encoding of one `BlockReply` (`peer.proto`: index = 1 varint, data = 2 bytes, missing = 3
 * bool; a field is written when set, as protobufjs does), written straight into one buffer: the
 * block's bytes are copied once, without protobufjs' per-message object handling; not at all
 * when `inPlace` is set and the block was read with room for the framing before it
 * ({@link hasReplyHeadroom}; the `GetBlocks` handler sets `inPlace` on every block it sends).
 * The server's response serializer of `GetBlocks` (the bulk of a sync's bytes); the client
 * decodes it with protobufjs.
 */
export function encodeBlockReply(msg: { index?: number; data?: Uint8Array; missing?: boolean; inPlace?: boolean }): Buffer {
  const { index, data, missing } = msg;
  if (msg.inPlace === true && index != null && data != null && missing == null && hasReplyHeadroom(data)) {
    // The block sits BLOCK_REPLY_HEADROOM bytes into a buffer of its own (hasReplyHeadroom):
    // the fields before it are written into that room, and the reply is a view of the buffer.
    const head = 1 + varintLength(index) + 1 + varintLength(data.byteLength);
    const start = data.byteOffset - head;
    const out = Buffer.from(data.buffer, start, head + data.byteLength);
    out[0] = 0x08;
    let at = putVarint(out, 1, index);
    out[at++] = 0x12;
    at = putVarint(out, at, data.byteLength);
    if (start >= GRPC_PREFIX_BYTES) framedInPlace.add(out);
    return out;
  }
  const size = (index != null ? 1 + varintLength(index) : 0) + (data != null ? 1 + varintLength(data.byteLength) + data.byteLength : 0) + (missing != null ? 2 : 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (index != null) {
    out[at++] = 0x08;
    at = putVarint(out, at, index);
  }
  if (data != null) {
    out[at++] = 0x12;
    at = putVarint(out, at, data.byteLength);
    out.set(data, at);
    at += data.byteLength;
  }
  if (missing != null) {
    out[at++] = 0x18;
    out[at++] = missing ? 1 : 0;
  }
  return out;
}

/** Bytes `GetBlocks` asks `readBlock` to leave before each block for the reply's framing (see block-receive.ts). */
export { BLOCK_REPLY_HEADROOM };

/**
 * True when `data` is a view starting {@link BLOCK_REPLY_HEADROOM} bytes into an ArrayBuffer
 * holding nothing else (so the framing may be written into the room before it).
 */
export function hasReplyHeadroom(data: Uint8Array): boolean {
  return data.byteOffset === BLOCK_REPLY_HEADROOM && data.buffer.byteLength === BLOCK_REPLY_HEADROOM + data.byteLength && !(data.buffer instanceof SharedArrayBuffer);
}


/** `GetBlocks` replies encoded in place with room left for the gRPC message header before them. */
const framedInPlace = new WeakSet<Buffer>();

/**
 * Whether grpc-js writes `GetBlocks` replies framed in place (see {@link frameRepliesInPlace}).
 * False when the grpc-js in use lacks the hook; replies are then copied once more, as before.
 */
export const repliesFramedInPlace = frameRepliesInPlace();

/**
 * grpc-js's server copies every serialized response into a new buffer to put gRPC's 5-byte
 * Length-Prefixed-Message header (PROTOCOL-HTTP2.md: compressed flag 0, length) before it
 * (`BaseServerInterceptingCall.serializeMessage`, grpc-js 1.14): for `GetBlocks`, a second copy
 * of every block served. A reply encoded in place by {@link encodeBlockReply} has room for that
 * header in its own buffer, so for those (the message carries `inPlace: true`) the header is
 * written there and the buffer sent as is; every other message goes through grpc-js unchanged.
 * Patches the prototype of the grpc-js server call class once; a grpc-js without it is left
 * alone. Returns whether the hook is in place.
 */
function frameRepliesInPlace(): boolean {
  type Call = { handler: { serialize(value: unknown): Buffer }; serializeMessage(value: unknown): Buffer };
  let proto: Call | undefined;
  try {
    const mod = createRequire(import.meta.url)('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall?: { prototype: Call } };
    proto = mod.BaseServerInterceptingCall?.prototype;
  } catch {
    return false;
  }
  if (!proto || typeof proto.serializeMessage !== 'function') return false;
  const original = proto.serializeMessage;
  proto.serializeMessage = function (this: Call, value: unknown): Buffer {
    if ((value as { inPlace?: unknown } | null)?.inPlace !== true) return original.call(this, value);
    const message = this.handler.serialize(value);
    const inPlace = framedInPlace.has(message);
    const framed = inPlace ? Buffer.from(message.buffer, message.byteOffset - GRPC_PREFIX_BYTES, message.byteLength + GRPC_PREFIX_BYTES) : Buffer.allocUnsafe(message.byteLength + GRPC_PREFIX_BYTES);
    framed[0] = 0; // not compressed
    framed.writeUInt32BE(message.byteLength, 1);
    if (!inPlace) message.copy(framed, GRPC_PREFIX_BYTES);
    return framed;
  };
  return true;
}

/** Most hashes one `GetBlocks` call may ask for (more is refused with INVALID_ARGUMENT). */
export const MAX_GET_BLOCKS = 256;
/** Block reads a `GetBlocks` call keeps in flight on the serving node. */
const GET_BLOCKS_READ_AHEAD = 8;

/**
 * Checks a `GetBlocks` request: `hashes` must be a list of 1–{@link MAX_GET_BLOCKS} SHA-256 digests
 * (64 lowercase hex digits; anything path-like or oversized is refused).
 * @throws ValidationError naming the first problem
 */
export function validateBlocksRequest(req: Record<string, unknown>): string[] {
  const hashes = req.hashes;
  if (!Array.isArray(hashes) || hashes.length === 0) throw new ValidationError('GetBlocks: hashes must be a non-empty list');
  if (hashes.length > MAX_GET_BLOCKS) throw new ValidationError(`GetBlocks: at most ${MAX_GET_BLOCKS} hashes per call, got ${hashes.length}`);
  hashes.forEach((h, i) => {
    if (!isSha256(h)) throw new ValidationError(`GetBlocks: hashes[${i}] is not a SHA-256 hex digest: ${JSON.stringify(String(h).slice(0, 80))}`);
  });
  return hashes as string[];
}

/**
 * Starts the gRPC server on `host:port`.
 * @throws when the port cannot be bound (the error names the address).
 */
export async function startPeerServer(opts: {
  host: string;
  port: number;
  dir: PeerDirectory;
  handlers: PeerHandlers;
  logger: Logger;
  /** Registers further services on the same server before it binds (e.g. the client KV API of `./kv-service`). */
  extraServices?: (server: grpc.Server) => void;
}): Promise<grpc.Server> {
  const { dir, handlers, logger } = opts;
  // No channelz: it costs per-call counters and timestamps on every client KV request, and nothing reads it.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20, 'grpc.enable_channelz': 0 });
  const known = (id: unknown): boolean => typeof id === 'string' && dir.addresses.has(id);
  const snapshots = new SnapshotAssembler();
  const fail = (cb: grpc.sendUnaryData<unknown>, code: grpc.status, message: string): void => {
    logger.warn({ code, reason: message }, 'peer request refused');
    cb({ code, details: message, name: 'PeerError', message });
  };
  /** Validates a RaftBatch and delivers its messages; refuses the whole batch on the first bad message. */
  const acceptRaftBatch = (req: Record<string, unknown>): { ok: true } | { refused: { code: grpc.status; message: string } } => {
    if (req.cluster !== dir.cluster) return { refused: { code: grpc.status.PERMISSION_DENIED, message: `raft batch for cluster "${String(req.cluster)}", this is "${dir.cluster}"` } };
    const out: Message[] = [];
    try {
      for (const raw of (req.messages as Record<string, unknown>[]) ?? []) {
        const m = decodeRaftMessage(raw);
        if (!known(m.from)) throw new AuthError(`raft message from unknown node "${m.from}"`);
        if (m.to !== dir.self) throw new ValidationError(`raft message addressed to "${m.to}", this is "${dir.self}"`);
        const whole = snapshots.accept(m, decodeSnapshotChunk(raw));
        if (whole) out.push(whole);
      }
    } catch (err) {
      return { refused: { code: err instanceof AuthError ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT, message: (err as Error).message } };
    }
    try {
      handlers.raft(out);
    } catch (err) {
      logger.error({ err }, 'raft handler failed');
    }
    return { ok: true };
  };
  const { Peer, Data } = peerProto();
  server.addService(Peer.service, {
    Raft: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const r = acceptRaftBatch(call.request);
      if ('refused' in r) return fail(cb, r.refused.code, r.refused.message);
      cb(null, {});
    },
    // The same batches on one long-lived stream per sender (no per-batch HTTP/2 stream and headers).
    // A refused batch ends the stream with the same status as the unary call; the sender reopens it.
    RaftStream: (call: grpc.ServerReadableStream<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      let ended = false;
      call.on('data', (req: Record<string, unknown>) => {
        if (ended) return;
        const r = acceptRaftBatch(req);
        if ('refused' in r) {
          ended = true;
          fail(cb, r.refused.code, r.refused.message);
        }
      });
      call.on('end', () => {
        if (!ended) cb(null, {});
        ended = true;
      });
      call.on('error', () => {
        ended = true;
      });
    },
    KvForward: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const req = call.request;
      if (req.cluster !== dir.cluster) return fail(cb, grpc.status.PERMISSION_DENIED, `forward for cluster "${String(req.cluster)}"`);
      if (!known(req.from)) return fail(cb, grpc.status.PERMISSION_DENIED, `forward from unknown node "${String(req.from)}"`);
      handlers
        .kvForward(req.from as string, new Uint8Array(req.payload as Buffer))
        .then((payload) => cb(null, { payload: Buffer.from(payload) }))
        .catch((err: unknown) => cb(null, { payload: Buffer.alloc(0), error: encodeWireError(err) }));
    },
    Forward: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      handlers
        .forward(call.request)
        .then((r) => cb(null, { resultJson: r.resultJson, route: r.route }))
        .catch((err: unknown) => cb(null, { resultJson: '', route: [], error: encodeWireError(err) }));
    },
    GetMetrics: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, handlers.metrics()),
    ListLocal: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { versions: handlers.localFiles() }),
  });
  // GetBlocks replies are encoded by hand (encodeBlockReply): the bulk of a sync's bytes.
  const dataService = { ...Data.service, GetBlocks: { ...Data.service.GetBlocks, responseSerialize: encodeBlockReply } };
  server.addService(dataService, {
    GetObject: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      const sha = String(call.request.sha256 ?? '');
      // A server stream ends with a status by emitting 'error' with { code, details } (grpc-js).
      const end = (code: grpc.status, details: string): void => void call.emit('error', { code, details });
      if (!isSha256(sha)) return end(grpc.status.INVALID_ARGUMENT, 'sha256 must be 64 lowercase hex digits');
      const pipeTo = (stream: NodeJS.ReadableStream): void => {
        stream.on('data', (chunk: Buffer) => {
          if (!call.write({ data: chunk })) {
            stream.pause();
            call.once('drain', () => stream.resume());
          }
        });
        stream.on('end', () => call.end());
        stream.on('error', (err: Error) => end(grpc.status.INTERNAL, `reading object ${sha}: ${err.message}`));
        call.on('cancelled', () => (stream as unknown as { destroy?: () => void }).destroy?.());
      };
      const path = typeof call.request.path === 'string' ? call.request.path : '';
      const stream = handlers.openObject(sha);
      if (stream) return pipeTo(stream);
      if (!path || !handlers.keptVersionFile) return end(grpc.status.NOT_FOUND, `object ${sha} not found`);
      if (path.length > 4096) return end(grpc.status.INVALID_ARGUMENT, 'path is longer than 4096 characters');
      const lookup = handlers.keptVersionFile;
      void (async () => {
        let file: string | null;
        try {
          file = await lookup(path, sha);
        } catch (err) {
          logger.warn({ reason: (err as Error).message }, 'peer request refused');
          return end(grpc.status.INVALID_ARGUMENT, (err as Error).message);
        }
        if (!file) return end(grpc.status.NOT_FOUND, `no kept version of ${JSON.stringify(path)} with content ${sha}`);
        if (!call.cancelled) pipeTo(createReadStream(file));
      })();
    },
    GetBlocks: async (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      let hashes: string[];
      try {
        hashes = validateBlocksRequest(call.request);
      } catch (err) {
        logger.warn({ reason: (err as Error).message }, 'peer request refused');
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
        return;
      }
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      const send = (msg: Record<string, unknown>, onSent?: () => void): Promise<void> | void => {
        if (!call.write(msg, onSent)) return new Promise<void>((r) => call.once('drain', () => r()));
      };
      const release = handlers.releaseBlock;
      try {
        // Up to GET_BLOCKS_READ_AHEAD reads in flight (each an open/read/close on the fs thread
        // pool: one at a time left a call of many small blocks waiting on round trips); the
        // replies go out in request order, so at most that many blocks sit in memory.
        const reads: (Promise<Uint8Array | null> | undefined)[] = [];
        const read = (i: number): void => {
          if (i >= hashes.length) return;
          const r = handlers.readBlock ? handlers.readBlock(hashes[i]!, BLOCK_REPLY_HEADROOM) : Promise.resolve(null);
          r.catch(() => undefined); // awaited below; not unhandled if the call ends first
          reads[i] = r;
        };
        for (let i = 0; i < GET_BLOCKS_READ_AHEAD; i++) read(i);
        for (let i = 0; i < hashes.length; i++) {
          if (cancelled) return;
          const data = await reads[i]!;
          reads[i] = undefined;
          read(i + GET_BLOCKS_READ_AHEAD);
          // inPlace: framed inside the read buffer when it has the room (encodeBlockReply checks).
          if (!data) await send({ index: i, missing: true });
          else await send({ index: i, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), inPlace: true }, release && (() => release(data)));
        }
        call.end();
      } catch (err) {
        call.emit('error', { code: grpc.status.INTERNAL, details: `GetBlocks: ${(err as Error).message}` });
      }
    },
    GetObjects: async (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      const shas = Array.isArray(call.request.sha256) ? (call.request.sha256 as unknown[]).map(String) : [];
      let cancelled = false;
      call.on('cancelled', () => (cancelled = true));
      const send = (msg: Record<string, unknown>): Promise<void> | void => {
        if (!call.write(msg)) return new Promise<void>((r) => call.once('drain', () => r()));
      };
      try {
        for (const sha of shas) {
          if (cancelled) return;
          const stream = /^[0-9a-f]{64}$/.test(sha) ? handlers.openObject(sha) : null;
          if (!stream) {
            await send({ sha256: sha, last: true, error: `object ${sha} not found` });
            continue;
          }
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            if (cancelled) return;
            await send({ sha256: sha, data: chunk });
          }
          await send({ sha256: sha, last: true });
        }
        call.end();
      } catch (err) {
        call.destroy(Object.assign(err as Error, { code: grpc.status.INTERNAL }));
      }
    },
  });
  opts.extraServices?.(server);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new UnavailableError(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`, { cause: err }));
      else resolve();
    });
  });
  return server;
}

/** Batches buffered on one Raft stream (an object-mode stream) before it is considered stalled. */
const MAX_STREAM_BUFFER = 4096;

/** RaftTransport over gRPC. Sends are batched per destination per call and never block Raft. */
export class GrpcRaftTransport implements RaftTransport {
  private readonly streams = new Map<string, grpc.ClientWritableStream<unknown>>();
  private readonly unaryOnly = new Set<string>();
  private messageHandler: ((m: Message) => void) | null = null;
  private forwardHandler: ((from: string, payload: Uint8Array) => Promise<Uint8Array>) | null = null;
  constructor(
    private readonly dir: PeerDirectory,
    private readonly clients: PeerClients,
    private readonly logger: Logger,
  ) {}

  send(messages: Message[]): void {
    const byDest = new Map<string, Message[]>();
    for (const m of messages) {
      const list = byDest.get(m.to);
      if (list) list.push(m);
      else byDest.set(m.to, [m]);
    }
    for (const [to, list] of byDest) {
      if (!this.dir.addresses.has(to)) continue;
      // A large InstallSnapshot travels as chunks, one per batch, after the other messages.
      const plain: Message[] = [];
      const chunked: Array<{ message: Message; chunk?: SnapshotChunk }> = [];
      for (const m of list) {
        const parts = splitSnapshotMessage(m);
        if (parts.length === 1) plain.push(m);
        else chunked.push(...parts);
      }
      const batches: Array<Record<string, unknown>> = [];
      if (plain.length > 0) batches.push({ cluster: this.dir.cluster, messages: plain.map((m) => encodeRaftMessage(m)) });
      for (const c of chunked) batches.push({ cluster: this.dir.cluster, messages: [encodeRaftMessage(c.message, c.chunk)] });
      for (const batch of batches) {
        if (!this.unaryOnly.has(to) && this.writeStream(to, batch)) continue;
        this.clients.unary(to, 'Raft', batch, 10_000).catch((err: Error) => this.logger.debug({ to, err: err.message }, 'raft send failed'));
      }
    }
  }

  /**
   * Writes a batch on the long-lived RaftStream to `to`, opening it if needed. Returns false when
   * the batch could not be queued (it is then sent unary). A stream that fails is dropped and reopened
   * by the next send; a peer without RaftStream (UNIMPLEMENTED) gets unary calls from then on. When more than
   * MAX_STREAM_BUFFER batches wait on a stream (a stalled peer), it is cancelled: Raft resends.
   */
  private writeStream(to: string, batch: Record<string, unknown>): boolean {
    let s = this.streams.get(to);
    if (!s) {
      const client = this.clients.peerClient(to);
      const created: grpc.ClientWritableStream<unknown> = client.RaftStream((err: grpc.ServiceError | null) => {
        if (this.streams.get(to) === created) this.streams.delete(to);
        if (err?.code === grpc.status.UNIMPLEMENTED) this.unaryOnly.add(to);
        if (err) this.logger.debug({ to, err: err.details || err.message }, 'raft stream ended');
      });
      created.on('error', () => undefined);
      this.streams.set(to, created);
      s = created;
    }
    if (s.writableLength > MAX_STREAM_BUFFER) {
      this.logger.warn({ to, buffered: s.writableLength }, 'raft stream to a stalled peer cancelled');
      this.streams.delete(to);
      s.cancel();
      return true; // dropped: Raft resends what matters
    }
    try {
      s.write(batch);
      return true;
    } catch {
      this.streams.delete(to);
      return false;
    }
  }
  onMessage(handler: (message: Message) => void): void {
    this.messageHandler = handler;
  }
  /** Called by the peer server. */
  deliver(messages: Message[]): void {
    for (const m of messages) this.messageHandler?.(m);
  }
  async forward(to: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const reply = await this.clients.unary<{ payload: Buffer; error?: Record<string, unknown> }>(
      to,
      'KvForward',
      { cluster: this.dir.cluster, from: this.dir.self, payload: Buffer.from(payload) },
      timeoutMs,
    );
    const err = decodeWireError(reply.error);
    if (err) throw err;
    return new Uint8Array(reply.payload);
  }
  onForward(handler: (from: string, payload: Uint8Array) => Promise<Uint8Array>): void {
    this.forwardHandler = handler;
  }
  /** TCP connect to `to`'s peer port: 'down' only on ECONNREFUSED (nothing listens there). */
  probe(to: string, timeoutMs: number): Promise<'up' | 'down' | 'unknown'> {
    const addr = this.dir.addresses.get(to);
    if (!addr) return Promise.resolve('unknown');
    const i = addr.lastIndexOf(':');
    const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(i + 1));
    return new Promise((resolve) => {
      const sock = connect({ host, port });
      const done = (r: 'up' | 'down' | 'unknown'): void => {
        clearTimeout(timer);
        sock.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => done('unknown'), timeoutMs);
      sock.once('connect', () => done('up'));
      sock.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'down' : 'unknown'));
    });
  }
  handleForward(from: string, payload: Uint8Array): Promise<Uint8Array> {
    if (!this.forwardHandler) return Promise.reject(new UnavailableError('store not started'));
    return this.forwardHandler(from, payload);
  }
}

/** Block requests of at most this many bytes may share a `GetBlocks` call with others to the same source. */
const MERGE_MAX_BYTES = 256 << 10;
/** Most hashes in one merged `GetBlocks` call. */
const MERGE_MAX_HASHES = 64;

/** Objects up to this size may be fetched several per `GetObjects` call. */
const BATCH_MAX_OBJECT = 1 << 20;
/** Objects per `GetObjects` call, and such calls in flight per source. */
const BATCH_SIZE = 32;
const BATCH_CALLS = 4;

interface BatchItem {
  sha256: string;
  destPath: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Fetches a content-addressed object from the first source that has it, streaming it into
 * `destPath` while hashing; the file is renamed into place only when its SHA-256 matches.
 */
export class GrpcBlobFetcher {
  constructor(
    private readonly clients: PeerClients,
    private readonly self: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Hands back a block {@link getBlocks} returned, once the caller is done with it: a block that
   * had a reply of its own was read into a pooled buffer (see `block-receive.ts`), which then
   * assembles a later reply.
   */
  release(data: Uint8Array): void {
    releaseReceivedBlock(data);
  }

  /** Small objects waiting for a batched `GetObjects` call, by source. */
  private readonly batches = new Map<string, BatchItem[]>();
  private readonly batchCalls = new Map<string, number>();

  /**
   * Resolves `{ verified: true }`: the bytes were hashed while written and matched `sha256`.
   * Objects of at most {@link BATCH_MAX_OBJECT} bytes (`size` known) are first asked of the first
   * source together with other small objects in one `GetObjects` call.
   */
  async fetch(sha256: string, sources: string[], destPath: string, _signal?: AbortSignal, size?: number): Promise<{ verified: boolean }> {
    const tried: string[] = [];
    const order = [...new Set(sources)].filter((s) => s !== this.self);
    if (size !== undefined && size <= BATCH_MAX_OBJECT && order[0]) {
      try {
        await this.fetchBatched(order[0], sha256, destPath);
        return { verified: true };
      } catch (err) {
        this.logger.debug({ source: order[0], sha256, err: (err as Error).message }, 'batched object fetch failed, fetching alone');
      }
    }
    for (const source of order) {
      try {
        await this.fetchFrom(source, sha256, destPath);
        return { verified: true };
      } catch (err) {
        tried.push(`${source}: ${(err as Error).message}`);
        this.logger.debug({ source, sha256, err: (err as Error).message }, 'object fetch failed, trying next source');
      }
    }
    throw new UnavailableError(`object ${sha256.slice(0, 12)}… could not be fetched (${tried.join('; ') || 'no sources'})`);
  }

  private fetchBatched(source: string, sha256: string, destPath: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const list = this.batches.get(source) ?? [];
      list.push({ sha256, destPath, resolve, reject });
      this.batches.set(source, list);
      if (list.length === 1) setImmediate(() => this.flushBatches(source));
    });
  }

  private flushBatches(source: string): void {
    for (;;) {
      const list = this.batches.get(source);
      if (!list || list.length === 0 || (this.batchCalls.get(source) ?? 0) >= BATCH_CALLS) return;
      const batch = list.splice(0, BATCH_SIZE);
      this.batchCalls.set(source, (this.batchCalls.get(source) ?? 0) + 1);
      void this.runBatch(source, batch).finally(() => {
        this.batchCalls.set(source, (this.batchCalls.get(source) ?? 1) - 1);
        this.flushBatches(source);
      });
    }
  }

  /** One `GetObjects` call; each object is hashed, written to a `.part` file and renamed to its destPath. */
  private runBatch(source: string, batch: BatchItem[]): Promise<void> {
    const bySha = new Map<string, BatchItem[]>();
    for (const it of batch) bySha.set(it.sha256, [...(bySha.get(it.sha256) ?? []), it]);
    const settled = new Set<BatchItem>();
    const settle = (it: BatchItem, err: Error | null): void => {
      if (settled.has(it)) return;
      settled.add(it);
      if (err) it.reject(err);
      else it.resolve();
    };
    let parts: Buffer[] = [];
    let current = '';
    const work: Promise<void>[] = [];
    return new Promise<void>((done) => {
      const call = this.clients.dataClient(source).GetObjects({ sha256: [...bySha.keys()] }, { deadline: Date.now() + 120_000 });
      const finish = (err: Error | null): void => {
        void Promise.allSettled(work).then(() => {
          for (const it of batch) settle(it, err ?? new UnavailableError(`object ${it.sha256.slice(0, 12)}… missing from ${source}'s batch reply`));
          done();
        });
      };
      call.on('data', (c: { sha256: string; data: Buffer; last: boolean; error: string }) => {
        if (c.sha256 !== current) {
          current = c.sha256;
          parts = [];
        }
        if (c.data?.length) parts.push(c.data);
        if (!c.last) return;
        const items = bySha.get(c.sha256) ?? [];
        const bytes = Buffer.concat(parts);
        parts = [];
        current = '';
        if (c.error) {
          for (const it of items) settle(it, new UnavailableError(c.error));
          return;
        }
        const got = createHash('sha256').update(bytes).digest('hex');
        for (const it of items) {
          if (got !== c.sha256) {
            settle(it, new ValidationError(`object from ${source} hashed to ${got}, expected ${c.sha256}`));
            continue;
          }
          const partial = `${it.destPath}.part`;
          work.push(
            writeFile(partial, bytes)
              .then(() => rename(partial, it.destPath))
              .then(
                () => settle(it, null),
                (err: Error) => {
                  void rm(partial, { force: true });
                  settle(it, err);
                },
              ),
          );
        }
      });
      call.on('error', (err: grpc.ServiceError) => finish(new UnavailableError(err.details || err.message)));
      call.on('end', () => finish(null));
    });
  }

  /** Small block requests waiting to share one `GetBlocks` call, by source. */
  private readonly blockQueues = new Map<string, { hashes: string[]; resolve: (r: (Uint8Array | null)[]) => void; reject: (e: Error) => void }[]>();

  /**
   * Blocks `hashes` from `source`: resolves with one entry per hash (the bytes sent, unverified,
   * or null when `source` lacks the block). Rejects with UnavailableError when the call fails or
   * `signal` aborts. Requests of at most {@link MERGE_MAX_BYTES} (`bytes`, the blocks' total size)
   * made in the same event-loop turn share one call of up to {@link MERGE_MAX_HASHES} hashes
   * (many small files, one round trip); larger ones get their own call.
   */
  getBlocks(source: string, hashes: string[], signal?: AbortSignal, bytes?: number): Promise<(Uint8Array | null)[]> {
    if (bytes === undefined || bytes > MERGE_MAX_BYTES || hashes.length >= MERGE_MAX_HASHES) return this.getBlocksCall(source, hashes, signal);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new UnavailableError('fetch aborted'));
      const onAbort = (): void => reject(new UnavailableError('fetch aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const q = this.blockQueues.get(source) ?? [];
      q.push({
        hashes,
        resolve: (r) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      this.blockQueues.set(source, q);
      if (q.length === 1) setImmediate(() => this.flushBlockQueue(source));
    });
  }

  private flushBlockQueue(source: string): void {
    const q = this.blockQueues.get(source) ?? [];
    this.blockQueues.delete(source);
    while (q.length > 0) {
      const group: typeof q = [];
      let n = 0;
      while (q.length > 0 && n + q[0]!.hashes.length <= MERGE_MAX_HASHES) {
        const r = q.shift()!;
        group.push(r);
        n += r.hashes.length;
      }
      this.getBlocksCall(
        source,
        group.flatMap((r) => r.hashes),
      ).then(
        (all) => {
          let at = 0;
          for (const r of group) {
            r.resolve(all.slice(at, at + r.hashes.length));
            at += r.hashes.length;
          }
        },
        (err: Error) => group.forEach((r) => r.reject(err)),
      );
    }
  }

  /**
   * One `GetBlocks` call to `source`; aborting `signal` cancels the call.
   */
  private getBlocksCall(source: string, hashes: string[], signal?: AbortSignal): Promise<(Uint8Array | null)[]> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new UnavailableError('fetch aborted'));
      const out: (Uint8Array | null)[] = hashes.map(() => null);
      const call = this.clients.dataClient(source).GetBlocks({ hashes }, { deadline: Date.now() + 120_000 });
      let done = false;
      const onAbort = (): void => {
        call.cancel?.();
        finish(new UnavailableError('fetch aborted'));
      };
      const finish = (err: Error | null): void => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(out);
      };
      signal?.addEventListener('abort', onAbort);
      call.on('data', (r: { index: number; data: Buffer; missing: boolean }) => {
        if (!Number.isInteger(r.index) || r.index < 0 || r.index >= hashes.length) {
          call.cancel?.();
          return finish(new ValidationError(`GetBlocks reply from ${source} has index ${r.index} outside 0..${hashes.length - 1}`));
        }
        out[r.index] = r.missing ? null : r.data;
      });
      call.on('error', (err: grpc.ServiceError) => finish(new UnavailableError(`GetBlocks from ${source}: ${err.details || err.message}`)));
      call.on('end', () => finish(null));
    });
  }

  /**
   * The old version of `path` with content `sha256` that `source` kept, into `destPath` (hashed on
   * the way). NotFoundError when `source` kept none, ValidationError for bytes that hash otherwise,
   * UnavailableError when the call fails.
   */
  fetchKept(source: string, path: string, sha256: string, destPath: string): Promise<void> {
    return this.fetchFrom(source, sha256, destPath, path);
  }

  private fetchFrom(source: string, sha256: string, destPath: string, path?: string): Promise<void> {
    const partial = `${destPath}.part`;
    return new Promise<void>((resolve, reject) => {
      const call = this.clients.dataClient(source).GetObject(path ? { sha256, path } : { sha256 }, { deadline: Date.now() + 120_000 });
      const out = createWriteStream(partial);
      const hash = createHash('sha256');
      let failed = false;
      const fail = (err: Error): void => {
        if (failed) return;
        failed = true;
        out.destroy();
        call.cancel?.();
        rm(partial, { force: true }).finally(() => reject(err));
      };
      call.on('data', (chunk: { data: Buffer }) => {
        hash.update(chunk.data);
        if (!out.write(chunk.data)) {
          call.pause();
          out.once('drain', () => call.resume());
        }
      });
      call.on('error', (err: grpc.ServiceError) => fail(err.code === grpc.status.NOT_FOUND ? new NotFoundError(err.details || err.message) : new UnavailableError(err.details || err.message)));
      call.on('end', () => {
        if (failed) return;
        out.end(() => {
          const got = hash.digest('hex');
          if (got !== sha256) return fail(new ValidationError(`object from ${source} hashed to ${got}, expected ${sha256}`));
          rename(partial, destPath).then(resolve, (err: Error) => fail(err));
        });
      });
    });
  }
}
