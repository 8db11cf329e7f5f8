/**
 * An in-memory {@link RaftTransport} hub connecting several `EmbeddedKv` in one process, with
 * fault controls (isolate, partition, heal, seeded drop). Messages are structured-cloned and
 * delivered asynchronously (`setImmediate`), like a real network. Forwarded requests over a cut
 * link reject at once with UnavailableError; dropped ones reject after their timeout.
 */
import { UnavailableError } from '../../common/errors';
import type { Message, NodeId, RaftTransport } from '../../raft/types';
import { LinkFaults } from '../../raft/testing/link-faults';

interface Endpoint {
  onMessage?: (m: Message) => void;
  onForward?: (from: NodeId, payload: Uint8Array) => Promise<Uint8Array>;
}

/** The hub. One instance per simulated cluster. */
export class MemoryTransport {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly faults: LinkFaults;

  /** `seed` drives the drop decisions. */
  constructor(seed: string | number = 1) {
    this.faults = new LinkFaults(`memory-transport/${seed}`);
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

  /** Cuts every link between `id` and the others. */
  isolate(id: NodeId): void {
    this.faults.isolate(id, this.endpoints.keys());
  }

  /** Cuts every link between group `a` and group `b`. */
  partition(a: NodeId[], b: NodeId[]): void {
    this.faults.partition(a, b);
  }

  /** Restores every link and stops dropping. */
  heal(): void {
    this.faults.heal();
  }

  /** Drops each Raft message and forwarded request with probability `p` (seeded). */
  drop(p: number): void {
    this.faults.setDropRate(p);
  }

  private blocked(from: NodeId, to: NodeId): boolean {
    return this.faults.isCut(from, to) || this.faults.drops();
  }

  /** Test hook: sees every Raft message sent (before fault decisions). */
  observe: ((m: Message) => void) | null = null;

  private deliver(from: NodeId, m: Message): void {
    this.observe?.(m);
    if (this.blocked(from, m.to)) return;
    const copy = structuredClone(m);
    setImmediate(() => {
      if (this.faults.isCut(from, m.to)) return;
      this.endpoints.get(m.to)?.onMessage?.(copy);
    });
  }

  private async forward(from: NodeId, to: NodeId, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.faults.isCut(from, to)) throw new UnavailableError(`${to} is unreachable from ${from}`);
    const handler = this.endpoints.get(to)?.onForward;
    if (!handler) throw new UnavailableError(`${to} has no forward handler`);
    const dropped = this.faults.drops();
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new UnavailableError(`forward to ${to} timed out after ${timeoutMs} ms`)), timeoutMs);
      if (dropped) return;
      setImmediate(() => {
        handler(from, payload.slice()).then(
          (reply) => {
            clearTimeout(timer);
            if (this.faults.isCut(to, from)) reject(new UnavailableError(`reply from ${to} lost`));
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
