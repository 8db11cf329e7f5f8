import { describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import {
  batchBlocks,
  blockCount,
  blockLayout,
  blocksOf,
  blockSize,
  decodeManifest,
  DESIRED_BLOCKS_PER_FILE,
  diffBlocks,
  encodeManifest,
  isFullBlockSize,
  isSingleBlock,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  type BlockInfo,
} from './blocks';

const KiB = 1024;
const MiB = 1024 * KiB;
const h = (n: number): string => n.toString(16).padStart(64, '0');

describe('blockSize (Syncthing protocol.BlockSize)', () => {
  it('is 128 KiB up to 2000 × 128 KiB, then doubles at each 2000 × size boundary, capped at 16 MiB', () => {
    expect(blockSize(0)).toBe(128 * KiB);
    expect(blockSize(1)).toBe(128 * KiB);
    expect(blockSize(2000 * 128 * KiB - 1)).toBe(128 * KiB);
    expect(blockSize(2000 * 128 * KiB)).toBe(256 * KiB);
    expect(blockSize(2000 * 256 * KiB - 1)).toBe(256 * KiB);
    expect(blockSize(2000 * 256 * KiB)).toBe(512 * KiB);
    expect(blockSize(2000 * 8 * MiB)).toBe(16 * MiB);
    expect(blockSize(2000 * 16 * MiB)).toBe(16 * MiB);
    expect(blockSize(2 ** 45)).toBe(MAX_BLOCK_SIZE);
  });

  it('keeps every file at most ~2000 blocks until the 16 MiB cap', () => {
    for (let size = 1; size < 2000 * 16 * MiB; size = Math.floor(size * 1.37) + 12345) {
      const n = blockCount(size);
      expect(n).toBeLessThanOrEqual(DESIRED_BLOCKS_PER_FILE);
      const bs = blockSize(size);
      expect(bs).toBeGreaterThanOrEqual(MIN_BLOCK_SIZE);
      // Powers of two between the bounds.
      expect(bs & (bs - 1)).toBe(0);
    }
  });

  it('refuses negative and fractional sizes', () => {
    expect(() => blockSize(-1)).toThrow(ValidationError);
    expect(() => blockSize(1.5)).toThrow(ValidationError);
  });
});

describe('isFullBlockSize', () => {
  it('is true for every size blockSize chooses, false for a last block or anything else', () => {
    for (let b = MIN_BLOCK_SIZE; b <= MAX_BLOCK_SIZE; b *= 2) expect(isFullBlockSize(b)).toBe(true);
    for (const n of [0, 1, 4096, 64 * KiB, MIN_BLOCK_SIZE - 1, MIN_BLOCK_SIZE + 1, 3 * MIN_BLOCK_SIZE, 2 * MAX_BLOCK_SIZE]) expect(isFullBlockSize(n)).toBe(false);
    for (const size of [200 * KiB, 300 * MiB, 5000 * MiB]) expect(isFullBlockSize(blockSize(size))).toBe(true);
  });
});

describe('blockLayout', () => {
  it('cuts a file into full blocks and a shorter last block covering every byte once', () => {
    const size = 5 * 128 * KiB + 77;
    const l = blockLayout(size);
    expect(l).toHaveLength(6);
    expect(l[5]).toEqual({ offset: 5 * 128 * KiB, size: 77 });
    expect(l.reduce((n, b) => n + b.size, 0)).toBe(size);
    l.forEach((b, i) => expect(b.offset).toBe(i * 128 * KiB));
    expect(blockLayout(0)).toEqual([]);
    expect(isSingleBlock(128 * KiB)).toBe(true);
    expect(isSingleBlock(128 * KiB + 1)).toBe(false);
  });
});

describe('manifests', () => {
  const size = 3 * 128 * KiB + 5;
  const hashes = [h(1), h(2), h(3), h(4)];

  it('round-trips and checks the size, the block size and every hash', () => {
    const text = encodeManifest(size, hashes);
    expect(decodeManifest(text, size).map((b) => b.hash)).toEqual(hashes);
    expect(() => decodeManifest(text, size + 1)).toThrow(ValidationError);
    expect(() => decodeManifest(text.replace(h(2), '../../etc/passwd'), size)).toThrow(ValidationError);
    expect(() => decodeManifest(JSON.stringify({ v: 1, size, blockSize: 64 * KiB, hashes }), size)).toThrow(/block size/);
    expect(() => decodeManifest('{not json', size)).toThrow(ValidationError);
    expect(() => decodeManifest('null', size)).toThrow(ValidationError);
    expect(() => decodeManifest(JSON.stringify({ v: 1, size, blockSize: 128 * KiB, hashes: hashes.slice(0, 3) }), size)).toThrow(/4 blocks/);
    expect(() => encodeManifest(size, [h(1)])).toThrow(ValidationError);
    expect(() => blocksOf(size, [h(1), h(2), h(3), 'A'.repeat(64)])).toThrow(ValidationError);
  });
});

describe('diffBlocks (Syncthing BlockDiff)', () => {
  const mk = (hs: number[]): BlockInfo[] => hs.map((x, i) => ({ offset: i * 10, size: 10, hash: h(x) }));

  it('keeps blocks equal at the same offset and needs the rest', () => {
    const d = diffBlocks(mk([1, 2, 3, 4]), mk([1, 9, 3, 4, 5]));
    expect(d.have.map((b) => b.hash)).toEqual([h(1), h(3), h(4)]);
    expect(d.need.map((b) => b.hash)).toEqual([h(9), h(5)]);
    expect(diffBlocks([], mk([1])).need).toHaveLength(1);
    // A shifted block is not "had" at the same offset (the receiver's hash map finds it instead).
    expect(diffBlocks(mk([1, 2]), mk([2, 1])).need).toHaveLength(2);
  });
});

describe('batchBlocks', () => {
  it('respects the block and byte limits, keeping order', () => {
    const blocks = Array.from({ length: 10 }, (_, i) => ({ size: 3, i }));
    expect(batchBlocks(blocks, 4, 100).map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batchBlocks(blocks, 100, 7).map((b) => b.length)).toEqual([2, 2, 2, 2, 2]);
    expect(batchBlocks([{ size: 50 }, { size: 1 }], 10, 10).map((b) => b.length)).toEqual([1, 1]);
    expect(batchBlocks(blocks, 3, 100).flat().map((b) => b.i)).toEqual(blocks.map((b) => b.i));
    expect(batchBlocks([], 3, 3)).toEqual([]);
  });
});
