/**
 * `FolderWatcher`: one OS directory watch (`fs.watch`, not recursive) per directory of the
 * synchronized folder, reporting each raw entry event — inotify on Linux, kqueue/FSEvents on
 * macOS, ReadDirectoryChangesW on Windows, the same primitives chokidar 4 uses — plus directories
 * that appear or go away.
 *
 * It replaces chokidar for the sync engine, which only ever used chokidar's raw events and its
 * addDir/unlinkDir: chokidar re-lists a directory (readdir plus an lstat of every entry, through
 * the libuv thread pool) on every raw event in it, at most once a second plus a trailing pass,
 * to derive add/change/unlink for files the engine never asked about. During a bulk sync that
 * re-listing was ~15–20 % of the receiver's main thread (every file the engine renames into
 * place is an event in its directory). Here an event costs one `lstat` on the calling thread, and
 * only for `rename` events (an entry appeared or went: the only way a directory starts or stops
 * existing); `change` events (contents or attributes) cost nothing beyond the callback.
 *
 * Symbolic links are never followed (a symlinked directory is not watched), and `ignored`
 * directories (checked when they are found) are not watched. A missed event is the periodic
 * rescan's to catch, as with chokidar.
 */
import { lstatSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';

/** What a {@link FolderWatcher} reports; every callback receives absolute paths. */
export interface FolderWatcherHandlers {
  /** An entry of watched directory `dir` changed (`name`: its name in `dir`; `event` as `fs.watch` reports it). */
  entry(dir: string, name: string, event: 'rename' | 'change'): void;
  /** The OS reported a change in `dir` without naming the entry: list it again. */
  unknown(dir: string): void;
  /** Directory `dir` appeared (and is now watched, as are the directories below it). */
  addDir(dir: string): void;
  /** Watched directory `dir` went away (or was replaced by a non-directory); its watches are closed. */
  unlinkDir(dir: string): void;
  /** A watch failed for a directory that still exists (the folder's own watch, or a lost one). */
  error(err: Error, dir: string): void;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * Identity of a directory: inode and birth time (a directory removed and made again may get the
 * same inode number back at once; its birth time differs where the OS records one).
 */
function dirId(st: Stats): string {
  return `${st.ino}:${st.birthtimeMs}`;
}

/** Watches a directory tree; see the module doc. */
export class FolderWatcher {
  private readonly root: string;
  /** Watched directories: their watch and identity (a directory replaced by a new one under the same name is watched again). */
  private readonly watchers = new Map<string, { w: FSWatcher; id: string }>();
  private closed = false;

  /**
   * @param root absolute path of the folder to watch (it must exist when {@link start} runs)
   * @param ignored true for paths not to watch (the node's data directory, ignore rules)
   */
  constructor(
    root: string,
    private readonly ignored: (absPath: string) => boolean,
    private readonly on: FolderWatcherHandlers,
  ) {
    this.root = resolve(root);
  }

  /** Watches the folder and every directory below it; resolves once all are watched. */
  async start(): Promise<void> {
    await this.watchTree(this.root, false);
  }

  /** Closes every watch. Idempotent; no callback fires afterwards. */
  close(): void {
    this.closed = true;
    for (const { w } of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Absolute paths of the directories watched now (sorted). */
  watchedDirs(): string[] {
    return [...this.watchers.keys()].sort();
  }

  /**
   * Watches `dir`, then lists it and watches its subdirectories (watch first: an entry created
   * meanwhile shows up in the listing or as an event). With `report`, `addDir` is reported for
   * `dir` and for each directory found below it.
   */
  private async watchTree(dir: string, report: boolean): Promise<void> {
    if (this.closed || this.watchers.has(dir) || (dir !== this.root && this.ignored(dir))) return;
    const st = lstatOrNull(dir);
    if (!st?.isDirectory()) return; // gone already (or replaced): the event saying so is on its way
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: true }, (event, name) => this.onEvent(dir, event, name));
    } catch (err) {
      if (lstatOrNull(dir)?.isDirectory()) this.on.error(err as Error, dir);
      return;
    }
    w.on('error', (err) => this.onWatchError(dir, w, err));
    this.watchers.set(dir, { w, id: dirId(st) });
    if (report) this.on.addDir(dir);
    await this.listSubdirs(dir, report);
  }

  /** Watches the subdirectories of `dir` not watched yet. */
  private async listSubdirs(dir: string, report: boolean): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.isDirectory()) await this.watchTree(join(dir, e.name), report);
    }
  }

  private onEvent(dir: string, event: string, name: string | Buffer | null): void {
    if (this.closed || !this.watchers.has(dir)) return;
    if (name === null || name === '') {
      this.on.unknown(dir);
      void this.listSubdirs(dir, true);
      return;
    }
    const entry = typeof name === 'string' ? name : name.toString('utf8');
    const abs = join(dir, entry);
    this.on.entry(dir, entry, event === 'change' ? 'change' : 'rename');
    if (event !== 'rename') return;
    // An event of the watched directory itself (removed, moved away, or only its attributes
    // changed: Linux reports that as a rename too) names it by its own basename, with no such
    // child. Its watch is dead unless the same directory ({@link dirId}) is still there.
    if (entry === basename(dir) && dir !== this.root && !lstatOrNull(abs)) {
      const st = lstatOrNull(dir);
      if (st?.isDirectory() && dirId(st) === this.watchers.get(dir)?.id) return;
      this.unwatchTree(dir);
      this.on.unlinkDir(dir);
      void this.watchTree(dir, true);
      return;
    }
    this.checkWatched(abs); // a new directory is checked against `ignored` before it is watched
  }

  /** Brings the watch of `abs` in line with what is there now (a new, gone or replaced directory). */
  private checkWatched(abs: string): void {
    const st = lstatOrNull(abs);
    const cur = this.watchers.get(abs);
    if (cur && (!st?.isDirectory() || dirId(st) !== cur.id)) {
      // Removed, replaced by a file, or removed and made again (the old watch is on the old directory).
      this.unwatchTree(abs);
      this.on.unlinkDir(abs);
    }
    if (st?.isDirectory() && !this.watchers.has(abs)) void this.watchTree(abs, true);
  }

  /** Closes the watches of `dir` and of every directory below it. */
  private unwatchTree(dir: string): void {
    const prefix = dir + sep;
    for (const [d, { w }] of this.watchers) {
      if (d === dir || d.startsWith(prefix)) {
        w.close();
        this.watchers.delete(d);
      }
    }
  }

  private onWatchError(dir: string, w: FSWatcher, err: Error): void {
    if (this.closed || this.watchers.get(dir)?.w !== w) return;
    // A watch also ends with an error when its directory is removed (Windows: EPERM): that is a removal, not a failure.
    if (lstatOrNull(dir)?.isDirectory()) {
      w.close();
      this.watchers.delete(dir);
      this.on.error(err, dir);
    } else {
      this.unwatchTree(dir);
      this.on.unlinkDir(dir);
    }
  }
}
