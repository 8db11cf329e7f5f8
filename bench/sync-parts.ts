/**
 * `npm run bench -- sync-parts [--parts large,mid,small] [--keep]`: the three parts of
 * sync-bulk's corpus (`../shared/anchors/bench-sync.mjs`), each copied on its own into node A's
 * folder of a two-node ClusterDesk pair (as `npm run bench -- sync` starts it), timed until node B
 * holds every file with the same bytes. One JSON line per part, with the CPU seconds each node
 * spent on it. No anchor: this splits sync-bulk's time so a change to one path (many small files,
 * files of a few blocks, large files sharing blocks) can be measured without the rest's noise.
 *
 * The parts, generated with the anchor's recipe (SHA-256 counter streams, the same seeds):
 * - large: 4 × 64 MiB sharing all but their first 4 KiB (one 64 MiB transfer, the rest copied locally);
 * - mid: 200 × 256 KiB (two blocks each);
 * - small: 5,000 × 4 KiB in 50 folders.
 * A part counts as arrived when every file has its size on B (checked every 20 ms); the bytes are
 * compared afterwards, outside the timing, and a mismatch fails the run.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { opt, startClusterDesk } from './sync';

type Part = 'large' | 'mid' | 'small';
const PARTS: Part[] = ['large', 'mid', 'small'];

/** The anchor's deterministic bytes: a SHA-256 counter stream of `seed`. */
function det(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (let n = 0; off < size; n++) off += createHash('sha256').update(`${seed}:${n}`).digest().copy(out, off);
  return out;
}

/** The files of one part: [path, size, seed], as the anchor's corpus has them. */
function filesOf(part: Part): [string, number, string][] {
  if (part === 'large') return Array.from({ length: 4 }, (_, i) => [`large/l${i}.bin`, 64 << 20, `l${i}`]);
  if (part === 'mid') return Array.from({ length: 200 }, (_, i) => [`mid/m${i}.bin`, 256 << 10, `m${i}`]);
  return Array.from({ length: 5000 }, (_, i) => [`small/d${i % 50}/f${i}.txt`, 4096, `s${i}`]);
}

/** Writes `part` under `dir` (once; kept in the temp dir for later runs). */
async function makePart(dir: string, part: Part): Promise<void> {
  const big = part === 'large' ? det('big', 64 << 20) : null;
  for (const [p, size, seed] of filesOf(part)) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), big ? Buffer.concat([det(seed, 4096), big.subarray(4096)]) : det(seed, size));
  }
  await writeFile(join(dir, `.done-${part}`), '');
}

/** Runs the parts; see the module doc. */
export async function runSyncPartsBench(argv: string[]): Promise<void> {
  const parts = (opt(argv, 'parts') ?? PARTS.join(',')).split(',') as Part[];
  for (const p of parts) if (!PARTS.includes(p)) throw new Error(`sync-parts: unknown part "${p}" (known: ${PARTS.join(', ')})`);
  const corpus = join(tmpdir(), 'clusterdesk-sync-parts');
  for (const p of parts) {
    if (!(await stat(join(corpus, `.done-${p}`)).catch(() => null))) await makePart(corpus, p);
  }
  const pair = await startClusterDesk(argv.includes('--keep'));
  try {
    for (const part of parts) {
      const files = filesOf(part);
      const before = pair.cpu();
      const t = performance.now();
      await cp(join(corpus, part), join(pair.folderA, part), { recursive: true });
      const copyS = (performance.now() - t) / 1000;
      const deadline = Date.now() + 600_000;
      for (;;) {
        let have = 0;
        for (const [p, size] of files) if ((await stat(join(pair.folderB, p)).catch(() => null))?.size === size) have++;
        if (have === files.length) break;
        if (Date.now() > deadline) throw new Error(`sync-parts: ${part} did not arrive within 600 s (${have}/${files.length})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const seconds = (performance.now() - t) / 1000;
      const after = pair.cpu();
      for (const [p] of files) {
        const [a, b] = await Promise.all([readFile(join(pair.folderA, p)), readFile(join(pair.folderB, p))]);
        if (!a.equals(b)) throw new Error(`sync-parts: ${p} differs between A and B`);
      }
      const cpuS: Record<string, number> = {};
      for (const id of Object.keys(after)) cpuS[id] = +(after[id]! - (before[id] ?? 0)).toFixed(2);
      const mib = +(files.reduce((n, [, size]) => n + size, 0) / 2 ** 20).toFixed(1);
      console.log(JSON.stringify({ workload: 'sync-parts', system: 'clusterdesk', part, files: files.length, mib, copyS: +copyS.toFixed(2), seconds: +seconds.toFixed(2), cpuS }));
      // Remove the part and wait for the deletes to reach B, so they do not count in the next part.
      await rm(join(pair.folderA, part), { recursive: true, force: true });
      for (;;) {
        let left = 0;
        for (const [p] of files) if (await stat(join(pair.folderB, p)).catch(() => null)) left++;
        if (left === 0) break;
        if (Date.now() > deadline) throw new Error(`sync-parts: the deletes of ${part} did not reach B (${left} left)`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await pair.stop();
  }
}
