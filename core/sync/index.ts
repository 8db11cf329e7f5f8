/** Public surface of `core/sync` (the nats.js `mod.ts` pattern). Test helpers live in `./testing`. */
export { SyncEngine, FILES_PREFIX, LOCKS_PREFIX, MAX_BLOCKS_PER_REQUEST, type SyncEngineOptions, type BlobFetcher, type IndexRecord } from './engine';
export {
  blockSize,
  blockCount,
  blockLayout,
  blocksOf,
  batchBlocks,
  diffBlocks,
  encodeManifest,
  decodeManifest,
  isSingleBlock,
  BlockVerifyError,
  MIN_BLOCK_SIZE,
  MAX_BLOCK_SIZE,
  DESIRED_BLOCKS_PER_FILE,
  type BlockInfo,
} from './blocks';
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
