/**
 * Log compaction and membership together on real processes: three `clusterdesk node` processes
 * (A, B, C, each its own OS process) compact their Raft log every 50 applied entries
 * (`--snapshot-entries 50`) while clients write through the client KV gRPC API. Then:
 * - a remote watch (`watchRemote`) on C survives C being killed (SIGKILL) and restarted while
 *   writes go on elsewhere: every event exactly once, in revision order (leader A keeps 1,000
 *   entries below its snapshots, so C catches up by AppendEntries and keeps its watch history);
 * - leadership moves to B, which keeps only 10 entries below its snapshots (`--snapshot-catch-up 10`);
 * - D joins as a learner (`memberAdd` + `clusterdesk node --join`) after several compactions, so it
 *   catches up through InstallSnapshot; it is promoted, an original node (B) is removed, and the
 *   remaining nodes (A, C, D) hold identical KV content and keep committing.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../../core/control/api';
import { connectControl } from '../../core/control/ws-client';
import type { WatchEvent } from '../../core/kv/types';
import { watchRemote } from '../../core/node/kv-client';
import { kvProto } from '../../core/node/kv-service';
import { CLI, waitFor } from '../helpers/cluster';
import { freePortBlock } from '../helpers/ports';

type Obj = Record<string, unknown>;
const dir = mkdtempSync(join(tmpdir(), 'clusterdesk-compact-'));
const data = join(dir, 'data');
const tokenFile = join(dir, 'token');
const TOKEN = 'compaction-membership-test-token';
const procs = new Map<string, { child: ChildProcess; exited: boolean; output: string[] }>();
const clients: Array<{ close(): void }> = [];
let base = 0;

const proc = (id: string, role: string, team: string | null, port: number, neighbors: string[] = []) => ({ id, role, ...(team ? { team } : {}), host: 'h1', port, consolePort: port + 4, neighbors });

function writeConfigs(): void {
  const three = { name: 'compaction', hosts: { h1: { address: '127.0.0.1' } }, processes: [proc('A', 'leader', null, base, ['B', 'C']), proc('B', 'team-leader', 'blue', base + 1), proc('C', 'team-leader', 'green', base + 2)] };
  writeFileSync(join(dir, 'cluster.json'), JSON.stringify(three, null, 2));
  writeFileSync(join(dir, 'with-d.json'), JSON.stringify({ ...three, processes: [...three.processes, proc('D', 'worker', 'blue', base + 3, ['A'])] }, null, 2));
  writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
}

const port = (id: string) => base + 'ABCD'.indexOf(id);

function startNode(id: string, extra: string[] = []): void {
  const config = join(dir, id === 'D' ? 'with-d.json' : 'cluster.json');
  const child = spawn(process.execPath, [CLI, 'node', '--config', config, '--id', id, '--data', join(data, id), '--token-file', tokenFile, '--snapshot-entries', '50', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { child, exited: false, output: [] as string[] };
  child.stdout?.on('data', (b: Buffer) => entry.output.push(b.toString()));
  child.stderr?.on('data', (b: Buffer) => entry.output.push(b.toString()));
  child.on('exit', () => (entry.exited = true));
  procs.set(id, entry);
}

async function stopNode(id: string, signal: NodeJS.Signals): Promise<void> {
  const p = procs.get(id);
  if (!p || p.exited) return;
  p.child.kill(signal);
  await waitFor(`${id} to exit`, () => p.exited, 15_000).catch(() => p.child.kill('SIGKILL'));
}

async function status(via: string): Promise<ClusterStatus> {
  const c = await connectControl(`ws://127.0.0.1:${port(via) + 4}/control?token=${TOKEN}`);
  try {
    return await c.call('status', {});
  } finally {
    c.close();
  }
}

async function control<T>(via: string, fn: (c: Awaited<ReturnType<typeof connectControl>>) => Promise<T>): Promise<T> {
  const c = await connectControl(`ws://127.0.0.1:${port(via) + 4}/control?token=${TOKEN}`);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function kvClient(id: string): any {
  const { KV } = kvProto();
  const c = new KV(`127.0.0.1:${port(id)}`, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

function rpc<T = Obj>(client: Obj, method: string, req: Obj): Promise<T> {
  return new Promise((res, rej) => (client[method] as (r: Obj, cb: (e: grpc.ServiceError | null, v: T) => void) => void)(req, (e, v) => (e ? rej(e) : res(v))));
}

/**
 * Puts keys `t/<from>` … `t/<to - 1>` through `via`, one at a time (concurrent puts would share a
 * Raft entry, and compaction counts entries), retrying refusals (no leader yet, node restarting).
 */
