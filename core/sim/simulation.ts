/**
 * The deterministic cluster simulator (FoundationDB / TigerBeetle VOPR style, driven like
 * etcd's `rafttest`): one seed decides everything — network faults, disk latency, crashes,
 * client operations and every Raft election timeout — so a failing seed replays exactly.
 *
 * Per node it plays the Raft driver of `core/raft/raft.ts` with a simulated disk:
 * - `ready()` output is "written" at once; it becomes durable when a simulated fsync completes
 *   0..maxFsyncDelay ticks later, and only then is `advance()` called. The core holds back
 *   votes, append acknowledgements and vote requests until that advance() (paper Fig. 2
 *   "persist before responding", thesis §3.8), and `ready()` returns nothing new meanwhile.
 *   `Ready.messages` are sent at ready() time: by the core's contract they depend only on
 *   state persisted by an earlier advance().
 * - A crash loses the in-flight write; a restart rebuilds the node from its durable hardState,
 *   snapshot and entries: the {@link KvStateMachine} is restored from the snapshot and the
 *   committed entries after it are re-applied.
 * - Log compaction (thesis §5.1): every `snapshotEvery` applied entries the application
 *   serializes its state and calls `raft.compact`; the snapshot is durable at once (an atomic
 *   file write) and durable entries up to it are dropped. Lagging or restarted followers then
 *   catch up through InstallSnapshot; a received snapshot (`Ready.snapshot`) is part of the
 *   in-flight write (written first) and restores the state machine.
 *
 * Time is ticks. Each tick: maybe inject a fault, deliver due messages (each delivery is a
 * step), complete due fsyncs (steps), tick every node (a step), run clients (steps). After
 * every step the touched nodes are checked by {@link SafetyChecker}. After the workload every
 * fault is healed and liveness is required within `livenessTicks`; then in-flight client
 * operations drain and the history is checked for linearizability ({@link kvModel}).
 *
 * Membership (thesis §4.1): `spares` extra nodes start outside the configuration; membership
 * faults add a learner (a spare or a removed node, which keeps its old disk), promote a learner,
 * remove a member (possibly the leader itself; removed nodes keep running), and transfer
 * leadership (thesis §3.10), each asked of the current leader while other faults go on, and
 * while every node compacts its log: a new member usually catches up through InstallSnapshot,
 * and a snapshot carries the configuration at its index. The commit-quorum check uses the
 * leader's configuration at that step.
 *
 * Deterministic module: imports nothing from `node:`; no Math.random, no Date.
 */
import { NotLeaderError, UnavailableError, ValidationError } from '../common/errors';
import { createRng, type Rng } from '../common/rng';
import { decodeCommand, encodeCommand, KvStateMachine, type KvCommand } from '../kv/state-machine';
import { Raft, type ReadState } from '../raft/raft';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../raft/types';
import { LinearizabilityViolation, LivenessViolation } from './errors';
import { checkLinearizable, kvModel, type KvInput, type KvOperation, type KvOutput } from './linearizability';
import { SimNetwork, PERFECT_LINK, type LinkQuality } from './network';
import { inspectLog, SafetyChecker, type NodeView } from './safety';

/** Options of one simulated run. Every field has a default; `seed` decides all randomness. */
export interface SimOptions {
  /** The seed (a run is a pure function of its options). */
  seed: number;
  /** Voting members: 3, 5 or 7 (default 3). */
  voters?: number;
  /** Learners (non-voting members), 0–2 (default 0). */
  learners?: number;
  /** Spare nodes outside the initial configuration that membership faults may add (default 2). */
  spares?: number;
  /** Probability that an injected fault is a membership change or leadership transfer (default 0.15). */
  membershipRate?: number;
  /** Ticks of workload with faults (default 300). */
  workloadTicks?: number;
  /** Concurrent clients, one outstanding operation each (default 3). */
  clients?: number;
  /** Number of distinct keys (default 2). */
  keys?: number;
  /** Raft election timeout base in ticks (default 10) and heartbeat interval (default 1). */
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Raft pre-vote (thesis §9.6) and check-quorum (§6.2) on every node (defaults true). */
  preVote?: boolean;
  checkQuorum?: boolean;
  /**
   * Raft `readOnly` on every node (default 'safe'): with 'lease-based' (needs checkQuorum) a
   * leader holding a lease answers reads without a heartbeat round (thesis §6.4.1), so the
   * linearizability check covers lease reads under partitions, crashes and leadership transfers.
   */
  readOnly?: 'safe' | 'lease-based';
  /** Probability per tick of injecting a fault during the workload (default 0.05). */
  faultRate?: number;
  /** Probability per tick that an idle client starts an operation (default 0.5). */
  issueRate?: number;
  /** Client timeout in ticks: after it the outcome is unknown (default 40). */
  opTimeout?: number;
  /** Upper bound of the fsync latency in ticks; each fsync takes 0..max (default 3). */
  maxFsyncDelay?: number;
  /**
   * After healing, a leader must be elected and a proposal committed within this many ticks
   * (default max(200, 20 × electionTicks): twenty election timeouts, since what bounds it is the
   * number of randomized-timeout rounds that can end in a split vote, paper §5.2).
   */
  livenessTicks?: number;
  /**
   * Narrow unknown outcomes with what the log tells (default true): a timed-out write whose entry
   * was applied somewhere gets its result and returns at the first apply (which follows its
   * commit); one whose index another entry took, or that no node applied by the end of the run
   * (so no read could have observed it), leaves the history. With false, timed-out writes stay
   * unknown (`ret = Infinity`) as a client alone would see them; the check is weaker and slower.
   */
  resolveUnknown?: boolean;
  /** Each node compacts its log every this many applied entries (thesis §5.1); 0 = never (default 20). */
  snapshotEvery?: number;
  /** Raft `snapshotCatchUpEntries`: entries kept below a snapshot for slightly lagging followers (default 0). */
  snapshotCatchUpEntries?: number;
  /** Record every delivery, tick and client event in the trace, not only faults (default false). */
  fullTrace?: boolean;
  /** Test hook run after every tick (e.g. to corrupt state on purpose). */
  afterTick?: (sim: Simulation) => void;
}

