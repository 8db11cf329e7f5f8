/**
 * Kept versions of files replaced or deleted by a remote change, in Syncthing's "simple
 * versioning" layout (`lib/versioner/simple.go`): the old bytes of `docs/a.txt` go to
 * `<folder>/.clusterdesk/versions/docs/a.txt~20261124-142500` (UTC time the version was kept).
 * Syncthing puts the stamp before the extension; we append it so that every version of a file
 * shares its name as a prefix. `.clusterdesk/` is never synced (see `ignores.ts`): versions are
 * this node's own.
 *
 * Retention (applied to a file's versions whenever one is kept, and to all of them at start):
 * at most `keep` versions per file, none older than `maxAgeDays` (Syncthing's `keep` and
 * `cleanoutDays`).
 */
import { copyFile, link, lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NotFoundError, ValidationError } from '../common/errors';
import { silentLogger, type Logger } from '../common/logger';
import type { KeptVersion } from '../control/api';
import { META_DIR } from './ignores';

export type { KeptVersion } from '../control/api';

/** Folder-relative directory of kept versions. */
export const VERSIONS_DIR = `${META_DIR}/versions`;

/** Retention policy of kept versions. */
export interface VersioningOptions {
  /** Versions kept per file (0 disables versioning). Default 5. */
  keep: number;
  /** Versions older than this many days are removed (0 = no age limit). Default 30. */
  maxAgeDays: number;
}

export const DEFAULT_VERSIONING: VersioningOptions = { keep: 5, maxAgeDays: 30 };

const STAMP = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-(\d{1,4}))?$/;
const DAY_MS = 86_400_000;

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYYMMDD-HHMMSS` of `date` in UTC. */
export function versionStamp(date: Date): string {
  return (
    `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-` +
    `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`
  );
}

/** Milliseconds since the epoch of a version id, or null when `id` is not one. */
export function parseVersionId(id: string): number | null {
  const m = STAMP.exec(id);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return null;
  return t + Number(m[7] ?? 0); // `-N` orders versions kept in the same second
}

/** The versions of one synchronized folder. Paths are folder-relative, validated by the caller. */
export class VersionStore {
  private readonly root: string;
  private readonly log: Logger;

  constructor(
    folder: string,
    private readonly opts: VersioningOptions = DEFAULT_VERSIONING,
    logger: Logger = silentLogger,
  ) {
    this.root = join(folder, ...VERSIONS_DIR.split('/'));
    this.log = logger;
  }

  /** True when versions are kept at all (`keep > 0`). */
  get enabled(): boolean {
    return this.opts.keep > 0;
  }

  /**
   * Keeps the current bytes of `path` (at `absFile`) in the versions folder (a hard link, or a
   * copy where links are not supported), then applies the
   * retention policy to `path`'s versions. Returns the kept version, or null when versioning is
   * off or the file does not exist.
   */
  async keep(path: string, absFile: string, now = new Date()): Promise<KeptVersion | null> {
    if (!this.enabled) return null;
    const st = await lstat(absFile).catch(() => null); // never follow a symlink
    if (!st || !st.isFile()) return null;
    const base = this.fileOf(path);
    await mkdir(dirname(base), { recursive: true });
    const stamp = versionStamp(now);
    let id = stamp;
    for (let i = 1; await stat(`${base}~${id}`).catch(() => null); i++) id = `${stamp}-${i}`;
    // A hard link costs no copy: the caller then renames the new bytes over `absFile` (or deletes
    // it), leaving the old inode to the version. Filesystems without hard links get a copy.
    await link(absFile, `${base}~${id}`).catch(() => copyFile(absFile, `${base}~${id}`));
    this.log.info({ path, version: id }, 'kept the old version before replacing it');
    await this.prune(path, now.getTime());
    return { id, path, size: st.size, keptAt: parseVersionId(id) ?? now.getTime() };
  }

  /** `path`'s kept versions, newest first. */
  async list(path: string): Promise<KeptVersion[]> {
    const base = this.fileOf(path);
    const name = base.slice(dirname(base).length + 1);
    const entries = await readdir(dirname(base), { withFileTypes: true }).catch(() => []);
    const out: KeptVersion[] = [];
    for (const e of entries) {
      if (!e.isFile() || !e.name.startsWith(name + '~')) continue;
      const id = e.name.slice(name.length + 1);
      const at = parseVersionId(id);
      if (at === null) continue;
      const st = await stat(join(dirname(base), e.name)).catch(() => null);
      if (st) out.push({ id, path, size: st.size, keptAt: at });
    }
    return out.sort((a, b) => b.keptAt - a.keptAt);
  }

  /**
   * Absolute path of kept version `id` of `path`.
   * @throws ValidationError for a malformed id, NotFoundError when no such version is kept
   */
  async fileOfVersion(path: string, id: string): Promise<string> {
    if (parseVersionId(id) === null) throw new ValidationError(`malformed version id ${JSON.stringify(id)} (expected YYYYMMDD-HHMMSS)`);
    const file = `${this.fileOf(path)}~${id}`;
    const st = await stat(file).catch(() => null);
    if (!st || !st.isFile()) throw new NotFoundError(`no kept version ${id} of ${path}`);
    return file;
  }

  /** Removes `path`'s versions beyond `keep` (oldest first) and those older than `maxAgeDays`. */
  async prune(path: string, now = Date.now()): Promise<number> {
    const versions = await this.list(path);
    const base = this.fileOf(path);
    let removed = 0;
    for (const [i, v] of versions.entries()) {
      const tooOld = this.opts.maxAgeDays > 0 && now - v.keptAt > this.opts.maxAgeDays * DAY_MS;
      if (i >= this.opts.keep || tooOld) {
        await rm(`${base}~${v.id}`, { force: true });
        removed++;
      }
    }
    if (removed > 0) this.log.info({ path, removed }, 'removed old kept versions (retention policy)');
    return removed;
  }

  /** Applies the retention policy to every kept version (run at start). */
  async pruneAll(now = Date.now()): Promise<number> {
    const files = new Set<string>();
    const walk = async (dir: string, rel: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(join(dir, e.name), rel + e.name + '/');
        else if (e.isFile()) {
          const cut = e.name.lastIndexOf('~');
          if (cut > 0 && parseVersionId(e.name.slice(cut + 1)) !== null) files.add(rel + e.name.slice(0, cut));
        }
      }
    };
    await walk(this.root, '');
    let removed = 0;
    for (const p of files) removed += await this.prune(p, now);
    return removed;
  }

  private fileOf(path: string): string {
    return join(this.root, ...path.split('/'));
  }
}
