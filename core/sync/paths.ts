/**
 * Folder-relative path rules of the synchronized folder (pure; imports nothing from `node:`).
 *
 * A path is portable when every host (Windows, macOS, Linux) can store it unchanged:
 * `/` separators, Unicode NFC, no `.`/`..` segments, no empty segments, not absolute, no NUL or
 * control characters, no character Windows forbids (`<>:"|?*\`), no Windows reserved device name
 * (CON, PRN, AUX, NUL, COM1–9, LPT1–9, with or without extension), no segment ending in a dot or a
 * space, at most {@link MAX_PATH_LENGTH} characters in total and {@link MAX_SEGMENT_LENGTH} per segment.
 * (Microsoft, "Naming Files, Paths, and Namespaces".) Bad paths are refused with a {@link PathError}.
 */
import { PathError } from '../common/errors';

/** Longest accepted folder-relative path, in UTF-16 code units (Windows MAX_PATH). */
export const MAX_PATH_LENGTH = 260;
/** Longest accepted single name (NTFS, ext4, APFS limit). */
export const MAX_SEGMENT_LENGTH = 255;
/** Prefix of the engine's own temporary files inside the folder. */
export const TEMP_PREFIX = '.clusterdesk-tmp-';

const RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])$/i;
const ILLEGAL_CHARS = /[<>:"|?*\\]/;
const CONTROL_CHARS = /[\u0000-\u001f]/;

function fail(path: string, reason: string): never {
  throw new PathError(`invalid path ${JSON.stringify(path)}: ${reason}`, { detail: { path, reason } });
}

/**
 * Validates a folder-relative path and returns its normalized (NFC) form.
 * @param path e.g. `docs/report.txt`
 * @returns the NFC-normalized path (unchanged otherwise; nothing is silently rewritten)
 * @throws PathError with a message naming the path and the broken rule
 */
export function normalizePath(path: string): string {
  const known = accepted.get(path);
  if (known !== undefined) return known;
  const p = checkPath(path);
  if (accepted.size >= ACCEPTED_MAX) accepted.clear();
  accepted.set(path, p);
  return p;
}

/**
 * Paths {@link normalizePath} accepted, with their NFC form: the sync engine checks each path
 * several times on its way (event, plan, commit, index), which cost 0.17 s of a node's event loop
 * in a sync of 5,000 small files. Refused paths are not kept (each call throws again). Emptied
 * when it reaches {@link ACCEPTED_MAX} entries.
 */
const accepted = new Map<string, string>();
const ACCEPTED_MAX = 65_536;

function checkPath(path: string): string {
  if (typeof path !== 'string') fail(String(path), 'not a string');
  if (path.length === 0) fail(path, 'empty path');
  if (path.includes('\u0000')) fail(path, 'contains a NUL character');
  const p = path.normalize('NFC');
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.startsWith('\\')) fail(path, 'absolute paths are not allowed; use a folder-relative path');
  if (p.length > MAX_PATH_LENGTH) fail(path, `longer than ${MAX_PATH_LENGTH} characters (${p.length})`);
  const segments = p.split('/');
  for (const seg of segments) {
    if (seg.length === 0) fail(path, 'empty path segment (leading, trailing or doubled "/")');
    if (seg === '.' || seg === '..') fail(path, `"${seg}" segments are not allowed (path traversal)`);
    if (seg.length > MAX_SEGMENT_LENGTH) fail(path, `name longer than ${MAX_SEGMENT_LENGTH} characters`);
    if (CONTROL_CHARS.test(seg)) fail(path, 'contains a control character');
    const bad = ILLEGAL_CHARS.exec(seg);
    if (bad) fail(path, `character ${JSON.stringify(bad[0])} is not allowed on Windows`);
    if (seg.endsWith('.') || seg.endsWith(' ')) fail(path, `name "${seg}" ends with a dot or a space (not allowed on Windows)`);
    const stem = seg.split('.')[0] ?? seg;
    if (RESERVED.test(stem.trimEnd())) fail(path, `"${seg}" is a reserved device name on Windows`);
  }
  return p;
}

/** Alias of {@link normalizePath}: validates `path` and returns its NFC form, or throws PathError. */
export const validatePath = normalizePath;

/** True when {@link normalizePath} accepts `path`. */
export function isValidPath(path: string): boolean {
  try {
    normalizePath(path);
    return true;
  } catch {
    return false;
  }
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * Name of a conflict copy, following Syncthing (`lib/model/folder.go` conflictName):
 * `dir/name.sync-conflict-YYYYMMDD-HHMMSS-<nodeId>.ext` with the date in UTC. The extension is
 * the part after the last dot of the base name; a dot-file such as `.env` has no extension.
 * @param path folder-relative path of the losing file
 * @param date when the conflict was detected
 * @param nodeId node whose bytes the copy holds
 */
export function conflictCopyName(path: string, date: Date, nodeId: string): string {
  const slash = path.lastIndexOf('/');
  const dir = slash >= 0 ? path.slice(0, slash + 1) : '';
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  const stem = dot > 0 ? base.slice(0, dot) : base;
  const ext = dot > 0 ? base.slice(dot) : '';
  const stamp =
    `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-` +
    `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
  return `${dir}${stem}.sync-conflict-${stamp}-${nodeId}${ext}`;
}

/** True for the base name of a conflict copy made by {@link conflictCopyName}. */
export function isConflictCopy(path: string): boolean {
  return /\.sync-conflict-\d{8}-\d{6}-/.test(path.slice(path.lastIndexOf('/') + 1));
}

/**
 * True for names the engine never syncs: its own temp files (`.clusterdesk-tmp-*`) and OS/editor
 * litter (`.DS_Store`, `Thumbs.db`, Office owner files `~$*`, Vim swap files `*.swp`).
 * @param name a base name or a path (only the last segment is looked at)
 */
export function isTemporary(name: string): boolean {
  const base = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
  if (base.startsWith(TEMP_PREFIX)) return true;
  if (base === '.DS_Store') return true;
  if (base.toLowerCase() === 'thumbs.db') return true;
  if (base.startsWith('~$')) return true;
  if (base.endsWith('.swp')) return true;
  return false;
}

/**
 * The original path of a conflict copy made by {@link conflictCopyName}, or null when `path` is
 * not one. Inverse of `conflictCopyName(original, date, nodeId)` for node ids without a dot
 * (config ids are letters, digits, `_` and `-`).
 * @example conflictOriginal('docs/a.sync-conflict-20260101-120000-B.txt') === 'docs/a.txt'
 */
export function conflictOriginal(path: string): string | null {
  const slash = path.lastIndexOf('/');
  const dir = slash >= 0 ? path.slice(0, slash + 1) : '';
  const base = path.slice(slash + 1);
  const m = /^(.+?)\.sync-conflict-\d{8}-\d{6}-[^.]+(\.[^.]*)?$/.exec(base);
  if (!m) return null;
  return `${dir}${m[1]}${m[2] ?? ''}`;
}
