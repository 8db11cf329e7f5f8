/**
 * The sync planner: given what one path looks like locally, what this folder last synced, what
 * the replicated index says and whether another node holds the path's lock, decide what to do.
 * Pure and level-triggered (imports nothing from `node:`): the engine re-plans a path after every
 * event, so a lost or duplicated event cannot leave a folder wrong. DESIGN "File change" flow.
 */

/** Content of one path as seen in one place; `sha256` null means "no file" (missing or tombstone). */
export interface PlanInput {
  /** SHA-256 of the local file, or null when there is none. */
  local: string | null;
  /** What this folder last synced: content (null = deleted) and the index record's modRevision. */
  synced: { sha256: string | null; modRevision: number } | null;
  /** The newest index record seen (null when the index has no record). */
  index: { sha256: string; deleted: boolean; modRevision: number } | null;
  /** Another node holds a lock on the path. */
  lockedByOther: boolean;
}

/**
 * - `synced`: local already matches the index; record it.
 * - `commit`: publish the local content (or a tombstone when `local` is null) as the next version.
 * - `apply`: make the local file match the index (write it, or delete it for a tombstone).
 * - `conflict`: keep the local bytes as a conflict copy, then apply the index.
 * - `refuse`: a local change to a path locked by another node: keep the local bytes as a conflict
 *   copy when there are any (`copy`), then restore the index version.
 */
export type PlanAction = { kind: 'synced' } | { kind: 'commit' } | { kind: 'apply' } | { kind: 'conflict' } | { kind: 'refuse'; copy: boolean };

/** Decides the action for one path (see {@link PlanAction}). */
export function planPath(input: PlanInput): PlanAction {
  const { local, synced, index, lockedByOther } = input;
  const indexSha = index && !index.deleted ? index.sha256 : null;
  if (local === indexSha) return { kind: 'synced' };
  const syncedSha = synced ? synced.sha256 : null;
  const dirty = local !== syncedSha;
  const newer = index !== null && (synced === null || index.modRevision !== synced.modRevision);
  if (!dirty) return newer ? { kind: 'apply' } : lockedByOther ? { kind: 'synced' } : { kind: 'commit' };
  if (lockedByOther) return { kind: 'refuse', copy: local !== null };
  if (!newer) return { kind: 'commit' };
  // Both sides changed since the last sync.
  if (local !== null && index !== null && index.deleted) return { kind: 'commit' }; // an edit beats a delete
  if (local !== null) return { kind: 'conflict' };
  return { kind: 'apply' }; // deleted here, changed elsewhere: the change wins
}
