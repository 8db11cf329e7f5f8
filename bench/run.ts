/**
 * `npm run bench [-- kv-put|lock-churn|failover|all|sync|compaction] [--no-anchor] [--trials N] [--clients N] [--ops N] [--snapshot-entries N] [--unary] [--keep]`
 *
 * The consensus workloads of `../shared/anchors` against a 3-voter ClusterDesk cluster of real
 * `clusterdesk node` processes on 127.0.0.1, over the client KV gRPC API. Each workload prints one
 * JSON line with the anchor's fields plus `"system":"clusterdesk"`, then (unless `--no-anchor`)
 * runs the etcd anchor of the same workload and prints etcd's line and a ratio line.
 *
 * - kv-put: 32 clients, 20,000 puts of 256-byte values to distinct keys; ops/s, p50, p99.
 * - lock-churn: 32 clients; acquire then release an exclusive lock on one of 1,000 keys, 3,000
 *   times (txn acquire guarded by createRevision = 0, txn release guarded by the lock's
 *   modRevision, as `core/locks/lock-manager.ts`); pairs/s, p50, p99.
 * - failover: SIGKILL the leader while a client writes through the other two nodes; time until
 *   the next write succeeds (each attempt abandoned after 100 ms, as the anchor); p50 and max
 *   over `--trials` (default 20), restarting the killed node between trials.
 * - sync: delegated to `./sync.ts` (`runSyncBench(argv)`), owned separately.
 * - sync-scale: a 100,000-file folder, scan/memory/listing vs Syncthing; `./sync-scale.ts`.
 * - sync-parts: sync-bulk's corpus one part at a time (large, mid-size, small files), no anchor; `./sync-parts.ts`.
 * - compaction (not in `all`): `./compaction.ts`; puts with log compaction every
 *   `--snapshot-entries` (default 1,000) entries, sampling RSS and Raft directory bytes; no anchor.
 *
 * Clients talk to the leader, as an etcd client pinned to the leader would (the anchor's etcd3
 * client spreads over all three members, whose followers forward to the leader). kv-put and
 * lock-churn use the product's client, `KvClient` of `core/node/kv-client.ts`, which pipelines
 * every request over one `KV.Stream` session; `--unary` uses one unary gRPC call per request
 * instead (what the etcd3 client does), to show what the session saves. failover uses unary calls
 * with a 100 ms deadline, as the anchor.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runEtcdAnchor } from './anchor';
import { runCompactionBench } from './compaction';
import { KvClient as SessionKvClient } from '../core/node/kv-client';
import { BenchCluster, IDS, KvClient, sleep } from './cluster';

type Workload = 'kv-put' | 'lock-churn' | 'failover' | 'compaction';
const WORKLOADS: Workload[] = ['kv-put', 'lock-churn', 'failover'];

interface Args {
  workloads: Workload[];
  anchor: boolean;
  trials: number;
  clients: number;
  ops: number | null;
  keep: boolean;
  tickMs: number | undefined;
  snapshotEntries: number;
  unary: boolean;
}

/** What kv-put and lock-churn need of a client: the product's pipelined `KvClient` or, with `--unary`, one unary call per request. */
interface BenchKv {
  put(key: string, value: string): Promise<unknown>;
  txn(req: { compare: Record<string, unknown>[]; success: Record<string, unknown>[]; failure: Record<string, unknown>[] }): Promise<{ succeeded: boolean; header: { revision: number } }>;
  close(): void;
}
const benchClient = (a: Args, address: string): BenchKv => (a.unary ? new KvClient(address) : new SessionKvClient(address));

