/** Public surface of `core/kv` (the nats.js `mod.ts` pattern). Test helpers live in `./testing`. */
export type * from './types';
export { MemoryKv, type MemoryKvOptions } from './memory-kv';
export { EmbeddedKv, type EmbeddedKvOptions } from './embedded-kv';
export { KvStateMachine, encodeCommand, decodeCommand, compareKeys, DEFAULT_HISTORY_EVENTS, type KvCommand, type KvResult, type KvStateMachineOptions } from './state-machine';
