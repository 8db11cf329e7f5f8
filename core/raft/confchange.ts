/**
 * Single-server membership changes (thesis §4.1, etcd `confchange` without joint consensus).
 *
 * A change adds a learner, promotes a learner to voter, or removes a member, one server at a
 * time: any two consecutive configurations then share a majority, so no joint consensus is
 * needed. A config log entry (`Entry.type === 'config'`) carries the change AND the whole
 * configuration that results from it, so the latest config entry of a log alone says which
 * configuration is in effect (a server uses the latest configuration in its log, committed or
 * not; thesis §4.1), and restart or truncation only needs to find that entry again.
 *
 * `context` is opaque to Raft (etcd's `ConfChange.Context`): the node layer stores a new
 * member's peer address there ("host:port"), and it is kept per node in {@link ConfState}.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { CorruptionError, ValidationError } from '../common/errors';
import type { NodeId } from './types';

/** One membership change (thesis §4.1 / §4.2.1). */
export type ConfChangeType = 'add-learner' | 'promote' | 'remove';

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
  /** Opaque per-node data kept with the configuration (the node layer: the peer address). At most 256 characters. */
  context?: string;
}

/** A configuration: voters, learners and each member's opaque context (absent = none). */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  context: Record<NodeId, string>;
}

/** The content of a config entry. */
export interface ConfEntryData {
  change: ConfChange;
  state: ConfState;
}

const MAX_ID = 64;
const MAX_CONTEXT = 256;
const TYPES: readonly ConfChangeType[] = ['add-learner', 'promote', 'remove'];

/** Throws ValidationError unless `x` is a well-formed {@link ConfChange} (shape only). */
export function validateConfChange(x: unknown): ConfChange {
  if (typeof x !== 'object' || x === null) throw new ValidationError('configuration change must be an object');
  const c = x as Record<string, unknown>;
  if (typeof c.type !== 'string' || !TYPES.includes(c.type as ConfChangeType)) throw new ValidationError(`configuration change type must be one of ${TYPES.join(', ')}`);
  if (typeof c.node !== 'string' || c.node.length === 0 || c.node.length > MAX_ID || !/^[\x21-\x7e]+$/.test(c.node)) {
    throw new ValidationError(`node id must be 1..${MAX_ID} printable characters without spaces`);
  }
  if (c.context !== undefined && (typeof c.context !== 'string' || c.context.length > MAX_CONTEXT)) throw new ValidationError(`context must be a string of at most ${MAX_CONTEXT} characters`);
  return { type: c.type as ConfChangeType, node: c.node, ...(c.context !== undefined ? { context: c.context as string } : {}) };
}

/**
 * The configuration that results from applying `change` to `state`. Throws ValidationError for
 * a change that makes no sense: adding a current member, promoting a non-learner, removing a
 * non-member or the last voter.
 */
export function applyConfChange(state: ConfState, change: ConfChange): ConfState {
  const c = validateConfChange(change);
  const isVoter = state.voters.includes(c.node);
  const isLearner = state.learners.includes(c.node);
  const context = { ...state.context };
  switch (c.type) {
    case 'add-learner':
      if (isVoter || isLearner) throw new ValidationError(`node ${c.node} is already a ${isVoter ? 'voter' : 'learner'}`);
      if (c.context !== undefined) context[c.node] = c.context;
      return { voters: [...state.voters], learners: [...state.learners, c.node], context };
    case 'promote':
      if (!isLearner) throw new ValidationError(isVoter ? `node ${c.node} is already a voter` : `node ${c.node} is not a learner (add it as a learner first)`);
      return { voters: [...state.voters, c.node], learners: state.learners.filter((x) => x !== c.node), context };
    case 'remove':
      if (!isVoter && !isLearner) throw new ValidationError(`node ${c.node} is not a member`);
      if (isVoter && state.voters.length === 1) throw new ValidationError(`node ${c.node} is the last voter and cannot be removed`);
      delete context[c.node];
      return { voters: state.voters.filter((x) => x !== c.node), learners: state.learners.filter((x) => x !== c.node), context };
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Encodes a config entry's data (UTF-8 JSON). */
export function encodeConfEntry(data: ConfEntryData): Uint8Array {
  return enc.encode(JSON.stringify(data));
}

/** Decodes a config entry's data; throws CorruptionError when it is not one. */
export function decodeConfEntry(bytes: Uint8Array): ConfEntryData {
  try {
    const x = JSON.parse(dec.decode(bytes)) as ConfEntryData;
    const s = x.state;
    const ids = (a: unknown): a is string[] => Array.isArray(a) && a.every((v) => typeof v === 'string');
    if (!ids(s?.voters) || !ids(s.learners) || typeof s.context !== 'object' || s.context === null) throw new Error('bad state');
    return { change: validateConfChange(x.change), state: { voters: s.voters, learners: s.learners, context: { ...s.context } } };
  } catch (err) {
    throw new CorruptionError('config entry does not decode', { cause: err });
  }
}

/** Same members in the same roles (order and context ignored). */
export function sameMembers(a: ConfState, b: ConfState): boolean {
  const eq = (x: NodeId[], y: NodeId[]) => x.length === y.length && x.every((v) => y.includes(v));
  return eq(a.voters, b.voters) && eq(a.learners, b.learners);
}
