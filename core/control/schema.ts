/**
 * Validation of ControlApi calls arriving from any transport (IPC, WebSocket, in-memory).
 * Everything from a console is untrusted: a malformed frame or parameter is answered with a
 * ValidationError naming the field; it never reaches the node.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { z } from 'zod';
import { ValidationError } from '../common/errors';
import { CONTROL_METHODS, type ControlMethod, type ParamsOf } from './api';

/** Largest upload accepted through the console, in bytes (decoded). */
export const MAX_UPLOAD_BYTES = 64 << 20;
/** Largest frame accepted on a JSON transport, in bytes (base64 upload plus envelope). */
export const MAX_FRAME_BYTES = Math.ceil((MAX_UPLOAD_BYTES * 4) / 3) + 64 * 1024;

const path = z.string().min(1).max(1024);
/** A kept version's id (`YYYYMMDD-HHMMSS`, `-N` when several in one second) or a committed version `v<N>`. */
export const VERSION_ID = /^(\d{8}-\d{6}(-\d{1,4})?|v[1-9]\d{0,14})$/;
const op = z.enum(['add', 'sort']);
const values = z.array(z.number().finite()).max(100_000);
const team = z.string().min(1).max(64).optional();
const empty = z.strictObject({}).optional().default({});
/** A node id, as in the cluster config (`core/config/schema.ts`). */
export const nodeIdSchema = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'must be a node id: a letter, then letters, digits, "_" or "-" (at most 32)');
/** A peer address "host:port": a host name, IPv4 address or [IPv6] address, and a port 1–65535. */
export const peerAddressSchema = z
  .string()
  .max(262)
  .regex(/^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([0-9]{1,5})$/, 'must be "host:port"')
  .refine((a) => {
    const port = Number(a.slice(a.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'port must be 1..65535');
const member = z.strictObject({ id: nodeIdSchema });

const schemas: { [M in ControlMethod]: z.ZodType<ParamsOf<M>> } = {
  status: empty as z.ZodType<ParamsOf<'status'>>,
  listFiles: empty as z.ZodType<ParamsOf<'listFiles'>>,
  activity: empty as z.ZodType<ParamsOf<'activity'>>,
  listJobs: empty as z.ZodType<ParamsOf<'listJobs'>>,
  lock: z.strictObject({ path, mode: z.enum(['exclusive', 'shared']).optional(), user: z.string().max(128).optional() }),
  unlock: z.strictObject({ path, force: z.boolean().optional() }),
  upload: z.strictObject({
    path,
    dataBase64: z
      .string()
      .max(Math.ceil((MAX_UPLOAD_BYTES * 4) / 3) + 4, `upload is larger than ${MAX_UPLOAD_BYTES} bytes`)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'dataBase64 is not base64'),
  }),
  deleteFile: z.strictObject({ path }),
  renameFile: z.strictObject({ from: path, to: path }),
  request: z.strictObject({ op, values, team }),
  fileHistory: z.strictObject({ path }),
  restoreVersion: z.strictObject({ path, versionId: z.string().regex(VERSION_ID, 'versionId must be YYYYMMDD-HHMMSS[-N] (a kept version) or v<N> (a committed version)') }),
  listConflicts: empty as z.ZodType<ParamsOf<'listConflicts'>>,
  resolveConflict: z.strictObject({ path, keep: z.enum(['original', 'copy']) }),
  listProblems: empty as z.ZodType<ParamsOf<'listProblems'>>,
  submit: z.strictObject({ op, values, team }),
  memberAdd: z.strictObject({ id: nodeIdSchema, address: peerAddressSchema }),
  memberPromote: member,
  memberRemove: member,
  leaderTransfer: member,
};

/** True when `m` names a ControlApi method. */
export function isControlMethod(m: unknown): m is ControlMethod {
  return typeof m === 'string' && (CONTROL_METHODS as readonly string[]).includes(m);
}

/**
 * Validates a call's method and params.
 * @throws ValidationError listing the bad fields.
 */
export function parseCall<M extends ControlMethod>(method: unknown, params: unknown): { method: M; params: ParamsOf<M> } {
  if (!isControlMethod(method)) throw new ValidationError(`unknown method ${JSON.stringify(method)}; methods: ${CONTROL_METHODS.join(', ')}`);
  const r = schemas[method].safeParse(params ?? {});
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`);
    throw new ValidationError(`${method}: ${issues.join('; ')}`, { detail: { issues } });
  }
  return { method: method as M, params: r.data as ParamsOf<M> };
}

/**
 * Parses one JSON text frame from a console.
 * @throws ValidationError for oversize, non-JSON or wrongly shaped frames (with the call id when one could be read).
 */
export function parseCallFrame(text: string): { id: number; method: unknown; params: unknown } {
  if (text.length > MAX_FRAME_BYTES) throw new ValidationError(`frame of ${text.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`frame is not JSON: ${(err as Error).message}`);
  }
  const f = frame as { kind?: unknown; id?: unknown; method?: unknown; params?: unknown } | null;
  if (!f || typeof f !== 'object' || f.kind !== 'call' || typeof f.id !== 'number' || !Number.isSafeInteger(f.id)) {
    throw new ValidationError('frame must be {"kind":"call","id":<integer>,"method":…,"params":…}');
  }
  return { id: f.id, method: f.method, params: f.params };
}
