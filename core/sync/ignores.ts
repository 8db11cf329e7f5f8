/**
 * Ignore rules of the synchronized folder: built-in defaults plus the folder's own
 * `.clusterdeskignore` (gitignore syntax, matched by the `ignore` package, like Syncthing's
 * `.stignore` but with git's pattern language).
 *
 * An ignored path is never committed from this folder and never overwritten or deleted here by a
 * remote change (Syncthing: "ignored files are not synced in either direction"). The rules are
 * per folder: another node may sync a path this node ignores.
 *
 * Deterministic (no I/O): the engine reads the file and calls {@link IgnoreRules.load}.
 */
import ignore, { type Ignore } from 'ignore';

/** Name of the per-folder ignore file (at the folder root). */
export const IGNORE_FILE = '.clusterdeskignore';
/** ClusterDesk's own folder inside the synchronized folder (kept versions live here). */
export const META_DIR = '.clusterdesk';

/**
 * Patterns ignored in every folder.
 * Editor temp files: `*~`, Vim `.*.swp`/`.*.swo`/`4913`, `*.tmp`, Office owner files `~$*`, Emacs
 * lock files `.#*`. OS metadata: macOS `.DS_Store`, `._*`, `.Spotlight-V100`, `.Trashes`; Windows
 * `Thumbs.db`, `desktop.ini`. ClusterDesk's own `.clusterdesk/` folder.
 */
export const DEFAULT_IGNORES: readonly string[] = [
  '*~',
  '.*.swp',
  '.*.swo',
  '*.tmp',
  '~$*',
  '.#*',
  '4913',
  '.DS_Store',
  'Thumbs.db',
  'desktop.ini',
  '._*',
  '.Spotlight-V100',
  '.Trashes',
  `/${META_DIR}/`,
];

/** The folder's ignore matcher. Paths are folder-relative with `/` separators. */
export class IgnoreRules {
  private matcher: Ignore = ignore({ ignorecase: true }).add([...DEFAULT_IGNORES]);
  private userPatterns: string[] = [];

  /**
   * Replaces the user rules with the text of `.clusterdeskignore` (null when the file is absent).
   * Blank lines and `#` comments are skipped, as in gitignore; negations (`!pattern`) cannot
   * un-ignore a built-in default that ignores a whole directory (`.clusterdesk/`), as in git.
   * @returns the user patterns in effect
   */
  load(text: string | null): string[] {
    const lines = (text ?? '')
      .split(/\r?\n/)
      .map((l) => l.replace(/\s+$/, ''))
      .filter((l) => l.length > 0 && !l.startsWith('#'));
    this.userPatterns = lines;
    this.matcher = ignore({ ignorecase: true }).add([...DEFAULT_IGNORES]).add(lines);
    // The meta folder stays ignored whatever the user file says.
    this.matcher.add(`/${META_DIR}/`);
    return [...lines];
  }

  /** The user patterns in effect (from `.clusterdeskignore`). */
  patterns(): string[] {
    return [...this.userPatterns];
  }

  /**
   * True when `path` (a file) or one of its parent directories is ignored.
   * @param path folder-relative, `/`-separated; the ignore file itself is never ignored
   */
  ignores(path: string): boolean {
    if (path === IGNORE_FILE || path.length === 0) return false;
    if (path === META_DIR || path.startsWith(META_DIR + '/')) return true;
    try {
      return this.matcher.ignores(path);
    } catch {
      return false; // the `ignore` package throws on paths it considers invalid (e.g. absolute); those are refused elsewhere
    }
  }

  /** True when directory `path` is ignored as a whole (so the watcher need not descend into it). */
  ignoresDir(path: string): boolean {
    if (path === META_DIR || path.startsWith(META_DIR + '/')) return true;
    try {
      return this.matcher.ignores(path + '/');
    } catch {
      return false;
    }
  }
}