async function writeKeys(via: string, from: number, to: number): Promise<void> {
  const kv = kvClient(via);
  for (let i = from; i < to; i++) {
    await waitFor(`put t/${i}`, () => rpc(kv, 'Put', { key: `t/${String(i).padStart(5, '0')}`, value: `v${i}` }).then(() => true), 60_000, 100);
  }
}

/** Serializable (local replica) dump of a prefix on `id`, with the replica's revision. */
async function dump(id: string, prefix: string): Promise<{ revision: number; kvs: string[] }> {
  const r = await rpc<{ header: { revision: number }; kvs: Obj[] }>(kvClient(id), 'Range', { key: prefix, prefix: true, serializable: true });
  return { revision: Number(r.header.revision), kvs: r.kvs.map((k) => `${String(k.key)}=${String(k.value)}@${String(k.modRevision)}`) };
}

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([...procs.keys()].map((id) => stopNode(id, 'SIGTERM')));
  rmSync(dir, { recursive: true, force: true });
});

describe('compaction + membership + remote watch on real node processes', () => {
  it('watch survives a node restart; a learner added after compactions catches up by InstallSnapshot; promote, remove A, identical content', async () => {
    base = await freePortBlock(8);
    writeConfigs();
    for (const id of ['A', 'B', 'C']) startNode(id, id === 'A' ? [] : ['--snapshot-catch-up', '10']);
    await waitFor('a leader with a committed entry', async () => {
      const s = await status('A');
      return s.leaderId && s.nodes.filter((n) => n.up && n.commitIndex > 0).length === 3 ? s : null;
    }, 120_000, 300).catch((err: Error) => {
      throw new Error(`${err.message}\n${[...procs].map(([id, p]) => `--- ${id} (exited: ${p.exited}):\n${p.output.join('').slice(-2000)}`).join('\n')}`);
    });

    // A remote watch on C, from the start of the keyspace.
    const got: Array<{ revision: number; key: string }> = [];
    const states: string[] = [];
    const errors: Error[] = [];
    const watcher = watchRemote(`127.0.0.1:${port('C')}`, 't/', (events: WatchEvent[], revision) => events.forEach((e) => got.push({ revision, key: e.kv.key })), {
      fromRevision: 1,
      retryMinMs: 50,
      retryMaxMs: 500,
      onError: (e) => errors.push(e),
      onConnection: (s) => states.push(s),
    });
    clients.push({ close: () => watcher.cancel() });

    await writeKeys('A', 0, 120);
    await waitFor('C has seen 120 events', () => got.length === 120, 60_000);

    // Kill C mid-watch; writes go on through B; restart C. C must catch up by log entries for its
    // watch history to reach back (a node that installs a snapshot answers ECOMPACTED, as README
    // says), so the writes while C is down stay below the next compaction point (entry 150; with
    // B leading after an election under load, B keeps only 10 entries below a snapshot).
    await stopNode('C', 'SIGKILL');
    await waitFor('the watch noticed', () => states.includes('disconnected'), 30_000);
    await writeKeys('B', 120, 135);
    startNode('C', ['--snapshot-catch-up', '10']);
    await waitFor('C has delivered the events of its downtime', () => got.length >= 135 || errors.length > 0, 60_000);
    await writeKeys('A', 135, 170);
    await waitFor('C has delivered 170 events', () => got.length >= 170 || errors.length > 0, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${got.length} delivered, connection states ${states.join(',')}\n${readFileSync(join(data, 'C', 'node.log'), 'utf8').split('\n').filter((l) => /snapshot|watch|compact/i.test(l)).slice(-20).join('\n')}`);
    });
    expect(errors).toEqual([]);
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive now
    expect(got.map((g) => g.key)).toEqual(Array.from({ length: 170 }, (_, i) => `t/${String(i).padStart(5, '0')}`));
    const revs = got.map((g) => g.revision);
    expect(new Set(revs).size).toBe(170);
    expect(revs).toEqual([...revs].sort((a, b) => a - b));

    // Several compactions have happened by now (170+ entries, one snapshot per 50).
    const log = (id: string) => readFileSync(join(data, id, 'node.log'), 'utf8');
    await waitFor('A compacted its log several times', () => (log('A').match(/compacted the log/g)?.length ?? 0) >= 3, 30_000);

    // B leads from now on: it keeps 10 entries below a snapshot, so a new member needs InstallSnapshot.
    await waitFor('B leads', () => control('A', (c) => c.call('leaderTransfer', { id: 'B' })).then(() => status('C')).then((st) => st.leaderId === 'B'), 60_000, 300);

    // D joins as a learner and catches up through InstallSnapshot (the entries it needs are compacted).
    const add = await control('B', (c) => c.call('memberAdd', { id: 'D', address: `127.0.0.1:${port('D')}` }));
    expect(add.learners).toContain('D');
    startNode('D', ['--join']);
    await waitFor('D caught up as a learner', async () => {
      const s = await status('B');
      const d = s.nodes.find((n) => n.id === 'D');
      const leader = s.nodes.find((n) => n.id === s.leaderId);
      return d?.up && d.raftState === 'learner' && leader && d.appliedIndex > 170 && leader.commitIndex - d.appliedIndex < 5;
    }, 60_000, 200);
    await waitFor('D installed the leader\'s snapshot', () => /installed snapshot from the leader/.test(log('D')), 30_000);

    await waitFor('D promoted', () => control('B', (c) => c.call('memberPromote', { id: 'D' })).then((r) => r.voters.includes('D')), 60_000, 300);
    const removed = await waitFor('A removed', () => control('B', (c) => c.call('memberRemove', { id: 'A' })).then((r) => (r.voters.includes('A') ? null : r)), 60_000, 300);
    expect([...removed.voters].sort()).toEqual(['B', 'C', 'D']);

    // A may never receive the entry that removes it (thesis §4.2.2): it learns of it from the
    // leader's committed configuration, stops syncing and refuses file changes from its console.
    const removedA = await waitFor('A knows it was removed', () => status('A').then((st) => st.removed ?? null), 30_000, 300);
    expect(removedA.leader).toBe('B');
    await expect(control('A', (c) => c.call('upload', { path: 'after-removal.txt', dataBase64: Buffer.from('x').toString('base64') }))).rejects.toMatchObject({ code: 'EUNAVAILABLE' });
    expect(log('A')).toMatch(/removed from the cluster; folder sync and job dispatch stopped/);
    expect((await status('B')).removed).toBeUndefined();

    // The cluster keeps committing without A.
    await writeKeys('D', 170, 180);
    const final = await waitFor('A, C and D applied the same revision', async () => {
      const ds = await Promise.all(['B', 'C', 'D'].map((id) => dump(id, 't/')));
      return ds.every((x) => x.revision === ds[0]!.revision && x.kvs.length === 180) ? ds : null;
    }, 60_000, 200);
    expect(final[1]!.kvs).toEqual(final[0]!.kvs);
    expect(final[2]!.kvs).toEqual(final[0]!.kvs);
    for (const prefix of ['files/', 'locks/', 'jobs/', 'history/']) {
      const [a, c, d] = await Promise.all(['B', 'C', 'D'].map((id) => dump(id, prefix)));
      expect(c!.kvs, prefix).toEqual(a!.kvs);
      expect(d!.kvs, prefix).toEqual(a!.kvs);
    }
    // `status` is the node's last poll (every second; later under load): wait for it to catch up.
    for (const id of ['B', 'C', 'D']) {
      await waitFor(`${id} reports voters B, C, D`, () => status(id).then((s) => [...(s.membership?.voters ?? [])].sort().join(',') === 'B,C,D' && s.membership?.learners.length === 0), 30_000, 300);
    }
  }, 300_000);
});
