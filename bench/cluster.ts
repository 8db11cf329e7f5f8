/**
 * Bench harness: a 3-voter ClusterDesk cluster of real `clusterdesk node` processes on 127.0.0.1
 * (config written to a temp dir), and a small promise client of the KV gRPC API (`core/proto/kv.proto`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { kvProto } from '../core/node/kv-service';
import { freePortBlock } from '../test/helpers/ports';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CLI = join(ROOT, 'bin', 'clusterdesk.js');
export const IDS = ['A', 'B', 'C'] as const;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Obj = Record<string, unknown>;

/** Promise wrapper over one channel to one node's KV, Lease and Maintenance services. */
export class KvClient {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly kv: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly maint: any;
  constructor(readonly address: string) {
    const { KV, Maintenance } = kvProto();
    const opts: grpc.ChannelOptions = { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.min_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 };
    this.kv = new KV(address, grpc.credentials.createInsecure(), opts);
    this.maint = new Maintenance(address, grpc.credentials.createInsecure(), opts);
  }
  private call<T>(client: Obj, method: string, req: Obj, timeoutMs: number): Promise<T> {
    return new Promise<T>((res, rej) => {
      (client[method] as (r: Obj, o: Obj, cb: (e: grpc.ServiceError | null, v: T) => void) => void)(req, { deadline: Date.now() + timeoutMs }, (e, v) => (e ? rej(e) : res(v)));
    });
  }
  put(key: string, value: string, timeoutMs = 10_000): Promise<Obj> {
    return this.call(this.kv, 'Put', { key, value }, timeoutMs);
  }
  txn(req: Obj, timeoutMs = 10_000): Promise<{ succeeded: boolean; header: { revision: number }; responses: Obj[] }> {
    return this.call(this.kv, 'Txn', req, timeoutMs);
  }
  deleteRange(key: string, prefix: boolean, timeoutMs = 30_000): Promise<Obj> {
    return this.call(this.kv, 'DeleteRange', { key, prefix }, timeoutMs);
  }
  status(timeoutMs = 1000): Promise<{ member: string; leader: string; role: string; term: number; commitIndex: number; appliedIndex: number }> {
    return this.call(this.maint, 'Status', {}, timeoutMs);
  }
  close(): void {
    this.kv.close();
    this.maint.close();
  }
}


/** A running 3-voter cluster: A (leader role), B and C (team leaders); all voters. */
export class BenchCluster {
  readonly procs = new Map<string, ChildProcess>();
  private constructor(
    readonly dir: string,
    readonly config: string,
    readonly ports: Map<string, number>,
    private readonly tickMs: number | undefined,
    private readonly snapshotEntries: number | undefined = undefined,
  ) {}

  static async start(dir: string, opts: { tickMs?: number; snapshotEntries?: number } = {}): Promise<BenchCluster> {
    mkdirSync(dir, { recursive: true });
    const base = await freePortBlock(IDS.length, [0, 1000]);
    const ports = new Map(IDS.map((id, i) => [id, base + i]));
    const config = {
      name: 'bench',
      hosts: { h: { address: '127.0.0.1' } },
      processes: IDS.map((id, i) => ({
        id,
        role: i === 0 ? 'leader' : 'team-leader',
        team: i === 0 ? null : `t${i}`,
        host: 'h',
        port: base + i,
        consolePort: base + 1000 + i,
        neighbors: IDS.filter((n) => n !== id),
      })),
    };
    const file = join(dir, 'cluster.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    const c = new BenchCluster(dir, file, ports, opts.tickMs, opts.snapshotEntries);
    for (const id of IDS) c.spawnNode(id);
    process.once('exit', () => c.killAll());
    await c.waitLeader(60_000);
    return c;
  }

  address(id: string): string {
    return `127.0.0.1:${this.ports.get(id)}`;
  }

  spawnNode(id: string): void {
    const log = openSync(join(this.dir, `${id}.out`), 'a');
    const args = [CLI, 'node', '--config', this.config, '--id', id, '--data', join(this.dir, id), '--no-console'];
    if (this.tickMs) args.push('--tick-ms', String(this.tickMs));
    if (this.snapshotEntries) args.push('--snapshot-entries', String(this.snapshotEntries));
    // BENCH_NODE_ARGS: extra Node flags for the node processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const p = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.procs.set(id, p);
  }

  /** CPU seconds (user + system) the node processes used so far (Linux /proc; 0 elsewhere). */
  cpuSeconds(): number {
    let total = 0;
    for (const p of this.procs.values()) {
      try {
        const f = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
        const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
        total += (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        // not Linux, or exited
      }
    }
    return total;
  }

  kill9(id: string): void {
    this.procs.get(id)?.kill('SIGKILL');
    this.procs.delete(id);
  }

  /** Waits until every running node reports the same leader (and the leader is running). */
  async waitLeader(timeoutMs: number, mustInclude: string[] = [...this.procs.keys()]): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const clients = mustInclude.map((id) => new KvClient(this.address(id)));
    try {
      while (Date.now() < deadline) {
        for (const [id, p] of this.procs) {
          if (p.exitCode !== null || p.signalCode !== null) {
            const out = readFileSync(join(this.dir, `${id}.out`), 'utf8').split('\n').slice(-15).join('\n');
            throw new Error(`node ${id} exited (${p.exitCode ?? p.signalCode}) while the bench waited for a leader:\n${out}`);
          }
        }
        try {
          const st = await Promise.all(clients.map((c) => c.status(500)));
          const leader = st[0]!.leader;
          if (leader && this.procs.has(leader) && st.every((s) => s.leader === leader)) {
            const l = st.find((s) => s.member === leader);
            if (!l || st.every((s) => s.appliedIndex >= l.commitIndex - 5)) return leader;
          }
        } catch {
          // not up yet
        }
        await sleep(100);
      }
    } finally {
      for (const c of clients) c.close();
    }
    throw new Error(`no leader agreed on by ${mustInclude.join(',')} within ${timeoutMs} ms; see ${this.dir}/*.out and */node.log`);
  }

  async stop(): Promise<void> {
    const exits = [...this.procs.values()].map((p) => new Promise<void>((r) => (p.exitCode !== null ? r() : p.once('exit', () => r()))));
    for (const p of this.procs.values()) p.kill('SIGTERM');
    await Promise.race([Promise.all(exits), sleep(5000)]);
    this.killAll();
  }

  killAll(): void {
    for (const p of this.procs.values()) if (p.exitCode === null) p.kill('SIGKILL');
    this.procs.clear();
  }
}
