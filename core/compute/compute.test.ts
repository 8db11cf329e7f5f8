import { describe, expect, it } from 'vitest';
import { OverloadedError, ValidationError } from '../common/errors';
import { defaultTasks } from './tasks';
import { RequestQueue } from './request-queue';

describe('compute tasks', () => {
  const tasks = defaultTasks();
  it('adds and sorts', () => {
    expect(tasks.run('add', [1, 2, 3.5])).toBe(6.5);
    expect(tasks.run('sort', [3, -1, 2, 2])).toEqual([-1, 2, 2, 3]);
    expect(tasks.run('sort', [])).toEqual([]);
  });
  it('refuses unknown task types and bad values with clear errors', () => {
    expect(() => tasks.run('eval', [1])).toThrow(/unknown task type "eval"/);
    expect(() => tasks.run('add', [])).toThrow(ValidationError);
    expect(() => tasks.run('sort', [1, 'x'])).toThrow(/values\[1\] is "x"/);
    expect(() => tasks.run('sort', [1, Infinity])).toThrow(/not a finite number/);
    expect(() => tasks.run('sort', 'abc')).toThrow(/must be an array/);
    expect(() => tasks.run('sort', new Array(100_001).fill(1))).toThrow(/limit is 100000/);
  });
});

describe('bounded request queue', () => {
  it('runs at most `concurrency` at once, queues up to `capacity`, refuses the rest', async () => {
    const q = new RequestQueue({ capacity: 2, concurrency: 1, now: () => 0 });
    const gates: (() => void)[] = [];
    const started: number[] = [];
    const job = (i: number) => q.run(() => new Promise<number>((r) => { started.push(i); gates.push(() => r(i)); }));
    const p1 = job(1);
    const p2 = job(2);
    const p3 = job(3);
    await expect(job(4)).rejects.toBeInstanceOf(OverloadedError);
    expect(q.inFlight).toBe(1);
    expect(q.depth).toBe(2);
    expect(started).toEqual([1]);
    gates.shift()?.();
    expect(await p1).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual([1, 2]);
    gates.shift()?.();
    await p2;
    await new Promise((r) => setTimeout(r, 0));
    gates.shift()?.();
    expect(await p3).toBe(3);
    expect(q.inFlight).toBe(0);
    expect(q.depth).toBe(0);
  });
  it('reports completions per second over a window', async () => {
    let t = 0;
    const q = new RequestQueue({ now: () => t });
    for (let i = 0; i < 20; i++) await q.run(async () => i);
    expect(q.rate(10_000)).toBe(2);
    t = 20_000;
    expect(q.rate(10_000)).toBe(0);
  });
});
