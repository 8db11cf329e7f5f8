import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnavailableError, ValidationError } from '../common/errors';
import { EmbeddedKv } from './embedded-kv';
import { MemoryTransport } from './testing/memory-transport';
import { waitFor } from './testing/wait-for';

const VOTERS = ['A', 'B', 'C'];


let cleanup: Array<() => Promise<void> | void> = [];
const hubs: MemoryTransport[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function makeCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'cd-member-'));
  const hub = new MemoryTransport(1);
  hubs.push(hub);
  const nodes = new Map<string, EmbeddedKv>();
  const create = (id: string, join_ = false) => {
    const kv = new EmbeddedKv({ id, voters: VOTERS, learners: [], dataDir: join(dir, id), transport: hub.transport(id), clusterId: 'test', tickMs: 10, preferred: id === 'A', seed: `m/${id}`, requestTimeoutMs: 5_000, join: join_ });
    nodes.set(id, kv);
    return kv;
  };
  for (const id of VOTERS) create(id);
  cleanup.push(async () => {
    for (const kv of nodes.values()) await kv.stop();
  });
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const leader = () => waitFor('a leader', () => [...nodes.entries()].find(([, kv]) => kv.status().role === 'leader')?.[0]);
  return { nodes, create, leader, kv: (id: string) => nodes.get(id)! };
}

describe('EmbeddedKv membership changes and leadership transfer', () => {
  it('adds a learner, promotes it, transfers leadership to it, removes an old voter, keeps serving writes, and remembers the configuration after a restart', async () => {
    const c = makeCluster();
    await Promise.all(VOTERS.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    await c.kv('B').put('k', 'before');
    const d = c.create('D', true);
    await d.start();
    expect(d.status().role).toBe('learner');
    const seen: string[][] = [];
    c.kv('B').onConfState((s) => seen.push(s.learners));
    // Asked on a follower: forwarded to the leader.
    const added = await c.kv(VOTERS.find((x) => x !== leader)!).addLearner('D', '127.0.0.1:9999');
    expect(added).toMatchObject({ voters: VOTERS, learners: ['D'] });
    await waitFor('D has the data', async () => (await d.range('k', { serializable: true })).kvs[0]?.value === 'before');
    expect(seen).toContainEqual(['D']);
    expect(c.kv('B').confState().context).toEqual({ D: '127.0.0.1:9999' });
    await expect(c.kv('A').promote('A')).rejects.toThrow(ValidationError);
    const promoted = await d.promote('D');
    expect(promoted.voters).toEqual([...VOTERS, 'D']);
    expect(d.status().role).toBe('follower');
    expect(await c.kv('C').transferLeadership('D')).toEqual({ leaderId: 'D' });
    await waitFor('D leads', () => d.status().role === 'leader');
    const removed = await c.kv('B').removeMember('A');
    expect(removed.voters).toEqual(['B', 'C', 'D']);
    await c.kv('C').put('k', 'after');
    expect((await d.range('k')).kvs[0]?.value).toBe('after');
    // Restart C: its configuration comes back from the WAL.
    await c.kv('C').stop();
    const c2 = c.create('C');
    await c2.start();
    expect(c2.confState()).toEqual({ voters: ['B', 'C', 'D'], learners: [], context: { D: '127.0.0.1:9999' } });
    await c2.put('k', 'restarted');
    expect((await c2.range('k')).kvs[0]?.value).toBe('restarted');
  }, 30_000);

  it('refuses a transfer to a non-voter with a typed error, and explains a promote that cannot catch up', async () => {
    const c = makeCluster();
    await Promise.all(VOTERS.map((id) => c.kv(id).start()));
    await c.leader();
    await expect(c.kv('B').transferLeadership('Z')).rejects.toThrow(ValidationError);
    await expect(c.kv('B').removeMember('Z')).rejects.toThrow(/not a member/);
    // E is added but never runs: it cannot catch up, so promote is refused until the deadline, saying why.
    await c.kv('A').addLearner('E', '127.0.0.1:1');
    const err = await c.kv('B').promote('E').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/learner E has not caught up/);
  }, 30_000);

  it('answers hostile forwarded membership requests with typed errors and changes nothing', async () => {
    const c = makeCluster();
    await Promise.all(VOTERS.map((id) => c.kv(id).start()));
    const leader = await c.leader();
    const from = hubs[hubs.length - 1]!.transport(VOTERS.find((x) => x !== leader)!);
    const ask = async (req: unknown) => JSON.parse(new TextDecoder().decode(await from.forward(leader, new TextEncoder().encode(JSON.stringify(req)), 2000))) as { ok: boolean; error?: { code: string; message: string } };
    const bad = [
      { kind: 'confChange' },
      { kind: 'confChange', change: null },
      { kind: 'confChange', change: { type: 'make-leader', node: 'B' } },
      { kind: 'confChange', change: { type: 'add-learner', node: 'x'.repeat(100) } },
      { kind: 'confChange', change: { type: 'add-learner', node: 'E', context: { evil: true } } },
      { kind: 'confChange', change: { type: 'remove', node: 'nobody' } },
      { kind: 'transfer', to: { $ne: null } },
      { kind: 'transfer' },
      { kind: 'transfer', to: 'nobody' },
    ];
    for (const req of bad) {
      const r = await ask(req);
      expect(r.ok, JSON.stringify(req)).toBe(false);
      expect(r.error?.code, JSON.stringify(req)).toBe('EINVAL');
    }
    expect(c.kv(leader).confState()).toEqual({ voters: VOTERS, learners: [], context: {} });
    expect(c.kv(leader).status().role).toBe('leader');
  }, 30_000);
});
