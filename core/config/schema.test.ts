import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../common/errors';
import { parseClusterConfig } from './schema';
import { DEMO_CONFIG, loadClusterConfig } from './load';

const base = () => JSON.parse(JSON.stringify(loadClusterConfig(DEMO_CONFIG).config)) as { processes: Record<string, unknown>[]; hosts: Record<string, unknown>; name: string };

function problems(cfg: unknown): string {
  try {
    parseClusterConfig(cfg);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('cluster config', () => {
  it('derives voters, learners, teams and links of the two-host topology', () => {
    const t = loadClusterConfig(DEMO_CONFIG);
    expect(t.voters).toEqual(['A', 'B', 'E']);
    expect(t.learners).toEqual(['C', 'D', 'F']);
    expect(t.preferredLeader).toBe('A');
    expect(t.teams).toEqual([
      { name: 'green', leader: 'B', workers: ['C'] },
      { name: 'pink', leader: 'E', workers: ['D', 'F'] },
    ]);
    expect(t.links).toEqual([['A', 'B'], ['A', 'E'], ['B', 'C'], ['B', 'D'], ['E', 'F']]);
    expect(t.byId.get('A')?.consolePort).toBe(51051);
  });

  it('also accepts the two-host file with LAN addresses', () => {
    const t = loadClusterConfig(join(DEMO_CONFIG, '..', 'two-hosts.json'));
    expect(t.config.hosts.host2?.address).toBe('192.168.1.11');
  });

  it('names an unknown neighbor', () => {
    const c = base();
    (c.processes[0] as { neighbors: string[] }).neighbors.push('Z');
    expect(problems(c)).toMatch(/processes\[0\]\.neighbors\[2\]: unknown neighbor "Z"/);
  });

  it('names a duplicate port on the same address', () => {
    const c = base();
    (c.processes[1] as { port: number }).port = 50051;
    expect(problems(c)).toMatch(/duplicate port 50051 on 127\.0\.0\.1/);
  });

  it('names a team without a team leader', () => {
    const c = base();
    (c.processes[4] as { role: string }).role = 'worker';
    expect(problems(c)).toMatch(/team "pink": has workers \(D, E, F\) but no team leader/);
  });

  it('rejects wrong types, unknown fields, two leaders and unreachable nodes', () => {
    const c = base();
    (c.processes[0] as { port: unknown }).port = 'fifty';
    (c.processes[1] as { colour?: string }).colour = 'red';
    expect(problems(c)).toMatch(/processes\[0\]\.port/);
    expect(problems(c)).toMatch(/colour/);
    const two = base();
    (two.processes[1] as { role: string }).role = 'leader';
    expect(problems(two)).toMatch(/exactly one process must have role "leader" \(found 2\)/);
    const island = base();
    for (const p of island.processes) (p as { neighbors: string[] }).neighbors = (p as { neighbors: string[] }).neighbors.filter((n) => n !== 'F');
    (island.processes[5] as { neighbors: string[] }).neighbors = [];
    expect(problems(island)).toMatch(/F cannot be reached from the leader/);
    expect(problems(null)).toMatch(/config is invalid/);
    expect(problems({ name: '../../etc', hosts: {}, processes: [] })).toMatch(/name/);
  });

  it('reports unreadable, non-JSON and oversize files as ConfigError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'bad.json'), '{ "name": ');
    expect(() => loadClusterConfig(join(dir, 'bad.json'))).toThrow(/not valid JSON/);
    expect(() => loadClusterConfig(join(dir, 'missing.json'))).toThrow(/cannot read config file/);
    writeFileSync(join(dir, 'big.json'), ' '.repeat((1 << 20) + 1));
    expect(() => loadClusterConfig(join(dir, 'big.json'))).toThrow(/limit is 1048576/);
  });

  it('defaults and validates the sync versioning options', () => {
    expect(loadClusterConfig(DEMO_CONFIG).config.sync).toEqual({ versioning: { keep: 5, maxAgeDays: 30 } });
    const custom = { ...base(), sync: { versioning: { keep: 10 } } };
    expect(parseClusterConfig(custom).config.sync.versioning).toEqual({ keep: 10, maxAgeDays: 30 });
    expect(problems({ ...base(), sync: { versioning: { keep: -1 } } })).toMatch(/sync\.versioning\.keep/);
    expect(problems({ ...base(), sync: { versioning: { keep: 2.5 } } })).toMatch(/sync\.versioning\.keep/);
    expect(problems({ ...base(), sync: { versioning: { maxAgeDays: '30' } } })).toMatch(/sync\.versioning\.maxAgeDays/);
    expect(problems({ ...base(), sync: { versioning: { keep: 1, trash: true } } })).toMatch(/trash/);
    expect(problems({ ...base(), sync: { staggered: {} } })).toMatch(/staggered/);
  });

  it('defaults raft.readOnly to safe and accepts lease-based; anything else is a ConfigError', () => {
    expect(loadClusterConfig(DEMO_CONFIG).config.raft).toEqual({ readOnly: 'safe' });
    expect(parseClusterConfig({ ...base(), raft: { readOnly: 'lease-based' } }).config.raft.readOnly).toBe('lease-based');
    expect(problems({ ...base(), raft: { readOnly: 'lease' } })).toMatch(/raft\.readOnly/);
    expect(problems({ ...base(), raft: { readOnly: 'safe', leaseTicks: 3 } })).toMatch(/leaseTicks/);
    expect(problems({ ...base(), raft: 'lease-based' })).toMatch(/raft/);
  });
});
