/**
 * One ClusterDesk node: wires the peer server, the embedded Raft store, locks, folder sync,
 * routed compute, jobs and the ControlApi together. Runs in plain Node (`clusterdesk node`) and
 * inside Electron's main process alike; it imports nothing from Electron.
 *
 * Membership (thesis §4.1): nodes can be added at runtime (`memberAdd` with the new node's peer
 * address, then `clusterdesk node --join` on it), promoted, removed; leadership can be moved
 * (`leaderTransfer`, §3.10). The Raft configuration and each added node's address live in the
 * Raft log (WAL), so a restarted node reconnects to runtime-added peers by itself.
 *
 * On-disk layout under `dataDir` (one node): `folder/` (the synchronized folder, unless
 * `folder` is given), `state/` (Raft WAL, object store, sync state), `node.log`.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { LockConflictError, UnavailableError, ValidationError, isRetryable, toWire } from '../common/errors';
import type { Logger } from '../common/logger';
import { addressOf, type Topology } from '../config/schema';
import type { ActivityEntry, ClusterStatus, ControlEvent, ControlMethod, FileEntry, JobInfo, MembershipChangeResult, NodeStatus, ParamsOf, ResultOf, RaftRoleView } from '../control/api';
import type { ConfState } from '../raft/confchange';
import { parseCall } from '../control/schema';
import { defaultTasks } from '../compute/tasks';
import { EmbeddedKv } from '../kv/embedded-kv';
import { JobDispatcher, JobStore } from '../jobs/jobs';
import { LOCK_PREFIX, LockManager, parseLock } from '../locks/lock-manager';
import { FILES_PREFIX, parseIndexRecord } from '../sync/index-record';
import { SyncEngine } from '../sync/engine';
import { validatePath } from '../sync/paths';
import type { Watcher } from '../kv/types';
import { ComputeService } from './compute-service';
import { addKvService } from './kv-service';
import { GrpcBlobFetcher, GrpcRaftTransport, PeerClients, startPeerServer, type PeerDirectory } from './peer';

export interface NodeOptions {
  topology: Topology;
  /** This node's id in the topology. */
  id: string;
  /** Per-node data directory (created if missing). */
  dataDir: string;
  /** Synchronized folder; default `<dataDir>/folder`. */
  folder?: string;
  logger: Logger;
  /** Raft tick in milliseconds (default 50; election timeout 10–20 ticks). */
  tickMs?: number;
  /** Compact the Raft log every this many applied entries (default: EmbeddedKv's, 10,000). */
  snapshotEntries?: number;
  /** Entries kept in memory below a snapshot for lagging followers (default: EmbeddedKv's, 1,000). */
  snapshotCatchUpEntries?: number;
  /** How the Raft leader confirms linearizable reads (`RaftConfig.readOnly`); default: the config's `raft.readOnly`. */
  readOnly?: 'safe' | 'lease-based';
  /** Status poll period in milliseconds (default 1000). */
  pollMs?: number;
  /**
   * This node joins a running cluster (it was, or will be, added with `memberAdd`): it boots as a
   * Raft learner and never campaigns until the leader's log gives it the real configuration.
   */
  join?: boolean;
}

/** What a console transport needs from a node. */
export interface ControlHandler {
  call<M extends ControlMethod>(method: M, params: unknown): Promise<ResultOf<M>>;
  onEvent(listener: (event: ControlEvent) => void): () => void;
}

/** A peer is shown down after this long without answering a status poll. */
const DOWN_AFTER_MS = 2500;
/** Console calls that change the folder, locks or jobs: refused once this node was removed from the cluster. */
const REFUSED_WHEN_REMOVED: ReadonlySet<ControlMethod> = new Set(['lock', 'unlock', 'upload', 'deleteFile', 'renameFile', 'submit', 'restoreVersion', 'resolveConflict']);

interface PeerView {
  up: boolean;
  lastSeen: number;
  metrics: Record<string, unknown> | null;
  versions: Record<string, number>;
}

