/**
 * Typed errors shared by every ClusterDesk package (the nats.js `errors.ts` pattern).
 *
 * Each class sets `name`, carries a stable machine-readable `code`, accepts `cause`, and
 * travels across IPC, WebSocket and gRPC as `{ name, code, message }` ({@link toWire}).
 * Three families are kept apart:
 * - expected failures a caller can act on (`ClusterDeskError` subclasses),
 * - cancellation (`CancelledError`),
 * - bugs, i.e. broken invariants (`InvariantError`), which should crash loudly in tests.
 *
 * Deterministic module: imports nothing from `node:`.
 */

/** The wire form of any error crossing a process, thread or IPC boundary. */
export interface WireError {
  name: string;
  code: string;
  message: string;
  /** Optional structured detail, e.g. `{ leaderId }` for NotLeaderError. */
  detail?: Record<string, unknown>;
}

/** Base class of every expected, typed failure. */
export class ClusterDeskError extends Error {
  readonly code: string;
  readonly detail: Record<string, unknown> | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.detail = options?.detail;
  }
}

/** Input failed validation (malformed JSON, wrong types, oversize payloads, unknown task types). */
export class ValidationError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('EINVAL', message, options);
  }
}

/** The cluster config file is invalid (unknown neighbor, duplicate port, team without leader…). */
export class ConfigError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('ECONFIG', message, options);
  }
}

/** This node is not the Raft leader; `detail.leaderId` names the leader if known (Raft §6.2). */
export class NotLeaderError extends ClusterDeskError {
  constructor(leaderId: string | null, options?: { cause?: unknown }) {
    super('ENOTLEADER', leaderId ? `not the leader; the leader is ${leaderId}` : 'not the leader; no leader is known', {
      ...options,
      detail: { leaderId },
    });
  }
}

/** No quorum / no leader could be reached before the deadline. Retryable. */
export class UnavailableError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('EUNAVAILABLE', message, options);
  }
}

/** A deadline passed before the operation completed. Retryable. */
export class TimeoutError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('ETIMEDOUT', message, options);
  }
}

/** The requested key, file, job or node does not exist. */
export class NotFoundError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('ENOENT', message, options);
  }
}

/** A lock is held by someone else, or an operation conflicts with a lock. */
export class LockConflictError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('ELOCKED', message, options);
  }
}

/** A bounded queue is full (leader queue capacity 200, 100 concurrent requests per process). */
export class OverloadedError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('EOVERLOADED', message, options);
  }
}

/** A routed message exceeded its hop limit or came back to a node it already visited. */
export class RoutingError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('EROUTE', message, options);
  }
}

/** The caller is not authenticated (bad or missing console token, unknown peer). */
export class AuthError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('EAUTH', message, options);
  }
}

/** A path is unsafe or not portable (traversal, absolute, reserved name). */
export class PathError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('EPATH', message, options);
  }
}

/** A watch asked for a revision that has been compacted away (etcd's ErrCompacted). */
export class CompactedError extends ClusterDeskError {
  constructor(requested: number, compactRevision: number) {
    super('ECOMPACTED', `revision ${requested} has been compacted; oldest available is ${compactRevision}`, {
      detail: { requested, compactRevision },
    });
  }
}

/** Persistent storage is corrupt (bad CRC in the middle of a WAL, WAL from another cluster). */
export class CorruptionError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('ECORRUPT', message, options);
  }
}

/**
 * Writing to local storage failed (disk full, I/O error). The Raft store stops rather than
 * acknowledge what the disk does not hold; `detail.errno` is the OS code (ENOSPC, EIO…) and
 * `detail.dir` the directory.
 */
export class StorageError extends ClusterDeskError {
  constructor(message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super('ESTORAGE', message, options);
  }
}

/** The operation was cancelled (node stopping, client went away). */
export class CancelledError extends Error {
  readonly code = 'ECANCELED';
  constructor(message = 'cancelled', options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CancelledError';
  }
}

/** A broken invariant: a bug in ClusterDesk, never an expected condition. */
export class InvariantError extends Error {
  readonly code = 'EINVARIANT';
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

/** Throws {@link InvariantError} when `cond` is false. */
/** The string `code` of an error (a Node system error's `ENOENT`, `EACCES`…, or a {@link ClusterDeskError}'s), or undefined for anything else (including null). */
export function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InvariantError(message);
}

const registry: Record<string, new (msg: string) => Error> = {};

/** Converts any thrown value to its wire form. Unknown errors become `EINTERNAL`. */
export function toWire(err: unknown): WireError {
  if (err instanceof ClusterDeskError) {
    return err.detail ? { name: err.name, code: err.code, message: err.message, detail: err.detail } : { name: err.name, code: err.code, message: err.message };
  }
  if (err instanceof CancelledError || err instanceof InvariantError) return { name: err.name, code: err.code, message: err.message };
  if (err instanceof Error) return { name: 'InternalError', code: 'EINTERNAL', message: err.message };
  return { name: 'InternalError', code: 'EINTERNAL', message: String(err) };
}

/** A typed error rebuilt from its wire form; `code` and `detail` survive the trip. */
export class RemoteError extends ClusterDeskError {
  readonly remoteName: string;
  constructor(wire: WireError) {
    super(wire.code, wire.message, wire.detail ? { detail: wire.detail } : undefined);
    this.remoteName = wire.name;
    this.name = wire.name;
  }
}

/** Rebuilds an error from its wire form (the class name is kept in `name`). */
export function fromWire(wire: WireError): ClusterDeskError {
  void registry;
  return new RemoteError(wire);
}

/** True for errors worth retrying after a short wait (no leader yet, timeout, unavailable). */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOTLEADER' || code === 'EUNAVAILABLE' || code === 'ETIMEDOUT';
}

/**
 * A typed error in the shape of the proto message `WireError` (peer.proto) and `StreamError`
 * (kv.proto): `{ name, code, message, detailJson }`, detail as JSON ('' for none).
 */
export function encodeWireError(err: unknown): { name: string; code: string; message: string; detailJson: string } {
  const w = toWire(err);
  return { name: w.name, code: w.code, message: w.message, detailJson: w.detail ? JSON.stringify(w.detail) : '' };
}

/** The error of a proto `WireError`/`StreamError` (see {@link encodeWireError}); null when it carries no code. Malformed detail JSON is dropped. */
export function decodeWireError(o: Record<string, unknown> | null | undefined): ClusterDeskError | null {
  if (!o || !o.code) return null;
  let detail: Record<string, unknown> | undefined;
  try {
    detail = o.detailJson ? (JSON.parse(String(o.detailJson)) as Record<string, unknown>) : undefined;
  } catch {
    detail = undefined;
  }
  const wire: WireError = { name: String(o.name || 'RemoteError'), code: String(o.code), message: String(o.message ?? '') };
  if (detail) wire.detail = detail;
  return fromWire(wire);
}
