/**
 * A tiny deterministic in-memory network for pure {@link Raft} instances (the etcd
 * `rafttest` / `interaction_test` idea): it plays the driver for every node (persist, send,
 * apply, advance), delivers messages in FIFO order, and can drop, isolate and partition.
 * Time only moves when the test calls {@link Network.tick}. Randomness is seeded.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { createRng } from '../../common/rng';
import { Raft, type RaftConfig } from '../raft';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../types';
import { LinkFaults } from './link-faults';

/** What a node has on "disk"; survives {@link Network.crash}. */
export interface SimStorage {
  hardState: HardState;
  /** The stored log after `snapshot` (all of it without one). */
  entries: Entry[];
  snapshot?: Snapshot;
}

export interface SimNode {
  id: NodeId;
  raft: Raft | null;
  storage: SimStorage;
  /** Entries applied since the last (re)start, in order. */
  applied: Entry[];
  /** The application's state: data of every applied non-empty entry (restored from snapshots). */
  state: string[];
  /** Snapshots this node received in a Ready (InstallSnapshot). */
  installed: Snapshot[];
}

export interface NetworkOptions {
  voters: NodeId[];
  learners?: NodeId[];
  seed?: string | number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Node with `preferred: true`. */
  preferred?: NodeId;
  preVote?: boolean;
  checkQuorum?: boolean;
  readOnly?: 'safe' | 'lease-based';
  maxEntriesPerMessage?: number;
  maxBytesPerMessage?: number;
  maxInflightMessages?: number;
  snapshotCatchUpEntries?: number;
}

export class Network {
  readonly nodes = new Map<NodeId, SimNode>();
  private queue: Message[] = [];
  private readonly faults: LinkFaults;
  /** Every message ever delivered (for assertions). */
  readonly delivered: Message[] = [];
  /** AppendEntries and InstallSnapshot messages emitted per link "from>to", delivered or not (flow-control assertions). */
  private readonly appendsSent = new Map<string, number>();
  /** Nodes added with {@link Network.join}: they boot as learners of the initial configuration. */
  private readonly joiners = new Set<NodeId>();

  constructor(private readonly options: NetworkOptions) {
    this.faults = new LinkFaults(`${options.seed ?? 1}/net`);
    for (const id of [...options.voters, ...(options.learners ?? [])]) {
      const node: SimNode = { id, raft: null, storage: { hardState: { term: 0, vote: '', commit: 0 }, entries: [] }, applied: [], state: [], installed: [] };
      this.nodes.set(id, node);
      this.start(id);
    }
  }

  private config(id: NodeId, storage?: SimStorage): RaftConfig {
    const o = this.options;
    return {
      id,
      voters: o.voters,
      learners: this.joiners.has(id) ? [...(o.learners ?? []), id] : (o.learners ?? []),
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      rng: createRng(`${o.seed ?? 1}/${id}/${storage ? storage.hardState.term : 0}`),
      preferred: o.preferred === id,
      preVote: o.preVote ?? true,
      checkQuorum: o.checkQuorum ?? true,
      ...(o.readOnly ? { readOnly: o.readOnly } : {}),
      ...(o.maxEntriesPerMessage ? { maxEntriesPerMessage: o.maxEntriesPerMessage } : {}),
      ...(o.maxBytesPerMessage ? { maxBytesPerMessage: o.maxBytesPerMessage } : {}),
      ...(o.maxInflightMessages ? { maxInflightMessages: o.maxInflightMessages } : {}),
      ...(o.snapshotCatchUpEntries ? { snapshotCatchUpEntries: o.snapshotCatchUpEntries } : {}),
      ...(storage
        ? { storage: { hardState: { ...storage.hardState }, entries: [...storage.entries], ...(storage.snapshot ? { snapshot: storage.snapshot } : {}) } }
        : {}),
    };
  }

  private start(id: NodeId, fromStorage = false): void {
    const node = this.node(id);
    node.raft = new Raft(this.config(id, fromStorage ? node.storage : undefined));
    node.applied = [];
    // The application restores its state from the stored snapshot before Raft re-applies the rest.
    node.state = fromStorage && node.storage.snapshot ? decodeState(node.storage.snapshot.data) : [];
  }

  /**
   * The application of `id` snapshots its state at its applied index and compacts (thesis §5.1):
   * the snapshot becomes durable, stored entries up to it are dropped. Returns the snapshot index (0 if ignored).
   */
  compact(id: NodeId): number {
    const node = this.node(id);
    const raft = this.raft(id);
    const snap = raft.compact(raft.status().appliedIndex, encodeState(node.state));
    if (!snap) return 0;
    node.storage.snapshot = snap;
    node.storage.entries = node.storage.entries.filter((e) => e.index > snap.index);
    return snap.index;
  }

