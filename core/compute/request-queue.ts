/**
 * A bounded request queue with a concurrency limit (the overlay's "leader queue capacity 200,
 * at most 100 concurrent requests per process"). Requests beyond the capacity are refused at
 * once with OverloadedError, never silently dropped. Served in arrival order (FIFO).
 *
 * Deterministic module: time comes from the `now` function passed in (milliseconds).
 */
import { OverloadedError } from '../common/errors';

export interface QueueOptions {
  /** Requests that may wait (default 200). */
  capacity?: number;
  /** Requests that may run at once (default 100). */
  concurrency?: number;
  /** Clock in milliseconds, for the requests/s figure. */
  now: () => number;
}

export class RequestQueue {
  readonly capacity: number;
  readonly concurrency: number;
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private readonly completions: number[] = [];
  private readonly now: () => number;

  constructor(options: QueueOptions) {
    this.capacity = options.capacity ?? 200;
    this.concurrency = options.concurrency ?? 100;
    this.now = options.now;
  }

  /** Requests waiting for a slot. */
  get depth(): number {
    return this.waiting.length;
  }
  /** Requests running now. */
  get inFlight(): number {
    return this.running;
  }
  /** Completed requests per second over the last `windowMs` (default 10 s). */
  rate(windowMs = 10_000): number {
    const cutoff = this.now() - windowMs;
    while (this.completions.length && (this.completions[0] as number) < cutoff) this.completions.shift();
    return this.completions.length / (windowMs / 1000);
  }

  /**
   * Runs `fn` when a slot is free.
   * @throws OverloadedError when `capacity` requests are already waiting.
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.capacity) {
        throw new OverloadedError(`queue full: ${this.waiting.length} requests waiting (capacity ${this.capacity}), ${this.running} running`);
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      this.completions.push(this.now());
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
