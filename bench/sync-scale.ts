/**
 * `npm run bench -- sync-scale [--files N] [--no-anchor] [--no-browser] [--keep]`
 *
 * Issue 4's large-folder figures: a folder of `--files` (default 100,000) small files (100
 * directories, 1–4 KiB each, seeded so every run writes the same bytes) handed to one host, measured
 * for ClusterDesk and, beside it in the same run, for Syncthing (`../shared/anchors/syncthing-pair.sh`,
 * device "a" alone). Prints one JSON line per system and a ratio line:
 *
 * - `firstScanS`: process start until every file is scanned, hashed and in the index (ClusterDesk:
 *   `clusterdesk_sync_indexed_files` = N, `clusterdesk_sync_scans_completed` >= 1 and
 *   `clusterdesk_sync_backlog_files` = 0 on `/metrics`; Syncthing: `/rest/db/status` state "idle"
 *   with `localFiles` = N).
 * - `restartScanS`: the same after a clean restart (nothing changed: the startup rescan that catches
 *   changes made while the app was closed).
 * - `rssMiB` / `rssEmptyMiB`: resident memory (VmRSS) with the indexed folder and with an empty one;
 *   `indexMiB` is their difference, the memory the index of N files costs; `peakMiB` is the
 *   high-water mark (VmHWM) of the first scan.
 * - `listMs`: one listing of every file (ClusterDesk: the console's `listFiles` over WebSocket;
 *   Syncthing: `/rest/db/browse`, its closest call).
 * - `filesViewMs` (ClusterDesk only, unless `--no-browser`): in Debian's Chromium, from opening the
 *   console until the Files view shows its first rows. Syncthing's GUI has no file list.
 *
 * `BENCH_NODE_ARGS` adds Node options to the ClusterDesk node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectControl } from '../core/control/ws-client';
import { freePortBlock } from '../test/helpers/ports';
import { opt, run } from './sync';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CLI = join(ROOT, 'bin', 'clusterdesk.js');
const ANCHORS = resolve(process.env.CLUSTERDESK_ANCHORS ?? join(ROOT, '..', 'shared', 'anchors'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2): number => +x.toFixed(d);


/** mulberry32: a small seeded PRNG, so every run writes the same corpus. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes `n` files of 1–4 KiB into `dir` (d000/f00000.dat …); returns total bytes. */
async function writeCorpus(dir: string, n: number): Promise<number> {
  const rand = rng(0x5eed);
  const dirs = Math.max(1, Math.ceil(n / 1000));
  let bytes = 0;
  for (let d = 0; d < dirs; d++) await mkdir(join(dir, `d${String(d).padStart(3, '0')}`), { recursive: true });
  const batch: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const size = 1024 + Math.floor(rand() * 3072);
    const buf = Buffer.allocUnsafe(size);
    for (let j = 0; j < size; j += 4) buf.writeUInt32LE((rand() * 4294967296) >>> 0, Math.min(j, size - 4));
    bytes += size;
    batch.push(writeFile(join(dir, `d${String(i % dirs).padStart(3, '0')}`, `f${String(i).padStart(6, '0')}.dat`), buf));
    if (batch.length >= 256) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  return bytes;
}

/** VmRSS (or, with `peak`, VmHWM: the high-water mark) of `pid` in MiB, from /proc. */
function rssMiB(pid: number, peak = false): number {
  const m = (peak ? /VmHWM:\s+(\d+) kB/ : /VmRSS:\s+(\d+) kB/).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024, 1) : NaN;
}


/** Polls `fn` every 200 ms; a failed poll (e.g. a refused connection) counts as "not yet", a thrown {@link Fatal} ends the wait. */
async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await fn().catch((err: unknown) => {
        if (err instanceof Fatal) throw err;
        return false;
      })
    )
      return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

/** An error that ends a {@link waitUntil} at once (the process being waited for is gone). */
class Fatal extends Error {}

// ------------------------------------------------------------------------------ ClusterDesk

interface Node {
  child: ChildProcess;
  consoleUrl: string;
  metricsUrl: string;
  stop(): Promise<void>;
}

