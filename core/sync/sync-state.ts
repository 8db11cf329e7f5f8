/**
 * `SyncStateStore`: the per-path synced state of one folder on disk, as a snapshot plus a journal
 * of changes, so that a save costs what changed since the last one rather than the whole folder.
 * Before, every save rewrote one JSON document of every path: in a bulk sync of a 5,000-file folder
 * that cost each node about 0.25 s of its event loop, and a 100,000-file folder would have paid
 * about half a second per save, every few seconds, for as long as files kept arriving.
 *
 * Files, in the node's data dir:
 * - `sync-state.json`, the snapshot: `{ version: 2, nodeId, generation, entries: { <path>: state },
 *   readOnly: [<path>…] }`, written to a temp file and renamed into place. Version 1 (no
 *   `generation`, no journal: what earlier builds wrote) loads as generation 0.
 * - `sync-state.journal`, JSON lines: first `{"generation":N}`, then one line per change in the
 *   order made: `{"p":<path>,"s":<state>}` (`"s":null`: the path left the state) or
 *   `{"readOnly":[<path>…]}` (the whole read-only list, which is small).
 *
 * Crash safety (a lost or partial save only costs re-hashing: the engine compares local files with
 * the index again):
 * - a journal whose generation is not the snapshot's is ignored: a crash came between writing a
 *   new snapshot and starting its journal, and the snapshot already holds everything;
 * - a line that does not parse (a torn append) ends the replay;
 * - either way the next save compacts, so nothing is appended after a bad line.
 *
 * Compaction (a new snapshot of generation N+1, then an empty journal of N+1) happens when the
 * journal would hold more lines than {@link JOURNAL_MIN_LINES} or than there are entries, so its
 * cost is at most one entry written per change, amortized; also at the first save after a load
 * that found no valid journal, and after a failed write.
 */
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { errCode } from '../common/errors';

/** Snapshot file name (in the data dir). */
export const STATE_FILE = 'sync-state.json';
/** Journal file name (in the data dir). */
export const STATE_JOURNAL = 'sync-state.journal';
/** The journal is compacted once it would hold more than this many lines and more lines than entries. */
export const JOURNAL_MIN_LINES = 4096;

/** What {@link SyncStateStore.load} found. */
export interface LoadedSyncState<S> {
  entries: Map<string, S>;
  readOnly: Set<string>;
  /** Set when a file was unreadable or malformed; what could be read is still returned. */
  problem?: string;
}

/** Writes `text` to `file` through a temp file and a rename (readers see the old or the new bytes). */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

/**
 * The synced-state files of one data dir. Entries `S` are plain JSON objects (the engine's
 * `SyncedState`). Not safe for concurrent saves: the caller serializes them (the engine chains them).
 */
export class SyncStateStore<S extends object> {
  private readonly snapshotFile: string;
  private readonly journalFile: string;
  private generation = 0;
  /** Lines in the journal after its header. */
  private journalLines = 0;
  /** False until the journal on disk is known to belong to {@link generation} and to end cleanly. */
  private journalOk = false;
  /** Paths changed since the last save. */
  private readonly dirty = new Set<string>();
  /** The read-only list as last written (JSON), to write it again only when it changed. */
  private savedReadOnly = '[]';

  /**
   * @param dataDir the node's data directory (must exist before the first save)
   * @param nodeId written into the snapshot (for people reading the file)
   * @param journalMinLines compaction threshold (default {@link JOURNAL_MIN_LINES}; tests use small ones)
   */
  constructor(
    dataDir: string,
    private readonly nodeId: string,
    private readonly journalMinLines = JOURNAL_MIN_LINES,
  ) {
    this.snapshotFile = join(dataDir, STATE_FILE);
    this.journalFile = join(dataDir, STATE_JOURNAL);
  }

  /** Journal lines written since the last compaction (for tests and metrics). */
  get journalLength(): number {
    return this.journalLines;
  }

  /** The snapshot's generation (grows by one per compaction). */
  get snapshotGeneration(): number {
    return this.generation;
  }

