/**
 * `npm run bench -- sync`: the file-sync workloads of `../shared/anchors/bench-sync.mjs`
 * (sync-bulk, sync-latency), run with the SAME script against two ClusterDesk hosts on loopback
 * and against the Syncthing pair of `../shared/anchors/syncthing-pair.sh`, in one run; prints
 * each system's JSON line and their ratio.
 *
 * ClusterDesk side: a two-node config (A leader, B team leader: both Raft voters) on free
 * loopback ports in a temp dir, each node a real `clusterdesk node` process with its own data
 * directory and folder. The script copies the corpus into A's folder and times B's.
 *
 * Options: `--scale N` and `--edits N` (passed to bench-sync.mjs), `--no-anchor` (skip Syncthing),
 * `--keep` (keep the temp dir), `--timeout S`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePortBlock } from '../test/helpers/ports';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CLI = join(ROOT, 'bin', 'clusterdesk.js');
const ANCHORS = resolve(ROOT, '..', 'shared', 'anchors');

interface Result {
  system: string;
  bulkS?: number;
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  [k: string]: unknown;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The value after `--name` in argv, if any. */
export function opt(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}


/** Runs a command, streaming its stderr; resolves with its stdout. Rejects on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('error', rej);
    p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${out}`))));
  });
}

/** Runs bench-sync.mjs on two folders and returns its JSON line. */
async function benchSync(system: string, src: string, dst: string, argv: string[]): Promise<Result> {
  const args = [join(ANCHORS, 'bench-sync.mjs'), '--src', src, '--dst', dst, '--system', system];
  for (const k of ['scale', 'edits', 'timeout']) {
    const v = opt(argv, k);
    if (v !== undefined) args.push(`--${k}`, v);
  }
  const out = await run(process.execPath, args);
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`bench-sync.mjs printed no result for ${system}:\n${out}`);
  console.log(line);
  return JSON.parse(line) as Result;
}

export interface Pair {
  dir: string;
  folderA: string;
  folderB: string;
  /** CPU seconds (user + system) each node process has used so far, by node id (Linux /proc; empty elsewhere). */
  cpu(): Record<string, number>;
  stop(): Promise<void>;
}