/** A fault the simulator can inject. `snapshot` makes a node compact now. */
export type Fault =
  | { kind: 'partition'; a: NodeId[]; b: NodeId[] }
  | { kind: 'cut'; from: NodeId; to: NodeId }
  | { kind: 'isolate'; node: NodeId }
  | { kind: 'heal' }
  /**
   * Crash `node`, restart it at `restartAt`. `torn` in [0, 1) decides how much of an in-flight
   * (written, not fsynced) Ready survives as a torn write: a prefix of its records in WAL order
   * (entries, then hardState, as etcd's WAL writes them); 0 = none survives.
   */
  | { kind: 'crash'; node: NodeId; restartAt: number; torn?: number }
  | { kind: 'restart'; node: NodeId }
  | { kind: 'link'; quality: LinkQuality }
  /** A single-server configuration change asked of the current leader (thesis §4.1). */
  | { kind: 'membership'; change: 'add-learner' | 'promote' | 'remove'; node: NodeId }
  /**
   * A leadership transfer asked of the current leader (thesis §3.10). `deafen`: when the transferee
   * receives TimeoutNow, cut every link into the old leader (it still sends): it does not hear of
   * the transferee's election, the case a lease-based read must survive (thesis §6.4.1).
   */
  | { kind: 'transfer'; to: NodeId; deafen?: boolean }
  | { kind: 'snapshot'; node: NodeId };

/** Result of one run. `trace` lists faults and phases (and every event with `fullTrace`). */
export interface SimResult {
  seed: number;
  ok: boolean;
  /** Present when !ok: what failed, at which tick and step. */
  failure?: { name: string; message: string; tick: number; step: number };
  ticks: number;
  steps: number;
  /** Client operations recorded in the history. */
  ops: number;
  /** Operations with unknown outcome. */
  unknown: number;
  /** Membership: config entries appended by a leader, and leadership transfers asked / completed (the transferee became leader). */
  membership: { confEntries: number; transfersAsked: number; transfersDone: number };
  /** Snapshots made by compaction, and installed from a leader (InstallSnapshot), over all nodes. */
  snapshots: { made: number; installed: number };
  /** Reads a leader answered on its lease, without a heartbeat round (readOnly 'lease-based'). */
  leaseReads: number;
  trace: string[];
  history: SimOperation[];
}

/**
 * One recorded client operation: the checker's fields (`call`/`ret` are a global event counter,
 * so real-time order is exact within a tick) plus ticks. `returnTick` null = unknown outcome;
 * `learned` says whether the client saw the result or it was read from the log after a timeout.
 */
export type SimOperation = KvOperation & { id: number; invokeTick: number; returnTick: number | null; learned: 'client' | 'log' | null };

interface SimNode {
  id: NodeId;
  learner: boolean;
  /** A spare: outside the initial configuration; boots as a learner of it once added. */
  spare: boolean;
  /** Started at least once (a spare that was never added stays down, also when healing). */
  joined: boolean;
  raft: Raft | null;
  sm: KvStateMachine;
  applied: number;
  restarts: number;
  /** What survives a crash: the latest snapshot and the entries after it. */
  durable: { hardState: HardState; entries: Entry[]; snapshot?: Snapshot };
  /** A written, not yet fsynced, Ready. */
  inflight: { hardState?: HardState; entries: Entry[]; snapshot?: Snapshot; doneAt: number } | null;
  /** Index of the last snapshot this node made or installed. */
  snapshotIndex: number;
  /** ReadIndex requests by context, then reads waiting for apply. */
  reads: Map<string, ClientOp>;
  readWaiting: Array<{ index: number; op: ClientOp }>;
}

interface ClientOp {
  id: number;
  client: number;
  input: KvInput;
  call: number;
  invokeTick: number;
  deadline: number;
  target: NodeId;
  /** Handed to Raft (a proposal or a ReadIndex); before that a timeout means "never happened". */
  submitted: boolean;
  done: boolean;
  /** The client gave up waiting; the outcome is unknown to it. */
  timedOut: boolean;
  /** Proposals of this operation whose fate is not known yet. */
  live: number;
  /** Certainly never took effect: left out of the history. */
  dropped: boolean;
  output?: KvOutput;
  ret?: number;
  returnTick?: number;
  learned?: 'client' | 'log';
}

const enc = new TextEncoder();

/** One simulated cluster run. Use {@link runSimulation}; the class is exposed for test hooks. */
export class Simulation {
  readonly seed: number;
  readonly voters: NodeId[];
  readonly learners: NodeId[];
  readonly spares: NodeId[];
  readonly nodes = new Map<NodeId, SimNode>();
  readonly net: SimNetwork;
  readonly safety: SafetyChecker;
  readonly trace: string[] = [];
  now = 0;
  steps = 0;
  private seq = 0;
  private opIds = 0;
  private readonly o: Required<Omit<SimOptions, 'afterTick'>> & Pick<SimOptions, 'afterTick'>;
  private readonly faultRng: Rng;
  private readonly clientRng: Rng;
  private readonly diskRng: Rng;
  private readonly clients: Array<ClientOp | null>;
  private readonly history: ClientOp[] = [];
  private readonly keys: string[];
  /** Values seen per key, for CAS expectations that sometimes hold. */
  private readonly seen = new Map<string, string | null>();
  private readonly restartAt = new Map<NodeId, number>();
  private phase: 'workload' | 'heal' | 'drain' = 'workload';
  private readonly membershipStats = { confEntries: 0, transfersAsked: 0, transfersDone: 0 };
  private readonly snapshotStats = { made: 0, installed: 0 };
  /** Old leader whose inbound links are cut when its TimeoutNow arrives (a `deafen` transfer). */
  private deafenOnTimeoutNow: NodeId | null = null;
  /** Reads answered on a leader lease. */
  private leaseReads = 0;
  /** Transferee → tick the transfer was asked. */
  private readonly transfers = new Map<NodeId, number>();
  /** Client proposals by log index: the term proposed in and the node that can answer the client ('' once it crashed). */
  private readonly proposals = new Map<number, Array<{ op: ClientOp; term: number; node: NodeId }>>();
  /** The first entry applied anywhere at each index (term) and its client-visible output. */
  private readonly decided = new Map<number, { term: number; output: KvOutput | undefined }>();