  /**
   * Reads the snapshot and replays the journal. A missing snapshot is an empty state. Never
   * throws for bad content: it returns what it could read and says why in `problem`.
   * @throws the fs error when a file exists but cannot be read (EACCES, EIO…)
   */
  async load(): Promise<LoadedSyncState<S>> {
    const entries = new Map<string, S>();
    const readOnly = new Set<string>();
    this.dirty.clear();
    this.generation = 0;
    this.journalLines = 0;
    this.journalOk = false;
    this.savedReadOnly = '[]';
    let text: string;
    try {
      text = await readFile(this.snapshotFile, 'utf8');
    } catch (err) {
      if (errCode(err) === 'ENOENT') return { entries, readOnly };
      throw err;
    }
    try {
      const doc = JSON.parse(text) as { generation?: unknown; entries?: unknown; readOnly?: unknown };
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
      if (typeof doc.entries === 'object' && doc.entries !== null) {
        for (const [p, s] of Object.entries(doc.entries as Record<string, unknown>)) if (typeof s === 'object' && s !== null) entries.set(p, s as S);
      }
      if (Array.isArray(doc.readOnly)) for (const p of doc.readOnly) if (typeof p === 'string') readOnly.add(p);
      this.generation = Number.isSafeInteger(doc.generation) && (doc.generation as number) >= 0 ? (doc.generation as number) : 0;
    } catch (err) {
      return { entries: new Map(), readOnly: new Set(), problem: `${STATE_FILE} is unreadable (${(err as Error).message})` };
    }
    let journal: string;
    try {
      journal = await readFile(this.journalFile, 'utf8');
    } catch (err) {
      if (errCode(err) === 'ENOENT') return this.loaded(entries, readOnly);
      throw err;
    }
    const lines = journal.split('\n');
    let header: unknown;
    try {
      header = JSON.parse(lines[0] ?? '');
    } catch {
      header = null;
    }
    if (typeof header !== 'object' || header === null || (header as { generation?: unknown }).generation !== this.generation) {
      return this.loaded(entries, readOnly); // another generation's journal (or none readable): the snapshot holds everything
    }
    let n = 0;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '' && i === lines.length - 1) {
        this.journalOk = true; // ends with a newline: every line was written whole
        break;
      }
      let rec: { p?: unknown; s?: unknown; readOnly?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
        if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw new Error('not an object');
      } catch {
        return this.loaded(entries, readOnly, n, `${STATE_JOURNAL} ends with a torn line (line ${i + 1}); replayed the ${n} lines before it`);
      }
      if (typeof rec.p === 'string' && rec.s === null) entries.delete(rec.p);
      else if (typeof rec.p === 'string' && typeof rec.s === 'object') entries.set(rec.p, rec.s as S);
      else if (Array.isArray(rec.readOnly)) {
        readOnly.clear();
        for (const p of rec.readOnly) if (typeof p === 'string') readOnly.add(p);
      } else return this.loaded(entries, readOnly, n, `${STATE_JOURNAL} line ${i + 1} is not a state change; replayed the ${n} lines before it`);
      n++;
    }
    return this.loaded(entries, readOnly, n);
  }

  private loaded(entries: Map<string, S>, readOnly: Set<string>, lines = 0, problem?: string): LoadedSyncState<S> {
    this.journalLines = lines; // journalOk stays false after a problem: the next save compacts
    this.savedReadOnly = JSON.stringify([...readOnly]);
    return problem ? { entries, readOnly, problem } : { entries, readOnly };
  }

  /** Notes that `path`'s entry changed (set or removed); the next {@link save} writes it. */
  changed(path: string): void {
    this.dirty.add(path);
  }

  /**
   * Writes the changes noted since the last save: appends them to the journal, or compacts (see
   * the module doc). `entries` and `readOnly` are read synchronously at the call, so the caller may
   * change them while the write is under way (and note those changes for the next save). When a
   * write fails, the next save compacts (nothing noted is forgotten).
   * @throws the fs error of a failed write
   */
  async save(entries: ReadonlyMap<string, S>, readOnly: ReadonlySet<string>): Promise<void> {
    const ro = JSON.stringify([...readOnly]);
    if (this.dirty.size === 0 && ro === this.savedReadOnly && this.journalOk) return;
    const lines = this.dirty.size + (ro === this.savedReadOnly ? 0 : 1);
    if (!this.journalOk || this.journalLines + lines > Math.max(this.journalMinLines, entries.size)) {
      const generation = this.generation + 1;
      const doc = JSON.stringify({ version: 2, nodeId: this.nodeId, generation, entries: Object.fromEntries(entries), readOnly: [...readOnly] });
      this.dirty.clear();
      this.savedReadOnly = ro;
      this.journalOk = false;
      await writeAtomic(this.snapshotFile, doc); // on failure journalOk stays false: the next save compacts again
      this.generation = generation;
      await writeAtomic(this.journalFile, `${JSON.stringify({ generation })}\n`);
      this.journalLines = 0;
      this.journalOk = true;
      return;
    }
    let text = '';
    for (const p of this.dirty) text += `${JSON.stringify({ p, s: entries.get(p) ?? null })}\n`;
    if (ro !== this.savedReadOnly) text += `${JSON.stringify({ readOnly: [...readOnly] })}\n`;
    this.dirty.clear();
    this.savedReadOnly = ro;
    this.journalLines += lines;
    try {
      await appendFile(this.journalFile, text);
    } catch (err) {
      this.journalOk = false; // the journal may end with part of these lines: compact next time
      throw err;
    }
  }
}
