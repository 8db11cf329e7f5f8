/**
 * Public surface of `core/sim`, the deterministic simulator (issue 3): a seeded cluster of pure
 * Raft nodes with KV state machines over a simulated network and disk, Raft safety checks after
 * every step, a liveness check after healing, and a Porcupine-style linearizability checker.
 *
 * Deterministic: nothing here imports `node:`; the CLI lives in `scripts/sim.ts`.
 */
export { runSimulation, sweepOptions, describeFault, Simulation, type Fault, type SimOptions, type SimResult, type SimOperation } from './simulation';
export { checkLinearizable, kvModel, type CheckResult, type KvInput, type KvOperation, type KvOutput, type Model, type Operation } from './linearizability';
export { SafetyChecker, inspectLog, type LogView, type NodeView } from './safety';
export { SimNetwork, PERFECT_LINK, type LinkQuality } from './network';
export { SafetyViolation, LinearizabilityViolation, LivenessViolation, type SafetyProperty } from './errors';