export class ClusterNode implements ControlHandler {
  readonly id: string;
  readonly topology: Topology;
  readonly folder: string;
  readonly dataDir: string;
  readonly kv: EmbeddedKv;
  readonly sync: SyncEngine;
  readonly locks: LockManager;
  readonly jobs: JobStore;
  readonly compute: ComputeService;
  private readonly log: Logger;
  private readonly dir: PeerDirectory;
  private readonly clients: PeerClients;
  private readonly transport: GrpcRaftTransport;
  private readonly dispatcher: JobDispatcher;
  private server: grpc.Server | null = null;
  private readonly listeners = new Set<(e: ControlEvent) => void>();
  private readonly peers = new Map<string, PeerView>();
  private readonly activityLog: ActivityEntry[] = [];
  private readonly watchers: Watcher[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private filesTimer: NodeJS.Timeout | null = null;
  /** How long the last pushed file listing took to build (ms); spaces the next one. */
  private filesEventCostMs = 0;
  private lastLeader: string | null = null;
  private lastStatus: ClusterStatus | null = null;
  private stopped = false;
  /** This node was in the configuration in effect here at some point (so leaving it is a removal, not a join in progress). */
  private wasMember = false;
  /** Set once the leader's committed configuration no longer lists this node (terminal). */
  private removed: { leader: string; at: number } | null = null;
  private pollCount = 0;
  /** When replica versions were last fetched (ms since the epoch). */
  private versionsAt = 0;

  constructor(private readonly options: NodeOptions) {
    const { topology, id } = options;
    if (!topology.byId.has(id)) throw new ValidationError(`node "${id}" is not in cluster "${topology.config.name}" (nodes: ${[...topology.byId.keys()].join(', ')})`);
    this.id = id;
    this.topology = topology;
    this.dataDir = resolve(options.dataDir);
    this.folder = resolve(options.folder ?? join(this.dataDir, 'folder'));
    const stateDir = join(this.dataDir, 'state');
    mkdirSync(this.folder, { recursive: true });
    mkdirSync(stateDir, { recursive: true });
    this.log = options.logger;
    const dir: PeerDirectory = (this.dir = {
      cluster: topology.config.name,
      self: id,
      addresses: new Map([...topology.byId.keys()].map((n) => {
        const a = addressOf(topology, n);
        return [n, `${a.host}:${a.port}`];
      })),
    });
    this.clients = new PeerClients(dir);
    this.transport = new GrpcRaftTransport(dir, this.clients, this.log.child({ mod: 'transport' }));
    this.kv = new EmbeddedKv({
      id,
      voters: topology.voters,
      learners: topology.learners,
      dataDir: join(stateDir, 'raft'),
      transport: this.transport,
      clusterId: topology.config.name,
      preferred: topology.preferredLeader === id,
      tickMs: options.tickMs ?? 50,
      ...(options.snapshotEntries ? { snapshotEntries: options.snapshotEntries } : {}),
      ...(options.snapshotCatchUpEntries !== undefined ? { snapshotCatchUpEntries: options.snapshotCatchUpEntries } : {}),
      readOnly: options.readOnly ?? topology.config.raft?.readOnly ?? 'safe',
      seed: `${topology.config.name}/${id}/${process.pid}`,
      logger: this.log.child({ mod: 'raft' }),
      join: options.join ?? false,
    });
    this.kv.onConfState((c) => this.onConfState(c));
    this.locks = new LockManager(this.kv);
    this.jobs = new JobStore(this.kv, id);
    const host = topology.byId.get(id)?.host ?? '';
    this.sync = new SyncEngine({
      nodeId: id,
      host,
      folder: this.folder,
      dataDir: join(stateDir, 'sync'),
      kv: this.kv,
      fetcher: new GrpcBlobFetcher(this.clients, id, this.log.child({ mod: 'fetch' })),
      // Block sources after the record's author: every other node believed up (a node lacking a block says so).
      peers: () => [...this.topology.byId.keys()].filter((n) => n !== id && this.isUp(n)),
      logger: this.log, // the engine adds { mod: 'sync' }
      onActivity: (e: ActivityEntry) => this.activity(e),
      versioning: topology.config.sync.versioning,
    });
    this.compute = new ComputeService(id, topology, this.clients, defaultTasks(), () => this.kv.status().leaderId, (n) => this.isUp(n), this.log.child({ mod: 'compute' }));
    this.dispatcher = new JobDispatcher(
      this.kv,
      async (job) => {
        const r = await this.compute.request(job.op, job.values, job.team);
        return { result: r.result, route: r.route };
      },
      Date.now,
      this.log.child({ mod: 'jobs' }),
    );
  }

  /** Starts every part; resolves when the peer server listens and sync has started. */
  async start(): Promise<void> {
    const a = addressOf(this.topology, this.id);
    this.server = await startPeerServer({
      host: a.host,
      port: a.port,
      dir: this.dir,
      handlers: {
        raft: (msgs) => this.transport.deliver(msgs),
        kvForward: (from, payload) => this.transport.handleForward(from, payload),
        forward: (req) => this.compute.handleForward(req),
        metrics: () => this.metrics(),
        localFiles: () => Object.fromEntries(Object.entries(this.sync.localVersions()).map(([k, v]) => [k, v ?? 0])),
        openObject: (sha) => (this.sync.objects.has(sha) ? this.sync.objects.createReadStream(sha) : null),
        readBlock: (hash, headroom) => this.sync.readBlock(hash, headroom),
        releaseBlock: (data) => this.sync.releaseBlock(data),
        keptVersionFile: (path, sha256) => this.sync.keptVersionFile(path, sha256),
      },
      logger: this.log.child({ mod: 'peer' }),
      extraServices: (server) => addKvService(server, this.kv, { member: this.id, status: () => this.kv.status(), logger: this.log }),
    }).catch((err: Error) => {
      throw new UnavailableError(`node ${this.id}: ${err.message}`, { cause: err });
    });
    await this.kv.start();
    this.kv.onStatus(() => this.onRaftStatus());
    for (const n of this.topology.byId.keys()) if (n !== this.id) this.peers.set(n, { up: true, lastSeen: 0, metrics: null, versions: {} });
    this.onConfState(this.kv.confState());
    // Sync's first scan reconciles with the index, which needs a leader; a node must come up
    // (and serve its console) without one, so sync starts in the background and retries.
    void this.startSync();
    this.sync.onChange(() => this.scheduleFiles());
    this.watchers.push(this.kv.watch(LOCK_PREFIX, () => this.scheduleFiles()));
    this.watchers.push(this.kv.watch(FILES_PREFIX, () => this.scheduleFiles()));
    this.watchers.push(this.jobs.watch((job) => this.onJob(job)));
    this.pollTimer = setInterval(() => void this.poll(), this.options.pollMs ?? 1000);
    void this.poll();
    this.log.info({ folder: this.folder, address: `${a.host}:${a.port}` }, 'node started');
  }

  private async startSync(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.sync.start();
        return;
      } catch (err) {
        if (!isRetryable(err)) {
          this.log.error({ err: toWire(err) }, 'folder sync could not start');
          this.activity({ at: Date.now(), level: 'error', node: this.id, kind: 'error', message: `folder sync could not start: ${(err as Error).message}` });
          return;
        }
        if (attempt === 1) this.activity({ at: Date.now(), level: 'warn', node: this.id, kind: 'file', message: 'folder sync is waiting for a Raft quorum' });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.filesTimer) clearTimeout(this.filesTimer);
    this.dispatcher.stop();
    for (const w of this.watchers) w.cancel();
    await this.sync.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'sync stop failed'));
    await this.kv.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'raft stop failed'));
    this.server?.forceShutdown();
    this.clients.close();
    this.log.info('node stopped');
  }

  // ---- ControlApi ----

  onEvent(listener: (event: ControlEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Validates and runs a console command. @throws typed errors (ValidationError for bad input). */
  async call<M extends ControlMethod>(method: M, rawParams: unknown): Promise<ResultOf<M>> {
    const { params } = parseCall<M>(method, rawParams);
    return (await this.dispatch(method, params)) as ResultOf<M>;
  }

  private async dispatch(method: ControlMethod, params: unknown): Promise<unknown> {
    if (this.removed && REFUSED_WHEN_REMOVED.has(method)) {
      throw new UnavailableError(`${this.id} was removed from the cluster (leader ${this.removed.leader} said so at ${new Date(this.removed.at).toISOString()}); its folder is no longer synced, so ${method} is refused here. Use another node's console.`, { detail: { removed: this.removed } });
    }
    const who = { node: this.id, host: this.topology.byId.get(this.id)?.host ?? '', user: process.env.USER ?? process.env.USERNAME ?? 'user' };
    switch (method) {
      case 'status':
        return this.lastStatus ?? (await this.poll());
      case 'listFiles':
        if (Date.now() - this.versionsAt > 2000) await this.refreshReplicaVersions();
        return this.listFiles();
      case 'lock': {
        const p = params as ParamsOf<'lock'>;
        const path = validatePath(p.path);
        const info = await this.locks.lock(path, p.mode ?? 'exclusive', { ...who, user: p.user ?? who.user }, Date.now());
        this.activity({ at: Date.now(), level: 'info', node: this.id, kind: 'lock', message: `${this.id} locked ${path} (${info.mode}, fencing token ${info.fencingToken})` });
        return info;
      }
      case 'unlock': {
        const p = params as ParamsOf<'unlock'>;
        const path = validatePath(p.path);
        const r = await this.locks.unlock(path, who, p.force ?? false);
        if (r.released) {
          const broke = p.force && r.previous && !r.previous.holders.includes(this.id);
          this.activity({ at: Date.now(), level: broke ? 'warn' : 'info', node: this.id, kind: 'lock', message: broke ? `${this.id} broke ${r.previous?.holders.join(', ')}'s lock on ${path}` : `${this.id} unlocked ${path}` });
        }
        return { path, released: r.released };
      }
      case 'upload': {
        const p = params as ParamsOf<'upload'>;
        const path = validatePath(p.path);
        await this.refuseIfLockedByOther(path);
        const bytes = Buffer.from(p.dataBase64, 'base64');
        return await this.sync.writeLocal(path, bytes);
      }
      case 'deleteFile': {
        const path = validatePath((params as ParamsOf<'deleteFile'>).path);
        await this.refuseIfLockedByOther(path);
        await this.sync.deleteLocal(path);
        return { path };
      }
      case 'renameFile': {
        const p = params as ParamsOf<'renameFile'>;
        const from = validatePath(p.from);
        const to = validatePath(p.to);
        await this.refuseIfLockedByOther(from);
        await this.refuseIfLockedByOther(to);
        await this.sync.renameLocal(from, to);
        return { from, to };
      }
      case 'request': {
        const p = params as ParamsOf<'request'>;
        return this.compute.request(p.op, p.values, p.team ?? null);
      }
      case 'submit': {
        const p = params as ParamsOf<'submit'>;
        const tasks = defaultTasks();
        tasks.get(p.op).validate(p.values);
        if (p.team && !this.topology.teams.some((t) => t.name === p.team)) throw new ValidationError(`unknown team "${p.team}"`);
        return this.jobs.submit(p.op, p.values, p.team ?? null, Date.now());
      }
      case 'listJobs':
        return this.jobs.list();
      case 'activity':
        return [...this.activityLog];
      case 'fileHistory':
        return this.sync.fileHistory(validatePath((params as ParamsOf<'fileHistory'>).path));
      case 'restoreVersion': {
        const p = params as ParamsOf<'restoreVersion'>;
        const path = validatePath(p.path);
        await this.refuseIfLockedByOther(path);
        return await this.sync.restoreVersion(path, p.versionId);
      }
      case 'listConflicts':
        return this.sync.listConflicts();
      case 'resolveConflict': {
        const p = params as ParamsOf<'resolveConflict'>;
        const path = validatePath(p.path);
        await this.refuseIfLockedByOther(path);
        return await this.sync.resolveConflict(path, p.keep);
      }
      case 'listProblems':
        return this.sync.listProblems();
      case 'memberAdd': {
        const p = params as ParamsOf<'memberAdd'>;
        return this.membershipChange(`add ${p.id} (${p.address}) as a learner`, () => this.kv.addLearner(p.id, p.address));
      }
      case 'memberPromote': {
        const p = params as ParamsOf<'memberPromote'>;
        return this.membershipChange(`promote ${p.id} to voter`, () => this.kv.promote(p.id));
      }
      case 'memberRemove': {
        const p = params as ParamsOf<'memberRemove'>;
        return this.membershipChange(`remove ${p.id}`, () => this.kv.removeMember(p.id));
      }
      case 'leaderTransfer': {
        const p = params as ParamsOf<'leaderTransfer'>;
        const from = this.kv.status().leaderId;
        const r = await this.kv.transferLeadership(p.id);
        this.activity({ at: Date.now(), level: 'info', node: this.id, kind: 'leader', message: `leadership transferred to ${r.leaderId}${from ? ` from ${from}` : ''}` });
        return r;
      }
    }
  }

  /** Runs a membership change and records it (or its refusal) in the activity log. */
  private async membershipChange(what: string, run: () => Promise<MembershipChangeResult>): Promise<MembershipChangeResult> {
    try {
      const r = await run();
      this.activity({ at: Date.now(), level: 'info', node: this.id, kind: 'node', message: `membership: ${what} (voters ${r.voters.join(', ')}; learners ${r.learners.join(', ') || 'none'})` });
      return { index: r.index, voters: r.voters, learners: r.learners };
    } catch (err) {
      this.log.warn({ err: toWire(err) }, `membership change refused: ${what}`);
      throw err;
    }
  }

  /**
   * The Raft configuration changed (or is first known): make every member with an address in the
   * configuration (nodes added at runtime) reachable and polled. Addresses are only added, never
   * dropped, so a removed node's messages are still authenticated (Raft ignores them itself).
   */
  private onConfState(c: ConfState): void {
    if (c.voters.includes(this.id) || c.learners.includes(this.id)) this.wasMember = true;
    for (const id of [...c.voters, ...c.learners]) {
      if (id === this.id) continue;
      const address = c.context[id];
      if (address && this.dir.addresses.get(id) !== address) {
        this.dir.addresses.set(id, address);
        this.log.info({ peer: id, address }, 'peer added by a membership change');
      }
      if (!this.peers.has(id) && this.dir.addresses.has(id)) this.peers.set(id, { up: false, lastSeen: 0, metrics: null, versions: {} });
    }
  }

  private async refuseIfLockedByOther(path: string): Promise<void> {
    const lock = await this.locks.get(path);
    if (lock && !lock.holders.includes(this.id)) {
      throw new LockConflictError(`"${path}" is locked by ${lock.holders.join(', ')} since ${new Date(lock.since).toISOString()}`, { detail: { lock } });
    }
  }

  private async listFiles(): Promise<FileEntry[]> {
    const [files, locks] = await Promise.all([this.kv.range(FILES_PREFIX, { prefix: true, serializable: true }), this.kv.range(LOCK_PREFIX, { prefix: true, serializable: true })]);
    const lockByPath = new Map(locks.kvs.map((kv) => parseLock(kv)).filter((l) => !!l).map((l) => [l!.path, l!]));
    const mine = this.sync.localVersions();
    const out: FileEntry[] = [];
    for (const kv of files.kvs) {
      const rec = parseIndexRecord(kv);
      if (!rec || rec.deleted) continue;
      const replicas: Record<string, number | null> = { [this.id]: mine[rec.path] ?? null };
      for (const [n, view] of this.peers) replicas[n] = view.up ? (view.versions[rec.path] ?? null) : null;
      const lock = lockByPath.get(rec.path) ?? null;
      if (!rec.blocks) out.push({ ...rec, lock, replicas });
      else {
        const { blocks: _blocks, ...entry } = rec; // a file's block list is for peers, not the console
        out.push({ ...entry, lock, replicas });
      }
    }
    // Code-unit order (as the console sorts): localeCompare costs seconds on 100,000 paths.
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  // ---- status and events ----

  private isUp(id: string): boolean {
    return id === this.id || (this.peers.get(id)?.up ?? false);
  }

  private metrics(): Record<string, unknown> {
    const s = this.kv.status();
    return {
      id: this.id,
      raftState: s.role,
      term: s.term,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
      leaderId: s.leaderId ?? '',
      queueDepth: this.compute.queue.depth,
      inFlight: this.compute.running,
      requestsPerSec: this.compute.queue.rate(),
      syncBacklog: this.sync.backlog(),
      pid: process.pid,
      folder: this.folder,
      host: this.topology.byId.get(this.id)?.host ?? '',
      voters: s.voters,
      learners: s.learners,
      confCommitted: s.confCommitted,
    };
  }

  /**
   * A removed server may never receive the entry that removes it (the leader stops replicating to
   * it at once; thesis §4.2.2), so it learns of its removal from the leader's metrics: a leader
   * whose committed configuration no longer lists this node, which was a member before. Then this
   * node stops its folder sync and job dispatch (its writes could never commit), keeps serving
   * its console and says why; the removal is terminal (re-add it with `member add` and a fresh
   * data directory, as etcd requires of a removed member).
   */
  private checkRemoved(): void {
    if (this.removed || !this.wasMember || this.stopped) return;
    // Our own log may still list us (the removal entry may never reach us): the leader's committed configuration decides.
    for (const [id, view] of this.peers) {
      const m = view.metrics;
      if (!view.up || !m || m.raftState !== 'leader' || m.confCommitted !== true) continue;
      const voters = Array.isArray(m.voters) ? (m.voters as string[]) : [];
      const learners = Array.isArray(m.learners) ? (m.learners as string[]) : [];
      if (voters.length === 0 || voters.includes(this.id) || learners.includes(this.id)) continue;
      this.removed = { leader: id, at: Date.now() };
      const msg = `${this.id} was removed from the cluster: the committed Raft configuration (per leader ${id}: voters ${voters.join(', ')}${learners.length ? `; learners ${learners.join(', ')}` : ''}) no longer lists it. Folder sync and job dispatch have stopped; the folder is left as it is. To rejoin, add it again (member add) and start it with an empty data directory and --join.`;
      this.log.error({ leader: id, voters, learners }, 'removed from the cluster; folder sync and job dispatch stopped');
      this.activity({ at: Date.now(), level: 'error', node: this.id, kind: 'node', message: msg });
      this.dispatcher.stop();
      void this.sync.stop().catch((err: Error) => this.log.warn({ err: err.message }, 'sync stop failed'));
      return;
    }
  }

  private async poll(): Promise<ClusterStatus> {
    // Replica versions (each peer's whole path → version map) are only worth fetching while a
    // console is watching; `listFiles` refreshes them on demand otherwise.
    const withVersions = this.listeners.size > 0 && this.pollCount++ % 2 === 0;
    await Promise.all(
      [...this.peers.keys()].map(async (n) => {
        const view = this.peers.get(n) as PeerView;
        try {
          view.metrics = await this.clients.unary<Record<string, unknown>>(n, 'GetMetrics', {}, 800);
          if (!view.up && view.lastSeen > 0) this.activity({ at: Date.now(), level: 'info', node: this.id, kind: 'node', message: `${n} is up again` });
          view.up = true;
          view.lastSeen = Date.now();
        } catch {
          // Down after DOWN_AFTER_MS without an answer, so one slow poll on a busy machine is not an outage.
          if (view.lastSeen === 0) view.up = false;
          else if (view.up && Date.now() - view.lastSeen > DOWN_AFTER_MS) {
            view.up = false;
            this.activity({ at: Date.now(), level: 'warn', node: this.id, kind: 'node', message: `${n} is down (no answer for ${DOWN_AFTER_MS / 1000} s)` });
          }
        }
      }),
    );
    this.checkRemoved();
    const status = this.buildStatus();
    this.lastStatus = status;
    this.emit({ type: 'status', status });
    if (withVersions) {
      await this.refreshReplicaVersions();
      this.scheduleFiles();
    }
    return status;
  }

  /** Fetches every up peer's local file versions (for the per-node replica column). */
  private async refreshReplicaVersions(): Promise<void> {
    this.versionsAt = Date.now();
    await Promise.all(
      [...this.peers].map(async ([n, view]) => {
        if (!view.up) return;
        try {
          view.versions = (await this.clients.unary<{ versions: Record<string, number> }>(n, 'ListLocal', {}, 800)).versions ?? {};
        } catch {
          // Kept from the last answer; the status poll decides up/down.
        }
      }),
    );
  }

  /** The NodeStatus fields a node reports about itself (its `GetMetrics` answer, or ours); zeros when unknown. */
  private reported(id: string, m: Record<string, unknown> | null): Pick<NodeStatus, 'up' | 'raftState' | 'term' | 'commitIndex' | 'appliedIndex' | 'queueDepth' | 'inFlight' | 'requestsPerSec' | 'syncBacklog' | 'pid' | 'folder'> {
    const up = this.isUp(id);
    const num = (k: string): number => (m && typeof m[k] === 'number' ? (m[k] as number) : 0);
    return {
      up,
      raftState: (up && m ? String(m.raftState) : 'unknown') as RaftRoleView,
      term: num('term'),
      commitIndex: num('commitIndex'),
      appliedIndex: num('appliedIndex'),
      queueDepth: num('queueDepth'),
      inFlight: num('inFlight'),
      requestsPerSec: num('requestsPerSec'),
      syncBacklog: num('syncBacklog'),
      pid: m && num('pid') > 0 ? num('pid') : null,
      folder: m && typeof m.folder === 'string' ? m.folder : '',
    };
  }

  private buildStatus(): ClusterStatus {
    const raft = this.kv.status();
    const nodes: NodeStatus[] = this.topology.config.processes.map((p) => {
      const a = addressOf(this.topology, p.id);
      const m = p.id === this.id ? this.metrics() : (this.peers.get(p.id)?.metrics ?? null);
      return {
        id: p.id,
        host: p.host,
        role: p.role,
        team: p.team,
        address: `${a.host}:${a.port}`,
        consolePort: a.consolePort,
        ...this.reported(p.id, m),
        lastSeen: p.id === this.id ? Date.now() : (this.peers.get(p.id)?.lastSeen ?? 0),
      };
    });
    // Members added at runtime that the config file does not list.
    const conf = this.kv.confState();
    for (const id of [...conf.voters, ...conf.learners]) {
      if (this.topology.byId.has(id)) continue;
      const m = this.peers.get(id)?.metrics ?? null;
      nodes.push({
        id,
        host: m && typeof m.host === 'string' ? m.host : '',
        // Not in the config file: no overlay role or team; `membership` says voter or learner.
        role: 'worker',
        team: null,
        address: this.dir.addresses.get(id) ?? '',
        consolePort: null,
        ...this.reported(id, m),
        lastSeen: this.peers.get(id)?.lastSeen ?? 0,
      });
    }
    const hosts = Object.keys(this.topology.config.hosts).map((h) => ({ name: h, nodes: this.topology.config.processes.filter((p) => p.host === h).map((p) => p.id) }));
    return {
      self: this.id,
      clusterName: this.topology.config.name,
      leaderId: raft.leaderId,
      term: raft.term,
      nodes,
      links: this.topology.links,
      teams: this.topology.teams,
      hosts,
      at: Date.now(),
      membership: { voters: conf.voters, learners: conf.learners },
      ...(this.removed ? { removed: { ...this.removed } } : {}),
    };
  }

  private onRaftStatus(): void {
    const s = this.kv.status();
    this.dispatcher.setLeader(s.role === 'leader');
    if (s.leaderId !== this.lastLeader) {
      const prev = this.lastLeader;
      this.lastLeader = s.leaderId;
      this.activity({
        at: Date.now(),
        level: s.leaderId ? 'info' : 'warn',
        node: this.id,
        kind: 'leader',
        message: s.leaderId ? `${s.leaderId} is the Raft leader (term ${s.term})${prev ? `, was ${prev}` : ''}` : `no Raft leader (term ${s.term}); election under way`,
      });
    }
  }

  private onJob(job: JobInfo): void {
    this.emit({ type: 'job', job });
    if (job.state === 'done' || job.state === 'failed') {
      if (job.submittedBy === this.id) {
        this.activity({ at: Date.now(), level: job.state === 'done' ? 'info' : 'error', node: this.id, kind: 'job', message: job.state === 'done' ? `job ${job.id} (${job.op}) finished: ${JSON.stringify(job.result)}` : `job ${job.id} failed: ${job.error?.message}` });
      }
    }
  }

  /**
   * Pushes the file list to the consoles after changes, at most every 300 ms — or, for a big
   * folder, at most every 5× the time the last listing took, so a 100,000-file scan does not
   * spend its time listing. Nothing is computed while no console listens (a console that
   * connects calls `listFiles` itself).
   */
  private scheduleFiles(): void {
    if (this.filesTimer || this.stopped || this.listeners.size === 0) return;
    this.filesTimer = setTimeout(() => {
      const t0 = performance.now();
      this.listFiles()
        .then((files) => {
          this.filesEventCostMs = performance.now() - t0;
          if (this.listeners.size > 0) this.emit({ type: 'files', files });
        })
        .catch((err: Error) => this.log.warn({ err: err.message }, 'files event failed'))
        .finally(() => (this.filesTimer = null));
    }, Math.max(300, 5 * this.filesEventCostMs));
  }

  private activity(entry: ActivityEntry): void {
    this.activityLog.push(entry);
    if (this.activityLog.length > 200) this.activityLog.shift();
    if (entry.level === 'info') this.log.info({ kind: entry.kind }, entry.message);
    else this.log.warn({ kind: entry.kind }, entry.message);
    this.emit({ type: 'activity', entry });
  }

  private emit(event: ControlEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err: toWire(err) }, 'event listener failed');
      }
    }
  }
}
