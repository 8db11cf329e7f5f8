/**
 * gRPC adapter for the peer protocol (`core/proto/peer.proto`): one server per node, one lazily
 * created client per peer. Implements the Raft transport and the blob fetcher over it.
 *
 * Incoming messages are checked before they reach any core module: the cluster name must match,
 * the sender must be a configured node, and every field must have its declared type. A bad
 * message is answered with INVALID_ARGUMENT / PERMISSION_DENIED and logged; it never crashes the node.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { UnavailableError, ValidationError, toWire, fromWire, type WireError, AuthError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { Entry, Message, MessageType, RaftTransport } from '../raft/types';

function protoPath(): string {
  const candidates = [
    new URL('../proto/peer.proto', import.meta.url),
    new URL('../../core/proto/peer.proto', import.meta.url),
    new URL('../../../core/proto/peer.proto', import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`peer.proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyService = any;
let loaded: { Peer: AnyService; Data: AnyService } | null = null;
/** Loads the proto once per process. */
export function peerProto(): { Peer: AnyService; Data: AnyService } {
  if (!loaded) {
    const def = protoLoader.loadSync(protoPath(), { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const pkg = (grpc.loadPackageDefinition(def) as any).clusterdesk.peer.v1;
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

/** Raft message → proto object. */
export function encodeRaftMessage(m: Message): Record<string, unknown> {
  return {
    type: TYPE_TO_PROTO[m.type],
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type === 'config' ? 'ENTRY_CONFIG' : 'ENTRY_NORMAL', data: Buffer.from(e.data) })),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    snapshot: m.snapshot
      ? { index: m.snapshot.index, term: m.snapshot.term, voters: m.snapshot.voters, learners: m.snapshot.learners, data: Buffer.from(m.snapshot.data) }
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
    return { term: e.term, index: e.index, type: e.type === 'ENTRY_CONFIG' ? 'config' : 'normal', data: new Uint8Array(e.data as Buffer) };
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
  if (s && isCount(s.index) && isCount(s.term)) {
    msg.snapshot = { index: s.index, term: s.term, voters: (s.voters as string[]) ?? [], learners: (s.learners as string[]) ?? [], data: new Uint8Array(s.data as Buffer) };
  }
  return msg;
}

/** WireError ↔ proto WireError. */
export function encodeWireError(err: unknown): Record<string, string> {
  const w = toWire(err);
  return { name: w.name, code: w.code, message: w.message, detailJson: w.detail ? JSON.stringify(w.detail) : '' };
}
export function decodeWireError(o: Record<string, unknown> | null | undefined): Error | null {
  if (!o || !o.code) return null;
  let detail: Record<string, unknown> | undefined;
  try {
    detail = o.detailJson ? (JSON.parse(String(o.detailJson)) as Record<string, unknown>) : undefined;
  } catch {
    detail = undefined;
  }
  const wire: WireError = { name: String(o.name), code: String(o.code), message: String(o.message) };
  if (detail) wire.detail = detail;
  return fromWire(wire);
}

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
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
  const known = (id: unknown): boolean => typeof id === 'string' && dir.addresses.has(id);
  const fail = (cb: grpc.sendUnaryData<unknown>, code: grpc.status, message: string): void => {
    logger.warn({ code, reason: message }, 'peer request refused');
    cb({ code, details: message, name: 'PeerError', message });
  };
  const { Peer, Data } = peerProto();
  server.addService(Peer.service, {
    Raft: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const req = call.request;
      if (req.cluster !== dir.cluster) return fail(cb, grpc.status.PERMISSION_DENIED, `raft batch for cluster "${String(req.cluster)}", this is "${dir.cluster}"`);
      const out: Message[] = [];
      try {
        for (const raw of (req.messages as Record<string, unknown>[]) ?? []) {
          const m = decodeRaftMessage(raw);
          if (!known(m.from)) throw new AuthError(`raft message from unknown node "${m.from}"`);
          if (m.to !== dir.self) throw new ValidationError(`raft message addressed to "${m.to}", this is "${dir.self}"`);
          out.push(m);
        }
      } catch (err) {
        return fail(cb, err instanceof AuthError ? grpc.status.PERMISSION_DENIED : grpc.status.INVALID_ARGUMENT, (err as Error).message);
      }
      try {
        handlers.raft(out);
      } catch (err) {
        logger.error({ err }, 'raft handler failed');
      }
      cb(null, {});
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
  server.addService(Data.service, {
    GetObject: (call: grpc.ServerWritableStream<Record<string, unknown>, unknown>) => {
      const sha = String(call.request.sha256 ?? '');
      // A server stream ends with a status by emitting 'error' with { code, details } (grpc-js).
      const end = (code: grpc.status, details: string): void => void call.emit('error', { code, details });
      if (!/^[0-9a-f]{64}$/.test(sha)) return end(grpc.status.INVALID_ARGUMENT, 'sha256 must be 64 lowercase hex digits');
      const stream = handlers.openObject(sha);
      if (!stream) return end(grpc.status.NOT_FOUND, `object ${sha} not found`);
      stream.on('data', (chunk: Buffer) => {
        if (!call.write({ data: chunk })) {
          stream.pause();
          call.once('drain', () => stream.resume());
        }
      });
      stream.on('end', () => call.end());
      stream.on('error', (err: Error) => end(grpc.status.INTERNAL, `reading object ${sha}: ${err.message}`));
      call.on('cancelled', () => (stream as unknown as { destroy?: () => void }).destroy?.());
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

/** RaftTransport over gRPC. Sends are batched per destination per call and never block Raft. */
export class GrpcRaftTransport implements RaftTransport {
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
      this.clients
        .unary(to, 'Raft', { cluster: this.dir.cluster, messages: list.map(encodeRaftMessage) }, 1000)
        .catch((err: Error) => this.logger.debug({ to, err: err.message }, 'raft send failed'));
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
  handleForward(from: string, payload: Uint8Array): Promise<Uint8Array> {
    if (!this.forwardHandler) return Promise.reject(new UnavailableError('store not started'));
    return this.forwardHandler(from, payload);
  }
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

  async fetch(sha256: string, sources: string[], destPath: string): Promise<void> {
    const tried: string[] = [];
    for (const source of [...new Set(sources)].filter((s) => s !== this.self)) {
      try {
        await this.fetchFrom(source, sha256, destPath);
        return;
      } catch (err) {
        tried.push(`${source}: ${(err as Error).message}`);
        this.logger.debug({ source, sha256, err: (err as Error).message }, 'object fetch failed, trying next source');
      }
    }
    throw new UnavailableError(`object ${sha256.slice(0, 12)}… could not be fetched (${tried.join('; ') || 'no sources'})`);
  }

  private fetchFrom(source: string, sha256: string, destPath: string): Promise<void> {
    const partial = `${destPath}.part`;
    return new Promise<void>((resolve, reject) => {
      const call = this.clients.dataClient(source).GetObject({ sha256 }, { deadline: Date.now() + 120_000 });
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
      call.on('error', (err: grpc.ServiceError) => fail(new UnavailableError(err.details || err.message)));
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
