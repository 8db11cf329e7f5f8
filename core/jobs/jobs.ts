/**
 * Asynchronous compute jobs over the ReplicatedKV. A job is a JSON {@link JobInfo} at
 * `jobs/<id>`; every state change is a txn guarded by the key's modRevision, so a job is
 * completed once even when two leaders overlap. The Raft leader's dispatcher runs queued jobs
 * through the routed request path; a job found `running` when a node becomes leader is run
 * again (delivery is at least once). Every node watches `jobs/` and announces changes as events.
 *
 * This is the skeleton's job store; the partitioned, consistent-hashed durable queue of a later
 * issue replaces the dispatcher behind the same `JobStore` surface.
 */
import { NotFoundError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { ComputeOp, JobInfo } from '../control/api';
import type { ReplicatedKV, Watcher } from '../kv/types';
import { toWire } from '../common/errors';

export const JOB_PREFIX = 'jobs/';

export function parseJob(value: string): JobInfo | null {
  try {
    const j = JSON.parse(value) as JobInfo;
    return typeof j.id === 'string' && typeof j.state === 'string' ? j : null;
  } catch {
    return null;
  }
}

export class JobStore {
  private counter = 0;
  constructor(
    private readonly kv: ReplicatedKV,
    private readonly self: string,
  ) {}

  /** Appends a queued job; resolves once it is committed. */
  async submit(op: ComputeOp, values: number[], team: string | null, now: number): Promise<JobInfo> {
    const id = `${this.self}-${now.toString(36)}-${(this.counter++).toString(36)}`;
    const job: JobInfo = { id, op, values, team, state: 'queued', result: null, error: null, route: [], submittedBy: this.self, submittedAt: now, finishedAt: null };
    await this.kv.txn({
      compare: [{ key: JOB_PREFIX + id, target: 'createRevision', result: '=', value: 0 }],
      success: [{ type: 'put', key: JOB_PREFIX + id, value: JSON.stringify(job) }],
      failure: [],
    });
    return job;
  }

  async get(id: string): Promise<JobInfo> {
    const r = await this.kv.range(JOB_PREFIX + id);
    const job = r.kvs[0] ? parseJob(r.kvs[0].value) : null;
    if (!job) throw new NotFoundError(`no job "${id}"`);
    return job;
  }

  /** Newest first, at most `limit`. Serializable (local) read. */
  async list(limit = 200): Promise<JobInfo[]> {
    const r = await this.kv.range(JOB_PREFIX, { prefix: true, serializable: true });
    return r.kvs
      .map((kv) => parseJob(kv.value))
      .filter((j): j is JobInfo => !!j)
      .sort((a, b) => b.submittedAt - a.submittedAt)
      .slice(0, limit);
  }

  /** Calls `listener` for every job change this replica applies. */
  watch(listener: (job: JobInfo) => void): Watcher {
    return this.kv.watch(JOB_PREFIX, (events) => {
      for (const e of events) {
        if (e.type !== 'put') continue;
        const j = parseJob(e.kv.value);
        if (j) listener(j);
      }
    });
  }
}

/**
 * Runs jobs while this node is the Raft leader. `execute` routes the job like a synchronous
 * request and resolves to its result and route.
 */
export class JobDispatcher {
  private active = false;
  private readonly running = new Set<string>();
  private watcher: Watcher | null = null;

  constructor(
    private readonly kv: ReplicatedKV,
    private readonly execute: (job: JobInfo) => Promise<{ result: number | number[]; route: string[] }>,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  /** Call whenever leadership may have changed. */
  setLeader(isLeader: boolean): void {
    if (isLeader === this.active) return;
    this.active = isLeader;
    if (isLeader) {
      this.watcher = this.kv.watch(JOB_PREFIX, (events) => {
        for (const e of events) if (e.type === 'put') this.consider(e.kv.key, e.kv.value, e.kv.modRevision);
      });
      void this.scan();
    } else {
      this.watcher?.cancel();
      this.watcher = null;
    }
  }

  stop(): void {
    this.setLeader(false);
  }

  private async scan(): Promise<void> {
    try {
      const r = await this.kv.range(JOB_PREFIX, { prefix: true });
      for (const kv of r.kvs) this.consider(kv.key, kv.value, kv.modRevision);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'job scan failed; will retry on next leadership change');
    }
  }

  private consider(key: string, value: string, modRevision: number): void {
    const job = parseJob(value);
    if (!this.active || !job || (job.state !== 'queued' && job.state !== 'running') || this.running.has(job.id)) return;
    this.running.add(job.id);
    void this.runJob(key, job, modRevision).finally(() => this.running.delete(job.id));
  }

  private async runJob(key: string, job: JobInfo, modRevision: number): Promise<void> {
    const started = { ...job, state: 'running' as const };
    const claim = await this.kv.txn({
      compare: [{ key, target: 'modRevision', result: '=', value: modRevision }],
      success: [{ type: 'put', key, value: JSON.stringify(started) }],
      failure: [],
    }).catch(() => null);
    if (!claim?.succeeded) return;
    let done: JobInfo;
    try {
      const out = await this.execute(job);
      done = { ...started, state: 'done', result: out.result, route: out.route, finishedAt: this.now() };
    } catch (err) {
      done = { ...started, state: 'failed', error: toWire(err), finishedAt: this.now() };
    }
    for (let attempt = 0; attempt < 20 && this.active; attempt++) {
      try {
        await this.kv.txn({
          compare: [{ key, target: 'modRevision', result: '=', value: claim.revision }],
          success: [{ type: 'put', key, value: JSON.stringify(done) }],
          failure: [],
        });
        return;
      } catch (err) {
        this.logger.warn({ job: job.id, err: (err as Error).message }, 'could not record job result; retrying');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
}
