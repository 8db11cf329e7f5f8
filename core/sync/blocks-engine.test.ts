/**
 * Block-level transfer between real engines on real folders: only changed blocks move, renames
 * move nothing, corrupt blocks are rejected and fetched again, interrupted transfers resume.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import type { Logger } from '../common/logger';
import { blockLayout, decodeManifest, encodeManifest } from './blocks';
import { FILES_PREFIX, type IndexRecord } from './engine';
import { SyncTestCluster, waitFor } from './testing/cluster';

const KiB = 1024;
const BS = 128 * KiB;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function sameBytes(path: string, expected: Buffer): Promise<boolean> {
  try {
    return (await readFile(path)).equals(expected);
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

interface Logged {
  level: string;
  msg: string;
  o: Record<string, unknown>;
}

/** A logger that records every line (for asserting the typed errors the engine logs). */
function capture(lines: Logged[]): Logger {
  const at =
    (level: string) =>
    (o: unknown, m?: string): void => {
      lines.push(typeof o === 'string' ? { level, msg: o, o: {} } : { level, msg: m ?? '', o: o as Record<string, unknown> });
    };
  const l: Logger = { debug: () => {}, info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}

function blockHashes(buf: Buffer): string[] {
  return blockLayout(buf.length).map((b) => sha(buf.subarray(b.offset, b.offset + b.size)));
}

describe('block transfer (two engines, one MemoryKv)', () => {
  let c: SyncTestCluster;
  let logB: Logged[];

  beforeEach(async () => {
    c = await SyncTestCluster.create();
    logB = [];
    c.addNode('A');
    c.addNode('B', { logger: capture(logB) });
    for (const n of c.nodes.values()) await n.engine.start();
  });
  afterEach(async () => {
    await c.dispose();
  });

  it('a one-block change in a multi-block file fetches only that block; the rest is copied from the old version', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const v1 = randomBytes(16 * BS + 1000); // 17 blocks
    await writeFile(join(A.folder, 'big.bin'), v1);
    await waitFor('big.bin at B', () => sameBytes(join(B.folder, 'big.bin'), v1));
    expect(c.net.blockBytes()).toBe(v1.length);

    // The index record is small: the block list is a manifest object referenced by hash.
    const kv = (await c.kv.range(FILES_PREFIX + 'big.bin')).kvs[0]!;
    const rec = JSON.parse(kv.value) as IndexRecord;
    expect(kv.value.length).toBeLessThan(400);
    expect(rec.manifest).toMatch(/^[0-9a-f]{64}$/);
    const manifest = await readFile(A.engine.objects.pathOf(rec.manifest!), 'utf8');
    expect(sha(Buffer.from(manifest))).toBe(rec.manifest);
    expect(decodeManifest(manifest, v1.length).map((b) => b.hash)).toEqual(blockHashes(v1));

    const fetchedBefore = c.net.blockBytes();
    const copiedBefore = B.engine.transferStats.copiedBytes;
    const v2 = Buffer.from(v1);
    v2.fill(7, 5 * BS + 100, 5 * BS + 200); // change block 5 only
    await writeFile(join(A.folder, 'big.bin'), v2);
    await waitFor('v2 at B', () => sameBytes(join(B.folder, 'big.bin'), v2));
    expect(c.net.blockBytes() - fetchedBefore).toBe(BS);
    expect(c.net.blockFetches.slice(-1)[0]).toMatchObject({ hash: blockHashes(v2)[5], from: 'A', bytes: BS });
    expect(B.engine.transferStats.copiedBytes - copiedBefore).toBe(v2.length - BS);
    // Every block delivered was handed back once, after it was written (the fetcher scribbles over
    // a handed-back block: the file above would not match otherwise).
    expect([c.net.released, c.net.releasedTwice]).toEqual([c.net.blockFetches.length, 0]);

    // Serving side: blocks by hash only; malformed or path-like hashes are a ValidationError.
    expect(Buffer.from((await A.engine.readBlock(blockHashes(v2)[5]!))!).equals(v2.subarray(5 * BS, 6 * BS))).toBe(true);
    // With room for GetBlocks' framing: the same bytes, alone in a buffer with that room before them.
    const roomy = (await A.engine.readBlock(blockHashes(v2)[5]!, 16))!;
    expect(Buffer.from(roomy).equals(v2.subarray(5 * BS, 6 * BS))).toBe(true);
    expect([roomy.byteOffset, roomy.buffer.byteLength]).toEqual([16, 16 + BS]);
    // Handed back once sent, a full block's buffer is read into again (once: a second hand-back is ignored).
    const reused = A.engine.servedBlockBuffersReused;
    A.engine.releaseBlock(roomy);
    A.engine.releaseBlock(roomy);
    const next = (await A.engine.readBlock(blockHashes(v2)[6]!, 16))!;
    const other = (await A.engine.readBlock(blockHashes(v2)[7]!, 16))!;
    expect(next.buffer).toBe(roomy.buffer);
    expect(other.buffer).not.toBe(roomy.buffer);
    expect(A.engine.servedBlockBuffersReused - reused).toBe(1);
    expect(Buffer.from(next).equals(v2.subarray(6 * BS, 7 * BS))).toBe(true);
    expect(Buffer.from(other).equals(v2.subarray(7 * BS, 8 * BS))).toBe(true);
    await expect(A.engine.readBlock(blockHashes(v2)[5]!, -1)).rejects.toBeInstanceOf(ValidationError);
    await expect(A.engine.readBlock(blockHashes(v2)[5]!, 1e9)).rejects.toBeInstanceOf(ValidationError);
    expect(await A.engine.readBlock(blockHashes(v1)[5]!)).toBeNull(); // the old block is gone
    await expect(A.engine.readBlock('../../etc/passwd')).rejects.toBeInstanceOf(ValidationError);
  });

  it('a file of up to 8 blocks carries its block list in the record: no manifest object, no round trip for it; a list that is not the named manifest is refused', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const doc = randomBytes(2 * BS + 500); // 3 blocks
    await writeFile(join(A.folder, 'doc.bin'), doc);
    await waitFor('doc.bin at B', () => sameBytes(join(B.folder, 'doc.bin'), doc));
    const rec = JSON.parse((await c.kv.range(FILES_PREFIX + 'doc.bin')).kvs[0]!.value) as IndexRecord;
    expect(rec.blocks).toEqual(blockHashes(doc));
    expect(rec.manifest).toBe(sha(Buffer.from(encodeManifest(doc.length, blockHashes(doc)))));
    expect(A.engine.objects.has(rec.manifest!)).toBe(false); // not stored: the record is the manifest
    expect(B.engine.objects.has(rec.manifest!)).toBe(false);
    expect(c.net.fetches).toEqual([]); // no object fetched: the blocks alone crossed
    expect(c.net.blockBytes()).toBe(doc.length);
    // B offers the blocks of what it received (a third node could fetch them from B).
    expect(Buffer.from((await B.engine.readBlock(blockHashes(doc)[1]!))!).equals(doc.subarray(BS, 2 * BS))).toBe(true);

    // A record whose list is not the manifest it names (a hostile or broken writer): refused, nothing written.
    const other = randomBytes(2 * BS + 500);
    const forged = { ...rec, path: 'forged.bin', sha256: sha(other), blocks: blockHashes(other), version: 1 };
    await c.kv.put(FILES_PREFIX + 'forged.bin', JSON.stringify(forged));
    await waitFor('B refuses forged.bin', () => logB.some((l) => String(l.o.err ?? '').includes('its block list is not the manifest')));
    expect(await exists(join(B.folder, 'forged.bin'))).toBe(false);
  });

  it('a rename or move transfers no bytes (the content is copied locally)', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const big = randomBytes(6 * BS + 3);
    const small = randomBytes(1000);
    await writeFile(join(A.folder, 'big.bin'), big);
    await writeFile(join(A.folder, 'small.txt'), small);
    await waitFor('files at B', async () => (await sameBytes(join(B.folder, 'big.bin'), big)) && sameBytes(join(B.folder, 'small.txt'), small));
    const bytesBefore = c.net.blockBytes();
    const objectsBefore = c.net.fetches.length;

    await mkdir(join(A.folder, 'moved'), { recursive: true });
    await rename(join(A.folder, 'big.bin'), join(A.folder, 'moved', 'big.bin'));
    await rename(join(A.folder, 'small.txt'), join(A.folder, 'moved', 'small.txt'));
    await waitFor('renames at B', async () => {
      if (!(await sameBytes(join(B.folder, 'moved', 'big.bin'), big))) return false;
      if (!(await sameBytes(join(B.folder, 'moved', 'small.txt'), small))) return false;
      return !(await exists(join(B.folder, 'big.bin'))) && !(await exists(join(B.folder, 'small.txt')));
    });
    expect(c.net.blockBytes()).toBe(bytesBefore);
    expect(c.net.fetches.length).toBe(objectsBefore);
  });

  it('the same content under several new names crosses the network once', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const data = randomBytes(6 * BS + 99);
    const before = c.net.blockBytes();
    await Promise.all(['x1.bin', 'x2.bin', 'x3.bin'].map((n) => writeFile(join(A.folder, n), data)));
    await waitFor('copies at B', async () => {
      for (const n of ['x1.bin', 'x2.bin', 'x3.bin']) if (!(await sameBytes(join(B.folder, n), data))) return false;
      return true;
    });
    expect(c.net.blockBytes() - before).toBe(data.length);
  });

  it('files sharing blocks, received together: each block is fetched once and written into every waiting file as it lands (nothing read back)', async () => {
    const A = c.node('A');
    const B = c.node('B');
    // Three 12-block files: the same 11 blocks after a first block of their own.
    const common = randomBytes(11 * BS);
    const files = ['s1.bin', 's2.bin', 's3.bin'].map((n) => ({ n, data: Buffer.concat([randomBytes(BS), common]) }));
    B.kv.holdWatches(); // B hears of all three in one go
    await Promise.all(files.map((f) => writeFile(join(A.folder, f.n), f.data)));
    await waitFor('A committed the three files', async () => (await c.kv.range(FILES_PREFIX, { prefix: true })).kvs.filter((kv) => /s\d\.bin$/.test(kv.key)).length === 3);
    let open!: () => void;
    c.net.gate = new Promise<void>((r) => (open = r));
    const before = { net: c.net.blockBytes(), shared: B.engine.transferStats.sharedWriteBytes, copied: B.engine.transferStats.copiedBytes };
    B.kv.releaseWatches();
    // One transfer claims the 11 common blocks and waits at the gate; the other two wait for them.
    await waitFor('two files wait for the 11 common blocks', () => B.engine.sharedWritesWaiting === 22);
    open();
    c.net.gate = null;
    await waitFor('the three files at B', async () => {
      for (const f of files) if (!(await sameBytes(join(B.folder, f.n), f.data))) return false;
      return true;
    });
    expect(c.net.blockBytes() - before.net).toBe(14 * BS); // 3 first blocks + 11 common ones, once
    expect(B.engine.transferStats.sharedWriteBytes - before.shared).toBe(22 * BS);
    expect(B.engine.transferStats.copiedBytes - before.copied).toBe(0);
    expect(B.engine.sharedWritesWaiting).toBe(0);
    expect(c.net.releasedTwice).toBe(0);
  });

  it('still applies a record written before block manifests (whole object from a peer store)', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const data = randomBytes(3 * BS + 5);
    const src = join(c.root, 'legacy-src.bin');
    await writeFile(src, data);
    await A.engine.objects.putFile(src, sha(data));
    const legacy: IndexRecord = { path: 'legacy.bin', size: data.length, sha256: sha(data), version: 1, deleted: false, modifiedBy: 'A', modifiedAt: Date.now() };
    await c.kv.put(FILES_PREFIX + 'legacy.bin', JSON.stringify(legacy));
    await waitFor('legacy.bin at A and B', async () => (await sameBytes(join(A.folder, 'legacy.bin'), data)) && sameBytes(join(B.folder, 'legacy.bin'), data));
    expect(c.net.fetches.some((f) => f.sha256 === sha(data) && f.from === 'A')).toBe(true);
    await waitFor('backlogs drain', () => A.engine.backlog() === 0 && B.engine.backlog() === 0);
    expect(logB.filter((l) => l.msg.includes('will retry') && l.o.path === 'legacy.bin')).toEqual([]);
  });

  it('rejects a corrupt block from a peer with BlockVerifyError and fetches it again; never writes bad bytes', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const data = randomBytes(4 * BS + 10);
    const target = blockHashes(data)[2]!;
    let corruptions = 2;
    c.net.tamper = (_from, hash, bytes) => {
      if (hash !== target || corruptions === 0) return bytes;
      corruptions--;
      const bad = Buffer.from(bytes);
      bad[17] = (bad[17]! + 1) & 0xff;
      return bad;
    };
    await writeFile(join(A.folder, 'c.bin'), data);
    await waitFor('c.bin at B', () => sameBytes(join(B.folder, 'c.bin'), data));
    expect(corruptions).toBe(0);
    expect(B.engine.transferStats.rejectedBlocks).toBe(2);
    const rejected = logB.filter((l) => l.msg.includes('rejected a corrupt block'));
    expect(rejected.length).toBe(2);
    expect(rejected[0]!.o).toMatchObject({ name: 'BlockVerifyError', code: 'EINVAL', hash: target, source: 'A' });

    // A peer that always corrupts a block: the path fails with BlockVerifyError (retried with
    // backoff), the file never appears with bad bytes, and it arrives once the peer is honest.
    const data2 = randomBytes(3 * BS + 10);
    const target2 = blockHashes(data2)[1]!;
    c.net.tamper = (_from, hash, bytes) => (hash === target2 ? Buffer.alloc(bytes.length, 1) : bytes);
    await writeFile(join(A.folder, 'd.bin'), data2);
    await waitFor('d.bin failed at B', () => logB.some((l) => l.msg.includes('will retry') && l.o.path === 'd.bin' && l.o.name === 'BlockVerifyError'));
    expect(await exists(join(B.folder, 'd.bin'))).toBe(false);
    c.net.tamper = null;
    await waitFor('d.bin at B', () => sameBytes(join(B.folder, 'd.bin'), data2), 30_000);
  });

  it('an interrupted transfer resumes after a restart: verified blocks in the partial file are reused', async () => {
    const A = c.node('A');
    const data = randomBytes(16 * BS + 1000); // 17 blocks
    const hashes = blockHashes(data);
    const odd = new Set(hashes.filter((_, i) => i % 2 === 1));
    c.net.tamper = (_from, hash, bytes) => (odd.has(hash) ? Buffer.alloc(bytes.length) : bytes);
    await writeFile(join(A.folder, 'r.bin'), data);
    await waitFor('first attempt failed at B', () => logB.some((l) => l.msg.includes('will retry') && l.o.path === 'r.bin'));
    await c.node('B').engine.stop();
    expect(await exists(join(c.node('B').folder, 'r.bin'))).toBe(false);

    c.net.tamper = null;
    const before = c.net.blockBytes();
    const B2 = c.addNode('B', { logger: capture(logB) });
    await B2.engine.start();
    await waitFor('r.bin at B after restart', () => sameBytes(join(B2.folder, 'r.bin'), data));
    const oddBytes = 8 * BS; // blocks 1, 3, …, 15
    expect(c.net.blockBytes() - before).toBe(oddBytes);
    expect(B2.engine.transferStats.resumedBytes).toBe(data.length - oddBytes);
  });
});
