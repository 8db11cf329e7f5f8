import { chmod, mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FolderWatcher, type FolderWatcherHandlers } from './folder-watcher';
import { waitFor } from './testing/cluster';

interface Seen {
  entries: string[];
  addDirs: string[];
  unlinkDirs: string[];
  errors: string[];
}

function recorder(): { seen: Seen; handlers: FolderWatcherHandlers } {
  const seen: Seen = { entries: [], addDirs: [], unlinkDirs: [], errors: [] };
  return {
    seen,
    handlers: {
      entry: (dir, name) => seen.entries.push(join(dir, name)),
      unknown: (dir) => seen.entries.push(dir),
      addDir: (dir) => seen.addDirs.push(dir),
      unlinkDir: (dir) => seen.unlinkDirs.push(dir),
      error: (err) => seen.errors.push(err.message),
    },
  };
}

describe('FolderWatcher', () => {
  let root: string;
  let w: FolderWatcher | null = null;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'folder-watcher-'));
  });
  afterEach(async () => {
    w?.close();
    w = null;
    await rm(root, { recursive: true, force: true });
  });

  it('watches every existing directory but not ignored ones or symlinked ones, and reports entry events by name', async () => {
    await mkdir(join(root, 'a', 'b'), { recursive: true });
    await mkdir(join(root, 'skip'), { recursive: true });
    await mkdir(join(root, 'elsewhere'), { recursive: true });
    await symlink(join(root, 'elsewhere'), join(root, 'link'));
    const { seen, handlers } = recorder();
    w = new FolderWatcher(root, (p) => p === join(root, 'skip') || p === join(root, 'elsewhere'), handlers);
    await w.start();
    expect(w.watchedDirs()).toEqual([root, join(root, 'a'), join(root, 'a', 'b')].sort());
    await writeFile(join(root, 'a', 'b', 'f.txt'), 'x');
    await writeFile(join(root, 'skip', 'g.txt'), 'x');
    await waitFor('the event for a/b/f.txt', () => seen.entries.includes(join(root, 'a', 'b', 'f.txt')));
    expect(seen.entries.some((p) => p.startsWith(join(root, 'skip') + '/'))).toBe(false);
    expect(seen.addDirs).toEqual([]);
    expect(seen.errors).toEqual([]);
  });

  it('reports and watches new directories (nested ones too), and reports removed ones once', async () => {
    const { seen, handlers } = recorder();
    w = new FolderWatcher(root, () => false, handlers);
    await w.start();
    // A tree made elsewhere and renamed in appears at once with its subdirectories.
    const outside = await mkdtemp(join(tmpdir(), 'folder-watcher-src-'));
    await mkdir(join(outside, 'x', 'y'), { recursive: true });
    await rename(join(outside, 'x'), join(root, 'x'));
    await rm(outside, { recursive: true, force: true });
    await waitFor('x and x/y watched', () => w!.watchedDirs().includes(join(root, 'x', 'y')));
    expect(seen.addDirs.sort()).toEqual([join(root, 'x'), join(root, 'x', 'y')]);
    // A file written in the new nested directory is reported by its own watch.
    await writeFile(join(root, 'x', 'y', 'f.txt'), 'x');
    await waitFor('the event for x/y/f.txt', () => seen.entries.includes(join(root, 'x', 'y', 'f.txt')));

    await rm(join(root, 'x'), { recursive: true });
    await waitFor('x unwatched', () => !w!.watchedDirs().some((d) => d.startsWith(join(root, 'x'))));
    await waitFor('unlinkDir x', () => seen.unlinkDirs.includes(join(root, 'x')));
    expect(seen.unlinkDirs.filter((d) => d === join(root, 'x'))).toHaveLength(1);
    expect(seen.errors).toEqual([]);
  });

  it('watches a directory removed and made again under the same name (the old watch is dead)', async () => {
    await mkdir(join(root, 'd'));
    const { seen, handlers } = recorder();
    w = new FolderWatcher(root, () => false, handlers);
    await w.start();
    await rm(join(root, 'd'), { recursive: true });
    await mkdir(join(root, 'd'));
    await waitFor('d watched again', () => seen.addDirs.includes(join(root, 'd')) && w!.watchedDirs().includes(join(root, 'd')));
    await writeFile(join(root, 'd', 'f.txt'), 'x');
    await waitFor('the event for d/f.txt', () => seen.entries.includes(join(root, 'd', 'f.txt')));
  });

  it('an attribute change of a watched directory (reported by Linux as a rename of itself) is not a removal', async () => {
    await mkdir(join(root, 'd'));
    const { seen, handlers } = recorder();
    w = new FolderWatcher(root, () => false, handlers);
    await w.start();
    await chmod(join(root, 'd'), 0o700);
    await utimes(join(root, 'd'), new Date(2020, 0, 1), new Date(2020, 0, 1));
    await writeFile(join(root, 'd', 'after.txt'), 'x');
    await waitFor('the event for d/after.txt', () => seen.entries.includes(join(root, 'd', 'after.txt')));
    expect(seen.unlinkDirs).toEqual([]);
    expect(seen.addDirs).toEqual([]);
    expect(w.watchedDirs()).toContain(join(root, 'd'));
  });

  it('reports nothing after close', async () => {
    const { seen, handlers } = recorder();
    w = new FolderWatcher(root, () => false, handlers);
    await w.start();
    w.close();
    expect(w.watchedDirs()).toEqual([]);
    await writeFile(join(root, 'late.txt'), 'x');
    await mkdir(join(root, 'late'));
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual({ entries: [], addDirs: [], unlinkDirs: [], errors: [] });
  });
});