function usage(msg: string): never {
  console.error(`bench: ${msg}\nusage: npm run bench -- [kv-put|lock-churn|failover|all|sync|sync-scale|sync-parts|compaction] [--no-anchor] [--trials N] [--clients N] [--ops N] [--tick-ms N] [--snapshot-entries N] [--unary] [--keep]`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { workloads: [], anchor: true, trials: 20, clients: 32, ops: null, keep: false, tickMs: undefined, snapshotEntries: 1000, unary: false };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i]);
    if (!Number.isInteger(v) || v < 1) usage(`${name} needs a positive integer`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === 'all') a.workloads.push(...WORKLOADS);
    else if ((WORKLOADS as string[]).includes(w) || w === 'compaction') a.workloads.push(w as Workload);
    else if (w === '--no-anchor') a.anchor = false;
    else if (w === '--keep') a.keep = true;
    else if (w === '--unary') a.unary = true;
    else if (w === '--trials') a.trials = num(++i, w);
    else if (w === '--clients') a.clients = num(++i, w);
    else if (w === '--ops') a.ops = num(++i, w);
    else if (w === '--tick-ms') a.tickMs = num(++i, w);
    else if (w === '--snapshot-entries') a.snapshotEntries = num(++i, w);
    else usage(`unknown argument ${JSON.stringify(w)}`);
  }
  if (a.workloads.length === 0) a.workloads = [...WORKLOADS];
  a.workloads = [...new Set(a.workloads)];
  return a;
}

const quantile = (sorted: number[], p: number): number => +(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0).toFixed(2);

