/**
 * A real network partition (issue 4, "Partitions"): three hosts, each `clusterdesk node` in its
 * own Linux network namespace on a bridge (test/helpers/netns.ts). Host C is cut off from A and B;
 * without quorum C keeps working on its folder, its changes wait as pending (its console's
 * `syncBacklog`), and after the partition heals they commit — cleanly, or as a conflict copy when
 * the majority side changed the same file meanwhile. Nothing is lost on either side.
 *
 * Skipped, with the reason, where network namespaces cannot be created (not root, no iproute2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectControl } from '../../core/control/ws-client';
import { waitFor } from '../helpers/cluster';
import { NetnsLab, netnsUnavailable } from '../helpers/netns';

const CLI = resolve(fileURLToPath(new URL('../../bin/clusterdesk.js', import.meta.url)));
const IDS = ['A', 'B', 'C'] as const;
const skip = netnsUnavailable();

let lab: NetnsLab;
let dir: string;
const nodes = new Map<string, ChildProcess>();
const logs = new Map<string, string>();
const token = 'partition-test-token-0123456789abcdef';

const folder = (id: string): string => join(dir, id, 'folder');
const read = (id: string, path: string): string | null => {
  try {
    return readFileSync(join(folder(id), path), 'utf8');
  } catch {
    return null;
  }
};
/** Contents of every regular file directly in `id`'s folder, by name. */
const contents = (id: string): Map<string, string> => new Map(readdirSync(folder(id), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => [e.name, readFileSync(join(folder(id), e.name), 'utf8')]));

async function syncBacklog(id: string): Promise<number> {
  const h = lab.host(id);
  const c = await connectControl(`ws://${h.address}:${7100 + IDS.indexOf(id as 'A') + 1}/control?token=${token}`, { timeoutMs: 3000 });
  try {
    const s = await c.call('status', {});
    return s.nodes.find((n) => n.id === id)!.syncBacklog;
  } finally {
    c.close();
  }
}

describe.skipIf(skip !== null)(`a host cut off by a network partition${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    lab = new NetnsLab([...IDS]);
    dir = mkdtempSync(join(tmpdir(), 'clusterdesk-partition-'));
    const config = join(dir, 'cluster.json');
    writeFileSync(
      config,
      JSON.stringify({
        name: 'partition-test',
        hosts: Object.fromEntries(IDS.map((id) => [`h${id}`, { address: lab.host(id).address }])),
        processes: IDS.map((id, i) => ({
          id,
          role: i === 0 ? 'leader' : 'team-leader',
          team: i === 2 ? 'blue' : 'green',
          host: `h${id}`,
          port: 7001 + i,
          consolePort: 7101 + i,
          neighbors: IDS.filter((o) => o !== id),
        })),
      }),
    );
    writeFileSync(join(dir, 'token'), token);
    for (const id of IDS) {
      const child = lab.spawn(id, process.execPath, [CLI, 'node', '--config', config, '--id', id, '--data', join(dir, id), '--folder', folder(id), '--token-file', join(dir, 'token')], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, CLUSTERDESK_LOG_LEVEL: 'info' },
      });
      logs.set(id, '');
      const onData = (c: Buffer): void => void logs.set(id, (logs.get(id)! + c.toString()).slice(-20_000));
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      nodes.set(id, child);
    }
    // Ready: a file written on A reaches B and C.
    await waitFor('shared.txt on B and C', () => {
      for (const [id, c] of nodes) if (c.exitCode !== null) throw new Error(`node ${id} exited:\n${logs.get(id)}`);
      if (existsSync(folder('A')) && read('A', 'shared.txt') === null) writeFileSync(join(folder('A'), 'shared.txt'), 'original');
      return read('B', 'shared.txt') === 'original' && read('C', 'shared.txt') === 'original';
    }, 90_000);
  }, 150_000);

  afterAll(async () => {
    for (const c of nodes.values()) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all([...nodes.values()].map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('keeps both sides working, holds the minority side as pending, and loses nothing on heal', async () => {
    lab.partition(['C'], ['A', 'B']);

    // The majority side keeps committing.
    writeFileSync(join(folder('A'), 'from-a.txt'), 'written on A during the partition');
    writeFileSync(join(folder('A'), 'shared.txt'), 'edited on A during the partition');
    await waitFor('A-side changes at B', () => read('B', 'from-a.txt') !== null && read('B', 'shared.txt') === 'edited on A during the partition', 30_000);

    // The minority side keeps working locally; its changes wait as pending.
    writeFileSync(join(folder('C'), 'from-c.txt'), 'written on C during the partition');
    writeFileSync(join(folder('C'), 'shared.txt'), 'edited on C during the partition');
    await waitFor('C reports its pending changes', async () => (await syncBacklog('C')) >= 2, 30_000);
    expect(read('C', 'from-c.txt')).toBe('written on C during the partition');
    expect(read('C', 'shared.txt')).toBe('edited on C during the partition');
    expect(read('C', 'from-a.txt')).toBeNull();
    expect(existsSync(join(folder('A'), 'from-c.txt'))).toBe(false);

    lab.heal();

    // C's new file commits cleanly; A's reaches C.
    await waitFor('from-c.txt on A and B', () => read('A', 'from-c.txt') === 'written on C during the partition' && read('B', 'from-c.txt') === 'written on C during the partition', 60_000);
    await waitFor('from-a.txt on C', () => read('C', 'from-a.txt') === 'written on A during the partition', 60_000);
    // shared.txt changed on both sides from the same version: the majority's committed edit wins
    // everywhere and C's bytes survive as a Syncthing-style conflict copy, on every host.
    await waitFor('both edits of shared.txt on every host', () =>
      IDS.every((id) => {
        const files = contents(id);
        const copies = [...files.keys()].filter((n) => /^shared\.sync-conflict-\d{8}-\d{6}-C\.txt$/.test(n));
        return files.get('shared.txt') === 'edited on A during the partition' && copies.length === 1 && files.get(copies[0]!) === 'edited on C during the partition';
      }),
    60_000);
    await waitFor('no pending changes left', async () => (await Promise.all(IDS.map(syncBacklog))).every((n) => n === 0), 30_000);
    // Nothing else appeared or vanished: the same four files on every host.
    for (const id of IDS) expect([...contents(id).keys()].filter((n) => !n.startsWith('.')).sort()).toEqual([...contents('A').keys()].filter((n) => !n.startsWith('.')).sort());
    expect(contents('A').size).toBe(4);
  }, 240_000);
});
