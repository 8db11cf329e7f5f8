/**
 * Public surface of `core/raft` (the nats.js `mod.ts` pattern). Deterministic: the file-backed
 * WAL adapter (`Wal`, uses `node:fs`) is imported from `core/raft/wal` directly so this index
 * stays free of Node built-ins. Test helpers live in `./testing`.
 */
export type * from './types';
export { Raft, type RaftConfig, type Ready, type ReadState, type SoftState } from './raft';
export { RaftLog } from './log';
export { crc32, decodeRecords, encodeRecord, encodeRecords, WAL_VERSION, type DecodeResult, type WalRecord } from './wal-codec';
export { applyConfChange, decodeConfEntry, encodeConfEntry, validateConfChange, type ConfChange, type ConfChangeType, type ConfEntryData, type ConfState } from './confchange';
