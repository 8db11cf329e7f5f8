/**
 * Hostile and malformed arguments of `clusterdesk member …` and `clusterdesk leader transfer`:
 * refused with exit code 2 and a message naming the problem, before any connection is made
 * (the endpoint below does not exist: reaching it would fail with exit code 1 instead).
 */
import { describe, expect, it } from 'vitest';
import { main } from './main';

const NOWHERE = ['--endpoint', 'http://127.0.0.1:1/?token=x'];

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('clusterdesk member / leader arguments', () => {
  it('refuses bad node ids and addresses with exit code 2 before connecting', async () => {
    const cases: [string[], RegExp][] = [
      [['member', 'add', 'D;rm -rf /', '127.0.0.1:5000'], /id: must be a node id/],
      [['member', 'add', '../../etc', '127.0.0.1:5000'], /id: must be a node id/],
      [['member', 'add', 'D', '127.0.0.1'], /address: must be "host:port"/],
      [['member', 'add', 'D', '127.0.0.1:0'], /port must be 1\.\.65535/],
      [['member', 'add', 'D', '127.0.0.1:70000'], /port must be 1\.\.65535/],
      [['member', 'add', 'D', 'ho st:5000'], /address: must be "host:port"/],
      [['member', 'add', 'D', `${'a'.repeat(300)}:5000`], /address/],
      [['member', 'promote', ''], /id: must be a node id/],
      [['member', 'remove', 'x'.repeat(40)], /id: must be a node id/],
      [['leader', 'transfer', '-1'], /./],
    ];
    for (const [args, message] of cases) {
      const r = await run([...args, ...NOWHERE]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(message);
      expect(r.out).toBe('');
    }
  });

  it('refuses missing arguments and unknown subcommands with exit code 2', async () => {
    for (const args of [['member', 'add', 'D'], ['member', 'promote'], ['member', 'demote', 'D'], ['leader', 'transfer'], ['leader', 'elect', 'B']]) {
      const r = await run([...args, ...NOWHERE]);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });

  it('node --read-only accepts only safe or lease-based (exit code 2 before starting anything)', async () => {
    for (const mode of ['fast', 'LEASE-BASED', '', 'lease-based;rm']) {
      const r = await run(['node', '--config', '/nonexistent/cluster.json', '--id', 'A', '--read-only', mode]);
      expect(r.code, mode).toBe(2);
      // Refused by argument parsing: the config file is never looked at.
      expect(r.err, mode).not.toMatch(/cluster\.json/);
    }
    // Control: a valid mode gets past argument parsing and fails on the missing config instead.
    const ok = await run(['node', '--config', '/nonexistent/cluster.json', '--id', 'A', '--read-only', 'lease-based']);
    expect(ok.err).toMatch(/cluster\.json: cannot read config file/);
  });

  it('well-formed arguments get as far as connecting (exit code 1 when no node answers)', async () => {
    const r = await run(['member', 'add', 'D', 'node-d.example:50054', ...NOWHERE]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/EUNAVAILABLE/);
    const t = await run(['leader', 'transfer', 'B', ...NOWHERE]);
    expect(t.code).toBe(1);
  });
});