  constructor(options: SimOptions) {
    this.o = {
      voters: 3,
      learners: 0,
      spares: 2,
      membershipRate: 0.15,
      workloadTicks: 300,
      clients: 3,
      keys: 2,
      electionTicks: 10,
      heartbeatTicks: 1,
      preVote: true,
      checkQuorum: true,
      readOnly: 'safe',
      faultRate: 0.05,
      issueRate: 0.5,
      opTimeout: 40,
      maxFsyncDelay: 3,
      livenessTicks: Math.max(200, 20 * (options.electionTicks ?? 10)),
      snapshotEvery: 20,
      snapshotCatchUpEntries: 0,
      resolveUnknown: true,
      fullTrace: false,
      ...options,
    };
    if (![3, 5, 7].includes(this.o.voters)) throw new RangeError(`voters must be 3, 5 or 7, got ${this.o.voters}`);
    if (!(this.o.learners >= 0 && this.o.learners <= 2)) throw new RangeError(`learners must be 0..2, got ${this.o.learners}`);
    this.seed = options.seed;
    this.voters = Array.from({ length: this.o.voters }, (_, i) => `n${i + 1}`);
    this.learners = Array.from({ length: this.o.learners }, (_, i) => `l${i + 1}`);
    this.spares = Array.from({ length: this.o.spares }, (_, i) => `s${i + 1}`);
    this.safety = new SafetyChecker({
      storedOn: (id, index, term) => {
        const d = this.nodes.get(id)?.durable;
        if (!d) return false;
        // Compacted into the durable snapshot (only applied, hence committed, entries are): held.
        if (d.snapshot && index <= d.snapshot.index) return index < d.snapshot.index || d.snapshot.term === term;
        const first = d.entries[0]?.index ?? 1;
        const e = d.entries[index - first];
        return e !== undefined && e.term === term;
      },
      initialConf: { voters: this.voters, learners: this.learners },
    });
    this.keys = Array.from({ length: this.o.keys }, (_, i) => `k${i}`);
    this.net = new SimNetwork(createRng(`${this.seed}/net`));
    this.faultRng = createRng(`${this.seed}/faults`);
    this.clientRng = createRng(`${this.seed}/clients`);
    this.diskRng = createRng(`${this.seed}/disk`);
    this.clients = Array.from({ length: this.o.clients }, () => null);
    for (const id of [...this.voters, ...this.learners, ...this.spares]) {
      const spare = this.spares.includes(id);
      this.nodes.set(id, {
        id,
        learner: this.learners.includes(id),
        spare,
        joined: !spare,
        raft: null,
        sm: new KvStateMachine(),
        applied: 0,
        restarts: 0,
        durable: { hardState: { term: 0, vote: '', commit: 0 }, entries: [] },
        inflight: null,
        snapshotIndex: 0,
        reads: new Map(),
        readWaiting: [],
      });
      if (!spare) this.start(id);
    }
  }

  /** Runs workload, heal + liveness, drain and the linearizability check. Throws on any violation. */
  run(): void {
    const o = this.o;
    this.log(
      `start voters=${this.voters.join(',')} learners=${this.learners.join(',') || '-'} election=${o.electionTicks} heartbeat=${o.heartbeatTicks} preVote=${o.preVote} checkQuorum=${o.checkQuorum} readOnly=${o.readOnly} fsync<=${o.maxFsyncDelay} snapshotEvery=${o.snapshotEvery} catchUp=${o.snapshotCatchUpEntries}`,
    );
    for (let t = 0; t < this.o.workloadTicks; t++) this.tick();
    this.phase = 'heal';
    this.healAll();
    this.checkLiveness();
    this.phase = 'drain';
    for (let t = 0; t <= this.o.opTimeout && this.clients.some((c) => c !== null); t++) this.tick();
    for (const n of this.nodes.values()) if (n.raft) this.safety.checkNode(this.view(n), true);
    if (this.o.resolveUnknown) {
      for (const op of this.history) {
        if (op.timedOut && op.ret === undefined && op.input.kind !== 'get' && !op.dropped) {
          op.dropped = true;
          this.log(`op #${op.id} (timed out) was never applied anywhere: left out`, true);
        }
      }
    }
    this.checkHistory();
  }

  /** The client-visible history (operations that did not certainly fail). */
  kvHistory(): SimOperation[] {
    return this.history
      .filter((op) => !op.dropped)
      .map((op) => ({
        id: op.id,
        client: op.client,
        input: op.input,
        output: op.output,
        call: op.call,
        ret: op.ret ?? Infinity,
        invokeTick: op.invokeTick,
        returnTick: op.returnTick ?? null,
        learned: op.learned ?? null,
      }));
  }

  /** The running Raft of `id`, or null when crashed (for test hooks). */
  raft(id: NodeId): Raft | null {
    return this.nodes.get(id)?.raft ?? null;
  }

