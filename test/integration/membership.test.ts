/**
 * Membership changes and leadership transfer on real processes (thesis §4.1, §3.10): a
 * three-voter cluster (A, B, C) started with `clusterdesk up` gets a fourth node D at runtime —
 * `member add` (learner, with its peer address), `clusterdesk node --join` on D, `member promote`,
 * `leader transfer D`, `member remove A` — and keeps serving writes throughout. Hostile input on
 * the new ControlApi calls gets typed refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterStatus } from '../../core/control/api';
import { CLI, startTestCluster, waitFor, type TestCluster } from '../helpers/cluster';

let cluster: TestCluster;
let base = 0;
let d: ChildProcess | null = null;
let dExited = false;
const dOutput: string[] = [];

const proc = (id: string, role: string, team: string | null, port: number, neighbors: string[]) => ({ id, role, ...(team ? { team } : {}), host: 'h1', port, consolePort: port + 4, neighbors });

/** A, B, C: the running cluster. D's copy adds D (so D knows its own port and the others'). */
function writeConfigs(dir: string, b: number): string {
  base = b;
  const three = { name: 'membership', hosts: { h1: { address: '127.0.0.1' } }, processes: [proc('A', 'leader', null, b, ['B', 'C']), proc('B', 'team-leader', 'blue', b + 1, []), proc('C', 'team-leader', 'green', b + 2, [])] };
  const four = { ...three, processes: [...three.processes, proc('D', 'worker', 'blue', b + 3, ['B'])] };
  writeFileSync(join(dir, 'with-d.json'), JSON.stringify(four, null, 2));
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify(three, null, 2));
  return file;
}

const read = (id: string, path: string): string | null => {
  try {
    return readFileSync(join(cluster.folder(id), path), 'utf8');
  } catch {
    return null;
  }
};

async function statusWhere(what: string, via: string, ok: (s: ClusterStatus) => boolean, timeoutMs = 30_000): Promise<ClusterStatus> {
  return waitFor(what, async () => {
    const s = await cluster.status(via);
    return ok(s) ? s : null;
  }, timeoutMs, 200);
}

beforeAll(async () => {
  cluster = await startTestCluster({ ports: 8, writeConfig: writeConfigs });
}, 150_000);

afterAll(async () => {
  if (d && !dExited) {
    d.kill('SIGTERM');
    await waitFor('D to exit', () => dExited, 15_000).catch(() => d?.kill('SIGKILL'));
  }
  await cluster?.stop();
});

