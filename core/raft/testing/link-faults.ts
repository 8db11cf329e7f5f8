/**
 * Link faults shared by the in-memory networks of tests (the pure Raft network and the
 * EmbeddedKv transport): links cut both ways, and seeded random loss.
 *
 * Deterministic: loss draws come from a seeded `Rng`, one draw per {@link LinkFaults.drops} call
 * while a drop rate is set, so a seed replays the same losses.
 */
import { createRng, type Rng } from '../../common/rng';
import type { NodeId } from '../types';

export class LinkFaults {
  private readonly cut = new Set<string>();
  private dropRate = 0;
  private readonly rng: Rng;

  constructor(seed: string) {
    this.rng = createRng(seed);
  }

  /** Cuts every link between `id` and the other nodes of `all`. */
  isolate(id: NodeId, all: Iterable<NodeId>): void {
    for (const other of all) if (other !== id) this.cutLink(id, other);
  }

  /** Cuts every link between group `a` and group `b`. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) this.cutLink(x, y);
  }

  /** Restores every link and stops dropping. */
  heal(): void {
    this.cut.clear();
    this.dropRate = 0;
  }

  /** Loses each message with probability `p` from now on. */
  setDropRate(p: number): void {
    this.dropRate = p;
  }

  /** True when the link from `from` to `to` is cut. */
  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Draws whether the next message is lost (no draw while the drop rate is 0). */
  drops(): boolean {
    return this.dropRate > 0 && this.rng.next() < this.dropRate;
  }

  private cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }
}