  /** Applies one fault (also used by tests to script a scenario). */
  inject(f: Fault): void {
    this.log(describeFault(f));
    switch (f.kind) {
      case 'partition':
        this.net.partition(f.a, f.b);
        break;
      case 'cut':
        this.net.cut(f.from, f.to);
        break;
      case 'isolate':
        this.net.partition(
          [f.node],
          [...this.nodes.keys()].filter((x) => x !== f.node),
        );
        break;
      case 'heal':
        this.net.heal();
        break;
      case 'crash':
        this.crash(f.node, f.torn ?? 0);
        this.restartAt.set(f.node, f.restartAt);
        break;
      case 'restart':
        this.restartAt.delete(f.node);
        if (!this.nodes.get(f.node)!.raft) this.start(f.node);
        break;
      case 'link':
        this.net.quality = { ...f.quality };
        break;
      case 'snapshot': {
        const n = this.nodes.get(f.node)!;
        if (n.raft) this.compactNode(n);
        break;
      }
      case 'membership':
      case 'transfer': {
        const old = this.currentLeader()?.id;
        this.askLeader(f);
        if (f.kind === 'transfer' && f.deafen && old) this.deafenOnTimeoutNow = old;
        break;
      }
    }
  }

  // ---- Time -------------------------------------------------------------------------------

  private tick(): void {
    this.now++;
    if (this.phase === 'workload' && this.faultRng.next() < this.o.faultRate) this.inject(this.randomFault());
    for (const [id, at] of [...this.restartAt]) if (at <= this.now) this.inject({ kind: 'restart', node: id });
    for (const m of this.net.due(this.now)) {
      const n = this.nodes.get(m.to);
      if (!n?.raft) continue;
      if (this.o.fullTrace) this.log(`deliver ${describeMessage(m)}`);
      if (m.type === 'TimeoutNow' && m.from === this.deafenOnTimeoutNow) {
        this.deafenOnTimeoutNow = null;
        this.log(`TimeoutNow reaches ${m.to}: cut every link into ${m.from}`);
        for (const x of this.nodes.keys()) if (x !== m.from) this.net.cut(x, m.from);
      }
      n.raft.step(m);
      this.afterStep(n);
    }
    for (const n of this.nodes.values()) {
      if (n.inflight && n.inflight.doneAt <= this.now) {
        this.fsync(n);
        this.afterStep(n);
      }
    }
    for (const n of this.nodes.values()) {
      if (!n.raft) continue;
      n.raft.tick();
      this.drive(n);
    }
    this.steps++;
    for (const n of this.nodes.values()) if (n.raft) this.safety.checkNode(this.view(n));
    this.runClients();
    this.o.afterTick?.(this);
  }

  private afterStep(n: SimNode): void {
    this.steps++;
    this.drive(n);
    if (n.raft) this.safety.checkNode(this.view(n));
  }

  private view(n: SimNode): NodeView {
    const raft = n.raft!;
    const s = raft.status();
    return { id: n.id, role: s.role, term: s.term, commitIndex: s.commitIndex, log: inspectLog(raft), voters: s.voters, learners: s.learners };
  }

  /** The running leader of the highest term, if any. */
  private currentLeader(): SimNode | undefined {
    return [...this.nodes.values()].filter((n) => n.raft?.status().role === 'leader').sort((a, b) => b.raft!.status().term - a.raft!.status().term)[0];
  }

  /**
   * Asks the current leader for a membership change or a leadership transfer. Refusals the core
   * documents (not leader, one change at a time, learner not caught up, nonsense change) are
   * logged; anything else is a bug and fails the run.
   */
  private askLeader(f: Extract<Fault, { kind: 'membership' | 'transfer' }>): void {
    const leader = this.currentLeader();
    if (!leader) {
      this.log('  no leader: not asked');
      return;
    }
    const raft = leader.raft!;
    this.steps++;
    try {
      if (f.kind === 'transfer') {
        raft.transferLeadership(f.to);
        this.membershipStats.transfersAsked++;
        this.transfers.set(f.to, this.now);
      } else {
        const index = raft.proposeConfChange({ type: f.change, node: f.node });
        this.membershipStats.confEntries++;
        this.log(`  ${leader.id} appended config entry ${index}: voters=${raft.status().voters.join(',')} learners=${raft.status().learners.join(',') || '-'}`);
        const target = this.nodes.get(f.node)!;
        if (f.change === 'add-learner' && !target.joined) {
          target.joined = true;
          this.start(f.node);
        }
      }
    } catch (err) {
      if (!(err instanceof NotLeaderError || err instanceof UnavailableError || err instanceof ValidationError)) throw err;
      this.log(`  refused by ${leader.id}: ${err.message}`);
    }
    this.drive(leader);
    if (leader.raft) this.safety.checkNode(this.view(leader));
  }

  // ---- The driver (persist, send, apply, advance) ------------------------------------------

  private start(id: NodeId): void {
    const n = this.nodes.get(id)!;
    const restart = n.raft === null && (n.restarts > 0 || n.durable.hardState.term > 0 || n.durable.entries.length > 0 || n.durable.snapshot !== undefined);
    const snap = restart ? n.durable.snapshot : undefined;
    n.raft = new Raft({
      id,
      voters: this.voters,
      // A spare boots as a learner of the initial configuration; the leader's log tells it the real one.
      learners: n.spare ? [...this.learners, id] : this.learners,
      electionTicks: this.o.electionTicks,
      heartbeatTicks: this.o.heartbeatTicks,
      preVote: this.o.preVote,
      checkQuorum: this.o.checkQuorum,
      readOnly: this.o.readOnly,
      rng: createRng(`${this.seed}/${id}/${n.restarts}`),
      snapshotCatchUpEntries: this.o.snapshotCatchUpEntries,
      ...(restart ? { storage: { hardState: { ...n.durable.hardState }, entries: [...n.durable.entries], ...(snap ? { snapshot: snap } : {}) } } : {}),
    });
    // The application restores its state from the durable snapshot; Raft re-applies what follows.
    n.sm = new KvStateMachine();
    if (snap) n.sm.restore(snap.data);
    n.applied = snap?.index ?? 0;
    n.snapshotIndex = snap?.index ?? 0;
    this.safety.onRestart(id, snap);
    this.drive(n);
  }

