/**
 * Errors raised by the console's transports. A failed call always rejects with an `Error` carrying
 * `code` and `name` (from the node's `WireError`, or a local one for transport failures).
 */
import type { WireError } from '../../../core/common/errors';

/** A call failed: either the node answered with a `WireError`, or the transport lost the call. */
export class ControlCallError extends Error {
  readonly code: string;
  readonly detail: Record<string, unknown> | undefined;
  constructor(wire: WireError) {
    super(wire.message);
    this.name = wire.name;
    this.code = wire.code;
    this.detail = wire.detail;
  }
}

/** Builds the error a transport rejects with when the connection is not usable. */
export function connectionError(code: 'ECONNLOST' | 'ECONNCLOSED' | 'ETIMEDOUT', message: string): ControlCallError {
  return new ControlCallError({ name: code === 'ETIMEDOUT' ? 'TimeoutError' : 'ConnectionError', code, message });
}

/** Normalises anything a transport rejected with into a {@link ControlCallError}. */
export function toCallError(err: unknown): ControlCallError {
  if (err instanceof ControlCallError) return err;
  if (err && typeof err === 'object') {
    const e = err as Partial<WireError> & { message?: unknown };
    if (typeof e.code === 'string' && typeof e.message === 'string') {
      return new ControlCallError({
        name: typeof e.name === 'string' ? e.name : 'RemoteError',
        code: e.code,
        message: e.message,
        ...(e.detail ? { detail: e.detail } : {}),
      });
    }
    if (typeof e.message === 'string') return new ControlCallError({ name: 'InternalError', code: 'EINTERNAL', message: e.message });
  }
  return new ControlCallError({ name: 'InternalError', code: 'EINTERNAL', message: String(err) });
}

/** A one-line, human-readable description of a failed call, e.g. `ELOCKED: file is locked by B`. */
export function describeError(err: unknown): string {
  const e = toCallError(err);
  return `${e.message} (${e.code})`;
}
