/**
 * A linearizability checker in the style of Porcupine (github.com/anishathalye/porcupine):
 * Wing & Gong's search (1993) with Lowe's just-in-time linearization and memoization of
 * (set of linearized operations, model state) (Lowe 2017, "Testing for linearizability",
 * §3-4), applied independently to each partition of the history (Horn & Kroening 2015,
 * P-compositionality: a history is linearizable iff each per-key sub-history is, when the
 * model's operations touch one key each).
 *
 * Operations with an unknown outcome (a client timed out) carry `output: undefined` and
 * `ret: Infinity`: they may take effect at any point after their call, or never (taking
 * effect after every other operation is indistinguishable from never, as in Porcupine and
 * Jepsen's `:info` operations). Models must accept any output for them.
 *
 * Deterministic module: imports nothing from `node:`.
 */

/** One client operation in a history. Times are any totally ordered numbers (the simulator uses a global event counter). */
export interface Operation<I, O> {
  /** Client (process) id; informative only. */
  client: number;
  input: I;
  /** The observed result; `undefined` = unknown outcome (timed out). */
  output: O | undefined;
  /** Invocation time. */
  call: number;
  /** Response time; `Infinity` when the outcome is unknown. Must be > call. */
  ret: number;
}

/** A sequential specification (Porcupine's `Model`). States must be treated as immutable. */
export interface Model<S, I, O> {
  /** Splits a history into independent sub-histories (e.g. by key). Default: one partition. */
  partition?(history: Operation<I, O>[]): Operation<I, O>[][];
  /** The initial state. */
  init(): S;
  /**
   * Applies `input` to `state`. Returns `{ ok: true, state: next }` if `output` is what the
   * specification produces (any output is acceptable when `output` is undefined), else `{ ok: false }`.
   */
  step(state: S, input: I, output: O | undefined): { ok: true; state: S } | { ok: false };
  /** A string that is equal for equal states (memoization key). */
  key(state: S): string;
}

/** Outcome of {@link checkLinearizable}. `timeout` means the search budget ran out (inconclusive). */
export type CheckResult<I, O> =
  | { result: 'ok'; partitions: number }
  | { result: 'illegal'; partitions: number; partition: Operation<I, O>[] }
  | { result: 'timeout'; partitions: number; partition: Operation<I, O>[] };

interface ListEntry {
  id: number;
  isCall: boolean;
  match: ListEntry | null;
  prev: ListEntry | null;
  next: ListEntry | null;
}

/** Removes a call entry and its matching return from the list (Lowe's "lift"). */
function lift(e: ListEntry): void {
  e.prev!.next = e.next;
  e.next!.prev = e.prev;
  const m = e.match!;
  m.prev!.next = m.next;
  if (m.next) m.next.prev = m.prev;
}

/** Undoes {@link lift}. */
function unlift(e: ListEntry): void {
  const m = e.match!;
  m.prev!.next = m;
  if (m.next) m.next.prev = m;
  e.prev!.next = e;
  e.next!.prev = e;
}

/**
 * Checks one partition. Returns 'ok', 'illegal', or 'timeout' after `budget` search steps.
 * Events are ordered by time; a call and a return at the same time are treated as concurrent
 * (calls first), which can only make the checker more permissive.
 */
function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], budget: number): 'ok' | 'illegal' | 'timeout' {
  const n = ops.length;
  if (n === 0) return 'ok';
  const events: Array<{ time: number; isCall: boolean; id: number }> = [];
  ops.forEach((op, id) => {
    events.push({ time: op.call, isCall: true, id }, { time: op.ret, isCall: false, id });
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: ListEntry = { id: -1, isCall: false, match: null, prev: null, next: null };
  const calls = new Map<number, ListEntry>();
  let tail = head;
  for (const ev of events) {
    const e: ListEntry = { id: ev.id, isCall: ev.isCall, match: null, prev: tail, next: null };
    if (ev.isCall) calls.set(ev.id, e);
    else {
      const c = calls.get(ev.id)!;
      c.match = e;
    }
    tail.next = e;
    tail = e;
  }
  const words = new Uint32Array(Math.ceil(n / 32));
  const cache = new Set<string>();
  const stack: Array<{ entry: ListEntry; state: S }> = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > budget) return 'timeout';
    if (entry!.isCall) {
      const op = ops[entry!.id]!;
      const r = model.step(state, op.input, op.output);
      if (r.ok) {
        const next = r.state;
        const w = entry!.id >>> 5;
        const bit = 1 << (entry!.id & 31);
        words[w] = words[w]! | bit;
        const key = `${words.join(',')}|${model.key(next)}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ entry: entry!, state });
          state = next;
          lift(entry!);
          entry = head.next;
          continue;
        }
        words[w] = words[w]! & ~bit;
      }
      entry = entry!.next;
    } else {
      // Reached a return whose call is not linearized yet: backtrack.
      const top = stack.pop();
      if (!top) return 'illegal';
      state = top.state;
      const id = top.entry.id;
      words[id >>> 5] = words[id >>> 5]! & ~(1 << (id & 31));
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return 'ok';
}

/**
 * Checks that `history` is linearizable with respect to `model`. `budget` bounds the search
 * steps per partition (default 2,000,000); exceeding it gives `timeout`, never a false verdict.
 */
export function checkLinearizable<S, I, O>(model: Model<S, I, O>, history: Operation<I, O>[], budget = 2_000_000): CheckResult<I, O> {
  for (const op of history) if (!(op.ret > op.call)) throw new RangeError(`operation returns at ${op.ret}, not after its call at ${op.call}`);
  const parts = model.partition ? model.partition(history) : [history];
  for (const p of parts) {
    const r = checkPartition(model, p, budget);
    if (r !== 'ok') return { result: r, partitions: parts.length, partition: p };
  }
  return { result: 'ok', partitions: parts.length };
}

// ---- The KV model used by the simulator -------------------------------------------------

/**
 * Client-visible KV operations (each on one key, so histories partition by key):
 * - `put`: etcd Put of a unique value.
 * - `get`: linearizable Range of one key; output is the value or null.
 * - `cas`: etcd Txn `if value(key) == expect (or version(key) == 0 when expect is null) then put(key, value) else range(key)`;
 *   output is `succeeded`.
 */
export type KvInput = { kind: 'put'; key: string; value: string } | { kind: 'get'; key: string } | { kind: 'cas'; key: string; expect: string | null; value: string };

/** Output by kind: put → `{}`; get → `{ value }`; cas → `{ succeeded }`. */
export type KvOutput = { value?: string | null; succeeded?: boolean };

export type KvOperation = Operation<KvInput, KvOutput>;

/**
 * Sequential specification of one etcd key: state = current value, null when absent.
 * Unknown-outcome `get`s are dropped by `partition` (they cannot have changed anything).
 */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      if (op.input.kind === 'get' && op.output === undefined) continue;
      const list = byKey.get(op.input.key) ?? [];
      list.push(op);
      byKey.set(op.input.key, list);
    }
    return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
  },
  init: () => null,
  step(state, input, output) {
    switch (input.kind) {
      case 'put':
        return { ok: true, state: input.value };
      case 'get':
        return output === undefined || output.value === state ? { ok: true, state } : { ok: false };
      case 'cas': {
        const holds = state === input.expect;
        if (output !== undefined && output.succeeded !== holds) return { ok: false };
        return { ok: true, state: holds ? input.value : state };
      }
    }
  },
  key: (s) => (s === null ? '\u0000' : `=${s}`),
};