  /** The application snapshots its state at its applied index and compacts (durable at once, like an atomic file rename). */
  private compactNode(n: SimNode): void {
    // Let the checker see the entries about to be compacted away (they may have been committed in this very step).
    this.safety.checkNode(this.view(n));
    const snap = n.raft!.compact(n.applied, n.sm.serialize());
    if (!snap) return;
    n.snapshotIndex = snap.index;
    n.durable.snapshot = snap;
    n.durable.entries = n.durable.entries.filter((e) => e.index > snap.index);
    this.safety.onSnapshot(n.id, snap, 'made');
    this.snapshotStats.made++;
    if (this.o.fullTrace) this.log(`${n.id} compacted at ${snap.index} (term ${snap.term})`);
  }

  private crash(id: NodeId, torn: number): void {
    const n = this.nodes.get(id)!;
    n.raft = null;
    const w = n.inflight;
    if (w) {
      // Written but not fsynced: lost, except a torn prefix of its records (more than was
      // acknowledged is harmless), in write order: snapshot, entries, hardState.
      const s = w.snapshot ? 1 : 0;
      const records = s + w.entries.length + (w.hardState ? 1 : 0);
      const keep = Math.min(records, Math.floor(torn * (records + 1)));
      if (keep > 0) this.log(`torn write on ${id}: ${keep} of ${records} records survive`);
      if (w.snapshot && keep >= 1) this.persistSnapshot(n, w.snapshot);
      for (const e of w.entries.slice(0, Math.max(0, keep - s))) this.persistEntry(n, e);
      if (w.hardState && keep === records) n.durable.hardState = { ...w.hardState };
    }
    n.inflight = null;
    // The restarted node will not remember its clients: it can no longer answer them.
    for (const list of this.proposals.values()) for (const p of list) if (p.node === id) p.node = '';
    n.reads.clear();
    n.readWaiting = [];
    n.restarts++;
  }

