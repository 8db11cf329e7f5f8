import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptionError } from '../common/errors';
import type { Entry } from './types';
import { SNAP_FILE, Wal, WAL_FILE } from './wal';
import { crc32, decodeRecords, encodeRecords } from './wal-codec';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cd-wal-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const e = (index: number, term: number, s: string): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(s) });

describe('wal-codec', () => {
  it('crc32 matches the IEEE check value', () => {
    const b = new TextEncoder().encode('The quick brown fox jumps over the lazy dog');
    expect(crc32(b)).toBe(0x414fa339);
  });

  it('round-trips records', () => {
    const recs = [
      { type: 'header' as const, clusterId: 'c1', version: 1 },
      { type: 'entry' as const, entry: e(1, 1, 'hello') },
      { type: 'hardState' as const, hardState: { term: 1, vote: 'A', commit: 1 } },
    ];
    const out = decodeRecords(encodeRecords(recs));
    expect(out).toEqual({ records: recs, validBytes: encodeRecords(recs).length, torn: false });
  });

  it("round-trips a snapshot record with its configuration's context (peer addresses)", () => {
    const snapshot = { index: 7, term: 2, voters: ['A', 'B', 'C'], learners: ['D'], context: { D: '10.0.0.4:7000' }, data: new TextEncoder().encode('state') };
    const recs = [{ type: 'header' as const, clusterId: 'c1', version: 1 }, { type: 'snapshot' as const, snapshot }];
    expect(decodeRecords(encodeRecords(recs)).records).toEqual(recs);
  });
});

describe('Wal', () => {
  it('round-trips hardState and entries across reopen, with suffix replacement', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    wal.save({ term: 1, vote: 'A', commit: 0 }, [e(1, 1, 'a'), e(2, 1, 'b'), e(3, 1, 'c')]);
    wal.save({ term: 2, vote: 'B', commit: 1 }, [e(2, 2, 'B2')]); // follower log overwritten from index 2
    wal.close();
    const { wal: w2, state } = Wal.open(dir, 'c1');
    expect(state.hardState).toEqual({ term: 2, vote: 'B', commit: 1 });
    expect(state.entries.map((x) => [x.index, x.term, new TextDecoder().decode(x.data)])).toEqual([
      [1, 1, 'a'],
      [2, 2, 'B2'],
    ]);
    expect(state.repairedTornTail).toBe(false);
    w2.close();
  });

  it('truncates a torn tail', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    wal.save({ term: 1, vote: '', commit: 0 }, [e(1, 1, 'a')]);
    wal.close();
    const path = join(dir, WAL_FILE);
    const good = statSync(path).size;
    const partial = encodeRecords([{ type: 'entry', entry: e(2, 1, 'partial write') }]).subarray(0, 12);
    appendFileSync(path, partial);
    const { wal: w2, state } = Wal.open(dir, 'c1');
    expect(state.repairedTornTail).toBe(true);
    expect(state.entries.length).toBe(1);
    expect(statSync(path).size).toBe(good);
    w2.save(undefined, [e(2, 1, 'b')]);
    w2.close();
    expect(Wal.open(dir, 'c1').state.entries.length).toBe(2);
  });

  it('a corrupt record in the middle is a CorruptionError', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    wal.save(undefined, [e(1, 1, 'aaaa')]);
    wal.save(undefined, [e(2, 1, 'bbbb')]);
    wal.close();
    const path = join(dir, WAL_FILE);
    const buf = readFileSync(path);
    const header = encodeRecords([{ type: 'header', clusterId: 'c1', version: 1 }]).length;
    buf[header + 8 + 20] = buf[header + 8 + 20]! ^ 0xff; // flip a payload byte of entry 1
    writeFileSync(path, buf);
    expect(() => Wal.open(dir, 'c1')).toThrow(CorruptionError);
  });

  it('opening the WAL of another cluster is a CorruptionError', () => {
    const dir = tmp();
    Wal.open(dir, 'c1').wal.close();
    expect(() => Wal.open(dir, 'other')).toThrow(CorruptionError);
  });
});

