/**
 * End-to-end behaviour of a real six-process cluster (the two-host topology on 127.0.0.1):
 * propagation, locks, conflicts, routed requests, jobs and leader failover. Each node is its own
 * OS process talking gRPC; folders are real folders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCluster, waitFor, type TestCluster } from '../helpers/cluster';

const IDS = ['A', 'B', 'C', 'D', 'E', 'F'];
let cluster: TestCluster;

const read = (id: string, path: string): Buffer | null => {
  try {
    return readFileSync(join(cluster.folder(id), path));
  } catch {
    return null;
  }
};
const everywhere = (path: string, bytes: Buffer, ids = IDS): Promise<boolean> =>
  waitFor(`${path} on ${ids.join(',')}`, () => ids.every((id) => read(id, path)?.equals(bytes)), 20_000);
const goneEverywhere = (path: string, ids = IDS): Promise<boolean> => waitFor(`${path} deleted on ${ids.join(',')}`, () => ids.every((id) => !existsSync(join(cluster.folder(id), path))), 20_000);
const conflictCopies = (id: string, stem: string): string[] => readdirSync(cluster.folder(id)).filter((n) => n.startsWith(`${stem}.sync-conflict-`));

beforeAll(async () => {
  cluster = await startTestCluster();
}, 150_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('a six-node cluster', () => {
  it('reports six nodes, the voters and learners, and one Raft leader among the voters', async () => {
    const s = await waitFor('all six nodes up', async () => {
      const st = await cluster.status('A');
      return st.nodes.every((n) => n.up) && st.leaderId ? st : null;
    });
    expect(s.nodes.map((n) => n.id)).toEqual(IDS);
    expect(['A', 'B', 'E']).toContain(s.leaderId);
    expect(s.nodes.filter((n) => n.raftState === 'leader').map((n) => n.id)).toEqual([s.leaderId]);
    expect(s.nodes.filter((n) => n.role === 'worker').every((n) => n.raftState === 'learner')).toBe(true);
    expect(s.links).toContainEqual(['A', 'B']);
  });

  it('propagates create, modify, rename and delete byte for byte', async () => {
    const v1 = Buffer.from('first version\n'.repeat(1000));
    writeFileSync(join(cluster.folder('A'), 'notes.txt'), v1);
    await everywhere('notes.txt', v1);

    const v2 = Buffer.concat([v1, Buffer.from([0, 1, 2, 255])]);
    writeFileSync(join(cluster.folder('C'), 'notes.txt'), v2);
    await everywhere('notes.txt', v2);

    renameSync(join(cluster.folder('E'), 'notes.txt'), join(cluster.folder('E'), 'renamed.txt'));
    await everywhere('renamed.txt', v2);
    await goneEverywhere('notes.txt');

    rmSync(join(cluster.folder('F'), 'renamed.txt'));
    await goneEverywhere('renamed.txt');
    // No temporary files are left behind anywhere.
    for (const id of IDS) expect(readdirSync(cluster.folder(id)).filter((n) => n.startsWith('.clusterdesk-tmp'))).toEqual([]);
  });

  it('enforces a lock: read-only elsewhere, a forced edit is refused and kept as a conflict copy', async () => {
    const locked = Buffer.from('the locked version');
    writeFileSync(join(cluster.folder('A'), 'plan.md'), locked);
    await everywhere('plan.md', locked);

    const r = await cluster.cli(['lock', 'plan.md']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/locked plan\.md \(exclusive\) by A/);

    // Every node's index shows the holder; other nodes make the file read-only.
    const c = await cluster.client('D');
    try {
      const files = await waitFor('lock visible on D', async () => (await c.call('listFiles', {})).find((f) => f.path === 'plan.md' && f.lock));
      expect(files.lock?.holders).toEqual(['A']);
    } finally {
      c.close();
    }
    await waitFor('plan.md read-only on C', () => (statSync(join(cluster.folder('C'), 'plan.md')).mode & 0o222) === 0);

    // C edits anyway (as root could): the edit is refused, the locked bytes come back, C's bytes are kept aside.
    const p = join(cluster.folder('C'), 'plan.md');
    chmodSync(p, 0o644);
    writeFileSync(p, 'an edit made while locked');
    await waitFor('locked version restored on C', () => read('C', 'plan.md')?.equals(locked));
    const copy = await waitFor('conflict copy on C', () => conflictCopies('C', 'plan').find((n) => readFileSync(join(cluster.folder('C'), n), 'utf8') === 'an edit made while locked'));
    expect(copy).toMatch(/^plan\.sync-conflict-\d{8}-\d{6}-C\.md$/);
    for (const id of IDS) expect(read(id, 'plan.md')?.equals(locked)).toBe(true);

    // Deleting a locked file elsewhere is refused too.
    rmSync(join(cluster.folder('E'), 'plan.md'), { force: true });
    await waitFor('locked file restored on E', () => read('E', 'plan.md')?.equals(locked));

    const u = await cluster.cli(['unlock', 'plan.md']);
    expect(u.code).toBe(0);
    await waitFor('plan.md writable on C again', () => (statSync(join(cluster.folder('C'), 'plan.md')).mode & 0o200) !== 0);
  });

  it('keeps both sides of a concurrent edit: one wins everywhere, the other is a conflict copy', async () => {
    const base = Buffer.from('base');
    writeFileSync(join(cluster.folder('A'), 'shared.txt'), base);
    await everywhere('shared.txt', base);
    const fromB = Buffer.from('edit from B');
    const fromF = Buffer.from('edit from F');
    writeFileSync(join(cluster.folder('B'), 'shared.txt'), fromB);
    writeFileSync(join(cluster.folder('F'), 'shared.txt'), fromF);
    const winner = await waitFor('one version everywhere', () => {
      const a = read('A', 'shared.txt');
      return a && !a.equals(base) && IDS.every((id) => read(id, 'shared.txt')?.equals(a)) ? a : null;
    });
    const loser = winner.equals(fromB) ? fromF : fromB;
    expect([fromB.toString(), fromF.toString()]).toContain(winner.toString());
    // The losing bytes survive as a conflict copy, which itself syncs to every node.
    await waitFor('the losing edit kept as a conflict copy on every node', () =>
      IDS.every((id) => conflictCopies(id, 'shared').some((n) => readFileSync(join(cluster.folder(id), n)).equals(loser))),
    );
  });

  it('routes a synchronous sort leader → team leader → worker and back', async () => {
    const r = await cluster.cli(['request', 'sort', '5,3,9,1,-2', '--json']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { result: number[]; route: string[] };
    expect(out.result).toEqual([-2, 1, 3, 5, 9]);
    // The route starts at the node the CLI reached, passes the Raft leader, then the worker's
    // team leader, and ends at a worker of that team.
    const s = await cluster.status('A');
    const worker = out.route[out.route.length - 1] as string;
    const team = s.teams.find((t) => t.workers.includes(worker));
    expect(team).toBeDefined();
    const atLeader = out.route.indexOf(s.leaderId as string);
    expect(atLeader).toBeGreaterThanOrEqual(0);
    expect(out.route.slice(atLeader)).toContain(team?.leader);

    const pink = await cluster.cli(['request', 'add', '1', '2', '3.5', '--team', 'pink', '--json']);
    const p = JSON.parse(pink.stdout) as { result: number; route: string[] };
    expect(p.result).toBe(6.5);
    expect(p.route).toContain('E');
    expect(['D', 'F']).toContain(p.route[p.route.length - 1]);
  });

  it('runs an asynchronous job and announces its result', async () => {
    const r = await cluster.cli(['submit', 'sort', '3', '2', '1', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const done = JSON.parse(lines[lines.length - 1] as string) as { state: string; result: number[]; route: string[] };
    expect(done.state).toBe('done');
    expect(done.result).toEqual([1, 2, 3]);
    expect(done.route.length).toBeGreaterThanOrEqual(2);
  });

  it('rejects bad CLI input with a clear message and exit code 2', async () => {
    const r = await cluster.cli(['request', 'sort', '1', 'two']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"two" is not a number/);
    const m = await cluster.cli(['request', 'multiply', '1']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/unknown operation "multiply"/);
    const l = await cluster.cli(['lock', '../etc/passwd']);
    expect(l.code).not.toBe(0);
    expect(l.stderr).toMatch(/EPATH|\.\./);
    const n = await cluster.cli(['lock', 'does-not-exist.txt']);
    expect(n.code).toBe(1);
    expect(n.stderr).toMatch(/ENOENT/);
  });

  it('fails over when the Raft leader is killed with SIGKILL; locks and file changes work again', async () => {
    const before = await cluster.status('A');
    const leader = before.leaderId as string;
    const victim = before.nodes.find((n) => n.id === leader);
    expect(victim?.pid).toBeGreaterThan(0);
    process.kill(victim?.pid as number, 'SIGKILL');
    const survivors = IDS.filter((id) => id !== leader);
    const via = survivors.find((id) => id !== 'C' && id !== 'D' && id !== 'F') ?? survivors[0];
    const after = await waitFor('a new leader', async () => {
      const s = await cluster.status(via);
      return s.leaderId && s.leaderId !== leader && s.term > before.term && s.nodes.find((n) => n.id === leader)?.up === false ? s : null;
    }, 30_000);
    expect(['A', 'B', 'E']).toContain(after.leaderId);

    // A file change and a lock go through again.
    const bytes = Buffer.from('written after failover');
    const writer = survivors.find((id) => id === 'F') ?? (survivors[0] as string);
    writeFileSync(join(cluster.folder(writer), 'after-failover.txt'), bytes);
    await everywhere('after-failover.txt', bytes, survivors);
    const c = await cluster.client(after.leaderId as string);
    try {
      const lock = await waitFor('lock after failover', async () => c.call('lock', { path: 'after-failover.txt' }), 20_000, 500);
      expect(lock.holders).toEqual([after.leaderId]);
      const activity = await c.call('activity', {});
      expect(activity.some((e) => e.kind === 'leader' || e.kind === 'node')).toBe(true);
    } finally {
      c.close();
    }
  });
});
