import { Dirent, type Stats } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { coalesceListings, listWithoutStat } from './engine';

/** The engine's chokidar setup: regular files ignored (their directory's watch reports them), symlinks not followed. */
function engineLikeWatcher(dir: string): FSWatcher {
  return watch(dir, { ignoreInitial: true, persistent: true, followSymlinks: false, ignored: (_p: string, st?: Stats) => st?.isFile() ?? false });
}

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Each test's temp folder and the watcher it started (closed and removed after the test). */
let root: string;
let w: FSWatcher | null = null;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cd-watch-'));
});
afterEach(async () => {
  await w?.close();
  w = null;
  await rm(root, { recursive: true, force: true });
});

describe('listWithoutStat (chokidar directory listings from readdir entries)', () => {
  it('hands chokidar Dirents instead of lstat results, and chokidar still reports new directories and symlinks but no files', async () => {
    const watcher = engineLikeWatcher(root);
    w = watcher;
    // Record what chokidar's listings ask readdirp for, under the patch.
    const fsw = watcher as unknown as { _readdirp: (root: string, opts: Record<string, unknown>) => unknown };
    const stock = fsw._readdirp;
    const asked: Record<string, unknown>[] = [];
    const filtered: unknown[] = [];
    fsw._readdirp = function (r, opts) {
      asked.push(opts);
      const wrap = (f: unknown) => (e: { stats?: unknown }) => {
        const keep = (f as (e: unknown) => boolean)(e);
        filtered.push(e.stats); // what chokidar's filter saw as the entry's stats
        return keep;
      };
      return stock.call(this, r, { ...opts, fileFilter: wrap(opts.fileFilter), directoryFilter: wrap(opts.directoryFilter) });
    };
    expect(listWithoutStat(watcher)).toBe(true);
    const events: [string, string][] = [];
    watcher.on('all', (ev, p) => events.push([ev, p]));
    await new Promise<void>((r) => watcher.once('ready', () => r()));

    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub', 'a.txt'), 'a');
    await writeFile(join(root, 'top.txt'), 't');
    await symlink(join(root, 'sub'), join(root, 'link'));
    await until('the new directory and the symlink', () => events.some(([e, p]) => e === 'addDir' && p === join(root, 'sub')) && events.some(([, p]) => p === join(root, 'link')));

    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((o) => o.alwaysStat === false)).toBe(true);
    expect(filtered.length).toBeGreaterThan(0);
    expect(filtered.every((s) => s instanceof Dirent)).toBe(true);
    // Files stay unreported by chokidar itself (the engine plans them from raw directory events).
    expect(events.filter(([, p]) => p.endsWith('.txt'))).toEqual([]);
    // The symlink is reported as itself, not followed into.
    expect(events.some(([, p]) => p.startsWith(join(root, 'link') + '/'))).toBe(false);
  });

  it('with skipFiles, regular files leave the listing before chokidar or readdirp sees them; directories and symlinks still come through', async () => {
    // Files and a directory present before the watcher starts: its first listings include them.
    await mkdir(join(root, 'old'));
    for (let i = 0; i < 20; i++) await writeFile(join(root, `pre${i}.txt`), 'x');
    await writeFile(join(root, 'old', 'inner.txt'), 'y');
    const seen = async (skipFiles: boolean): Promise<{ entries: Dirent[]; events: [string, string][] }> => {
      const watcher = engineLikeWatcher(root);
      const fsw = watcher as unknown as { _readdirp: (root: string, opts: Record<string, unknown>) => unknown };
      const stock = fsw._readdirp;
      const entries: Dirent[] = [];
      fsw._readdirp = function (r, opts) {
        const wrap = (f: unknown) => (e: { dirent?: Dirent }) => {
          entries.push(e.dirent!);
          return (f as (e: unknown) => boolean)(e);
        };
        return stock.call(this, r, { ...opts, fileFilter: wrap(opts.fileFilter), directoryFilter: wrap(opts.directoryFilter) });
      };
      expect(listWithoutStat(watcher, { skipFiles })).toBe(true);
      const events: [string, string][] = [];
      watcher.on('all', (ev, p) => events.push([ev, p]));
      await new Promise<void>((r) => watcher.once('ready', () => r()));
      await mkdir(join(root, skipFiles ? 'new-skip' : 'new-stock'));
      await symlink(join(root, 'old'), join(root, skipFiles ? 'link-skip' : 'link-stock'));
      await until('the new directory and symlink', () => events.some(([e, p]) => e === 'addDir' && p.includes('new-')) && events.some(([, p]) => p.includes('link-')));
      await watcher.close();
      return { entries, events };
    };
    const stock = await seen(false);
    expect(stock.entries.some((d) => d.isFile())).toBe(true); // control: the filters do see files without skipFiles
    const skip = await seen(true);
    expect(skip.entries.length).toBeGreaterThan(0);
    expect(skip.entries.some((d) => d.isFile())).toBe(false);
    expect(skip.entries.some((d) => d.isDirectory() && d.name === 'old')).toBe(true);
    expect(skip.entries.some((d) => d.isSymbolicLink())).toBe(true);
    // The same events as before: directories and symlinks, never the files.
    expect(skip.events.some(([e, p]) => e === 'addDir' && p === join(root, 'new-skip'))).toBe(true);
    expect(skip.events.some(([, p]) => p === join(root, 'link-skip'))).toBe(true);
    expect(skip.events.filter(([, p]) => p.endsWith('.txt'))).toEqual([]);
  });

  it('leaves a watcher without the private hook alone', () => {
    expect(listWithoutStat({} as FSWatcher)).toBe(false);
  });
});

