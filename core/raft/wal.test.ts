import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptionError } from '../common/errors';
import type { Entry } from './types';
import { Wal, WAL_FILE } from './wal';
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
