import { describe, expect, it } from 'vitest';
import { parseIndexRecord } from './index-record';

describe('parseIndexRecord: a record carrying its block list (IndexRecord.blocks)', () => {
  const h = (c: string): string => c.repeat(64);
  const base = { path: 'doc.bin', version: 1, deleted: false, modifiedBy: 'A', sha256: h('a'), size: 3 * 128 * 1024 - 5, modifiedAt: 1, manifest: h('b') };
  const parse = (v: unknown): unknown => parseIndexRecord({ value: JSON.stringify(v) });

  it('accepts 2 to 8 SHA-256 hashes, one per block of the size, with the manifest id', () => {
    expect(parse({ ...base, blocks: [h('1'), h('2'), h('3')] })).toMatchObject({ blocks: [h('1'), h('2'), h('3')] });
    expect(parse({ ...base, size: 8 * 128 * 1024, blocks: Array.from({ length: 8 }, () => h('c')) })).not.toBeNull();
    expect(parse(base)).not.toBeNull(); // no list: the manifest object is fetched
  });

  it('refuses malformed or hostile lists (null: the caller logs and skips the record)', () => {
    for (const bad of [
      { ...base, blocks: 'x' },
      { ...base, blocks: [h('1'), h('2')] }, // 2 hashes for 3 blocks
      { ...base, blocks: [h('1'), h('2'), h('3'), h('4')] },
      { ...base, blocks: [h('1'), h('2'), 'not-a-hash'] },
      { ...base, blocks: [h('1'), h('2'), h('c').toUpperCase()] },
      { ...base, size: 100, blocks: [h('1')] }, // one block: the file hash is its block
      { ...base, size: 9 * 128 * 1024, blocks: Array.from({ length: 9 }, () => h('c')) }, // over 8: a manifest object
      { ...base, size: -1, blocks: [h('1'), h('2')] },
      { ...base, manifest: undefined, blocks: [h('1'), h('2'), h('3')] },
      { ...base, deleted: true, blocks: [h('1'), h('2'), h('3')] },
    ]) {
      expect(parse(bad)).toBeNull();
    }
  });
});
