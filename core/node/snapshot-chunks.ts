/**
 * InstallSnapshot over gRPC in chunks (etcd streams snapshots separately for the same reason):
 * gRPC limits message size (4 MiB by default, 64 MiB as configured here) and a KV snapshot can
 * be larger. The sender splits one InstallSnapshot into messages that each carry the snapshot's
 * metadata, a slice of its data and `snapshot_chunk { offset, total }`; the receiver reassembles
 * the slices per sender, in order, and hands Raft one whole message.
 *
 * Hostile input: a chunk that does not continue the snapshot in progress (other index/term,
 * offset not equal to the bytes received, total changed, data past total, total above
 * {@link MAX_SNAPSHOT_BYTES}) is a ValidationError; the caller refuses the batch and logs it.
 * A chunk at offset 0 always starts over (a leader re-sending after a timeout).
 */
import { ValidationError } from '../common/errors';
import type { Message, NodeId } from '../raft/types';

/** Data bytes per chunk (well under gRPC's default 4 MiB). */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;
/** Largest snapshot accepted (1 GiB). */
export const MAX_SNAPSHOT_BYTES = 1 << 30;

/** Position of one chunk inside the snapshot data. */
export interface SnapshotChunk {
  offset: number;
  total: number;
}

/** Splits an InstallSnapshot whose data exceeds `chunkBytes` into chunks; any other message is returned as is. */
export function splitSnapshotMessage(m: Message, chunkBytes = SNAPSHOT_CHUNK_BYTES): Array<{ message: Message; chunk?: SnapshotChunk }> {
  const s = m.snapshot;
  if (m.type !== 'InstallSnapshot' || !s || s.data.length <= chunkBytes) return [{ message: m }];
  const out: Array<{ message: Message; chunk: SnapshotChunk }> = [];
  for (let offset = 0; offset < s.data.length; offset += chunkBytes) {
    out.push({ message: { ...m, snapshot: { ...s, data: s.data.subarray(offset, offset + chunkBytes) } }, chunk: { offset, total: s.data.length } });
  }
  return out;
}

interface InProgress {
  index: number;
  term: number;
  total: number;
  received: number;
  parts: Uint8Array[];
}

/** Reassembles chunked InstallSnapshot messages, one snapshot in progress per sender. */
export class SnapshotAssembler {
  private readonly pending = new Map<NodeId, InProgress>();

  /**
   * Feeds one message. Returns the message to deliver (unchunked messages pass through, the last
   * chunk returns the whole snapshot) or null while a snapshot is incomplete.
   * @throws ValidationError for a chunk that does not fit (the snapshot in progress is dropped).
   */
  accept(m: Message, chunk: SnapshotChunk | undefined): Message | null {
    if (!chunk) return m;
    const s = m.snapshot;
    try {
      if (m.type !== 'InstallSnapshot' || !s) throw new ValidationError(`snapshot chunk on a ${m.type} message without a snapshot`);
      const { offset, total } = chunk;
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(total) || offset < 0 || total < 1) throw new ValidationError('snapshot chunk: offset/total must be non-negative integers');
      if (total > MAX_SNAPSHOT_BYTES) throw new ValidationError(`snapshot chunk: total ${total} bytes exceeds the ${MAX_SNAPSHOT_BYTES}-byte limit`);
      if (s.data.length === 0 || offset + s.data.length > total) throw new ValidationError(`snapshot chunk: ${s.data.length} bytes at ${offset} do not fit in ${total}`);
      let p = this.pending.get(m.from);
      if (offset === 0) {
        p = { index: s.index, term: s.term, total, received: 0, parts: [] };
        this.pending.set(m.from, p);
      }
      if (!p || p.index !== s.index || p.term !== s.term || p.total !== total || p.received !== offset) {
        throw new ValidationError(`snapshot chunk at ${offset} of snapshot ${s.index}/${s.term} does not continue the snapshot in progress`, {
          detail: p ? { index: p.index, term: p.term, received: p.received } : {},
        });
      }
      p.parts.push(s.data);
      p.received += s.data.length;
      if (p.received < total) return null;
      this.pending.delete(m.from);
      const data = new Uint8Array(total);
      let o = 0;
      for (const part of p.parts) {
        data.set(part, o);
        o += part.length;
      }
      return { ...m, snapshot: { ...s, data } };
    } catch (err) {
      this.pending.delete(m.from);
      throw err;
    }
  }
}
