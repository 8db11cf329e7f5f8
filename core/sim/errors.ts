/**
 * Typed errors of the deterministic simulator (the nats.js `errors.ts` pattern). All of them
 * are bugs being reported (broken invariants), never expected failures.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { InvariantError } from '../common/errors';

/** Which Raft safety property (paper Fig. 3, §5.4) or simulator check failed. */
export type SafetyProperty = 'election-safety' | 'log-matching' | 'leader-completeness' | 'state-machine-safety' | 'committed-agreement' | 'apply-order' | 'snapshot' | 'commit-quorum' | 'one-change-at-a-time' | 'configuration';

/** A Raft safety property was violated (paper Fig. 3). */
export class SafetyViolation extends InvariantError {
  readonly property: SafetyProperty;
  constructor(property: SafetyProperty, message: string) {
    super(`${property}: ${message}`);
    this.name = 'SafetyViolation';
    this.property = property;
  }
}

/** The client-visible KV history is not linearizable (or the checker ran out of budget). */
export class LinearizabilityViolation extends InvariantError {
  readonly verdict: 'illegal' | 'timeout';
  constructor(verdict: 'illegal' | 'timeout', message: string) {
    super(message);
    this.name = 'LinearizabilityViolation';
    this.verdict = verdict;
  }
}

/** After every fault healed, no leader was elected or no proposal committed within the bound. */
export class LivenessViolation extends InvariantError {
  constructor(message: string) {
    super(message);
    this.name = 'LivenessViolation';
  }
}