  /** The node record (throws for unknown ids). */
  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`unknown node ${id}`);
    return n;
  }

  /** The running Raft of `id` (throws if crashed). */
  raft(id: NodeId): Raft {
    const r = this.node(id).raft;
    if (!r) throw new Error(`node ${id} is down`);
    return r;
  }

  /**
   * Starts a new node `id` with empty storage, booting as a learner of the initial configuration
   * (a joining server; the leader's log tells it the real configuration once it is added).
   */
  join(id: NodeId): void {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    this.joiners.add(id);
    this.nodes.set(id, { id, raft: null, storage: { hardState: { term: 0, vote: '', commit: 0 }, entries: [] }, applied: [], state: [], installed: [] });
    this.start(id);
  }

  /** Stops `id`, keeping only its persisted storage (unstable state is lost, as in a crash). */
  crash(id: NodeId): void {
    this.node(id).raft = null;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Restarts `id` from its persisted hardState and entries. */
  restart(id: NodeId): void {
    this.start(id, true);
  }

  /** Cuts every link between `id` and the others. */
  isolate(id: NodeId): void {
    this.faults.isolate(id, this.nodes.keys());
  }

  /** Cuts every link between group `a` and group `b`. */
  partition(a: NodeId[], b: NodeId[]): void {
    this.faults.partition(a, b);
  }

  /** Restores every link and stops dropping. */
  heal(): void {
    this.faults.heal();
  }

  /** Drops each message with probability `p` (seeded). */
  drop(p: number): void {
    this.faults.setDropRate(p);
  }

  /** Runs every node's Ready loop and delivers messages until the network is quiet (or `maxRounds`). */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const node of this.nodes.values()) {
        const raft = node.raft;
        if (!raft) continue;
        while (raft.hasReady()) {
          busy = true;
          const rd = raft.ready();
          if (rd.snapshot) {
            node.storage.snapshot = rd.snapshot;
            node.storage.entries = [];
            node.state = decodeState(rd.snapshot.data);
            node.installed.push(rd.snapshot);
          }
          if (rd.hardState) node.storage.hardState = { ...rd.hardState };
          for (const e of rd.entries) {
            node.storage.entries = node.storage.entries.filter((x) => x.index < e.index);
            node.storage.entries.push(e);
          }
          this.queue.push(...rd.messages);
          for (const m of rd.messages) {
            if (m.type === 'AppendEntries' || m.type === 'InstallSnapshot') this.appendsSent.set(`${m.from}>${m.to}`, (this.appendsSent.get(`${m.from}>${m.to}`) ?? 0) + 1);
          }
          node.applied.push(...rd.committedEntries);
          const dec = new TextDecoder();
          for (const e of rd.committedEntries) if (e.type === 'normal' && e.data.length > 0) node.state.push(dec.decode(e.data));
          raft.advance();
        }
      }
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        busy = true;
        const to = this.nodes.get(m.to)?.raft;
        if (!to || this.faults.isCut(m.from, m.to)) continue;
        if (this.faults.drops()) continue;
        this.delivered.push(m);
        to.step(m);
      }
      if (!busy) return;
    }
  }

  /** Ticks every running node `n` times, stabilizing after each tick. */
  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.raft?.tick();
      this.stabilize();
    }
  }

  /** Ticks until `cond()` holds; throws after `max` ticks. */
  tickUntil(cond: () => boolean, max = 500): void {
    for (let i = 0; i < max; i++) {
      if (cond()) return;
      this.tick();
    }
    if (!cond()) throw new Error(`condition not reached within ${max} ticks`);
  }

  /** AppendEntries and InstallSnapshot messages `from` has emitted to `to` so far. */
  appendsEmitted(from: NodeId, to: NodeId): number {
    return this.appendsSent.get(`${from}>${to}`) ?? 0;
  }

  /** Ids of running nodes that currently believe they are leader. */
  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raft?.status().role === 'leader').map((n) => n.id);
  }

  /** The application state of `id`: data of every applied non-empty normal entry (config entries are Raft's), decoded as UTF-8 (including what came in snapshots). */
  appliedData(id: NodeId): string[] {
    return [...this.node(id).state];
  }

  /** Proposes a UTF-8 string on `id`; returns the entry index. */
  propose(id: NodeId, data: string): number {
    const i = this.raft(id).propose(new TextEncoder().encode(data));
    this.stabilize();
    return i;
  }
}

function encodeState(state: string[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state));
}

function decodeState(data: Uint8Array): string[] {
  return JSON.parse(new TextDecoder().decode(data)) as string[];
}