/** Runs `ops` operations with `clients` concurrent workers; returns the anchor's fields. */
async function closedLoop(workload: string, clients: number, ops: number, one: (i: number) => Promise<void>): Promise<Record<string, unknown>> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ops; i = next++) {
      const t0 = performance.now();
      await one(i);
      latencies.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  return { system: 'clusterdesk', workload, clients, ops, seconds: +seconds.toFixed(2), opsPerSec: Math.round(ops / seconds), p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}

async function kvPut(c: BenchCluster, a: Args): Promise<Record<string, unknown>> {
  const leader = await c.waitLeader(30_000);
  const kv = benchClient(a, c.address(leader));
  const value = 'v'.repeat(256);
  try {
    await kv.put('bench/warmup', 'x');
    const cpu0 = c.cpuSeconds();
    const r = await closedLoop('kv-put', a.clients, a.ops ?? 20_000, async (i) => void (await kv.put(`bench/k${i}`, value)));
    if (process.env.BENCH_VERBOSE) console.error(`kv-put: node processes used ${(c.cpuSeconds() - cpu0).toFixed(2)} CPU s`);
    return r;
  } finally {
    kv.close();
  }
}

async function lockChurn(c: BenchCluster, a: Args): Promise<Record<string, unknown>> {
  const leader = await c.waitLeader(30_000);
  const kv = benchClient(a, c.address(leader));
  try {
    await kv.put('bench/warmup', 'x');
    return await closedLoop('lock-churn', a.clients, a.ops ?? 3000, async (i) => {
      const key = `bench/lock/${i % 1000}`;
      const holder = `client-${i}`;
      // Acquire: create the lock key only if it does not exist (createRevision = 0); else wait and retry.
      let rev = 0;
      for (let attempt = 0; ; attempt++) {
        const r = await kv.txn({
          compare: [{ key, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
          success: [{ requestPut: { key, value: holder } }],
          failure: [],
        });
        if (r.succeeded) {
          rev = r.header.revision;
          break;
        }
        await sleep(Math.min(20, 1 + attempt));
      }
      // Release: delete only if the lock is still ours (its modRevision is the one we wrote).
      const r = await kv.txn({ compare: [{ key, target: 'MOD', result: 'EQUAL', modRevision: rev }], success: [{ requestDeleteRange: { key } }], failure: [] });
      if (!r.succeeded) throw new Error(`lock ${key} was taken from ${holder}`);
    });
  } finally {
    kv.close();
  }
}

async function failover(c: BenchCluster, a: Args): Promise<Record<string, unknown>> {
  const times: number[] = [];
  for (let t = 0; t < a.trials; t++) {
    const leader = await c.waitLeader(60_000, [...IDS]);
    const others = IDS.filter((n) => n !== leader);
    const clients = others.map((id) => new KvClient(c.address(id)));
    try {
      await clients[0]!.put('fo/warm', 'x');
      c.kill9(leader);
      const t0 = performance.now();
      for (let attempt = 0; ; attempt++) {
        try {
          await clients[attempt % clients.length]!.put('fo/k', String(t), 100);
          break;
        } catch {
          await sleep(5);
        }
      }
      times.push(performance.now() - t0);
      if (process.env.BENCH_VERBOSE) console.error(`failover trial ${t}: killed ${leader} at ${new Date(Date.now() - (performance.now() - t0)).toISOString()}, write ok after ${Math.round(performance.now() - t0)} ms`);
    } finally {
      for (const k of clients) k.close();
    }
    c.spawnNode(leader);
    await sleep(1000);
  }
  times.sort((x, y) => x - y);
  return { system: 'clusterdesk', workload: 'failover', trials: a.trials, p50Ms: Math.round(times[Math.floor(a.trials / 2)]!), maxMs: Math.round(times[a.trials - 1]!) };
}

async function runWorkload(w: Workload, a: Args): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `cd-bench-${w}-`));
  if (w === 'compaction') {
    try {
      const r = await runCompactionBench(dir, { ops: a.ops ?? 50_000, clients: a.clients, snapshotEntries: a.snapshotEntries, ...(a.tickMs ? { tickMs: a.tickMs } : {}) });
      console.log(JSON.stringify(r));
    } finally {
      if (!a.keep) rmSync(dir, { recursive: true, force: true });
      else console.error(`bench: kept ${dir}`);
    }
    return;
  }
  let ours: Record<string, unknown>;
  const c = await BenchCluster.start(dir, a.tickMs ? { tickMs: a.tickMs } : {});
  try {
    ours = w === 'kv-put' ? await kvPut(c, a) : w === 'lock-churn' ? await lockChurn(c, a) : await failover(c, a);
  } finally {
    await c.stop();
    if (!a.keep) rmSync(dir, { recursive: true, force: true });
    else console.error(`bench: kept ${dir}`);
  }
  console.log(JSON.stringify(ours));
  if (!a.anchor) return;
  let etcd: Record<string, unknown>;
  try {
    etcd = await runEtcdAnchor(w, { clients: a.clients, ops: a.ops ?? (w === 'kv-put' ? 20_000 : 3000), trials: a.trials });
  } catch (err) {
    console.error(`bench: etcd anchor for ${w} failed: ${(err as Error).message}`);
    return;
  }
  console.log(JSON.stringify(etcd));
  if (w === 'failover') {
    // Lower is better: the ratio is ClusterDesk's p50 recovery time over etcd's.
    console.log(JSON.stringify({ workload: w, system: 'ratio', metric: 'p50Ms', clusterdesk_over_etcd: +((ours.p50Ms as number) / (etcd.p50Ms as number)).toFixed(2) }));
  } else {
    console.log(JSON.stringify({ workload: w, system: 'ratio', metric: 'opsPerSec', clusterdesk_over_etcd: +((ours.opsPerSec as number) / (etcd.opsPerSec as number)).toFixed(2) }));
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'sync-parts') {
    const { runSyncPartsBench } = await import('./sync-parts');
    await runSyncPartsBench(argv.slice(1));
    return;
  }
  if (argv[0] === 'sync-scale') {
    const { runSyncScaleBench } = await import('./sync-scale');
    await runSyncScaleBench(argv.slice(1));
    return;
  }
  if (argv[0] === 'sync') {
    const file = fileURLToPath(new URL('./sync.ts', import.meta.url));
    if (!existsSync(file)) {
      console.error('bench: the sync suite is not available yet (bench/sync.ts does not exist)');
      process.exit(2);
    }
    const mod = (await import('./sync.ts' as string)) as { runSyncBench?: (argv: string[]) => Promise<void> };
    if (typeof mod.runSyncBench !== 'function') {
      console.error('bench: bench/sync.ts does not export runSyncBench(argv)');
      process.exit(2);
    }
    await mod.runSyncBench(argv.slice(1));
    return;
  }
  const a = parseArgs(argv);
  for (const w of a.workloads) await runWorkload(w, a);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  },
);
