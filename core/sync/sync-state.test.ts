import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STATE_FILE, STATE_JOURNAL, SyncStateStore } from './sync-state';

interface St {
  sha256: string | null;
  version: number;
  modRevision: number;
}

const st = (version: number): St => ({ sha256: 'ab'.repeat(32), version, modRevision: version * 10 });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sync-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const snapshot = async () => JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as { version: number; generation: number; entries: Record<string, St>; readOnly: string[] };
const journalLines = async () => (await readFile(join(dir, STATE_JOURNAL), 'utf8')).split('\n').filter((l) => l !== '');

/** A store over `dir` with the state it loaded. */
async function open(minLines = 8) {
  const store = new SyncStateStore<St>(dir, 'n1', minLines);
  const got = await store.load();
  return { store, ...got };
}

describe('SyncStateStore', () => {
  it('appends only the changed entries, and a load replays them over the snapshot', async () => {
    const { store, entries, readOnly, problem } = await open(100);
    expect(entries.size).toBe(0);
    expect(problem).toBeUndefined();
    for (let i = 0; i < 20; i++) {
      entries.set(`f${i}`, st(1));
      store.changed(`f${i}`);
    }
    await store.save(entries, readOnly); // the first save starts generation 1 (no journal yet)
    expect((await snapshot()).generation).toBe(1);
    expect(Object.keys((await snapshot()).entries)).toHaveLength(20);

    entries.set('f3', st(2));
    store.changed('f3');
    entries.delete('f4');
    store.changed('f4');
    readOnly.add('f5');
    await store.save(entries, readOnly);
    // The snapshot is untouched; the journal holds the header and three changes.
    expect(Object.keys((await snapshot()).entries)).toHaveLength(20);
    expect(await journalLines()).toEqual(['{"generation":1}', JSON.stringify({ p: 'f3', s: st(2) }), '{"p":"f4","s":null}', '{"readOnly":["f5"]}']);
    await store.save(entries, readOnly); // nothing changed: nothing written
    expect(await journalLines()).toHaveLength(4);

    const again = await open(100);
    expect(again.problem).toBeUndefined();
    expect(again.entries).toEqual(entries);
    expect([...again.readOnly]).toEqual(['f5']);
    expect(again.entries.get('f3')?.version).toBe(2);
    expect(again.entries.has('f4')).toBe(false);
  });

  it('compacts into a new snapshot once the journal holds more lines than entries (or the minimum)', async () => {
    const { store, entries, readOnly } = await open(8);
    for (let i = 0; i < 5; i++) {
      entries.set(`f${i}`, st(1));
      store.changed(`f${i}`);
    }
    await store.save(entries, readOnly);
    expect(store.snapshotGeneration).toBe(1);
    let version = 1;
    let compactions = 0;
    for (let round = 0; round < 12; round++) {
      version++;
      entries.set('f0', st(version));
      store.changed('f0');
      const before = store.snapshotGeneration;
      await store.save(entries, readOnly);
      if (store.snapshotGeneration !== before) {
        compactions++;
        expect(await journalLines()).toEqual([`{"generation":${store.snapshotGeneration}}`]);
        expect((await snapshot()).entries.f0!.version).toBe(version);
      }
      expect(store.journalLength).toBeLessThanOrEqual(8);
    }
    expect(compactions).toBe(1); // 8 appended lines, the 9th change compacts
    const again = await open(8);
    expect(again.entries).toEqual(entries);
  });

  it('stops the replay at a torn line, says so, and compacts at the next save', async () => {
    const { store, entries, readOnly } = await open(100);
    entries.set('a', st(1));
    store.changed('a');
    await store.save(entries, readOnly);
    entries.set('b', st(1));
    store.changed('b');
    await store.save(entries, readOnly);
    await appendFile(join(dir, STATE_JOURNAL), '{"p":"c","s":{"sha256":nu'); // a crash mid-append

    const again = await open(100);
    expect(again.problem).toMatch(/torn line \(line 3\); replayed the 1 lines before it/);
    expect([...again.entries.keys()].sort()).toEqual(['a', 'b']);
    again.entries.set('d', st(1));
    again.store.changed('d');
    await again.store.save(again.entries, again.readOnly);
    expect(again.store.snapshotGeneration).toBe(2); // compacted: nothing is appended after the torn line
    const third = await open(100);
    expect(third.problem).toBeUndefined();
    expect([...third.entries.keys()].sort()).toEqual(['a', 'b', 'd']);
  });

  it("ignores a journal of another generation (a crash between a new snapshot and its journal)", async () => {
    await writeFile(join(dir, STATE_FILE), JSON.stringify({ version: 2, nodeId: 'n1', generation: 3, entries: { a: st(5) }, readOnly: [] }));
    await writeFile(join(dir, STATE_JOURNAL), `{"generation":2}\n${JSON.stringify({ p: 'a', s: st(1) })}\n{"p":"x","s":null}\n`);
    const { store, entries, readOnly, problem } = await open();
    expect(problem).toBeUndefined();
    expect(entries.get('a')?.version).toBe(5);
    await store.save(entries, readOnly); // no valid journal: the first save compacts
    expect(store.snapshotGeneration).toBe(4);
    expect(await journalLines()).toEqual(['{"generation":4}']);
  });

  it('loads the single document earlier builds wrote (version 1, no generation)', async () => {
    await writeFile(join(dir, STATE_FILE), JSON.stringify({ version: 1, nodeId: 'n1', entries: { 'a.txt': st(2), 'b.txt': st(3) }, readOnly: ['b.txt'] }));
    const { store, entries, readOnly } = await open();
    expect(entries.get('b.txt')?.version).toBe(3);
    expect([...readOnly]).toEqual(['b.txt']);
    entries.delete('a.txt');
    store.changed('a.txt');
    await store.save(entries, readOnly);
    expect((await snapshot()).generation).toBe(1);
    expect(Object.keys((await snapshot()).entries)).toEqual(['b.txt']);
  });

  it('returns an empty state with the reason for a malformed snapshot, and replays no journal line that is not a change', async () => {
    for (const bad of ['{"entries":', 'null', '[1,2]', '"text"']) {
      await writeFile(join(dir, STATE_FILE), bad);
      const got = await open();
      expect(got.entries.size, bad).toBe(0);
      expect(got.problem, bad).toMatch(/^sync-state\.json is unreadable \(/);
    }
    // Hostile entries are skipped, not loaded: a non-object state, a prototype key.
    await writeFile(join(dir, STATE_FILE), '{"generation":1,"entries":{"a":5,"__proto__":{"version":1},"ok":{"version":1}},"readOnly":["x",7]}');
    for (const line of ['{"p":5,"s":null}', '[]', 'null', '{"p":"z"}', '{"readOnly":"all"}']) {
      await writeFile(join(dir, STATE_JOURNAL), `{"generation":1}\n{"p":"y","s":{"version":2}}\n${line}\n{"p":"late","s":{"version":1}}\n`);
      const got = await open();
      expect(got.problem, line).toMatch(/sync-state\.journal (line 3 is not a state change|ends with a torn line \(line 3\))/);
      expect([...got.entries.keys()].sort(), line).toEqual(['__proto__', 'ok', 'y']);
      expect(Object.getPrototypeOf(Object.fromEntries(got.entries))).toBe(Object.prototype);
      expect([...got.readOnly]).toEqual(['x']);
    }
  });

  it('after a failed write, the next save writes everything noted (nothing is forgotten)', async () => {
    const { store, entries, readOnly } = await open(100);
    entries.set('a', st(1));
    store.changed('a');
    await store.save(entries, readOnly);
    // The journal's path becomes a directory: the append fails.
    await rm(join(dir, STATE_JOURNAL));
    await mkdir(join(dir, STATE_JOURNAL));
    entries.set('b', st(1));
    store.changed('b');
    await expect(store.save(entries, readOnly)).rejects.toMatchObject({ code: 'EISDIR' });
    await rm(join(dir, STATE_JOURNAL), { recursive: true });
    entries.set('c', st(1));
    store.changed('c');
    await store.save(entries, readOnly);
    const again = await open(100);
    expect(again.problem).toBeUndefined();
    expect([...again.entries.keys()].sort()).toEqual(['a', 'b', 'c']);
  });
});
