/**
 * A full disk, for real: node C's data directory is a 1 MiB tmpfs that the test fills up while the
 * cluster writes. C must stop its Raft store with a StorageError (ENOSPC) and a log line, never
 * acknowledge what its disk does not hold, and not take the process down; A and B keep committing.
 * After space is freed, a restarted C recovers its WAL (a torn tail is truncated, no corruption
 * error) and catches up with every write.
 *
 * Needs root to mount the tmpfs; skipped, with the reason, elsewhere.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../common/errors';
import type { Logger } from '../common/logger';
import { EmbeddedKv } from './embedded-kv';
import { MemoryTransport } from './testing/memory-transport';
import { waitFor } from './testing/wait-for';

const VOTERS = ['A', 'B', 'C'];

function tmpfsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'tmpfs mounts are Linux-only';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = mkdtempSync(join(tmpdir(), 'cd-tmpfs-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { encoding: 'utf8' });
    if (r.status !== 0) return `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
    spawnSync('umount', [probe]);
    return null;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const skip = tmpfsUnavailable();


/** A logger that records error lines (the rest is dropped). */
function recordingLogger(lines: Array<Record<string, unknown>>): Logger {
  const l: Logger = {
    child: () => l,
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (obj: unknown, msg?: string) => void lines.push({ ...(typeof obj === 'object' ? (obj as object) : {}), msg }),
  } as unknown as Logger;
  return l;
}

describe.skipIf(skip !== null)(`EmbeddedKv on a full disk${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cd-diskfull-'));
  const small = join(dir, 'small');
  const nodes: EmbeddedKv[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.stop();
    spawnSync('umount', [small]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops only the full node, with a StorageError; after space is freed it restarts and catches up', async () => {
    mkdirSync(small);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
    expect(m.status, m.stderr).toBe(0);
    const hub = new MemoryTransport(7);
    const errorsC: Array<Record<string, unknown>> = [];
    const make = (id: string): EmbeddedKv => {
      const kv = new EmbeddedKv({
        id,
        voters: VOTERS,
        learners: [],
        dataDir: id === 'C' ? join(small, 'C') : join(dir, id),
        transport: hub.transport(id),
        clusterId: 'disk-full',
        tickMs: 10,
        preferred: id === 'A',
        seed: `df/${id}`,
        requestTimeoutMs: 10_000,
        // C preallocates its WAL in 16 KiB steps (the default 4 MiB would take the whole tmpfs up
        // front): the disk fills when an extension, then a record write, runs out of space.
        ...(id === 'C' ? { logger: recordingLogger(errorsC), walPreallocateBytes: 16 << 10 } : {}),
      });
      nodes.push(kv);
      return kv;
    };
    const [A, B] = [make('A'), make('B')];
    let C = make('C');
    await Promise.all([A.start(), B.start(), C.start()]);
    await waitFor('A leads', () => A.status().role === 'leader');
    await A.put('k/000', 'before');
    await waitFor('C has k/000', async () => (await C.range('k/000', { serializable: true })).kvs.length === 1);

    // Fill C's disk to within 8 KiB.
    const fs = statfsSync(small);
    writeFileSync(join(small, 'filler'), Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - 8192)));

    const value = 'v'.repeat(1024);
    const acked: string[] = [];
    for (let i = 1; i <= 60; i++) {
      const key = `k/${String(i).padStart(3, '0')}`;
      await A.put(key, value); // A and B are a quorum: every write commits
      acked.push(key);
    }
    expect(acked).toHaveLength(60);

    // C stopped its store with a typed error and said why; the process (this test) lives on.
    const err = await waitFor('C refuses with a StorageError', async () => {
      try {
        await C.put('k/from-c', 'x');
        return false;
      } catch (e) {
        return e instanceof StorageError ? e : false;
      }
    });
    expect(err.code).toBe('ESTORAGE');
    expect(err.detail).toMatchObject({ errno: 'ENOSPC' });
    expect(err.message).toMatch(/disk is full.*free space and restart/);
    expect(errorsC.some((l) => l.code === 'ESTORAGE' && l.errno === 'ENOSPC')).toBe(true);
    expect((await A.range('k/from-c')).kvs).toHaveLength(0);

    // Free space, restart C on the same data directory: the WAL opens (torn tail cut) and C catches up.
    rmSync(join(small, 'filler'));
    await C.stop();
    C = make('C');
    await C.start();
    await waitFor('C caught up', async () => (await C.range('k/', { prefix: true, serializable: true })).kvs.length === 61);
    const fromC = await C.range('k/', { prefix: true, serializable: true });
    const fromA = await A.range('k/', { prefix: true });
    expect(fromC.kvs.map((kv) => [kv.key, kv.value, kv.modRevision])).toEqual(fromA.kvs.map((kv) => [kv.key, kv.value, kv.modRevision]));
    await C.put('k/after', 'written through C');
    expect((await A.range('k/after')).kvs[0]?.value).toBe('written through C');
  }, 120_000);
});