  /** Runs the node's Ready loop until it waits for an fsync or has nothing to do. */
  private drive(n: SimNode): void {
    const raft = n.raft;
    if (!raft) return;
    while (!n.inflight && raft.hasReady()) {
      const rd = raft.ready();
      const askedAt = this.transfers.get(n.id);
      if (rd.softState?.role === 'leader' && askedAt !== undefined) {
        this.transfers.delete(n.id);
        if (this.now - askedAt <= 2 * this.o.electionTicks) {
          this.membershipStats.transfersDone++;
          this.log(`transfer to ${n.id} done: leader of term ${raft.status().term}`);
        }
      }
      for (const m of rd.messages) this.net.send(m, this.now);
      if (rd.snapshot) this.installSnapshot(n, rd.snapshot);
      for (const e of rd.committedEntries) this.apply(n, e);
      for (const rs of rd.readStates) this.onReadState(n, rs);
      this.serveReads(n);
      const every = this.o.snapshotEvery;
      if (every > 0 && n.applied - n.snapshotIndex >= every) this.compactNode(n);
      if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
        const delay = this.diskRng.int(0, this.o.maxFsyncDelay + 1);
        n.inflight = { ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}), entries: rd.entries, doneAt: this.now + delay };
        if (delay === 0) this.fsync(n);
      } else {
        raft.advance();
      }
    }
  }

  /** The in-flight write becomes durable; acknowledges it to Raft. */
  private fsync(n: SimNode): void {
    const w = n.inflight!;
    n.inflight = null;
    if (w.snapshot) this.persistSnapshot(n, w.snapshot);
    if (w.hardState) n.durable.hardState = { ...w.hardState };
    for (const e of w.entries) this.persistEntry(n, e);
    n.raft!.advance();
  }

  /** A received snapshot replaces the stored snapshot and the whole stored log (Ready.snapshot contract). */
  private persistSnapshot(n: SimNode, snap: Snapshot): void {
    n.durable.snapshot = snap;
    n.durable.entries = [];
  }

  /** An entry with index i replaces any stored entries >= i (Ready.entries contract). */
  private persistEntry(n: SimNode, e: Entry): void {
    const first = n.durable.entries[0]?.index ?? e.index;
    if (e.index < first || e.index > first + n.durable.entries.length) throw new Error(`${n.id}: entry ${e.index} does not continue the stored log ${first}..${first + n.durable.entries.length - 1}`);
    n.durable.entries.length = e.index - first;
    n.durable.entries.push(e);
  }

  /** Ready.snapshot: the state machine jumps to the leader's snapshot. */
  private installSnapshot(n: SimNode, snap: Snapshot): void {
    this.safety.onSnapshot(n.id, snap, 'installed');
    this.snapshotStats.installed++;
    n.sm.restore(snap.data);
    n.applied = snap.index;
    n.snapshotIndex = snap.index;
    if (this.o.fullTrace) this.log(`${n.id} installed snapshot ${snap.index} (term ${snap.term})`);
  }

  private apply(n: SimNode, e: Entry): void {
    this.safety.onApply(n.id, e);
    n.applied = e.index;
    let output: KvOutput | undefined;
    if (e.type === 'normal' && e.data.length > 0) {
      const result = n.sm.apply(e.index, decodeCommand(e.data));
      if (result.op === 'put') output = {};
      else if (result.op === 'txn') output = { succeeded: result.response.succeeded };
    }
    if (!this.decided.has(e.index)) this.decided.set(e.index, { term: e.term, output });
    const list = this.proposals.get(e.index);
    if (!list) return;
    const keep = list.filter((p) => {
      if (p.node === n.id && !p.op.done) {
        p.op.live--;
        // The proposing node answers its client.
        if (p.term === e.term) this.complete(p.op, output ?? {});
        // Another entry was committed at this index: ours never can be (log matching). Retry it.
        else this.resubmit(p.op);
        return false;
      }
      if (p.op.timedOut) {
        p.op.live--;
        this.resolveLate(p.op, p.term === e.term, output);
        return false;
      }
      return !p.op.done;
    });
    if (keep.length > 0) this.proposals.set(e.index, keep);
    else this.proposals.delete(e.index);
  }

  /**
   * Narrows an operation whose client timed out, from the log: if its entry (index, term) was
   * applied, it took effect before now (its interval becomes [call, now], which contains the
   * commit); if another entry took its index, it never took effect and leaves the history.
   */
  private resolveLate(op: ClientOp, committed: boolean, output: KvOutput | undefined): void {
    if (op.ret !== undefined || op.dropped || !this.o.resolveUnknown) return;
    if (committed) {
      op.output = output ?? {};
      op.ret = ++this.seq;
      op.returnTick = this.now;
      op.learned = 'log';
      this.log(`op #${op.id} (timed out) is known committed: ${JSON.stringify(op.output)}`, true);
    } else if (op.live === 0) {
      op.dropped = true;
      this.log(`op #${op.id} (timed out) is known lost`, true);
    }
  }

  private onReadState(n: SimNode, rs: ReadState): void {
    const key = new TextDecoder().decode(rs.context);
    const op = n.reads.get(key);
    if (!op) return;
    n.reads.delete(key);
    n.readWaiting.push({ index: rs.index, op });
  }

  /** Serves ReadIndex reads whose index has been applied (thesis §6.4 step 4). */
  private serveReads(n: SimNode): void {
    if (n.readWaiting.length === 0) return;
    n.readWaiting = n.readWaiting.filter(({ index, op }) => {
      if (n.applied < index) return true;
      if (!op.done) this.complete(op, { value: n.sm.range(op.input.key).kvs[0]?.value ?? null });
      return false;
    });
  }

  // ---- Clients ----------------------------------------------------------------------------

  private runClients(): void {
    for (let c = 0; c < this.clients.length; c++) {
      let op = this.clients[c] ?? null;
      if (op && op.done) {
        this.clients[c] = op = null;
      } else if (op && this.now >= op.deadline) {
        const unknown = op.submitted || op.live > 0;
        this.log(`client ${c} op ${op.id} timed out (${unknown ? 'unknown' : 'never submitted'})`, true);
        if (unknown) {
          op.done = true;
          op.timedOut = true;
          for (const [index, list] of this.proposals) {
            const mine = list.find((p) => p.op === op);
            const d = mine && this.decided.get(index);
            if (!d) continue;
            list.splice(list.indexOf(mine), 1);
            op.live--;
            this.resolveLate(op, d.term === mine.term, d.output);
          }
        } else {
          op.dropped = true;
        }
        this.clients[c] = op = null;
      }
      if (op) {
        if (!op.submitted) this.submit(op);
        continue;
      }
      if (this.phase !== 'workload' || this.clientRng.next() >= this.o.issueRate) continue;
      const key = this.keys[this.clientRng.int(0, this.keys.length)]!;
      const r = this.clientRng.next();
      const value = `c${c}.${this.opIds + 1}`;
      const input: KvInput =
        r < 0.4 ? { kind: 'put', key, value } : r < 0.75 ? { kind: 'get', key } : { kind: 'cas', key, expect: this.clientRng.next() < 0.8 ? (this.seen.get(key) ?? null) : null, value };
      const all = [...this.nodes.keys()];
      op = { id: ++this.opIds, client: c, input, call: ++this.seq, invokeTick: this.now, deadline: this.now + this.o.opTimeout, target: all[this.clientRng.int(0, all.length)]!, submitted: false, done: false, timedOut: false, live: 0, dropped: false };
      this.history.push(op);
      this.clients[c] = op;
      this.log(`client ${c} invoke #${op.id} ${JSON.stringify(input)}`, true);
      this.submit(op);
    }
  }

  /** Hands `op` to its target if it is the leader; otherwise redirects to the leader hint (or another node) for the next tick. */
  private submit(op: ClientOp): void {
    const n = this.nodes.get(op.target)!;
    const raft = n.raft;
    const redirect = (hint: NodeId | null): void => {
      const all = [...this.nodes.keys()];
      op.target = hint && hint !== op.target ? hint : all[this.clientRng.int(0, all.length)]!;
    };
    if (!raft) return redirect(null);
    this.steps++;
    try {
      if (op.input.kind === 'get') {
        const ctx = `r${op.id}`;
        if (raft.hasLease()) this.leaseReads++;
        raft.readIndex(enc.encode(ctx));
        n.reads.set(ctx, op);
      } else {
        const cmd: KvCommand =
          op.input.kind === 'put'
            ? { op: 'put', key: op.input.key, value: op.input.value }
            : {
                op: 'txn',
                request: {
                  compare: [op.input.expect === null ? { key: op.input.key, target: 'version', result: '=', value: 0 } : { key: op.input.key, target: 'value', result: '=', value: op.input.expect }],
                  success: [{ type: 'put', key: op.input.key, value: op.input.value }],
                  failure: [{ type: 'range', key: op.input.key }],
                },
              };
        const index = raft.propose(encodeCommand(cmd));
        const list = this.proposals.get(index) ?? [];
        list.push({ op, term: raft.status().term, node: n.id });
        op.live++;
        this.proposals.set(index, list);
      }
      op.submitted = true;
    } catch (err) {
      // A leadership transfer in progress (thesis §3.10): try the same node again next tick.
      if (err instanceof UnavailableError) return;
      if (!(err instanceof NotLeaderError)) throw err;
      return redirect((err.detail?.leaderId as NodeId | undefined) ?? raft.status().leaderId);
    }
    this.drive(n);
    this.safety.checkNode(this.view(n));
  }

  /** The proposal certainly failed (overwritten); submit it again as the same operation. */
  private resubmit(op: ClientOp): void {
    op.submitted = false;
    this.log(`client ${op.client} op ${op.id} overwritten; retrying`, true);
  }

  private complete(op: ClientOp, output: KvOutput): void {
    op.done = true;
    op.output = output;
    op.ret = ++this.seq;
    op.returnTick = this.now;
    op.learned = 'client';
    if (op.input.kind === 'get') this.seen.set(op.input.key, output.value ?? null);
    else if (op.input.kind === 'put' || output.succeeded) this.seen.set(op.input.key, op.input.value);
    this.log(`client ${op.client} return #${op.id} ${JSON.stringify(output)}`, true);
  }

  // ---- Faults, liveness, history ------------------------------------------------------------

  private randomFault(): Fault {
    const rng = this.faultRng;
    const all = [...this.nodes.keys()];
    const pick = (): NodeId => all[rng.int(0, all.length)]!;
    if (rng.next() < this.o.membershipRate) return this.randomMembershipFault();
    const r = rng.next();
    if (r < 0.18) {
      const a = all.filter(() => rng.next() < 0.5);
      return { kind: 'partition', a, b: all.filter((x) => !a.includes(x)) };
    }
    if (r < 0.32) {
      const from = pick();
      const to = pick();
      return from === to ? { kind: 'heal' } : { kind: 'cut', from, to };
    }
    if (r < 0.42) return { kind: 'isolate', node: pick() };
    if (r < 0.62) return { kind: 'heal' };
    if (r < 0.85) {
      // 40% of crashes hit the current leader (failover while clients write).
      const up = all.filter((x) => this.nodes.get(x)!.raft);
      const leaders = up.filter((x) => this.nodes.get(x)!.raft!.status().role === 'leader');
      // The others prefer a node with a write in flight (the moment a crash can lose state).
      const unsynced = up.filter((x) => this.nodes.get(x)!.inflight);
      const c = rng.next();
      const pool = leaders.length > 0 && c < 0.4 ? leaders : unsynced.length > 0 && c < 0.8 ? unsynced : up;
      if (pool.length === 0) return { kind: 'heal' };
      const torn = rng.next() < 0.5 ? rng.next() : 0;
      return { kind: 'crash', node: pool[rng.int(0, pool.length)]!, restartAt: this.now + (rng.next() < 0.5 ? rng.int(1, 10) : rng.int(10, 60)), torn };
    }
    return {
      kind: 'link',
      quality: { loss: rng.next() < 0.3 ? 0 : rng.next() * 0.3, duplicate: rng.next() * 0.1, minDelay: 1, maxDelay: rng.int(1, 8) },
    };
  }

  /** A change that the leader's configuration makes plausible (the leader may still refuse it). */
  private randomMembershipFault(): Fault {
    const rng = this.faultRng;
    const leader = this.currentLeader();
    if (!leader) return { kind: 'heal' };
    const conf = leader.raft!.confState();
    const members = [...conf.voters, ...conf.learners];
    const outside = [...this.nodes.keys()].filter((x) => !members.includes(x));
    const otherVoters = conf.voters.filter((x) => x !== leader.id);
    const options: Fault[] = [];
    for (const x of outside) options.push({ kind: 'membership', change: 'add-learner', node: x });
    for (const x of conf.learners) options.push({ kind: 'membership', change: 'promote', node: x }, { kind: 'membership', change: 'remove', node: x });
    if (conf.voters.length > 2) for (const x of conf.voters) options.push({ kind: 'membership', change: 'remove', node: x });
    for (const x of otherVoters) options.push({ kind: 'transfer', to: x });
    if (options.length === 0) return { kind: 'heal' };
    const f = options[rng.int(0, options.length)]!;
    return f.kind === 'transfer' && rng.next() < 0.5 ? { ...f, deafen: true } : f;
  }

  private healAll(): void {
    // A deafening transfer still waiting for its TimeoutNow must not cut links after the final heal
    // (the liveness bound assumes a healed network from here on).
    this.deafenOnTimeoutNow = null;
    this.inject({ kind: 'heal' });
    this.inject({ kind: 'link', quality: PERFECT_LINK });
    for (const n of this.nodes.values()) if (!n.raft && n.joined) this.inject({ kind: 'restart', node: n.id });
  }

  /** Liveness (thesis §3.4 under a healed network): a leader is elected and a fresh proposal commits within the bound. */
  private checkLiveness(): void {
    const start = this.now;
    let probe: { node: SimNode; index: number; term: number } | null = null;
    while (this.now - start < this.o.livenessTicks) {
      if (probe) {
        const log = inspectLog(probe.node.raft!);
        const st = probe.node.raft!.status();
        // A leader never overwrites its own entries: while it leads the probe's term, a compacted probe entry is still its own.
        const term = log.term(probe.index) ?? (probe.index < log.firstIndex() && st.role === 'leader' && st.term === probe.term ? probe.term : undefined);
        if (st.commitIndex >= probe.index && term === probe.term) {
          this.log(`liveness ok: ${probe.node.id} committed index ${probe.index} term ${probe.term} after ${this.now - start} ticks`);
          return;
        }
        if (probe.node.raft!.status().role !== 'leader') probe = null;
      }
      if (!probe) {
        const leader = [...this.nodes.values()].filter((n) => n.raft?.status().role === 'leader').sort((a, b) => b.raft!.status().term - a.raft!.status().term)[0];
        if (leader && !leader.raft!.transferee()) {
          const index = leader.raft!.propose(encodeCommand({ op: 'noop' }));
          probe = { node: leader, index, term: leader.raft!.status().term };
          this.drive(leader);
        }
      }
      this.tick();
    }
    const roles = [...this.nodes.values()]
      .filter((n) => n.raft)
      .map((n) => `${n.id}:${n.raft!.status().role}@${n.raft!.status().term}${n.raft!.status().voters.includes(n.id) ? '' : '(non-voter)'}`)
      .join(' ');
    throw new LivenessViolation(`no leader committed a proposal within ${this.o.livenessTicks} ticks after healing (${roles})`);
  }

  private checkHistory(): void {
    const h = this.kvHistory();
    const r = checkLinearizable(kvModel, h, 1_000_000);
    if (r.result === 'ok') return;
    const ops = r.partition.map((op) => `${op.client}:${JSON.stringify(op.input)}→${op.output === undefined ? '?' : JSON.stringify(op.output)}@[${op.call},${op.ret}]`);
    const shown = ops.length > 40 ? `${ops.slice(0, 40).join(' ')} … ${ops.length - 40} more (see --trace)` : ops.join(' ');
    throw new LinearizabilityViolation(r.result, `history of key ${r.partition[0]?.input.key} (${ops.length} ops) is ${r.result === 'illegal' ? 'not linearizable' : 'too hard to check'}: ${shown}`);
  }

  private log(line: string, detail = false): void {
    if (detail && !this.o.fullTrace) return;
    this.trace.push(`t=${this.now} ${line}`);
  }

  /** Counts for the summary. */
  stats(): { ops: number; unknown: number; membership: SimResult['membership']; snapshots: SimResult['snapshots']; leaseReads: number } {
    const h = this.history.filter((op) => !op.dropped);
    return { ops: h.length, unknown: h.filter((op) => op.ret === undefined).length, membership: { ...this.membershipStats }, snapshots: { ...this.snapshotStats }, leaseReads: this.leaseReads };
  }
}

