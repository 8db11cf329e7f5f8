import { describe, expect, it } from 'vitest';
import type { Entry, Message } from '../raft/types';
import { compactMessages } from './embedded-kv';

const e = (index: number): Entry => ({ term: 2, index, type: 'normal', data: new Uint8Array() });
const m = (over: Partial<Message> & Pick<Message, 'type' | 'to'>): Message => ({
  from: 'A',
  term: 2,
  logTerm: 2,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
  context: new Uint8Array(),
  ...over,
});

describe('compactMessages', () => {
  it('keeps only the last AppendEntries per peer, term and prevLogIndex, and the last plain heartbeat', () => {
    const out = compactMessages([
      m({ type: 'AppendEntries', to: 'B', index: 4, entries: [e(5)], commit: 3 }),
      m({ type: 'AppendEntries', to: 'C', index: 4, entries: [e(5)], commit: 3 }),
      m({ type: 'Heartbeat', to: 'B', commit: 3 }),
      m({ type: 'AppendEntries', to: 'B', index: 4, entries: [e(5), e(6)], commit: 4 }),
      m({ type: 'Heartbeat', to: 'B', commit: 4 }),
      m({ type: 'AppendEntries', to: 'B', index: 5, entries: [e(6)], commit: 4 }),
    ]);
    expect(out.map((x) => `${x.type}>${x.to}@${x.index}+${x.entries.length}/c${x.commit}`)).toEqual([
      'AppendEntries>C@4+1/c3',
      'AppendEntries>B@4+2/c4',
      'Heartbeat>B@0+0/c4',
      'AppendEntries>B@5+1/c4',
    ]);
  });

  it('never drops votes, rejections or ReadIndex heartbeats; keeps the highest acknowledgement', () => {
    const ctx = new Uint8Array([1]);
    const msgs = [
      m({ type: 'AppendEntriesResponse', to: 'A', index: 7 }),
      m({ type: 'AppendEntriesResponse', to: 'A', index: 6, reject: true, rejectHint: 5 }),
      m({ type: 'AppendEntriesResponse', to: 'A', index: 9 }),
      m({ type: 'AppendEntriesResponse', to: 'A', index: 8 }),
      m({ type: 'Heartbeat', to: 'B', context: ctx }),
      m({ type: 'Heartbeat', to: 'B', context: ctx }),
      m({ type: 'RequestVoteResponse', to: 'C' }),
      m({ type: 'RequestVoteResponse', to: 'C' }),
    ];
    const out = compactMessages(msgs);
    expect(out.filter((x) => x.type === 'AppendEntriesResponse').map((x) => [x.index, x.reject])).toEqual([
      [6, true],
      [9, false],
    ]);
    expect(out.filter((x) => x.type === 'Heartbeat')).toHaveLength(2);
    expect(out.filter((x) => x.type === 'RequestVoteResponse')).toHaveLength(2);
  });
});
