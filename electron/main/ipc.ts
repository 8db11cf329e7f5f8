/**
 * The main-process side of the preload bridge, kept free of Electron imports so it can be tested
 * in plain Node. Every call is answered with an envelope — `{ ok: true, result }` or
 * `{ ok: false, error: { name, code, message } }` — because contextBridge keeps only the message
 * of a thrown error.
 */
import { toWire, type WireError } from '../../core/common/errors';
import type { ControlHandler } from '../../core/node/node';

export type Envelope = { ok: true; result: unknown } | { ok: false; error: WireError };

/**
 * Answers one `cd:call` IPC message.
 * @param trusted whether the sender is our own window's top frame (checked by the caller).
 * @param node the running node, or null while it starts.
 */
export async function answerIpcCall(trusted: boolean, node: Pick<ControlHandler, 'call'> | null, method: unknown, params: unknown): Promise<Envelope> {
  if (!trusted) return { ok: false, error: { name: 'AuthError', code: 'EAUTH', message: 'IPC from an unknown frame was refused' } };
  if (!node) return { ok: false, error: { name: 'UnavailableError', code: 'EUNAVAILABLE', message: 'the node is still starting' } };
  try {
    return { ok: true, result: await node.call(method as never, params) };
  } catch (err) {
    return { ok: false, error: toWire(err) };
  }
}
