/**
 * An in-memory {@link RaftTransport} hub connecting several `EmbeddedKv` in one process, with
 * fault controls (isolate, partition, heal, seeded drop). Messages are structured-cloned and
 * delivered asynchronously (`setImmediate`), like a real network. Forwarded requests over a cut
 * link reject at once with UnavailableError; dropped ones reject after their timeout.
 */
import { UnavailableError } from '../../common/errors';
import { createRng, type Rng } from '../../common/rng';
import type { Message, NodeId, RaftTransport } from '../../raft/types';

interface Endpoint {
  onMessage?: (m: Message) => void;
  onForward?: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
}

/** The hub. One instance per simulated cluster. */
export class MemoryTransport {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly cut = new Set<string>();
  private dropRate = 0;
  private readonly rng: Rng;

  /** `seed` drives the drop decisions. */
  constructor(seed: string | number = 1) {
    this.rng = createRng(`memory-transport/${seed}`);
  }

  /** The transport of node `id` (created on first use; the same object on later calls, so a restarted node re-registers its handlers). */
  transport(id: NodeId): RaftTransport {
    let ep = this.endpoints.get(id);
    if (!ep) {
      ep = {};
      this.endpoints.set(id, ep);
    }
    const endpoint = ep;
    return {
      send: (messages) => {
        for (const m of messages) this.deliver(id, m);
      },
      onMessage: (handler) => {
        endpoint.onMessage = handler;
      },
      forward: (to, payload, timeoutMs) => this.forward(id, to, payload, timeoutMs),
      onForward: (handler) => {
        endpoint.onForward = handler;
      },
    };
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    for (const other of this.endpoints.keys()) if (other !== id) this.cutLink(id, other);
  }

  /** Cuts every link between `a` and `b`. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) this.cutLink(x, y);
  }

  /** Restores all links and stops dropping. */
  heal(): void {
    this.cut.clear();
    this.dropRate = 0;
  }

  /** Drops each Raft message and forwarded request with probability `p` (seeded). */
  drop(p: number): void {
    this.dropRate = p;
  }

  private cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  private blocked(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`) || (this.dropRate > 0 && this.rng.next() < this.dropRate);
  }

  private deliver(from: NodeId, m: Message): void {
    if (this.blocked(from, m.to)) return;
    const copy = structuredClone(m);
    setImmediate(() => {
      if (this.cut.has(`${from}>${m.to}`)) return;
      this.endpoints.get(m.to)?.onMessage?.(copy);
    });
  }

  private async forward(from: NodeId, to: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.cut.has(`${from}>${to}`)) throw new UnavailableError(`${to} is unreachable from ${from}`);
    const handler = this.endpoints.get(to)?.onForward;
    if (!handler) throw new UnavailableError(`${to} has no forward handler`);
    const dropped = this.dropRate > 0 && this.rng.next() < this.dropRate;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new UnavailableError(`forward to ${to} timed out after ${timeoutMs} ms`)), timeoutMs);
      if (dropped) return;
      setImmediate(() => {
        handler(from, payload.slice()).then(
          (reply) => {
            clearTimeout(timer);
            if (this.cut.has(`${to}>${from}`)) reject(new UnavailableError(`reply from ${to} lost`));
            else resolve(reply.slice());
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err);
          },
        );
      });
    });
  }
}
