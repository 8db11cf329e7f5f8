/**
 * The etcd anchor (`../shared/anchors`, or $CLUSTERDESK_ANCHORS): starts a 3-member etcd cluster
 * with `etcd-cluster.sh` in a temp dir, runs the anchor script of the same workload, stops it,
 * and returns the anchor's JSON line.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT, sleep } from './cluster';

export const ANCHORS = resolve(process.env.CLUSTERDESK_ANCHORS ?? join(ROOT, '..', 'shared', 'anchors'));

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

async function ensureDeps(): Promise<void> {
  if (existsSync(join(ANCHORS, 'node_modules', 'etcd3'))) return;
  await new Promise<void>((res, rej) => {
    const p = spawn('npm', ['i', '--no-audit', '--no-fund'], { cwd: ANCHORS, stdio: ['ignore', 'ignore', 'inherit'] });
    p.once('exit', (code) => (code === 0 ? res() : rej(new Error(`npm i in ${ANCHORS} exited with ${code}`))));
  });
}

/** Runs the etcd anchor of `workload` and returns its parsed JSON line. */
export async function runEtcdAnchor(workload: 'kv-put' | 'lock-churn' | 'failover', args: { clients: number; ops: number; trials: number }): Promise<Record<string, unknown>> {
  if (!existsSync(join(ANCHORS, 'etcd-cluster.sh'))) throw new Error(`etcd anchor not found in ${ANCHORS} (set CLUSTERDESK_ANCHORS)`);
  await ensureDeps();
  const dir = mkdtempSync(join(tmpdir(), 'cd-bench-etcd-'));
  try {
    await run(join(ANCHORS, 'etcd-cluster.sh'), ['start', dir], ANCHORS, 300_000);
    let out: string;
    if (workload === 'failover') {
      out = await run(process.execPath, [join(ANCHORS, 'bench-etcd-failover.mjs'), dir, '--trials', String(args.trials)], ANCHORS, 30 * 60_000);
    } else {
      out = await run(process.execPath, [join(ANCHORS, 'bench-etcd.mjs'), workload, '--clients', String(args.clients), '--ops', String(args.ops)], ANCHORS, 30 * 60_000);
    }
    const line = out
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{'));
    if (!line) throw new Error(`etcd anchor printed no JSON line:\n${out}`);
    return JSON.parse(line) as Record<string, unknown>;
  } finally {
    await run(join(ANCHORS, 'etcd-cluster.sh'), ['stop', dir], ANCHORS, 30_000).catch(() => undefined);
    await sleep(1500); // let the members exit and free their ports
    rmSync(dir, { recursive: true, force: true });
  }
}
