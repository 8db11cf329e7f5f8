import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockConflictError, NotFoundError, PathError, ValidationError } from '../common/errors';
import type { LockInfo } from '../control/api';
import { FILES_PREFIX, LOCKS_PREFIX, type IndexRecord } from './engine';
import { HISTORY_KEEP, HISTORY_PREFIX } from './history';
import { LOCK_HISTORY_KEEP, LOCK_HISTORY_PREFIX, LockManager } from '../locks/lock-manager';
import { conflictCopyName } from './paths';
import { SyncTestCluster, waitFor, type TestNode } from './testing/cluster';
import { parseVersionId, VersionStore, versionStamp } from './versions';

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

async function record(c: SyncTestCluster, path: string): Promise<IndexRecord | null> {
  const kv = (await c.kv.range(FILES_PREFIX + path)).kvs[0];
  return kv ? (JSON.parse(kv.value) as IndexRecord) : null;
}

/** Writes `text` to `path` in `from`'s folder and waits until `to`'s folder holds it. */
async function writeSynced(from: TestNode, to: TestNode, path: string, text: string): Promise<void> {
  await writeFile(join(from.folder, path), text);
  await waitFor(`${path} = ${JSON.stringify(text)} at ${to.id}`, async () => (await readOrNull(join(to.folder, path))) === text);
}