/** Human-readable form of a fault (one trace line). */
export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'partition':
      return `partition ${f.a.join(',')} | ${f.b.join(',')}`;
    case 'cut':
      return `cut ${f.from} -> ${f.to}`;
    case 'isolate':
      return `isolate ${f.node}`;
    case 'heal':
      return 'heal';
    case 'crash':
      return `crash ${f.node} (restart at t=${f.restartAt}${f.torn ? `, torn=${f.torn.toFixed(3)}` : ''})`;
    case 'restart':
      return `restart ${f.node}`;
    case 'link':
      return `link loss=${f.quality.loss.toFixed(2)} dup=${f.quality.duplicate.toFixed(2)} delay=${f.quality.minDelay}..${f.quality.maxDelay}`;
    case 'membership':
      return `membership ${f.change} ${f.node}`;
    case 'transfer':
      return `transfer leadership to ${f.to}${f.deafen ? ', then cut every link into the old leader' : ''}`;
    case 'snapshot':
      return `snapshot ${f.node}`;
  }
}

function describeMessage(m: Message): string {
  return `${m.from}>${m.to} ${m.type} t${m.term} i${m.index} lt${m.logTerm} n${m.entries.length} c${m.commit}${m.reject ? ' reject' : ''}`;
}

/** Runs one seed; never throws for a violation (it is reported in the result). */
export function runSimulation(options: SimOptions): SimResult {
  let sim: Simulation | null = null;
  let failure: SimResult['failure'];
  try {
    sim = new Simulation(options);
    sim.run();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    failure = { name: e.name, message: `seed ${options.seed}: ${e.message}`, tick: sim?.now ?? 0, step: sim?.steps ?? 0 };
  }
  const stats = sim?.stats() ?? { ops: 0, unknown: 0, membership: { confEntries: 0, transfersAsked: 0, transfersDone: 0 }, snapshots: { made: 0, installed: 0 }, leaseReads: 0 };
  return {
    seed: options.seed,
    ok: failure === undefined,
    ...(failure ? { failure } : {}),
    ticks: sim?.now ?? 0,
    steps: sim?.steps ?? 0,
    ops: stats.ops,
    unknown: stats.unknown,
    membership: stats.membership,
    snapshots: stats.snapshots,
    leaseReads: stats.leaseReads,
    trace: sim?.trace ?? [],
    history: sim?.kvHistory() ?? [],
  };
}

