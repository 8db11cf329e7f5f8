import { describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import type { Message } from '../raft/types';
import { decodeRaftMessage, decodeSnapshotChunk, encodeRaftMessage, peerProto } from './peer';
import { MAX_SNAPSHOT_BYTES, SnapshotAssembler, splitSnapshotMessage } from './snapshot-chunks';

function installSnapshot(bytes: number, from = 'A'): Message {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31) & 0xff;
  return {
    type: 'InstallSnapshot',
    from,
    to: 'B',
    term: 3,
    logTerm: 2,
    index: 900,
    entries: [],
    commit: 900,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(),
    snapshot: { index: 900, term: 2, voters: ['A', 'B', 'C'], learners: ['L'], data },
  };
}

/** Through the real proto encoding of a RaftBatch (what goes on the wire). */
function wire(batch: Record<string, unknown>): Record<string, unknown> {
  const rpc = peerProto().Peer.service.Raft;
  return rpc.requestDeserialize(rpc.requestSerialize(batch)) as Record<string, unknown>;
}

describe('chunked InstallSnapshot over the peer protocol', () => {
  it('a 9 MiB snapshot travels as 1 MiB chunks (each well under gRPC 4 MiB) and is reassembled byte for byte', () => {
    const m = installSnapshot(9 * (1 << 20) + 123);
    const parts = splitSnapshotMessage(m);
    expect(parts.length).toBe(10);
    const asm = new SnapshotAssembler();
    let whole: Message | null = null;
    for (const p of parts) {
      const bytes = peerProto().Peer.service.Raft.requestSerialize({ cluster: 'c', messages: [encodeRaftMessage(p.message, p.chunk)] }) as Buffer;
      expect(bytes.length).toBeLessThan(4 << 20);
      const raw = (wire({ cluster: 'c', messages: [encodeRaftMessage(p.message, p.chunk)] }).messages as Record<string, unknown>[])[0]!;
      const out = asm.accept(decodeRaftMessage(raw), decodeSnapshotChunk(raw));
      if (p !== parts[parts.length - 1]) expect(out).toBeNull();
      else whole = out;
    }
    expect(whole).not.toBeNull();
    expect(whole!.snapshot!.index).toBe(900);
    expect(whole!.snapshot!.voters).toEqual(['A', 'B', 'C']);
    expect(Buffer.from(whole!.snapshot!.data).equals(Buffer.from(m.snapshot!.data))).toBe(true);
  });

  it('small snapshots and other messages pass through unchunked', () => {
    const m = installSnapshot(1000);
    expect(splitSnapshotMessage(m)).toEqual([{ message: m }]);
    const raw = (wire({ cluster: 'c', messages: [encodeRaftMessage(m)] }).messages as Record<string, unknown>[])[0]!;
    expect(decodeSnapshotChunk(raw)).toBeUndefined();
    expect(new SnapshotAssembler().accept(decodeRaftMessage(raw), undefined)?.snapshot?.data).toEqual(m.snapshot!.data);
  });

  it('hostile chunks are ValidationErrors: gaps, overruns, switched snapshots, oversize totals, chunk on another message type', () => {
    const m = installSnapshot(5000);
    const parts = splitSnapshotMessage(m, 1000);
    const asm = new SnapshotAssembler();
    expect(asm.accept(parts[0]!.message, parts[0]!.chunk)).toBeNull();
    // Skipping a chunk.
    expect(() => asm.accept(parts[2]!.message, parts[2]!.chunk)).toThrow(ValidationError);
    // The snapshot in progress was dropped: continuing it now fails too; a restart at offset 0 works.
    expect(() => asm.accept(parts[1]!.message, parts[1]!.chunk)).toThrow(/does not continue/);
    for (const [i, p] of parts.entries()) {
      const out = asm.accept(p.message, p.chunk);
      expect(out === null).toBe(i < parts.length - 1);
    }
    const fresh = () => new SnapshotAssembler();
    expect(() => fresh().accept(parts[0]!.message, { offset: 0, total: 500 })).toThrow(/do not fit/);
    expect(() => fresh().accept(parts[0]!.message, { offset: 0, total: MAX_SNAPSHOT_BYTES + 1 })).toThrow(/limit/);
    expect(() => fresh().accept(parts[0]!.message, { offset: -1, total: 5000 })).toThrow(ValidationError);
    const switched = fresh();
    switched.accept(parts[0]!.message, parts[0]!.chunk);
    const other = { ...parts[1]!.message, snapshot: { ...parts[1]!.message.snapshot!, index: 901 } };
    expect(() => switched.accept(other, parts[1]!.chunk)).toThrow(/does not continue/);
    const heartbeat: Message = { ...m, type: 'Heartbeat' };
    delete heartbeat.snapshot;
    expect(() => fresh().accept(heartbeat, { offset: 0, total: 10 })).toThrow(/without a snapshot/);
    // Senders are independent.
    const two = fresh();
    two.accept(parts[0]!.message, parts[0]!.chunk);
    const fromC = splitSnapshotMessage(installSnapshot(5000, 'C'), 1000);
    two.accept(fromC[0]!.message, fromC[0]!.chunk);
    expect(two.accept(parts[1]!.message, parts[1]!.chunk)).toBeNull();
  });

  it('decode rejects a snapshot with non-integer index or a chunk with a bad offset', () => {
    const raw = (wire({ cluster: 'c', messages: [encodeRaftMessage(installSnapshot(10))] }).messages as Record<string, unknown>[])[0]!;
    expect(() => decodeRaftMessage({ ...raw, snapshot: { ...(raw.snapshot as object), index: -4 } })).toThrow(ValidationError);
    expect(() => decodeSnapshotChunk({ snapshotChunk: { offset: 1.5, total: 3 } })).toThrow(ValidationError);
  });

  it("a snapshot's configuration context (peer addresses) travels on the wire; a hostile context is a ValidationError", () => {
    const m = installSnapshot(10);
    m.snapshot!.context = { L: '10.0.0.9:7000' };
    const raw = (wire({ cluster: 'c', messages: [encodeRaftMessage(m)] }).messages as Record<string, unknown>[])[0]!;
    expect(decodeRaftMessage(raw).snapshot?.context).toEqual({ L: '10.0.0.9:7000' });
    const without = (wire({ cluster: 'c', messages: [encodeRaftMessage(installSnapshot(10))] }).messages as Record<string, unknown>[])[0]!;
    expect(decodeRaftMessage(without).snapshot?.context).toEqual({});
    for (const context of [{ L: 5 }, { L: 'x'.repeat(257) }, ['a'], 'A=b']) {
      expect(() => decodeRaftMessage({ ...raw, snapshot: { ...(raw.snapshot as object), context } })).toThrow(ValidationError);
    }
  });
});
