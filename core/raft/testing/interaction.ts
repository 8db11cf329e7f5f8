/**
 * Scripted cluster tests with golden output (the etcd `interaction_test.go` / datadriven idea).
 *
 * A script is a sequence of blocks separated by blank lines:
 * ```
 * <command> <args...>
 * ----
 * <expected output lines>
 * ```
 * Commands: `new voters=A,B,C [learners=L] [seed=1] [preferred=A] [prevote=false] [checkquorum=false]`,
 * `tick [n]`, `tick-until-leader`, `propose <id> <data>`, `isolate <id>`, `partition A B | C`,
 * `heal`, `drop <p>`, `crash <id>`, `restart <id>`, `status`, `applied <id>`; membership (thesis §4.1) and
 * leadership transfer (§3.10): `join <id>` (a fresh node booting as a learner), `add-learner|promote|remove
 * <leader> <id>` (a config change asked of `<leader>`), `transfer <leader> <to>`, `conf <id>`.
 *
 * {@link runScript} returns the script re-rendered with actual outputs; the test compares it with
 * the file and rewrites the file when `REWRITE=1` is set.
 *
 * Deterministic module: imports nothing from `node:`.
 */
import { Network } from './network';

function parseArgs(tokens: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of tokens) {
    const [k, v] = t.split('=');
    if (k && v !== undefined) m.set(k, v);
  }
  return m;
}

function statusLines(net: Network): string[] {
  return [...net.nodes.values()].map((n) => {
    if (!n.raft) return `${n.id} down`;
    const s = n.raft.status();
    return `${n.id} ${s.role} term=${s.term} lead=${s.leaderId ?? '-'} commit=${s.commitIndex} last=${s.lastIndex}`;
  });
}

function run(net: Network | null, cmd: string, args: string[]): { net: Network | null; out: string[] } {
  if (cmd === 'new') {
    const a = parseArgs(args);
    const list = (k: string) => (a.get(k) ? a.get(k)!.split(',') : []);
    const n = new Network({
      voters: list('voters'),
      learners: list('learners'),
      seed: a.get('seed') ?? 1,
      ...(a.get('preferred') ? { preferred: a.get('preferred')! } : {}),
      preVote: a.get('prevote') !== 'false',
      checkQuorum: a.get('checkquorum') !== 'false',
    });
    return { net: n, out: ['ok'] };
  }
  if (!net) throw new Error('first command must be `new`');
  switch (cmd) {
    case 'tick':
      net.tick(Number(args[0] ?? 1));
      return { net, out: statusLines(net) };
    case 'tick-until-leader': {
      let ticks = 0;
      net.tickUntil(() => {
        ticks++;
        return net.leaders().length === 1;
      });
      return { net, out: [`leader ${net.leaders()[0]} after ${ticks - 1} ticks`] };
    }
    case 'propose':
      try {
        return { net, out: [`index ${net.propose(args[0]!, args.slice(1).join(' '))}`] };
      } catch (err) {
        return { net, out: [`error ${(err as Error).message}`] };
      }
    case 'isolate':
      net.isolate(args[0]!);
      return { net, out: ['ok'] };
    case 'partition': {
      const bar = args.indexOf('|');
      net.partition(args.slice(0, bar), args.slice(bar + 1));
      return { net, out: ['ok'] };
    }
    case 'heal':
      net.heal();
      return { net, out: ['ok'] };
    case 'drop':
      net.drop(Number(args[0]));
      return { net, out: ['ok'] };
    case 'crash':
      net.crash(args[0]!);
      return { net, out: ['ok'] };
    case 'restart':
      net.restart(args[0]!);
      return { net, out: statusLines(net) };
    case 'status':
      return { net, out: statusLines(net) };
    case 'join':
      net.join(args[0]!);
      return { net, out: ['ok'] };
    case 'add-learner':
    case 'promote':
    case 'remove':
      try {
        const index = net.raft(args[0]!).proposeConfChange({ type: cmd, node: args[1]! });
        net.stabilize();
        return { net, out: [`index ${index}`] };
      } catch (err) {
        return { net, out: [`error ${(err as Error).message}`] };
      }
    case 'transfer':
      try {
        net.raft(args[0]!).transferLeadership(args[1]!);
        net.stabilize();
        return { net, out: statusLines(net) };
      } catch (err) {
        return { net, out: [`error ${(err as Error).message}`] };
      }
    case 'conf': {
      const c = net.raft(args[0]!).confState();
      return { net, out: [`voters=${c.voters.join(',')} learners=${c.learners.join(',') || '-'}`] };
    }
    case 'applied':
      return { net, out: [net.appliedData(args[0]!).join(' ') || '(none)'] };
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

/** Runs a script and returns it re-rendered with the actual outputs. */
export function runScript(script: string): string {
  const blocks = script.replace(/\r\n/g, '\n').trim().split(/\n\s*\n/);
  let net: Network | null = null;
  const rendered: string[] = [];
  for (const block of blocks) {
    const lines = block.split('\n');
    const comments = [];
    while (lines[0]?.startsWith('#')) comments.push(lines.shift()!);
    const command = lines[0]?.trim() ?? '';
    const [cmd, ...args] = command.split(/\s+/);
    const r = run(net, cmd!, args);
    net = r.net;
    rendered.push([...comments, command, '----', ...r.out].join('\n'));
  }
  return rendered.join('\n\n') + '\n';
}