describe('coalesceListings (one re-listing per burst of events in a directory)', () => {
  it('re-lists a busy directory at most once per delay, keeps raw events, and still reports a directory made during the burst', async () => {
    const delayMs = 100;
    await mkdir(join(root, 'busy'));
    const watcher = engineLikeWatcher(root);
    w = watcher;
    const fsw = watcher as unknown as { _readdirp: (root: string, opts: Record<string, unknown>) => unknown };
    const stock = fsw._readdirp;
    const listed: string[] = [];
    fsw._readdirp = function (r, opts) {
      listed.push(r);
      return stock.call(this, r, opts);
    };
    expect(coalesceListings(watcher, delayMs)).toBe(true);
    const events: [string, string][] = [];
    const raw: string[] = [];
    watcher.on('all', (ev, p) => events.push([ev, p]));
    watcher.on('raw', (_ev, name, details) => {
      if ((details as { watchedPath?: string }).watchedPath === join(root, 'busy')) raw.push(String(name));
    });
    await new Promise<void>((r) => watcher.once('ready', () => r()));
    listed.length = 0;

    const started = performance.now();
    for (let i = 0; i < 300; i++) {
      await writeFile(join(root, 'busy', `f${i}.txt`), `file ${i}`);
      if (i === 150) await mkdir(join(root, 'busy', 'made-midway'));
    }
    await until('the directory made during the burst', () => events.some(([e, p]) => e === 'addDir' && p === join(root, 'busy', 'made-midway')));
    await until('every raw event', () => new Set(raw).size >= 301);
    await new Promise((r) => setTimeout(r, 3 * delayMs));
    const elapsedMs = performance.now() - started;

    // Every file's own event still arrives (the engine plans files from these)...
    for (let i = 0; i < 300; i++) expect(raw).toContain(`f${i}.txt`);
    // ...but the directory is listed once per delay at most: one listing per wrapped call, plus
    // chokidar's own one more when a call lands during a listing. Stock chokidar lists it on
    // (nearly) every one of the 300+ events.
    const busyListings = listed.filter((d) => d === join(root, 'busy')).length;
    expect(busyListings).toBeGreaterThan(0);
    expect(busyListings).toBeLessThanOrEqual(2 * (Math.ceil(elapsedMs / delayMs) + 1));
    expect(busyListings).toBeLessThan(raw.length);
  });

  it('leaves a watcher without the private hook alone', () => {
    expect(coalesceListings({} as FSWatcher, 100)).toBe(false);
  });
});

