/**
 * Client side of the `Watch` service of the client KV API (`core/proto/kv.proto`): a watch on a
 * remote node that survives lost connections (server restart, node restart, network loss).
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
import { CompactedError, ValidationError } from '../common/errors';
import type { KeyValue, WatchEvent } from '../kv/types';
import { ERROR_CODE_METADATA, kvProto } from './kv-service';

export interface RemoteWatchOptions {
  /** Deliver events with revision >= this first (0/absent: only events after the watch starts). */
  fromRevision?: number;
  /** Also deliver `prevKv` on each event. */
  prevKv?: boolean;
  /** Terminal errors: CompactedError (resume revision compacted), ValidationError (refused request). The watch is over after it. */
  onError?: (err: Error) => void;
  /** Connection changes: `connected` when a stream is established, `disconnected` (with the cause) when it broke and a retry is scheduled. */
  onConnection?: (state: 'connected' | 'disconnected', detail: { resumeFrom: number; cause?: string }) => void;
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

/**
 * Watches keys under `prefix` on the node at `address` (`host:port`, its peer/gRPC port),
 * calling `listener(events, revision)` once per revision, in revision order, exactly once per
 * revision across reconnects. See the module comment for resume and compaction.
 * @throws ValidationError for an empty prefix or a negative/non-integer fromRevision.
 */
export function watchRemote(address: string, prefix: string, listener: (events: WatchEvent[], revision: number) => void, options: RemoteWatchOptions = {}): RemoteWatcher {
  if (typeof prefix !== 'string' || prefix.length === 0) throw new ValidationError('watch prefix must be a non-empty string');
  const from = options.fromRevision ?? 0;
  if (!Number.isSafeInteger(from) || from < 0) throw new ValidationError(`fromRevision must be a non-negative integer, got ${from}`);
  const minMs = options.retryMinMs ?? 100;
  const maxMs = options.retryMaxMs ?? 2000;
  const { Watch } = kvProto();
  const client = new Watch(address, grpc.credentials.createInsecure());
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
    client.close();
    if (err) options.onError?.(err);
  };

  const retry = (cause: string): void => {
    if (done || timer) return;
    options.onConnection?.('disconnected', { resumeFrom: last === null ? from : last + 1, cause });
    timer = setTimeout(() => {
      timer = null;
      open();
    }, delay);
    delay = Math.min(maxMs, delay * 2);
  };

  const open = (): void => {
    if (done) return;
    const start = last === null ? 0 : last + 1;
    const s = client.Watch({ prefix, startRevision: start, prevKv: !!options.prevKv }) as grpc.ClientReadableStream<Obj>;
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
        finish(new CompactedError(start, compact));
        return;
      }
      if (res.created) {
        delay = minMs;
        if (last === null) last = revision;
        options.onConnection?.('connected', { resumeFrom: start });
        return;
      }
      // Already delivered (a replay overlapping what we saw): drop, never deliver twice.
      if (last !== null && revision <= last) return;
      const events = ((res.events ?? []) as Obj[]).map((e): WatchEvent => ({ type: e.type === 'DELETE' ? 'delete' : 'put', kv: kvIn((e.kv ?? {}) as Obj), ...(e.prevKv ? { prevKv: kvIn(e.prevKv as Obj) } : {}) }));
      last = revision;
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
