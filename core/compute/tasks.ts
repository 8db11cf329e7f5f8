/**
 * Registered compute task types. Compute runs only registered task types, never code sent over
 * the wire (DESIGN.md, Security). `add` sums numbers; `sort` sorts numbers ascending.
 *
 * Extending: `registry.register('name', { validate, run })` in the node's startup code (the
 * Coordinator/Worker API of the source system).
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { ValidationError } from '../common/errors';

/** At most this many values per request or job. */
export const MAX_VALUES = 100_000;

export interface TaskType<R = unknown> {
  /** Checks the input; throws ValidationError with a clear message. */
  validate(values: unknown): number[];
  run(values: number[]): R;
}

function numbers(values: unknown, min: number): number[] {
  if (!Array.isArray(values)) throw new ValidationError('values must be an array of numbers');
  if (values.length < min) throw new ValidationError(`values must hold at least ${min} number${min === 1 ? '' : 's'}`);
  if (values.length > MAX_VALUES) throw new ValidationError(`values holds ${values.length} numbers; the limit is ${MAX_VALUES}`);
  values.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValidationError(`values[${i}] is ${JSON.stringify(v)}, not a finite number`);
  });
  return values as number[];
}

export class TaskRegistry {
  private readonly tasks = new Map<string, TaskType>();
  register(name: string, task: TaskType): void {
    this.tasks.set(name, task);
  }
  /** @throws ValidationError for an unknown task type. */
  get(name: string): TaskType {
    const t = this.tasks.get(name);
    if (!t) throw new ValidationError(`unknown task type "${name}"; registered: ${[...this.tasks.keys()].join(', ')}`);
    return t;
  }
  names(): string[] {
    return [...this.tasks.keys()];
  }
  /** Validates and runs a task. */
  run(name: string, values: unknown): unknown {
    const t = this.get(name);
    return t.run(t.validate(values));
  }
}

/** The registry with the built-in task types `add` and `sort`. */
export function defaultTasks(): TaskRegistry {
  const r = new TaskRegistry();
  r.register('add', { validate: (v) => numbers(v, 1), run: (v) => v.reduce((a, b) => a + b, 0) });
  r.register('sort', { validate: (v) => numbers(v, 0), run: (v) => [...v].sort((a, b) => a - b) });
  return r;
}