describe('membership changes on a real cluster', () => {
  it('refuses malformed and nonsensical membership calls with typed errors', async () => {
    await statusWhere('a leader', 'A', (s) => !!s.leaderId);
    const c = await cluster.client('B');
    try {
      const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
      expect(await code(c.call('memberAdd', { id: 'D; rm -rf /', address: '127.0.0.1:1' }))).toMatch(/^EINVAL: memberAdd: id/);
      expect(await code(c.call('memberAdd', { id: 'D', address: '127.0.0.1:99999' }))).toMatch(/^EINVAL: .*port/);
      expect(await code(c.call('memberAdd', { id: 'D', address: 'no-port' }))).toMatch(/^EINVAL: .*host:port/);
      expect(await code(c.call('memberAdd', { id: 'D', address: '127.0.0.1:1', voter: true } as never))).toMatch(/^EINVAL/);
      expect(await code(c.call('memberAdd', { id: 'B', address: '127.0.0.1:1' }))).toMatch(/^EINVAL: node B is already a voter/);
      expect(await code(c.call('memberPromote', { id: 'A' }))).toMatch(/^EINVAL: node A is already a voter/);
      expect(await code(c.call('memberRemove', { id: 'Z' }))).toMatch(/^EINVAL: node Z is not a member/);
      expect(await code(c.call('memberRemove', {} as never))).toMatch(/^EINVAL/);
      expect(await code(c.call('leaderTransfer', { id: 'Z' }))).toMatch(/^EINVAL: node Z is not a member/);
      expect(await code(c.call('leaderTransfer', { id: 42 } as never))).toMatch(/^EINVAL/);
    } finally {
      c.close();
    }
    const s = await cluster.status('A');
    expect(s.membership).toEqual({ voters: ['A', 'B', 'C'], learners: [] });
  });

  it('adds D as a learner, promotes it, transfers leadership to it, removes A, and keeps serving writes', async () => {
    writeFileSync(join(cluster.folder('A'), 'before.txt'), 'written before D existed');
    await waitFor('before.txt on C', () => read('C', 'before.txt') !== null, 20_000);

    const add = await cluster.cli(['member', 'add', 'D', `127.0.0.1:${base + 3}`]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/added D as a learner/);
    expect(add.stdout).toMatch(/learners: D/);

    // Start D as its own OS process, joining.
    d = spawn(process.execPath, [CLI, 'node', '--config', join(cluster.dir, 'with-d.json'), '--id', 'D', '--data', join(cluster.data, 'D'), '--token-file', join(cluster.data, 'token'), '--join'], { stdio: ['ignore', 'pipe', 'pipe'] });
    d.stdout?.on('data', (b: Buffer) => dOutput.push(b.toString()));
    d.stderr?.on('data', (b: Buffer) => dOutput.push(b.toString()));
    d.on('exit', () => (dExited = true));

    const seen = await statusWhere('D up as a learner, caught up', 'A', (s) => {
      const dn = s.nodes.find((n) => n.id === 'D');
      const leader = s.nodes.find((n) => n.id === s.leaderId);
      return !!dn && dn.up && dn.raftState === 'learner' && !!leader && dn.commitIndex > 0 && leader.commitIndex - dn.commitIndex < 5;
    });
    expect(seen.membership).toEqual({ voters: ['A', 'B', 'C'], learners: ['D'] });
    expect(seen.nodes.find((n) => n.id === 'D')?.address).toBe(`127.0.0.1:${base + 3}`);
    await waitFor('before.txt on D', () => read('D', 'before.txt') === 'written before D existed', 20_000);

    const promote = await cluster.cli(['member', 'promote', 'D']);
    expect(promote.stderr).toBe('');
    expect(promote.code).toBe(0);
    expect(promote.stdout).toMatch(/voters: A, B, C, D/);

    const transfer = await cluster.cli(['leader', 'transfer', 'D']);
    expect(transfer.stderr).toBe('');
    expect(transfer.code).toBe(0);
    expect(transfer.stdout).toMatch(/D is the Raft leader/);
    await statusWhere('B sees D lead', 'B', (s) => s.leaderId === 'D');

    const remove = await cluster.cli(['member', 'remove', 'A']);
    expect(remove.stderr).toBe('');
    expect(remove.code).toBe(0);
    expect(remove.stdout).toMatch(/voters: B, C, D/);
    const after = await statusWhere('C sees the new configuration', 'C', (s) => s.membership?.voters.join(',') === 'B,C,D' && s.leaderId === 'D');
    expect(after.membership?.learners).toEqual([]);
    const st = await cluster.cli(['status', '--endpoint', cluster.consoleUrlOf('C')]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/leader D/);
    expect(st.stdout).toMatch(/Raft voters: B, C, D; learners: -/);
    expect(st.stdout).toMatch(/^D\*? +h1 +worker/m);

    // A learned of its removal (the leader replicates to it until the removal commits) and says so.
    const onA = await cluster.cli(['lock', 'before.txt', '--endpoint', cluster.consoleUrlOf('A')]);
    expect(onA.code).toBe(1);
    expect(onA.stderr).toMatch(/A was removed from the cluster/);
    // Writes still commit (quorum of B, C, D): a lock, and a file that reaches every member.
    const lock = await cluster.cli(['lock', 'before.txt', '--endpoint', cluster.consoleUrlOf('B')]);
    expect(lock.stderr).toBe('');
    expect(lock.code).toBe(0);
    expect(lock.stdout).toMatch(/locked before\.txt \(exclusive\) by B/);
    const unlock = await cluster.cli(['unlock', 'before.txt', '--endpoint', cluster.consoleUrlOf('B')]);
    expect(unlock.code).toBe(0);
    writeFileSync(join(cluster.folder('C'), 'after.txt'), 'written after A left');
    await waitFor('after.txt on B and D', () => read('B', 'after.txt') === 'written after A left' && read('D', 'after.txt') === 'written after A left', 20_000);
  }, 120_000);
});
