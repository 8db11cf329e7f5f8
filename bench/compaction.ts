/**
 * `npm run bench -- compaction [--ops N] [--clients N] [--snapshot-entries N] [--tick-ms N] [--keep]`
 *
 * Log compaction under a long write stream: three real `clusterdesk node` processes compact every
 * `--snapshot-entries` applied entries (default 1,000 here, so a short run compacts many times;
 * the node default is 10,000); clients overwrite 1,000 keys with 256-byte values `--ops` times
 * (default 50,000). Ten times during the run and at the end it samples each node's resident set
 * size (Linux /proc) and the bytes of each node's Raft directory (WAL + snapshot). Bounded
 * compaction shows as flat raft-directory bytes and flat RSS while the op count grows.
 *
 * Prints one JSON line: `{"system":"clusterdesk","workload":"compaction",ops,clients,snapshotEntries,
 * seconds,opsPerSec,rssMiB:{first,last,max},raftDirMiB:{first,last,max},samples:[{ops,rssMiB,raftDirMiB}]}`
 * (RSS and directory sizes summed over the three nodes). No etcd anchor.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KvClient } from '../core/node/kv-client';
import { BenchCluster, IDS } from './cluster';

export interface CompactionArgs {
  ops: number;
  clients: number;
  snapshotEntries: number;
  tickMs?: number;
}

const MiB = 1 << 20;
const round = (x: number): number => +x.toFixed(2);

/** Bytes of every file under `dir` (0 if missing). */
function dirBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = join(dir, n);
    try {
      const st = statSync(p);
      total += st.isDirectory() ? dirBytes(p) : st.size;
    } catch {
      // removed meanwhile (a temporary file renamed)
    }
  }
  return total;
}

/** Resident set size of `pid` in bytes (Linux; 0 elsewhere). */
function rssBytes(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs the workload on a started cluster (`c.dir` holds one directory per node). */
export async function compactionWorkload(c: BenchCluster, a: CompactionArgs): Promise<Record<string, unknown>> {
  const leader = await c.waitLeader(30_000);
  const kv = new KvClient(c.address(leader));
  const value = 'v'.repeat(256);
  const samples: Array<{ ops: number; rssMiB: number; raftDirMiB: number }> = [];
  const sample = (ops: number): void => {
    let rss = 0;
    let bytes = 0;
    for (const id of IDS) {
      rss += rssBytes(c.procs.get(id)?.pid);
      bytes += dirBytes(join(c.dir, id, 'state', 'raft'));
    }
    samples.push({ ops, rssMiB: round(rss / MiB), raftDirMiB: round(bytes / MiB) });
  };
  try {
    await kv.put('bench/warmup', 'x');
    sample(0);
    const every = Math.max(1, Math.floor(a.ops / 10));
    let next = 0;
    let done = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      for (let i = next++; i < a.ops; i = next++) {
        await kv.put(`bench/c${i % 1000}`, value);
        if (++done % every === 0) sample(done);
      }
    };
    await Promise.all(Array.from({ length: a.clients }, worker));
    const seconds = (performance.now() - t0) / 1000;
    if (samples[samples.length - 1]!.ops !== a.ops) sample(a.ops);
    const stat = (k: 'rssMiB' | 'raftDirMiB') => ({ first: samples[0]![k], last: samples[samples.length - 1]![k], max: Math.max(...samples.map((s) => s[k])) });
    return {
      system: 'clusterdesk',
      workload: 'compaction',
      ops: a.ops,
      clients: a.clients,
      snapshotEntries: a.snapshotEntries,
      seconds: round(seconds),
      opsPerSec: Math.round(a.ops / seconds),
      rssMiB: stat('rssMiB'),
      raftDirMiB: stat('raftDirMiB'),
      samples,
    };
  } finally {
    kv.close();
  }
}

/** Starts a cluster compacting every `a.snapshotEntries` entries in `dir`, runs the workload, stops it. */
export async function runCompactionBench(dir: string, a: CompactionArgs): Promise<Record<string, unknown>> {
  const c = await BenchCluster.start(dir, { snapshotEntries: a.snapshotEntries, ...(a.tickMs ? { tickMs: a.tickMs } : {}) });
  try {
    return await compactionWorkload(c, a);
  } finally {
    await c.stop();
  }
}