async function startNode(dir: string, folder: string): Promise<Node> {
  const base = await freePortBlock(2);
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'cluster.json');
  writeFileSync(
    config,
    JSON.stringify({
      name: 'bench-sync-scale',
      hosts: { host1: { address: '127.0.0.1' } },
      processes: [{ id: 'A', role: 'leader', team: 'green', host: 'host1', port: base, consolePort: base + 1, neighbors: [] }],
    }),
  );
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : [];
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'node', '--config', config, '--id', 'A', '--data', join(dir, 'A'), '--folder', folder], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CLUSTERDESK_LOG_LEVEL: process.env.CLUSTERDESK_LOG_LEVEL ?? 'warn' },
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitUntil('the node to print its console URL', async () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Fatal(`clusterdesk node exited (${child.exitCode ?? child.signalCode}); see ${join(dir, 'A', 'node.log')}`);
    return /console: \S+/.test(out);
  }, 900_000);
  const consoleUrl = /console: (\S+)/.exec(out)![1]!;
  return {
    child,
    consoleUrl,
    metricsUrl: `http://127.0.0.1:${base + 1}/metrics`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

async function metrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(clusterdesk_\w+) (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Resolves when the node's scan has finished, nothing is left to commit and `n` files are indexed. */
async function synced(node: Node, n: number, timeoutMs: number): Promise<void> {
  await waitUntil(`${n} files indexed`, async () => {
    if (node.child.exitCode !== null || node.child.signalCode !== null) throw new Fatal(`clusterdesk node exited (${node.child.exitCode ?? node.child.signalCode})`);
    const m = await metrics(node.metricsUrl);
    return (m.clusterdesk_sync_scans_completed ?? 0) >= 1 && m.clusterdesk_sync_backlog_files === 0 && m.clusterdesk_sync_indexed_files === n;
  }, timeoutMs);
}

async function filesViewMs(consoleUrl: string): Promise<number> {
  const { chromium } = await import('@playwright/test');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(consoleUrl);
    await page.getByTestId('nav-files').waitFor({ timeout: 60_000 });
    const t0 = performance.now();
    await page.getByTestId('nav-files').click();
    await page.locator('[data-testid^="file-row-"]').first().waitFor({ timeout: 300_000 });
    return round(performance.now() - t0, 0);
  } finally {
    await browser.close();
  }
}

async function clusterdesk(corpus: string, n: number, argv: string[]): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'clusterdesk-bench-scale-'));
  try {
    // Baseline: the same node with an empty folder.
    const empty = await startNode(join(dir, 'empty'), join(dir, 'empty', 'folder'));
    await synced(empty, 0, 120_000);
    await sleep(2000);
    const rssEmptyMiB = rssMiB(empty.child.pid!);
    await empty.stop();

    const folder = join(dir, 'full', 'folder');
    await mkdir(join(dir, 'full'), { recursive: true });
    await run('cp', ['-a', corpus, folder]);
    let t0 = performance.now();
    let node = await startNode(join(dir, 'full'), folder);
    await synced(node, n, 3_600_000);
    const firstScanS = round((performance.now() - t0) / 1000);
    await sleep(2000);
    const rss = rssMiB(node.child.pid!);
    const peakMiB = rssMiB(node.child.pid!, true);

    const url = new URL(node.consoleUrl);
    const client = await connectControl(`ws://${url.host}/control?token=${url.searchParams.get('token') ?? ''}`, { timeoutMs: 10_000 });
    t0 = performance.now();
    const files = await client.call('listFiles', {});
    const listMs = round(performance.now() - t0, 0);
    client.close();
    if (files.length !== n) throw new Error(`listFiles returned ${files.length} files, expected ${n}`);

    const viewMs = argv.includes('--no-browser') ? null : await filesViewMs(node.consoleUrl);

    await node.stop();
    t0 = performance.now();
    node = await startNode(join(dir, 'full'), folder);
    await synced(node, n, 3_600_000);
    const restartScanS = round((performance.now() - t0) / 1000);
    await node.stop();
    return { workload: 'sync-scale', system: 'clusterdesk', files: n, firstScanS, restartScanS, rssMiB: rss, rssEmptyMiB, indexMiB: round(rss - rssEmptyMiB, 1), peakMiB, listMs, filesViewMs: viewMs };
  } finally {
    if (argv.includes('--keep')) console.error(`clusterdesk data kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------ Syncthing

const ST_API = 'http://127.0.0.1:18384';

async function stGet(path: string): Promise<unknown> {
  const res = await fetch(ST_API + path, { headers: { 'X-API-Key': 'anchor' } });
  if (!res.ok) throw new Error(`syncthing ${path}: HTTP ${res.status}`);
  return res.json();
}

function startSyncthingA(stDir: string): ChildProcess {
  return spawn('syncthing', ['serve', `--home=${join(stDir, 'a', 'home')}`, '--no-browser', '--no-restart'], {
    stdio: 'ignore',
    env: { ...process.env, STNODEFAULTFOLDER: '1', STNOUPGRADE: '1' },
  });
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  await Promise.race([exited, sleep(30_000)]);
  if (c.exitCode === null) c.kill('SIGKILL');
}

async function stScanned(n: number): Promise<void> {
  await waitUntil(`syncthing to index ${n} files`, async () => {
    const s = (await stGet('/rest/db/status?folder=bench')) as { state: string; localFiles: number };
    return s.state === 'idle' && s.localFiles === n;
  }, 3_600_000);
}

async function syncthing(corpus: string, n: number, argv: string[]): Promise<Record<string, unknown>> {
  const stDir = mkdtempSync(join(tmpdir(), 'syncthing-scale-'));
  const script = join(ANCHORS, 'syncthing-pair.sh');
  try {
    await run('bash', [script, 'start', stDir], { cwd: ANCHORS });
    await sleep(2000);
    const rssEmptyMiB = rssMiB(Number(readFileSync(join(stDir, 'a', 'pid'), 'utf8')));
    await run('bash', [script, 'stop', stDir], { cwd: ANCHORS });
    await sleep(1500);
    rmSync(join(stDir, 'a', 'data'), { recursive: true, force: true });
    await run('cp', ['-a', corpus, join(stDir, 'a', 'data')]);

    let t0 = performance.now();
    let st = startSyncthingA(stDir);
    try {
      await stScanned(n);
      const firstScanS = round((performance.now() - t0) / 1000);
      await sleep(2000);
      const rss = rssMiB(st.pid!);
      const peakMiB = rssMiB(st.pid!, true);
      t0 = performance.now();
      await stGet('/rest/db/browse?folder=bench');
      const listMs = round(performance.now() - t0, 0);
      await stopChild(st);
      t0 = performance.now();
      st = startSyncthingA(stDir);
      await stScanned(n);
      const restartScanS = round((performance.now() - t0) / 1000);
      return { workload: 'sync-scale', system: 'syncthing', files: n, firstScanS, restartScanS, rssMiB: rss, rssEmptyMiB, indexMiB: round(rss - rssEmptyMiB, 1), peakMiB, listMs, filesViewMs: null };
    } finally {
      await stopChild(st);
    }
  } finally {
    await run('bash', [script, 'stop', stDir], { cwd: ANCHORS }).catch(() => undefined);
    if (argv.includes('--keep')) console.error(`syncthing data kept in ${stDir}`);
    else rmSync(stDir, { recursive: true, force: true });
  }
}

/** Runs the large-folder workload; see the module doc. */
export async function runSyncScaleBench(argv: string[]): Promise<void> {
  const n = Number(opt(argv, 'files') ?? 100_000);
  if (!Number.isInteger(n) || n < 1) throw new Error('--files needs a positive integer');
  if (!argv.includes('--no-browser') && !existsSync(join(ROOT, 'out', 'renderer', 'index.html'))) throw new Error('the console is not built: run `npm run build` first (or pass --no-browser)');
  const work = mkdtempSync(join(tmpdir(), 'sync-scale-corpus-'));
  try {
    const corpus = join(work, 'corpus');
    const bytes = await writeCorpus(corpus, n);
    console.error(`sync-scale: wrote ${n} files (${round(bytes / 2 ** 20, 1)} MiB)`);
    const ours = await clusterdesk(corpus, n, argv);
    console.log(JSON.stringify(ours));
    if (argv.includes('--no-anchor')) return;
    const theirs = await syncthing(corpus, n, argv);
    console.log(JSON.stringify(theirs));
    const r = (k: string): number | null => (typeof ours[k] === 'number' && typeof theirs[k] === 'number' && (theirs[k] as number) > 0 ? round((ours[k] as number) / (theirs[k] as number)) : null);
    console.log(JSON.stringify({ workload: 'sync-scale', system: 'ratio', firstScan_clusterdesk_over_syncthing: r('firstScanS'), restartScan_clusterdesk_over_syncthing: r('restartScanS'), index_memory_clusterdesk_over_syncthing: r('indexMiB'), list_clusterdesk_over_syncthing: r('listMs') }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
