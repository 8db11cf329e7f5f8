import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool';

describe('BufferPool', () => {
  const pool = (maxBytes: number): { p: BufferPool; allocs: number[] } => {
    const allocs: number[] = [];
    const p = new BufferPool({ maxBytes, alloc: (n) => (allocs.push(n), new ArrayBuffer(n)) });
    return { p, allocs };
  };

  it('hands a buffer back out only at its exact size, and allocates otherwise', () => {
    const { p, allocs } = pool(1 << 20);
    const a = p.take(1000);
    expect(p.give(a)).toBe(true);
    expect(p.bytesFree).toBe(1000);
    expect(p.take(999)).not.toBe(a); // another size: a new buffer
    expect(p.take(1000)).toBe(a);
    expect(p.take(1000)).not.toBe(a); // a is out again: a new buffer
    expect(allocs).toEqual([1000, 999, 1000]);
    expect(p.reused).toBe(1);
    expect(p.bytesFree).toBe(0);
  });

  it('never issues one buffer to two holders: a second give, or a buffer it did not issue, is ignored', () => {
    const { p } = pool(1 << 20);
    const a = p.take(64);
    expect(p.give(a)).toBe(true);
    expect(p.give(a)).toBe(false); // handed back twice
    expect(p.give(new ArrayBuffer(64))).toBe(false); // never issued
    const x = p.take(64);
    const y = p.take(64);
    expect(x).toBe(a);
    expect(y).not.toBe(a);
  });

  it('keeps at most maxBytes free; a detached (transferred) buffer is dropped', () => {
    const { p } = pool(250);
    const [a, b, c] = [p.take(100), p.take(100), p.take(100)];
    expect([p.give(a), p.give(b), p.give(c)]).toEqual([true, true, false]);
    expect(p.bytesFree).toBe(200);
    const d = p.take(50);
    structuredClone(d, { transfer: [d] }); // detaches d: byteLength 0
    expect(p.give(d)).toBe(false);
    expect(p.bytesFree).toBe(200);
    expect(() => new BufferPool({ maxBytes: -1, alloc: (n) => new ArrayBuffer(n) })).toThrow(RangeError);
  });

  it('drops its free buffers once it sat idle between two trims', () => {
    const { p, allocs } = pool(1 << 20);
    const a = p.take(100);
    p.give(a);
    expect(p.trimIdle()).toBe(0); // a take since the last trim: busy, kept
    expect(p.bytesFree).toBe(100);
    expect(p.trimIdle()).toBe(100); // idle since: dropped
    expect(p.bytesFree).toBe(0);
    expect(p.take(100)).not.toBe(a);
    expect(allocs).toEqual([100, 100]);
  });
});
