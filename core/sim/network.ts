/**
 * The simulated network of the deterministic simulator: every message sent is delivered after
 * a seeded delay in ticks (so messages are reordered), or lost, or duplicated; links can be
 * cut one way (asymmetric partition) or both ways. Time only moves when the simulator says so.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import type { Rng } from '../common/rng';
import type { Message, NodeId } from '../raft/types';

/** Per-message fault rates. Probabilities in [0, 1]; delays in ticks. */
export interface LinkQuality {
  /** Probability that a message is dropped. */
  loss: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicate: number;
  /** Delay drawn uniformly from [minDelay, maxDelay] ticks (0 = delivered in the same tick's delivery phase). */
  minDelay: number;
  maxDelay: number;
}

/** A perfect network: no loss, no duplicates, one tick of delay. */
export const PERFECT_LINK: LinkQuality = { loss: 0, duplicate: 0, minDelay: 1, maxDelay: 1 };

/** Messages in flight, bucketed by delivery tick. */
export class SimNetwork {
  private readonly inFlight = new Map<number, Message[]>();
  /** Cut directed links, as `from>to`. */
  private readonly cuts = new Set<string>();
  quality: LinkQuality = { ...PERFECT_LINK };
  /** Counters for the summary. */
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(private readonly rng: Rng) {}

  /** Queues `m`, sent at tick `now`, applying loss, duplication and delay. Cut links drop at send time and at delivery time. */
  send(m: Message, now: number): void {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.rng.next() < this.quality.loss) {
      this.dropped++;
      return;
    }
    const copies = this.rng.next() < this.quality.duplicate ? 2 : 1;
    if (copies === 2) this.duplicated++;
    for (let c = 0; c < copies; c++) {
      const at = now + this.rng.int(this.quality.minDelay, this.quality.maxDelay + 1);
      const bucket = this.inFlight.get(at);
      if (bucket) bucket.push(m);
      else this.inFlight.set(at, [m]);
    }
  }

  /** Removes and returns the messages due at tick `now`, minus those whose link is cut now. */
  due(now: number): Message[] {
    const bucket = this.inFlight.get(now);
    if (!bucket) return [];
    this.inFlight.delete(now);
    return bucket.filter((m) => {
      if (!this.isCut(m.from, m.to)) return true;
      this.dropped++;
      return false;
    });
  }

  /** True if messages from `from` to `to` are currently dropped. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.size > 0 && this.cuts.has(`${from}>${to}`);
  }

  /** Cuts the directed link `from → to` (asymmetric partition). */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue;
        this.cut(x, y);
        this.cut(y, x);
      }
    }
  }

  /** Restores every link (quality is left alone; see {@link SimNetwork.quality}). */
  heal(): void {
    this.cuts.clear();
  }

  /** Cut links, sorted, for traces. */
  describeCuts(): string[] {
    return [...this.cuts].sort();
  }
}
