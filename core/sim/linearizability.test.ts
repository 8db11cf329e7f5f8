import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkLinearizable, kvModel, type KvInput, type KvOperation, type KvOutput } from './linearizability';

const U = undefined;
function op(client: number, input: KvInput, output: KvOutput | undefined, call: number, ret: number): KvOperation {
  return { client, input, output, call, ret };
}
const put = (key: string, value: string) => ({ kind: 'put' as const, key, value });
const get = (key: string) => ({ kind: 'get' as const, key });
const cas = (key: string, expect: string | null, value: string) => ({ kind: 'cas' as const, key, expect, value });

describe('linearizability checker (Wing & Gong / Lowe, partitioned by key)', () => {
  it('accepts a sequential history and concurrent overlaps that have a valid order', () => {
    const h = [
      op(0, put('x', 'a'), {}, 0, 10),
      op(1, get('x'), { value: 'a' }, 11, 12),
      // Concurrent put b and get: the get may see a or b.
      op(0, put('x', 'b'), {}, 13, 20),
      op(1, get('x'), { value: 'a' }, 14, 15),
      op(2, get('x'), { value: 'b' }, 16, 17),
      op(1, cas('x', 'b', 'c'), { succeeded: true }, 21, 22),
      op(2, cas('x', 'b', 'd'), { succeeded: false }, 23, 24),
      op(0, get('y'), { value: null }, 0, 1),
    ];
    expect(checkLinearizable(kvModel, h)).toEqual({ result: 'ok', partitions: 2 });
  });

  it('rejects a stale read after a completed write (the classic non-linearizable history)', () => {
    const h = [op(0, put('x', 'a'), {}, 0, 5), op(0, put('x', 'b'), {}, 6, 10), op(1, get('x'), { value: 'a' }, 11, 12)];
    const r = checkLinearizable(kvModel, h);
    expect(r.result).toBe('illegal');
  });

  it('rejects reads that observe two concurrent writes in opposite orders', () => {
    // Both writes overlap both reads, but reader 1 sees a then b while reader 2 sees b then a.
    const h = [
      op(0, put('x', 'a'), {}, 0, 100),
      op(1, put('x', 'b'), {}, 0, 100),
      op(2, get('x'), { value: 'a' }, 10, 20),
      op(2, get('x'), { value: 'b' }, 30, 40),
      op(3, get('x'), { value: 'b' }, 10, 20),
      op(3, get('x'), { value: 'a' }, 30, 40),
    ];
    expect(checkLinearizable(kvModel, h).result).toBe('illegal');
  });

  it('rejects two successful CAS from the same expected value', () => {
    const h = [op(0, put('x', 'a'), {}, 0, 1), op(1, cas('x', 'a', 'b'), { succeeded: true }, 2, 10), op(2, cas('x', 'a', 'c'), { succeeded: true }, 3, 9)];
    expect(checkLinearizable(kvModel, h).result).toBe('illegal');
  });

  it('unknown outcomes: a timed-out write may have taken effect, or never', () => {
    const tookEffect = [op(0, put('x', 'a'), U, 0, Infinity), op(1, get('x'), { value: 'a' }, 5, 6), op(1, get('x'), { value: 'a' }, 7, 8)];
    expect(checkLinearizable(kvModel, tookEffect).result).toBe('ok');
    const never = [op(0, put('x', 'a'), U, 0, Infinity), op(1, get('x'), { value: null }, 5, 6)];
    expect(checkLinearizable(kvModel, never).result).toBe('ok');
    // But it cannot take effect before it was invoked…
    const early = [op(1, get('x'), { value: 'a' }, 0, 1), op(0, put('x', 'a'), U, 2, Infinity)];
    expect(checkLinearizable(kvModel, early).result).toBe('illegal');
    // …nor be undone once observed.
    const undone = [op(0, put('x', 'a'), U, 0, Infinity), op(1, get('x'), { value: 'a' }, 5, 6), op(1, get('x'), { value: null }, 7, 8)];
    expect(checkLinearizable(kvModel, undone).result).toBe('illegal');
    // Unknown reads are ignored.
    expect(checkLinearizable(kvModel, [op(1, get('x'), U, 0, Infinity)]).result).toBe('ok');
  });

  it('an unknown CAS can decide either way', () => {
    const h = [op(0, put('x', 'a'), {}, 0, 1), op(1, cas('x', 'a', 'b'), U, 2, Infinity), op(2, get('x'), { value: 'b' }, 3, 4)];
    expect(checkLinearizable(kvModel, h).result).toBe('ok');
  });

  it('agrees with a brute-force checker on small random histories (naive twin)', () => {
    // Naive twin: try every permutation consistent with real-time order.
    function brute(h: KvOperation[]): boolean {
      const ok = (order: number[]): boolean => {
        let state: string | null = null;
        for (const i of order) {
          const r = kvModel.step(state, h[i]!.input, h[i]!.output);
          if (!r.ok) return false;
          state = r.state;
        }
        return true;
      };
      const search = (done: number[], left: number[]): boolean => {
        if (left.length === 0) return ok(done);
        for (const i of left) {
          // i may go next only if no remaining op returned before i was called.
          if (left.some((j) => j !== i && h[j]!.ret < h[i]!.call)) continue;
          if (!ok([...done, i])) continue;
          if (search([...done, i], left.filter((j) => j !== i))) return true;
        }
        return false;
      };
      return search([], h.map((_, i) => i));
    }
    const arbOp = fc
      .record({
        kind: fc.constantFrom('put', 'get', 'cas'),
        v: fc.constantFrom('a', 'b', 'c'),
        e: fc.constantFrom<string | null>(null, 'a', 'b'),
        got: fc.constantFrom<string | null>(null, 'a', 'b', 'c'),
        succ: fc.boolean(),
        call: fc.integer({ min: 0, max: 20 }),
        len: fc.integer({ min: 1, max: 10 }),
        unknown: fc.boolean(),
      })
      .map((r): KvOperation => {
        const input: KvInput = r.kind === 'put' ? put('x', r.v) : r.kind === 'get' ? get('x') : cas('x', r.e, r.v);
        const unknown = r.unknown && r.kind !== 'get';
        const output: KvOutput | undefined = unknown ? undefined : r.kind === 'put' ? {} : r.kind === 'get' ? { value: r.got } : { succeeded: r.succ };
        return op(0, input, output, r.call, unknown ? Infinity : r.call + r.len);
      });
    fc.assert(
      fc.property(fc.array(arbOp, { minLength: 1, maxLength: 6 }), (h) => {
        expect(checkLinearizable(kvModel, h).result === 'ok').toBe(brute(h));
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});