/** User + system CPU seconds of process `pid` so far, from /proc/<pid>/stat; null where unavailable. */
export function processCpuS(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name, in clock ticks (100/s on Linux).
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Starts nodes A and B as `clusterdesk node` processes and waits until a file written on A reaches B. */
export async function startClusterDesk(keep: boolean): Promise<Pair> {
  const dir = mkdtempSync(join(tmpdir(), 'clusterdesk-bench-sync-'));
  const base = await freePortBlock(4);
  const config = join(dir, 'cluster.json');
  writeFileSync(
    config,
    JSON.stringify({
      name: 'bench-sync',
      hosts: { host1: { address: '127.0.0.1' }, host2: { address: '127.0.0.1' } },
      processes: [
        { id: 'A', role: 'leader', team: 'green', host: 'host1', port: base, consolePort: base + 2, neighbors: ['B'] },
        { id: 'B', role: 'team-leader', team: 'green', host: 'host2', port: base + 1, consolePort: base + 3, neighbors: ['A'] },
      ],
    }),
  );
  const children: ChildProcess[] = [];
  const exited = new Set<string>();
  for (const id of ['A', 'B']) {
    const data = join(dir, id);
    const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : [];
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'node', '--config', config, '--id', id, '--data', data, '--folder', join(data, 'folder'), '--no-console'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CLUSTERDESK_LOG_LEVEL: process.env.CLUSTERDESK_LOG_LEVEL ?? 'info' },
    });
    child.on('exit', () => exited.add(id));
    children.push(child);
  }
  const pair: Pair = {
    dir,
    folderA: join(dir, 'A', 'folder'),
    folderB: join(dir, 'B', 'folder'),
    cpu() {
      const out: Record<string, number> = {};
      ['A', 'B'].forEach((id, i) => {
        const s = processCpuS(children[i]?.pid);
        if (s !== null) out[id] = s;
      });
      return out;
    },
    async stop() {
      for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
      const deadline = Date.now() + 15_000;
      while (exited.size < children.length && Date.now() < deadline) await sleep(100);
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
  // Ready = a probe written on A arrives on B (Raft leader elected, both sync engines started).
  const probe = randomName();
  const deadline = Date.now() + 60_000;
  try {
    await waitUntil('the probe file to sync', async () => {
      if (exited.size) throw new Error(`a clusterdesk node exited early (see ${dir}/*/node.log)`);
      if (!existsSync(join(pair.folderA, '.bench', probe))) {
        await mkdir(join(pair.folderA, '.bench'), { recursive: true });
        await writeFile(join(pair.folderA, '.bench', probe), 'ready');
      }
      return (await readFile(join(pair.folderB, '.bench', probe), 'utf8').catch(() => '')) === 'ready';
    }, deadline);
    await rm(join(pair.folderA, '.bench'), { recursive: true, force: true });
    await waitUntil('the probe delete to sync', () => !existsSync(join(pair.folderB, '.bench', probe)), deadline);
  } catch (err) {
    await pair.stop();
    throw err;
  }
  return pair;
}

function randomName(): string {
  return `probe-${process.pid}-${Date.now()}`;
}

async function waitUntil(what: string, fn: () => boolean | Promise<boolean>, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs the sync workloads; see the module doc. */
export async function runSyncBench(argv: string[]): Promise<void> {
  const keep = argv.includes('--keep');
  const results: Result[] = [];

  const pair = await startClusterDesk(keep);
  try {
    const before = pair.cpu();
    const r = await benchSync('clusterdesk', pair.folderA, pair.folderB, argv);
    const after = pair.cpu();
    // CPU seconds each node spent during the workloads (bulk copy and latency edits; startup excluded).
    const cpuS: Record<string, number> = {};
    for (const id of Object.keys(after)) cpuS[id] = +(after[id]! - (before[id] ?? 0)).toFixed(2);
    if (Object.keys(cpuS).length > 0) console.log(JSON.stringify({ system: 'clusterdesk', workload: 'sync', cpuS }));
    results.push(r);
  } finally {
    await pair.stop();
    if (keep) console.error(`clusterdesk data kept in ${pair.dir}`);
  }

  if (!argv.includes('--no-anchor')) {
    const stDir = mkdtempSync(join(tmpdir(), 'syncthing-pair-'));
    const script = join(ANCHORS, 'syncthing-pair.sh');
    try {
      await run('bash', [script, 'start', stDir], { cwd: ANCHORS });
      results.push(await benchSync('syncthing', join(stDir, 'a', 'data'), join(stDir, 'b', 'data'), argv));
    } finally {
      await run('bash', [script, 'stop', stDir], { cwd: ANCHORS }).catch(() => undefined);
      await sleep(500);
      if (!keep) rmSync(stDir, { recursive: true, force: true });
    }
    const [cd, st] = [results.find((r) => r.system === 'clusterdesk'), results.find((r) => r.system === 'syncthing')];
    if (cd?.bulkS && st?.bulkS) {
      const ratio = (a?: number, b?: number): number | null => (a && b ? +(a / b).toFixed(2) : null);
      console.log(
        JSON.stringify({
          workload: 'sync-bulk',
          system: 'ratio',
          clusterdesk_over_syncthing: ratio(cd.bulkS, st.bulkS),
          latencyP50_clusterdesk_over_syncthing: ratio(cd.latencyP50Ms, st.latencyP50Ms),
          latencyP99_clusterdesk_over_syncthing: ratio(cd.latencyP99Ms, st.latencyP99Ms),
        }),
      );
    }
  }
}

// Direct run: `node --import tsx bench/sync.ts [options]`.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runSyncBench(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
