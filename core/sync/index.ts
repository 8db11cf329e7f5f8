/** Public surface of `core/sync` (the nats.js `mod.ts` pattern). Test helpers live in `./testing`. */
export { SyncEngine, FILES_PREFIX, LOCKS_PREFIX, type SyncEngineOptions, type BlobFetcher, type IndexRecord } from './engine';
export { ObjectStore, assertSha256, type HashFileFn } from './object-store';
export { Hasher, type HasherOptions, type HashResult } from './hasher';
export { planPath, type PlanAction, type PlanInput } from './planner';
export {
  normalizePath,
  validatePath,
  isValidPath,
  conflictCopyName,
  isConflictCopy,
  isTemporary,
  MAX_PATH_LENGTH,
  MAX_SEGMENT_LENGTH,
  TEMP_PREFIX,
} from './paths';