describe('ignores, symlinks, kept versions, history, conflicts (real folders)', () => {
  let c: SyncTestCluster;

  beforeEach(async () => {
    c = await SyncTestCluster.create();
    for (const id of ['A', 'B']) c.addNode(id, { versioning: { keep: 3, maxAgeDays: 30 } });
    for (const n of c.nodes.values()) await n.engine.start();
  });
  afterEach(async () => {
    await c.dispose();
  });

  it('never commits built-in or .clusterdeskignore-d paths, reloads the file, and does not overwrite ignored paths from remote', async () => {
    const A = c.node('A');
    const B = c.node('B');
    await writeFile(join(A.folder, '.clusterdeskignore'), '# build output\nbuild/\n*.log\n');
    await waitFor('ignore file synced to B', async () => (await readOrNull(join(B.folder, '.clusterdeskignore'))) !== null);
    await mkdir(join(A.folder, 'build'), { recursive: true });
    for (const name of ['build/out.bin', 'debug.log', 'notes.txt~', '.notes.txt.swp', '.#notes.txt', '4913', 'Desktop.ini', '._notes.txt', 'x.tmp', '~$report.docx']) {
      await writeFile(join(A.folder, name), 'ignored');
    }
    await writeFile(join(A.folder, 'notes.txt'), 'synced');
    await waitFor('notes.txt committed', async () => (await record(c, 'notes.txt')) !== null);
    await A.engine.rescan();
    await A.engine.idle();
    const keys = (await c.kv.range(FILES_PREFIX, { prefix: true })).kvs.map((kv) => kv.key.slice(FILES_PREFIX.length)).sort();
    expect(keys).toEqual(['.clusterdeskignore', 'notes.txt']);

    // Removing a pattern from the file (at A) un-ignores its paths: they get committed.
    await writeFile(join(A.folder, '.clusterdeskignore'), 'build/\n');
    await waitFor('debug.log committed after reload', async () => (await record(c, 'debug.log')) !== null);
    expect(A.engine.ignorePatterns()).toEqual(['build/']);
    expect(await record(c, 'build/out.bin')).toBeNull();

    // A path ignored after it was synced: a remote change is not applied, a local edit not committed.
    await writeFile(join(B.folder, 'local.cfg'), 'B own settings');
    await waitFor('B commits local.cfg first', async () => (await record(c, 'local.cfg'))?.modifiedBy === 'B');
    await waitFor('local.cfg at A', async () => (await readOrNull(join(A.folder, 'local.cfg'))) === 'B own settings');
    await writeFile(join(A.folder, '.clusterdeskignore'), 'build/\nlocal.cfg\n');
    await waitFor('B reloaded the rule', () => B.engine.ignorePatterns().includes('local.cfg'));
    await waitFor('A reloaded the rule', () => A.engine.ignorePatterns().includes('local.cfg'));
    // A node without the rule (Z) deletes it: B keeps its file.
    const rec = (await record(c, 'local.cfg'))!;
    await c.kv.put(FILES_PREFIX + 'local.cfg', JSON.stringify({ ...rec, version: rec.version + 1, deleted: true, modifiedBy: 'Z' }));
    await B.engine.rescan();
    await B.engine.idle();
    expect(await readOrNull(join(B.folder, 'local.cfg'))).toBe('B own settings');
    await writeFile(join(B.folder, 'local.cfg'), 'B edits it again');
    await B.engine.rescan();
    await B.engine.idle();
    expect((await record(c, 'local.cfg'))?.modifiedBy).toBe('Z'); // not committed
    // The meta folder is ignored whatever the user file says.
    await writeFile(join(A.folder, '.clusterdeskignore'), '!.clusterdesk/\n');
    await waitFor('A reloaded the negation', () => A.engine.ignorePatterns().includes('!.clusterdesk/'));
    await mkdir(join(A.folder, '.clusterdesk'), { recursive: true });
    await writeFile(join(A.folder, '.clusterdesk', 'own.txt'), 'meta');
    await A.engine.rescan();
    await A.engine.idle();
    expect(await record(c, '.clusterdesk/own.txt')).toBeNull();
  });

  it('keeps the old ignore rules while .clusterdeskignore is being rewritten (truncated, then written)', async () => {
    const A = c.node('A');
    await writeFile(join(A.folder, '.clusterdeskignore'), 'build/\n');
    await waitFor('rule loaded', () => A.engine.ignorePatterns().includes('build/'));
    await mkdir(join(A.folder, 'build'), { recursive: true });
    await writeFile(join(A.folder, 'build', 'out.bin'), 'ignored');
    await writeFile(join(A.folder, 'kept.txt'), 'k');
    await waitFor('kept.txt committed', async () => (await record(c, 'kept.txt')) !== null);
    for (let round = 0; round < 5; round++) {
      // An editor's save: the file is empty for a few milliseconds, then holds the new rules.
      const fh = await open(join(A.folder, '.clusterdeskignore'), 'w');
      await new Promise((r) => setTimeout(r, 5));
      await fh.writeFile(`build/\n*.r${round}\n`);
      await fh.close();
      await waitFor(`rules of round ${round}`, () => A.engine.ignorePatterns().includes(`*.r${round}`));
      await A.engine.idle();
      expect(await record(c, 'build/out.bin')).toBeNull();
    }
  });

  it('refuses symlinks (never followed), listing them as problems with the target outside the folder', async () => {
    const A = c.node('A');
    const B = c.node('B');
    const outside = join(c.root, 'secret.txt');
    await writeFile(outside, 'outside bytes');
    await symlink(outside, join(A.folder, 'link.txt'));
    await symlink(c.root, join(A.folder, 'linkdir'));
    await writeFile(join(A.folder, 'plain.txt'), 'p');
    await waitFor('plain committed', async () => (await record(c, 'plain.txt')) !== null);
    await A.engine.rescan();
    await A.engine.idle();
    await waitFor('symlinks listed as problems', () => A.engine.listProblems().filter((p) => p.kind === 'symlink').length === 2);
    const problems = A.engine.listProblems();
    expect(problems.find((p) => p.path === 'link.txt')?.reason).toMatch(/symbolic link to .*secret\.txt.*outside the synchronized folder/);
    expect(problems.find((p) => p.path === 'linkdir')?.source).toBe('local');
    expect(await record(c, 'link.txt')).toBeNull();
    expect(await record(c, 'linkdir/secret.txt')).toBeNull();
    expect(await readOrNull(join(B.folder, 'link.txt'))).toBeNull();

    // A remote record below the symlinked directory is refused: nothing is written through the link.
    const evil: IndexRecord = { path: 'linkdir/planted.txt', size: 1, sha256: 'b'.repeat(64), version: 1, deleted: false, modifiedBy: 'B', modifiedAt: Date.now() };
    await c.kv.put(FILES_PREFIX + 'linkdir/planted.txt', JSON.stringify(evil));
    await waitFor('planted path refused', () => A.engine.listProblems().some((p) => p.path === 'linkdir/planted.txt' && p.kind === 'symlink'));
    expect(await readOrNull(join(c.root, 'planted.txt'))).toBeNull();

    // Removing the link clears the problem at the next scan.
    await rm(join(A.folder, 'link.txt'));
    await A.engine.rescan();
    await A.engine.idle();
    expect(A.engine.listProblems().some((p) => p.path === 'link.txt')).toBe(false);
  });

  it('keeps replaced and deleted bytes as versions, records bounded history, restores a version as a new commit', async () => {
    const A = c.node('A');
    const B = c.node('B');
    await writeSynced(A, B, 'doc.txt', 'version one');
    await writeSynced(A, B, 'doc.txt', 'version two');

    const h = await B.engine.fileHistory('doc.txt');
    expect(h.history.map((e) => [e.version, e.modifiedBy, e.host, e.deleted])).toEqual([
      [2, 'A', 'host-A', false],
      [1, 'A', 'host-A', false],
    ]);
    expect(h.versions).toHaveLength(1);
    const kept = h.versions[0]!;
    expect(kept.id).toMatch(/^\d{8}-\d{6}$/);
    expect(await readFile(join(B.folder, '.clusterdesk', 'versions', `doc.txt~${kept.id}`), 'utf8')).toBe('version one');
    expect(await record(c, `.clusterdesk/versions/doc.txt~${kept.id}`)).toBeNull(); // versions are never synced
    // The writer keeps no version of its own edit.
    expect((await A.engine.fileHistory('doc.txt')).versions).toEqual([]);

    // Restore at B: a new version 3 by B with the old bytes, reaching A; B keeps "version two" as a version.
    const r = await B.engine.restoreVersion('doc.txt', kept.id);
    expect(r.size).toBe('version one'.length);
    await waitFor('restore committed', async () => (await record(c, 'doc.txt'))?.version === 3);
    expect(await record(c, 'doc.txt')).toMatchObject({ version: 3, modifiedBy: 'B', sha256: r.sha256 });
    await waitFor('restore reaches A', async () => (await readOrNull(join(A.folder, 'doc.txt'))) === 'version one');
    const afterRestore = await B.engine.fileHistory('doc.txt');
    expect(afterRestore.versions.length).toBe(2);

    // A remote delete keeps the deleted bytes too.
    await rm(join(B.folder, 'doc.txt'));
    await waitFor('delete at A', async () => (await readOrNull(join(A.folder, 'doc.txt'))) === null);
    const ha = await A.engine.fileHistory('doc.txt');
    expect(ha.history[0]).toMatchObject({ version: 4, deleted: true, modifiedBy: 'B', host: 'host-B' });
    expect(ha.versions.length).toBeGreaterThanOrEqual(1);
    const newest = ha.versions[0]!;
    expect(await readFile(join(A.folder, '.clusterdesk', 'versions', `doc.txt~${newest.id}`), 'utf8')).toBe('version one');
    // …and it can be restored (re-creating the file, version 5).
    await A.engine.restoreVersion('doc.txt', newest.id);
    await waitFor('undelete committed', async () => (await record(c, 'doc.txt'))?.version === 5);
    await waitFor('undelete at B', async () => (await readOrNull(join(B.folder, 'doc.txt'))) === 'version one');

    // Committed version N from the object store.
    await A.engine.restoreVersion('doc.txt', 'v2');
    await waitFor('v2 restored at B', async () => (await readOrNull(join(B.folder, 'doc.txt'))) === 'version two');

    // Hostile or wrong input: typed errors, nothing written outside the folder.
    await expect(B.engine.restoreVersion('../doc.txt', kept.id)).rejects.toBeInstanceOf(PathError);
    await expect(B.engine.restoreVersion('doc.txt', '../../etc/passwd')).rejects.toBeInstanceOf(ValidationError);
    await expect(B.engine.restoreVersion('doc.txt', '20200101-000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(B.engine.restoreVersion('doc.txt', 'v4')).rejects.toBeInstanceOf(ValidationError); // a delete
    await expect(B.engine.restoreVersion('doc.txt', 'v99')).rejects.toBeInstanceOf(NotFoundError);
    await expect(B.engine.fileHistory('a/../../x')).rejects.toBeInstanceOf(PathError);
  });

  it('restores a committed version on the node that replaced it, from a peer that kept it, verified by hash', async () => {
    const A = c.node('A');
    const B = c.node('B');
    await writeSynced(A, B, 'plan.txt', 'first draft');
    await writeSynced(A, B, 'plan.txt', 'second draft');
    // A wrote v2 over v1 and kept nothing; B kept v1 when v2 arrived.
    expect((await A.engine.fileHistory('plan.txt')).versions).toEqual([]);
    const keptAtB = (await B.engine.fileHistory('plan.txt')).versions;
    expect(keptAtB).toHaveLength(1);

    // A peer's copy that is not that version is refused: nothing is replaced.
    const realLookup = B.engine.keptVersionFile.bind(B.engine);
    const impostor = join(B.folder, '.clusterdesk', 'impostor');
    await writeFile(impostor, 'not the first draft');
    B.engine.keptVersionFile = async () => impostor;
    await expect(A.engine.restoreVersion('plan.txt', 'v1')).rejects.toMatchObject({ code: 'ECORRUPT' });
    expect(await readOrNull(join(A.folder, 'plan.txt'))).toBe('second draft');
    B.engine.keptVersionFile = realLookup;

    const fetchesBefore = c.net.fetches.length;
    const r = await A.engine.restoreVersion('plan.txt', 'v1');
    expect(c.net.fetches.slice(fetchesBefore)).toEqual([{ sha256: r.sha256, from: 'B' }]);
    expect(await readOrNull(join(A.folder, 'plan.txt'))).toBe('first draft');
    await waitFor('restore committed as v3 by A', async () => (await record(c, 'plan.txt'))?.version === 3);
    expect(await record(c, 'plan.txt')).toMatchObject({ modifiedBy: 'A', sha256: r.sha256 });
    await waitFor('restore reaches B', async () => (await readOrNull(join(B.folder, 'plan.txt'))) === 'first draft');
    // A kept the bytes it replaced ("second draft"), and no temporary copy is left in its data dir.
    expect((await A.engine.fileHistory('plan.txt')).versions).toHaveLength(1);
    expect((await readdir(A.dataDir)).filter((f) => f.startsWith('fetch-version-'))).toEqual([]);

    // When no node kept it (B's copy gone), the error says so and names what each node answered.
    await rm(join(B.folder, '.clusterdesk', 'versions'), { recursive: true, force: true });
    await writeFile(join(A.folder, 'plan.txt'), 'third draft');
    await waitFor('v4 committed', async () => (await record(c, 'plan.txt'))?.version === 4);
    await waitFor('v4 at B', async () => (await readOrNull(join(B.folder, 'plan.txt'))) === 'third draft');
    await rm(join(A.folder, '.clusterdesk', 'versions'), { recursive: true, force: true });
    await rm(join(B.folder, '.clusterdesk', 'versions'), { recursive: true, force: true });
    const err = await A.engine.restoreVersion('plan.txt', 'v2').catch((e: Error) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toMatch(/no copy of version 2 of plan.txt/);
    expect((err as NotFoundError).detail).toMatchObject({ tried: [expect.stringMatching(/^B: /)] });
  });

  it('history stays bounded to HISTORY_KEEP entries per path', async () => {
    const A = c.node('A');
    const n = HISTORY_KEEP + 3;
    for (let i = 1; i <= n; i++) {
      await writeFile(join(A.folder, 'busy.txt'), `edit ${i}`);
      await waitFor(`edit ${i} committed`, async () => (await record(c, 'busy.txt'))?.version === i);
    }
    const keys = (await c.kv.range(HISTORY_PREFIX + 'busy.txt:', { prefix: true })).kvs;
    expect(keys).toHaveLength(HISTORY_KEEP);
    const h = await A.engine.fileHistory('busy.txt');
    expect(h.history[0]?.version).toBe(n);
    expect(h.history.at(-1)?.version).toBe(n - HISTORY_KEEP + 1);
  });

  it('records lock, unlock and break events (bounded) and shows them in the file history', async () => {
    const A = c.node('A');
    await writeFile(join(A.folder, 'l.txt'), 'x');
    await waitFor('l.txt committed', async () => (await record(c, 'l.txt')) !== null);
    const locks = new LockManager(c.kv);
    const a = { node: 'A', host: 'host-A', user: 'ann' };
    const b = { node: 'B', host: 'host-B', user: 'bob' };
    await locks.lock('l.txt', 'exclusive', a, 1000);
    await expect(locks.lock('l.txt', 'exclusive', b, 1001)).rejects.toBeInstanceOf(LockConflictError); // refused: no event
    await locks.unlock('l.txt', b, true, 1002); // B breaks A's lock
    await locks.lock('l.txt', 'shared', b, 1003);
    await locks.unlock('l.txt', b, false, 1004);
    const h = await A.engine.fileHistory('l.txt');
    expect(h.locks.map((e) => [e.at, e.action, e.mode, e.node, e.user])).toEqual([
      [1004, 'unlock', 'shared', 'B', 'bob'],
      [1003, 'lock', 'shared', 'B', 'bob'],
      [1002, 'break', 'exclusive', 'B', 'bob'],
      [1000, 'lock', 'exclusive', 'A', 'ann'],
    ]);
    for (let i = 0; i < LOCK_HISTORY_KEEP; i++) {
      await locks.lock('l.txt', 'exclusive', a, 2000 + 2 * i);
      await locks.unlock('l.txt', a, false, 2001 + 2 * i);
    }
    const bounded = await locks.history('l.txt');
    expect(bounded).toHaveLength(LOCK_HISTORY_KEEP);
    expect(bounded.at(-1)?.at).toBe(2001 + 2 * (LOCK_HISTORY_KEEP - 1));
    // A malformed stored list reads as empty and is replaced by the next event.
    await c.kv.put(LOCK_HISTORY_PREFIX + 'l.txt', '{"not":"a list"}');
    expect(await locks.history('l.txt')).toEqual([]);
    await locks.lock('l.txt', 'exclusive', a, 5000);
    expect((await locks.history('l.txt')).map((e) => e.at)).toEqual([5000]);
  });

  it('restore respects another node’s lock', async () => {
    const A = c.node('A');
    const B = c.node('B');
    await writeSynced(A, B, 'locked.txt', 'one');
    await writeSynced(A, B, 'locked.txt', 'two');
    const id = (await B.engine.fileHistory('locked.txt')).versions[0]!.id;
    const lock: LockInfo = { path: 'locked.txt', mode: 'exclusive', holders: ['A'], host: 'host-A', user: 'u', since: Date.now(), fencingToken: 1 };
    await c.kv.put(LOCKS_PREFIX + 'locked.txt', JSON.stringify(lock));
    await waitFor('B sees the lock', async () => {
      try {
        await B.engine.restoreVersion('locked.txt', id);
        return false;
      } catch (err) {
        return err instanceof LockConflictError;
      }
    });
    expect(await readOrNull(join(B.folder, 'locked.txt'))).toBe('two');
  });

  it('lists conflict copies with their original and resolves either way', async () => {
    const A = c.node('A');
    const B = c.node('B');
    await writeSynced(A, B, 'plan.txt', 'original bytes');
    const copy1 = conflictCopyName('plan.txt', new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), 'B');
    const copy2 = conflictCopyName('plan.txt', new Date(Date.UTC(2026, 0, 2, 3, 4, 6)), 'B');
    await writeFile(join(B.folder, copy1), 'copy one bytes');
    await writeFile(join(B.folder, copy2), 'copy two bytes');
    await waitFor('copies committed and at A', async () => (await readOrNull(join(A.folder, copy1))) !== null && (await readOrNull(join(A.folder, copy2))) !== null);
    const list = A.engine.listConflicts();
    expect(list.map((e) => [e.copy, e.original, e.originalExists, e.copyBy])).toEqual(
      expect.arrayContaining([
        [copy1, 'plan.txt', true, 'B'],
        [copy2, 'plan.txt', true, 'B'],
      ]),
    );
    expect(list).toHaveLength(2);

    // Keep the copy: its bytes replace the original everywhere, the copy disappears, the old original is kept as a version.
    expect(await A.engine.resolveConflict(copy1, 'copy')).toEqual({ original: 'plan.txt', kept: 'copy' });
    await waitFor('copy bytes at B', async () => (await readOrNull(join(B.folder, 'plan.txt'))) === 'copy one bytes' && (await readOrNull(join(B.folder, copy1))) === null);
    expect((await record(c, copy1))?.deleted).toBe(true);
    expect((await A.engine.fileHistory('plan.txt')).versions.length).toBe(1);

    // Keep the original: the copy is deleted, the original untouched.
    await A.engine.resolveConflict(copy2, 'original');
    await waitFor('copy2 gone at B', async () => (await readOrNull(join(B.folder, copy2))) === null);
    expect(await readOrNull(join(B.folder, 'plan.txt'))).toBe('copy one bytes');
    await waitFor('no conflicts left', () => A.engine.listConflicts().length === 0);

    await expect(A.engine.resolveConflict('plan.txt', 'copy')).rejects.toBeInstanceOf(ValidationError);
    await expect(A.engine.resolveConflict(copy1, 'copy')).rejects.toBeInstanceOf(NotFoundError);
    await expect(A.engine.resolveConflict('../x.sync-conflict-20260101-000000-B.txt', 'copy')).rejects.toBeInstanceOf(PathError);
  });

  it('lists invalid names, case collisions and too-long paths as problems with their reason', async () => {
    const A = c.node('A');
    await writeFile(join(A.folder, 'bad:name.txt'), 'x');
    await writeFile(join(A.folder, 'Readme.md'), 'one');
    await waitFor('Readme committed', async () => (await record(c, 'Readme.md')) !== null);
    await writeFile(join(A.folder, 'README.md'), 'two');
    const deep = Array.from({ length: 6 }, () => 'd'.repeat(50)).join('/');
    await mkdir(join(A.folder, ...deep.split('/')), { recursive: true });
    await writeFile(join(A.folder, ...deep.split('/'), 'f.txt'), 'deep');
    await A.engine.rescan();
    await waitFor('three problems', () => A.engine.listProblems().length >= 3);
    const byPath = new Map(A.engine.listProblems().map((p) => [p.path, p]));
    expect(byPath.get('bad:name.txt')).toMatchObject({ kind: 'invalid-name', source: 'local' });
    expect(byPath.get('bad:name.txt')?.reason).toMatch(/not allowed on Windows/);
    expect(byPath.get('README.md')).toMatchObject({ kind: 'case-collision' });
    expect(byPath.get(`${deep}/f.txt`)).toMatchObject({ kind: 'too-long' });
    if (process.platform !== 'darwin') {
      // A decomposed (NFD) name is another file than its NFC spelling here: refused, not synced under the NFC key.
      await writeFile(join(A.folder, 'cafe\u0301.txt'), 'nfd');
      await A.engine.rescan();
      await waitFor('NFD name refused', () => A.engine.listProblems().some((p) => p.kind === 'nfc'));
      expect(await record(c, 'caf\u00e9.txt')).toBeNull();
    }
    // Fixed on disk: the problem goes away at the next scan.
    await rm(join(A.folder, 'bad:name.txt'));
    await A.engine.rescan();
    expect(A.engine.listProblems().some((p) => p.path === 'bad:name.txt')).toBe(false);
  });
});

describe('VersionStore retention', () => {
  it('keeps at most `keep` versions and none older than maxAgeDays', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'cd-versions-'));
    try {
      const store = new VersionStore(folder, { keep: 2, maxAgeDays: 10 });
      await mkdir(join(folder, 'sub'), { recursive: true });
      const file = join(folder, 'sub', 'f.txt');
      const t0 = Date.UTC(2026, 10, 1, 12, 0, 0);
      // As the engine does: keep the old bytes, then rename the new ones over the file.
      const replace = async (text: string): Promise<void> => {
        await writeFile(file + '.new', text);
        await rename(file + '.new', file);
      };
      await writeFile(file, 'bytes 0');
      for (let i = 0; i < 4; i++) {
        await store.keep('sub/f.txt', file, new Date(t0 + i * 1000));
        await replace(`bytes ${i + 1}`);
      }
      const list = await store.list('sub/f.txt');
      expect(list.map((v) => v.id)).toEqual(['20261101-120003', '20261101-120002']);
      expect(await readFile(await store.fileOfVersion('sub/f.txt', list[0]!.id), 'utf8')).toBe('bytes 3');
      expect(await readFile(await store.fileOfVersion('sub/f.txt', list[1]!.id), 'utf8')).toBe('bytes 2');
      expect(await readFile(file, 'utf8')).toBe('bytes 4');
      // Two versions in one second get distinct ids.
      await writeFile(file, 'same second');
      const v = await store.keep('sub/f.txt', file, new Date(t0 + 3000));
      expect(v?.id).toBe('20261101-120003-1');
      // 11 days later, everything is too old.
      expect(await store.pruneAll(t0 + 11 * 86_400_000)).toBe(2);
      expect(await readdir(join(folder, '.clusterdesk', 'versions', 'sub'))).toEqual([]);
      await expect(store.fileOfVersion('sub/f.txt', '2026-11-01')).rejects.toBeInstanceOf(ValidationError);
      // keep: 0 disables versioning.
      expect(await new VersionStore(folder, { keep: 0, maxAgeDays: 0 }).keep('sub/f.txt', file)).toBeNull();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('parses version ids strictly', () => {
    expect(parseVersionId(versionStamp(new Date(Date.UTC(2026, 1, 28, 23, 59, 59))))).toBe(Date.UTC(2026, 1, 28, 23, 59, 59));
    expect(parseVersionId('20260230-000000')).toBeNull();
    expect(parseVersionId('20260101-246000')).toBeNull();
    expect(parseVersionId('../20260101-000000')).toBeNull();
  });
});
