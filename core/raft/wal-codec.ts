/**
 * Record codec of the Raft write-ahead log (pure; the file adapter is `./wal`).
 *
 * Record layout (little endian):
 * ```
 * u32 length   // bytes of (type + payload)
 * u32 crc32    // IEEE CRC-32 (poly 0xEDB88320) of (type + payload)
 * u8  type     // 1 = header, 2 = hardState, 3 = entry, 4 = snapshot
 * ... payload
 * ```
 * Payloads: header = UTF-8 JSON `{ version, clusterId }`; hardState = UTF-8 JSON `{ term, vote, commit }`;
 * entry = f64 term, f64 index, u8 kind (0 normal, 1 config), then the entry data bytes;
 * snapshot = f64 index, f64 term, u32 n, n bytes of UTF-8 JSON `{ voters, learners, context? }`, then the
 * snapshot data bytes (used by the snapshot file `raft.snap`, see `./wal`).
 *
 * Decoding distinguishes a torn tail (the last record is incomplete or fails its CRC: a crash
 * during a write, safe to truncate because it was never fsynced and acknowledged) from a bad
 * record followed by more data (real corruption → CorruptionError).
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { CorruptionError } from '../common/errors';
import type { Entry, HardState, Snapshot } from './types';

/** One decoded WAL record. */
export type WalRecord =
  | { type: 'header'; clusterId: string; version: number }
  | { type: 'hardState'; hardState: HardState }
  | { type: 'entry'; entry: Entry }
  | { type: 'snapshot'; snapshot: Snapshot };

/** Current header format version. */
export const WAL_VERSION = 1;
const TYPE_HEADER = 1;
const TYPE_HARDSTATE = 2;
const TYPE_ENTRY = 3;
const TYPE_SNAPSHOT = 4;
const FRAME = 8;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** IEEE 802.3 CRC-32 of `bytes` (same as zlib's `crc32`). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME + 1 + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 1 + payload.length, true);
  out[FRAME] = type;
  out.set(payload, FRAME + 1);
  dv.setUint32(4, crc32(out, FRAME), true);
  return out;
}

/** Encodes one record with its length and CRC frame. */
export function encodeRecord(r: WalRecord): Uint8Array {
  switch (r.type) {
    case 'header':
      return frame(TYPE_HEADER, enc.encode(JSON.stringify({ version: r.version, clusterId: r.clusterId })));
    case 'hardState':
      return frame(TYPE_HARDSTATE, enc.encode(JSON.stringify({ term: r.hardState.term, vote: r.hardState.vote, commit: r.hardState.commit })));
    case 'entry': {
      const e = r.entry;
      const p = new Uint8Array(17 + e.data.length);
      const dv = new DataView(p.buffer);
      dv.setFloat64(0, e.term, true);
      dv.setFloat64(8, e.index, true);
      p[16] = e.type === 'config' ? 1 : 0;
      p.set(e.data, 17);
      return frame(TYPE_ENTRY, p);
    }
    case 'snapshot': {
      const s = r.snapshot;
      const meta = enc.encode(JSON.stringify({ voters: s.voters, learners: s.learners, ...(s.context ? { context: s.context } : {}) }));
      const p = new Uint8Array(20 + meta.length + s.data.length);
      const dv = new DataView(p.buffer);
      dv.setFloat64(0, s.index, true);
      dv.setFloat64(8, s.term, true);
      dv.setUint32(16, meta.length, true);
      p.set(meta, 20);
      p.set(s.data, 20 + meta.length);
      return frame(TYPE_SNAPSHOT, p);
    }
  }
}

/** Concatenates encoded records into one buffer (one write per Ready). */
export function encodeRecords(records: WalRecord[]): Uint8Array {
  const parts = records.map(encodeRecord);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Result of {@link decodeRecords}. */
export interface DecodeResult {
  records: WalRecord[];
  /** Bytes of valid records; the file should be truncated to this length when `torn`. */
  validBytes: number;
  /** True if an incomplete or CRC-failing record ends the buffer (crash during write). */
  torn: boolean;
}

function decodePayload(type: number, p: Uint8Array, offset: number): WalRecord {
  try {
    if (type === TYPE_HEADER) {
      const j = JSON.parse(dec.decode(p)) as { version: number; clusterId: string };
      return { type: 'header', clusterId: String(j.clusterId), version: Number(j.version) };
    }
    if (type === TYPE_HARDSTATE) {
      const j = JSON.parse(dec.decode(p)) as HardState;
      return { type: 'hardState', hardState: { term: Number(j.term), vote: String(j.vote), commit: Number(j.commit) } };
    }
    if (type === TYPE_ENTRY && p.length >= 17) {
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      return { type: 'entry', entry: { term: dv.getFloat64(0, true), index: dv.getFloat64(8, true), type: p[16] === 1 ? 'config' : 'normal', data: p.slice(17) } };
    }
    if (type === TYPE_SNAPSHOT && p.length >= 20) {
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const n = dv.getUint32(16, true);
      if (20 + n > p.length) throw new RangeError('snapshot metadata runs past the record');
      const meta = JSON.parse(dec.decode(p.subarray(20, 20 + n))) as { voters: unknown; learners: unknown; context?: unknown };
      const ids = (v: unknown): string[] => {
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new TypeError('snapshot voters/learners must be string arrays');
        return v as string[];
      };
      const index = dv.getFloat64(0, true);
      const term = dv.getFloat64(8, true);
      if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || index < 1 || term < 1) throw new RangeError(`bad snapshot index/term ${index}/${term}`);
      const context = meta.context === undefined ? undefined : stringMap(meta.context);
      return { type: 'snapshot', snapshot: { index, term, voters: ids(meta.voters), learners: ids(meta.learners), ...(context ? { context } : {}), data: new Uint8Array(p.subarray(20 + n)) } };
    }
  } catch (err) {
    throw new CorruptionError(`undecodable WAL record at byte ${offset}`, { cause: err });
  }
  throw new CorruptionError(`unknown WAL record type ${type} at byte ${offset}`);
}

/**
 * Decodes a whole WAL buffer. A damaged final record is reported as a torn tail; a damaged
 * record with valid-looking data after it throws CorruptionError.
 */
export function decodeRecords(buf: Uint8Array): DecodeResult {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: WalRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    const remaining = buf.length - off;
    if (remaining < FRAME + 1) return { records, validBytes: off, torn: true };
    const len = dv.getUint32(off, true);
    const crc = dv.getUint32(off + 4, true);
    const end = off + FRAME + len;
    if (len === 0 || end > buf.length) {
      // A length running past the end is a torn write; a zero length (pre-allocated or zeroed space) too.
      return { records, validBytes: off, torn: true };
    }
    if (crc32(buf, off + FRAME, end) !== crc) {
      if (end === buf.length || isZero(buf, end)) return { records, validBytes: off, torn: true };
      throw new CorruptionError(`WAL record at byte ${off} fails its CRC and is followed by more data`, { detail: { offset: off } });
    }
    records.push(decodePayload(buf[off + FRAME]!, buf.subarray(off + FRAME + 1, end), off));
    off = end;
  }
  return { records, validBytes: off, torn: false };
}

function isZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** A snapshot's configuration context: an object of string values (throws TypeError otherwise). */
function stringMap(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new TypeError('snapshot context must map ids to strings');
  return { ...(v as Record<string, string>) };
}