/**
 * The configuration the seed sweep uses for `seed` (unless overridden): voters cycle 3/5/7,
 * learners 0/1/2, and a seeded draw of Raft timing, pre-vote and check-quorum (each on 3 times
 * in 4), fsync latency, and lease-based reads on half of the check-quorum seeds (those run more
 * transfers and more clients on one key). Timing respects Raft's timing requirement (paper §5.6: broadcast time,
 * here heartbeat + fsync, well below the election timeout): election 8–20 ticks, heartbeat and
 * fsync at most a quarter of it. Without that, liveness is not expected: e.g. with pre-vote off
 * and fsync >= election timeout, a node with a stale log bumps its term faster than any
 * election completes (found by this simulator; pre-vote prevents it).
 */
export function sweepOptions(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const rng = createRng(`${seed}/config`);
  const electionTicks = rng.int(8, 21);
  const quarter = Math.floor(electionTicks / 4);
  const draws = {
    seed,
    voters: [3, 5, 7][seed % 3]!,
    learners: Math.floor(seed / 3) % 3,
    electionTicks,
    heartbeatTicks: rng.int(1, quarter + 1),
    preVote: rng.next() < 0.75,
    checkQuorum: rng.next() < 0.75,
    maxFsyncDelay: rng.int(0, quarter + 1),
    snapshotEvery: rng.next() < 0.2 ? 0 : rng.int(3, 40),
    snapshotCatchUpEntries: rng.next() < 0.5 ? 0 : rng.int(1, 10),
  };
  // Drawn last so the draws above (and the seeds' configurations before lease reads existed) stay the same.
  const lease = rng.next() < 0.5;
  const o: SimOptions = { ...draws, ...overrides };
  const readOnly = overrides.readOnly ?? (lease && o.checkQuorum !== false ? 'lease-based' : 'safe');
  if (readOnly === 'safe') return { ...o, readOnly };
  // Lease seeds stress what a lease must survive: more transfers (half of them deafen the old
  // leader), and more clients on one key, so that reads at a stale leader meet completed writes.
  return { ...o, membershipRate: 0.5, clients: 5, keys: 1, ...overrides, readOnly };
}