describe('Wal snapshots (bounded WAL)', () => {
  const snap = (index: number, term: number, data = `state@${index}`) => ({ index, term, voters: ['A', 'B'], learners: ['L'], data: new TextEncoder().encode(data) });
  const indexes = (entries: Entry[]) => entries.map((x) => x.index);

  it('recovers snapshot + WAL tail, and the WAL shrinks to the entries after the snapshot', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    for (let i = 1; i <= 50; i++) wal.save({ term: 1, vote: 'A', commit: i - 1 }, [e(i, 1, 'x'.repeat(100))]);
    const before = wal.bytes();
    wal.saveSnapshot(snap(45, 1), false);
    expect(wal.bytes()).toBeLessThan(before / 5);
    wal.save({ term: 1, vote: 'A', commit: 50 }, [e(51, 1, 'after')]);
    wal.close();
    expect(existsSync(join(dir, SNAP_FILE + '.tmp'))).toBe(false);
    const { wal: w2, state } = Wal.open(dir, 'c1');
    expect(state.snapshot).toEqual(snap(45, 1));
    expect(indexes(state.entries)).toEqual([46, 47, 48, 49, 50, 51]);
    expect(state.hardState).toEqual({ term: 1, vote: 'A', commit: 50 });
    // A second compaction cuts again.
    w2.saveSnapshot(snap(50, 1), false);
    w2.close();
    const s3 = Wal.open(dir, 'c1');
    expect(s3.state.snapshot!.index).toBe(50);
    expect(indexes(s3.state.entries)).toEqual([51]);
    s3.wal.close();
  });

  it('a torn snapshot write (crash before the rename) leaves the previous snapshot and the full WAL', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    for (let i = 1; i <= 10; i++) wal.save({ term: 2, vote: 'B', commit: i }, [e(i, 2, `v${i}`)]);
    wal.saveSnapshot(snap(4, 2), false);
    wal.save(undefined, [e(11, 2, 'v11')]);
    wal.close();
    // The crash: half of the next snapshot's temporary file reached the disk, nothing was renamed.
    const next = encodeRecords([{ type: 'header', clusterId: 'c1', version: 1 }, { type: 'snapshot', snapshot: snap(9, 2) }]);
    writeFileSync(join(dir, SNAP_FILE + '.tmp'), next.subarray(0, next.length >> 1));
    const { wal: w2, state } = Wal.open(dir, 'c1');
    expect(state.snapshot!.index).toBe(4);
    expect(indexes(state.entries)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(existsSync(join(dir, SNAP_FILE + '.tmp'))).toBe(false);
    w2.close();
  });

  it('a crash between the snapshot rename and the WAL cut recovers from the new snapshot and the old WAL', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    for (let i = 1; i <= 10; i++) wal.save({ term: 1, vote: '', commit: i }, [e(i, 1, `v${i}`)]);
    const oldWal = readFileSync(join(dir, WAL_FILE));
    wal.saveSnapshot(snap(7, 1), false);
    wal.close();
    writeFileSync(join(dir, WAL_FILE), oldWal); // the segment rename never happened
    const { wal: w2, state } = Wal.open(dir, 'c1');
    expect(state.snapshot!.index).toBe(7);
    expect(indexes(state.entries)).toEqual([8, 9, 10]);
    w2.close();
  });

  it('a snapshot installed from the leader discards the log; stale entries of a replaced log are never resurrected', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    wal.save({ term: 1, vote: '', commit: 2 }, [e(1, 1, 'a'), e(2, 1, 'b'), e(3, 1, 'stale'), e(4, 1, 'stale')]);
    const oldWal = readFileSync(join(dir, WAL_FILE));
    wal.saveSnapshot(snap(3, 3), true); // the leader's entry 3 has term 3: our 3..4 conflict
    wal.save({ term: 3, vote: '', commit: 3 }, []);
    wal.close();
    let r = Wal.open(dir, 'c1');
    expect(r.state.snapshot!.index).toBe(3);
    expect(r.state.entries).toEqual([]);
    r.wal.close();
    // Crash before the WAL cut: the old WAL's entries after index 3 do not continue (3, term 3): ignored.
    writeFileSync(join(dir, WAL_FILE), oldWal);
    r = Wal.open(dir, 'c1');
    expect(r.state.entries).toEqual([]);
    expect(r.wal.droppedConflicting).toBe(true);
    r.wal.close();
  });

  it('a damaged snapshot file, or one of another cluster, is a CorruptionError', () => {
    const dir = tmp();
    const { wal } = Wal.open(dir, 'c1');
    wal.save({ term: 1, vote: '', commit: 1 }, [e(1, 1, 'a'), e(2, 1, 'b')]);
    wal.saveSnapshot(snap(2, 1), false);
    wal.close();
    const path = join(dir, SNAP_FILE);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length - 3] = bad[bad.length - 3]! ^ 0xff;
    writeFileSync(path, bad);
    expect(() => Wal.open(dir, 'c1')).toThrow(CorruptionError);
    writeFileSync(path, good.subarray(0, good.length - 5));
    expect(() => Wal.open(dir, 'c1')).toThrow(/damaged/);
    writeFileSync(path, encodeRecords([{ type: 'header', clusterId: 'other', version: 1 }, { type: 'snapshot', snapshot: snap(2, 1) }]));
    expect(() => Wal.open(dir, 'c1')).toThrow(/another|belongs/);
    writeFileSync(path, good);
    expect(Wal.open(dir, 'c1').state.snapshot!.index).toBe(2);
  });

  it('round-trips a snapshot record in the codec and rejects a hostile one', () => {
    const rec = { type: 'snapshot' as const, snapshot: snap(5, 2) };
    expect(decodeRecords(encodeRecords([rec])).records).toEqual([rec]);
    const buf = encodeRecords([rec]);
    const dv = new DataView(buf.buffer, buf.byteOffset);
    dv.setUint32(8 + 1 + 16, 1 << 30, true); // metadata length far past the record
    dv.setUint32(4, crc32(buf, 8, buf.length), true);
    expect(() => decodeRecords(buf)).toThrow(CorruptionError);
  });

  describe('preallocation', () => {
    const PRE = 64 << 10;
    it('keeps zeros ahead of the records; reopening treats the zero tail as free space, not a torn write', () => {
      const dir = tmp();
      const path = join(dir, WAL_FILE);
      const { wal } = Wal.open(dir, 'c1', { preallocateBytes: PRE });
      wal.save({ term: 1, vote: 'a', commit: 0 }, [e(1, 1, 'a')]);
      const logical = wal.bytes();
      // Allocated when the header was written: the records sit inside it.
      expect(statSync(path).size).toBeGreaterThanOrEqual(PRE);
      expect(statSync(path).size).toBeGreaterThan(logical);
      wal.save(undefined, [e(2, 1, 'b')]);
      wal.close();
      const size = statSync(path).size;
      const { wal: w2, state } = Wal.open(dir, 'c1', { preallocateBytes: PRE });
      expect(state.repairedTornTail).toBe(false);
      expect(state.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
      expect(state.entries.map((x) => [x.index, new TextDecoder().decode(x.data)])).toEqual([
        [1, 'a'],
        [2, 'b'],
      ]);
      expect(statSync(path).size).toBe(size);
      // Appends continue at the end of the records, inside the preallocated space.
      w2.save(undefined, [e(3, 1, 'c')]);
      w2.close();
      expect(statSync(path).size).toBe(size);
      expect(Wal.open(dir, 'c1').state.entries.map((x) => x.index)).toEqual([1, 2, 3]);
    });

    it('grows by another preallocation when the records pass the allocated end', () => {
      const dir = tmp();
      const path = join(dir, WAL_FILE);
      const { wal } = Wal.open(dir, 'c1', { preallocateBytes: 4096 });
      const big = 'x'.repeat(3000);
      for (let i = 1; i <= 10; i++) wal.save({ term: 1, vote: '', commit: i - 1 }, [e(i, 1, big)]);
      expect(statSync(path).size).toBeGreaterThanOrEqual(wal.bytes());
      expect(statSync(path).size).toBeLessThanOrEqual(wal.bytes() + 4096 + 3100);
      wal.close();
      const { state } = Wal.open(dir, 'c1', { preallocateBytes: 4096 });
      expect(state.entries.map((x) => x.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(state.repairedTornTail).toBe(false);
    });

    it('a torn record inside the preallocated space is cut; the next appends land after the good records', () => {
      const dir = tmp();
      const path = join(dir, WAL_FILE);
      const { wal } = Wal.open(dir, 'c1', { preallocateBytes: PRE });
      wal.save({ term: 1, vote: '', commit: 0 }, [e(1, 1, 'a')]);
      const good = wal.bytes();
      wal.close();
      // A crash mid-write: the first 12 bytes of the next record reached the disk, the rest is still zeros.
      const buf = readFileSync(path);
      buf.set(encodeRecords([{ type: 'entry', entry: e(2, 1, 'partial write') }]).subarray(0, 12), good);
      writeFileSync(path, buf);
      const { wal: w2, state } = Wal.open(dir, 'c1', { preallocateBytes: PRE });
      expect(state.repairedTornTail).toBe(true);
      expect(state.entries.map((x) => x.index)).toEqual([1]);
      expect(w2.bytes()).toBe(good);
      w2.save(undefined, [e(2, 1, 'b')]);
      w2.close();
      const again = Wal.open(dir, 'c1', { preallocateBytes: PRE });
      expect(again.state.repairedTornTail).toBe(false);
      expect(again.state.entries.map((x) => new TextDecoder().decode(x.data))).toEqual(['a', 'b']);
      again.wal.close();
    });

    it('a snapshot cut starts a new segment that is preallocated again on the next append', () => {
      const dir = tmp();
      const path = join(dir, WAL_FILE);
      const { wal } = Wal.open(dir, 'c1', { preallocateBytes: PRE });
      wal.save({ term: 1, vote: '', commit: 2 }, [e(1, 1, 'a'), e(2, 1, 'b'), e(3, 1, 'c')]);
      wal.saveSnapshot(snap(2, 1), false);
      expect(statSync(path).size).toBe(wal.bytes());
      wal.save(undefined, [e(4, 1, 'd')]);
      expect(statSync(path).size).toBeGreaterThanOrEqual(wal.bytes() + PRE);
      wal.close();
      const { state } = Wal.open(dir, 'c1');
      expect(state.snapshot!.index).toBe(2);
      expect(state.entries.map((x) => x.index)).toEqual([3, 4]);
    });

    it('refuses a negative or fractional preallocation', () => {
      expect(() => Wal.open(tmp(), 'c1', { preallocateBytes: -1 })).toThrow(RangeError);
      expect(() => Wal.open(tmp(), 'c1', { preallocateBytes: 1.5 })).toThrow(RangeError);
    });
  });
});
