/**
 * The hash pool outside the repository: `clusterdesk` registers tsx through its API (no
 * `--import` in execArgv), so the worker threads must get tsx's loader by absolute URL — a bare
 * `--import tsx` is resolved from the working directory and the threads die outside the repo.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { blockLayout } from './blocks';
import { Hasher, messageSizes, ownsBuffer, workerExecArgv } from './hasher';

const dir = mkdtempSync(join(tmpdir(), 'clusterdesk-hasher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Hasher', () => {
  /** Runs `new Hasher().hash(file)` in a fresh `node [nodeArgs] script` outside the repository, tsx registered by API as bin/clusterdesk.js does. */
  async function hashInChild(nodeArgs: string[], file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const api = pathToFileURL(join(createRequire(import.meta.url).resolve('tsx'), '..', 'esm', 'api', 'index.mjs')).href;
    const hasher = pathToFileURL(fileURLToPath(new URL('./hasher.ts', import.meta.url))).href;
    const script = join(dir, 'run.mjs');
    writeFileSync(
      script,
      `import { register } from ${JSON.stringify(api)};\nregister();\nconst { Hasher } = await import(${JSON.stringify(hasher)});\nconst h = new Hasher({ threads: 1 });\nconsole.log(JSON.stringify(await h.hash(${JSON.stringify(file)})));\nawait h.destroy();\n`,
    );
    return await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [...nodeArgs, script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      p.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('hashes from a working directory outside the repository (tsx registered by API, as bin/clusterdesk.js)', async () => {
    const file = join(dir, 'data.bin');
    const bytes = Buffer.from('hash me off the main thread');
    writeFileSync(file, bytes);
    const out = await hashInChild([], file);
    expect(out.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND/);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout.trim()).sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  }, 60_000);

  it('starts its threads when node was run with V8 flags (node --max-old-space-size=… bin/clusterdesk.js)', async () => {
    const file = join(dir, 'flags.bin');
    const bytes = Buffer.from('hash me with V8 flags set');
    writeFileSync(file, bytes);
    const out = await hashInChild(['--max-old-space-size=512', '--max-semi-space-size=16', '--stack-size=900', '--no-warnings'], file);
    expect(out.stderr).not.toMatch(/invalid execArgv/);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout.trim()).sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  }, 60_000);

  it('messageSizes spreads a turn over the threads even for two calls, at most maxTasks per message, every call once', () => {
    expect(messageSizes(0, 2, 32)).toEqual([]);
    expect(messageSizes(1, 2, 32)).toEqual([1]);
    expect(messageSizes(2, 2, 32)).toEqual([1, 1]); // e.g. two large files settled in the same turn
    expect(messageSizes(4, 2, 32)).toEqual([2, 2]);
    expect(messageSizes(5, 2, 32)).toEqual([3, 2]);
    expect(messageSizes(100, 2, 32)).toEqual([32, 32, 32, 4]);
    expect(messageSizes(70, 1, 64)).toEqual([64, 6]);
    for (let n = 0; n < 300; n++) {
      const sizes = messageSizes(n, 2, 32);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
      expect(sizes.every((k) => k >= 1 && k <= 32)).toBe(true);
      if (n >= 2) expect(sizes.length).toBeGreaterThanOrEqual(2);
    }
  });

  it('workerExecArgv keeps loaders and profiler options and drops V8 and per-process flags', () => {
    expect(
      workerExecArgv(['--max-old-space-size=4096', '--import', 'file:///x/loader.mjs', '--trace-gc', '--cpu-prof', '--cpu-prof-dir=/tmp/p', '--stack-size=900', '--require=./r.cjs', '-r', './s.cjs', '--conditions', 'dev', '--title=x', '--enable-source-maps']),
    ).toEqual(['--import', 'file:///x/loader.mjs', '--cpu-prof', '--cpu-prof-dir=/tmp/p', '--require=./r.cjs', '-r', './s.cjs', '--conditions', 'dev', '--enable-source-maps']);
    // A value-taking option at the end, without its value, is dropped rather than misread.
    expect(workerExecArgv(['--import'])).toEqual([]);
    expect(workerExecArgv([])).toEqual([]);
  });

  it('scanFile: lstat checks and the hash of one folder file in one task (missing, symlink, symlinked parent, known, settling, hashed)', async () => {
    const h = new Hasher({ threads: 1 });
    try {
      const root = join(dir, 'scan');
      mkdirSync(join(root, 'sub'), { recursive: true });
      symlinkSync(join(root, 'sub'), join(root, 'link'));
      const file = join(root, 'sub', 'a.txt');
      writeFileSync(file, 'abc');
      const old = new Date(Date.now() - 60_000);
      utimesSync(file, old, old);
      const mtimeMs = lstatSync(file).mtimeMs;
      const base = { smallFile: 1 << 20, settleSmallMs: 20, settleMs: 150 };
      expect(await h.scanFile({ ...base, path: join(root, 'sub', 'none.txt'), parents: [join(root, 'sub')] })).toEqual({ kind: 'missing' });
      expect(await h.scanFile({ ...base, path: join(root, 'gone', 'x.txt'), parents: [join(root, 'gone')] })).toEqual({ kind: 'missing' });
      expect(await h.scanFile({ ...base, path: join(root, 'link'), parents: [] })).toEqual({ kind: 'symlink' });
      expect(await h.scanFile({ ...base, path: join(root, 'sub'), parents: [] })).toEqual({ kind: 'notFile' });
      expect(await h.scanFile({ ...base, path: join(root, 'link', 'a.txt'), parents: [join(root, 'link')] })).toEqual({ kind: 'symlinkParent', dir: join(root, 'link') });
      const hashed = await h.scanFile({ ...base, path: file, parents: [join(root, 'sub')] });
      const sha = createHash('sha256').update('abc').digest('hex');
      expect(hashed).toEqual({ kind: 'hashed', hash: { sha256: sha, size: 3, mtimeMs, blocks: [sha] }, size: 3, mtimeMs, stable: true });
      // Same size and mtime as already hashed: not read again.
      expect(await h.scanFile({ ...base, path: file, parents: [], known: { size: 3, mtimeMs } })).toEqual({ kind: 'stat', size: 3, mtimeMs });
      // statOnly: never hashed, whatever `known` says.
      expect(await h.scanFile({ ...base, path: file, parents: [], statOnly: true })).toEqual({ kind: 'stat', size: 3, mtimeMs });
      // Modified just now: not hashed before it settles.
      writeFileSync(file, 'abcd');
      expect(await h.scanFile({ ...base, settleSmallMs: 60_000, path: file, parents: [], known: { size: 3, mtimeMs } })).toMatchObject({ kind: 'stat', size: 4 });
    } finally {
      await h.destroy();
    }
  });

  it("a write's verified blocks also land in the other files waiting for them (existing files only; a block that fails its hash nowhere)", async () => {
    const h = new Hasher({ threads: 1 });
    try {
      const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
      const good = new Uint8Array(Buffer.alloc(64 << 10, 7));
      const bad = new Uint8Array(Buffer.alloc(64 << 10, 9));
      const waiting = join(dir, 'waiting.part');
      writeFileSync(waiting, Buffer.alloc(192 << 10)); // a partial file of three blocks, all zero
      const gone = join(dir, 'gone.part');
      const r = await h.writeBlocksFinish(
        join(dir, 'fetching.part'),
        [
          { offset: 0, hash: sha(good), data: good },
          { offset: 64 << 10, hash: sha(good), data: bad }, // does not hash to what was asked
        ],
        undefined,
        [
          { item: 0, dest: waiting, offset: 128 << 10 },
          { item: 1, dest: waiting, offset: 0 },
          { item: 0, dest: gone, offset: 0 },
        ],
      );
      expect(r.ok).toEqual([true, false]);
      expect(r.alsoOk).toEqual([true, false, false]);
      const w = readFileSync(waiting);
      expect(w.length).toBe(192 << 10);
      expect(w.subarray(128 << 10).equals(Buffer.alloc(64 << 10, 7))).toBe(true); // (good itself went to the worker)
      expect(w.subarray(0, 128 << 10).equals(Buffer.alloc(128 << 10))).toBe(true); // the bad block was written nowhere
      expect(() => lstatSync(gone)).toThrow(/ENOENT/); // never created
    } finally {
      await h.destroy();
    }
  });

  it('small writes made in one turn share a worker task, each verified, finished and failing on its own', async () => {
    const h = new Hasher({ threads: 1 });
    try {
      const bodies = Array.from({ length: 70 }, (_, i) => Buffer.from(`file ${i} `.repeat(i + 1)));
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      const mtimeMs = Date.UTC(2024, 0, 2, 3, 4, 5);
      const calls = bodies.map((b, i) =>
        h.writeBlocksFinish(join(dir, `w${i}.bin`), [{ offset: 0, hash: i === 5 ? sha(Buffer.from('other bytes')) : sha(b), data: new Uint8Array(b) }], { mtimeMs }),
      );
      // A destination that cannot be created fails only its own write.
      const bad = h.writeBlocksFinish(join(dir, 'no-such-dir', 'x.bin'), [{ offset: 0, hash: sha(bodies[0]!), data: new Uint8Array(bodies[0]!) }]);
      await expect(bad).rejects.toMatchObject({ code: 'ENOENT' });
      const results = await Promise.all(calls);
      results.forEach((r, i) => {
        if (i === 5) {
          expect(r.ok).toEqual([false]); // hash mismatch: not written, not finished
          expect(r.finished).toBeUndefined();
          return;
        }
        expect(r.ok).toEqual([true]);
        expect(r.finished).toEqual({ size: bodies[i]!.length, mtimeMs });
        expect(readFileSync(join(dir, `w${i}.bin`)).equals(bodies[i]!)).toBe(true);
        expect(statSync(join(dir, `w${i}.bin`)).mtimeMs).toBe(mtimeMs);
      });
    } finally {
      await h.destroy();
    }
  }, 60_000);

  it('hands a block that owns its buffer to the worker without a copy; copies views into shared buffers', async () => {
    const h = new Hasher({ threads: 1 });
    try {
      const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
      // A 128 KiB block alone in its buffer but for a 10-byte header (a gRPC reply of its own).
      const frame = new Uint8Array(10 + (128 << 10)).map((_, i) => (i * 7) % 251);
      const own = frame.subarray(10);
      const ownHash = sha(own);
      // Two 96 KiB blocks sharing one buffer: each is only half of it.
      const shared = new Uint8Array(192 << 10).map((_, i) => (i * 13) % 253);
      const [s1, s2] = [shared.subarray(0, 96 << 10), shared.subarray(96 << 10)];
      const [h1, h2] = [sha(s1), sha(s2)];
      expect([ownsBuffer(own), ownsBuffer(s1), ownsBuffer(Buffer.from('small'))]).toEqual([true, false, false]);
      const r = await h.writeBlocksFinish(join(dir, 'own.bin'), [
        { offset: 0, hash: ownHash, data: own },
        { offset: 128 << 10, hash: h1, data: s1 },
        { offset: (128 + 96) << 10, hash: h2, data: s2 },
      ]);
      expect(r.ok).toEqual([true, true, true]);
      expect(frame.buffer.byteLength).toBe(0); // transferred (detached here), not copied
      expect(shared.byteLength).toBe(192 << 10); // copied: the shared buffer stays usable
      const got = readFileSync(join(dir, 'own.bin'));
      expect(sha(got.subarray(0, 128 << 10))).toBe(ownHash);
      expect(sha(got.subarray(128 << 10, (128 + 96) << 10))).toBe(h1);
      expect(sha(got.subarray((128 + 96) << 10))).toBe(h2);
    } finally {
      await h.destroy();
    }
  }, 60_000);
  it('one thread reading files and blocks of many sizes through its one read buffer gives each its own bytes', async () => {
    // One thread: every read below goes through the same scratch buffer, which grows (128 KiB + 1
    // for a one-block file, 1 MiB chunks, a 2 MiB block) and is read short at each file's end.
    const h = new Hasher({ threads: 1 });
    try {
      const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
      const sizes = { empty: 0, tiny: 5, oneBlock: 128 << 10, overOne: (128 << 10) + 1, chunks: (3 << 20) + 7, big: (9 << 20) + 3 };
      const files = Object.entries(sizes).map(([name, size], k) => {
        const bytes = Buffer.alloc(size).map((_, i) => (i * (k + 3) + k) % 251);
        const path = join(dir, `scratch-${name}.bin`);
        writeFileSync(path, bytes);
        return { name, path, bytes, blocks: blockLayout(size).map((b) => sha(bytes.subarray(b.offset, b.offset + b.size))) };
      });
      // Largest first, then smallest: a stale longer read must not leak into a shorter one.
      for (const f of [...files].reverse().concat(files)) {
        const r = await h.hash(f.path);
        expect({ name: f.name, sha256: r.sha256, size: r.size, blocks: r.blocks }).toEqual({ name: f.name, sha256: sha(f.bytes), size: f.bytes.length, blocks: f.blocks });
      }
      // Blocks of different sizes copied through the same buffer, one with a wrong hash (skipped).
      const big = files.find((f) => f.name === 'big')!;
      const chunks = files.find((f) => f.name === 'chunks')!;
      const dest = join(dir, 'scratch-dest.bin');
      writeFileSync(dest, Buffer.alloc(4 << 20));
      const items = [
        { srcOffset: 1 << 20, destOffset: 0, size: 2 << 20, hash: sha(big.bytes.subarray(1 << 20, 3 << 20)) },
        { srcOffset: 5, destOffset: 2 << 20, size: 100, hash: sha(big.bytes.subarray(5, 105)) },
        { srcOffset: 0, destOffset: 3 << 20, size: 1000, hash: sha(chunks.bytes.subarray(0, 1000)) }, // not big's bytes
      ];
      expect(await h.copyBlocks(big.path, dest, items)).toEqual([true, true, false]);
      const out = readFileSync(dest);
      expect(out.subarray(0, 2 << 20).equals(big.bytes.subarray(1 << 20, 3 << 20))).toBe(true);
      expect(out.subarray(2 << 20, (2 << 20) + 100).equals(big.bytes.subarray(5, 105))).toBe(true);
      expect(out.subarray(3 << 20, (3 << 20) + 1000).every((b) => b === 0)).toBe(true); // not written
      const check = [items[0]!, items[1]!].map((it) => ({ offset: it.destOffset, size: it.size, hash: it.hash }));
      expect(await h.checkBlocks(dest, [...check, { offset: 3 << 20, size: 1000, hash: items[2]!.hash }])).toEqual([true, true, false]);
    } finally {
      await h.destroy();
    }
  }, 60_000);
});
