/**
 * `clusterdesk` — command-line interface (commander).
 *
 *   up [--config F] [--data DIR] [--host H] all nodes of a config (or of one host), headless, one OS process each
 *   node --config F --id X [--data DIR]     one node
 *   status [--json]                         each node: id, host, role, team, Raft state, term, commit index, up/down, pid, folder
 *   ls [--json]                             files with each node's version and lock
 *   lock PATH [--shared]   unlock PATH [--force]
 *   request add|sort VALUES… [--team T] [--json]
 *   submit add|sort VALUES… [--team T] [--no-wait] [--json]
 *   member add ID HOST:PORT | member promote ID | member remove ID   Raft membership, one server at a time (thesis §4.1)
 *   leader transfer ID                                                 move Raft leadership to voter ID (thesis §3.10)
 *
 * Commands other than up/node reach a running cluster through its console: `--endpoint URL`
 * (a console URL with `?token=`), or `--data DIR` (the cluster data directory `up` printed;
 * default $CLUSTERDESK_DATA or ~/.clusterdesk/demo), trying each node's console in turn.
 * Exit codes: 0 success, 1 the operation failed (typed error printed), 2 bad usage.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterDeskError, ConfigError, UnavailableError, ValidationError } from '../common/errors';
import type { ClusterStatus, FileEntry, JobInfo, MembershipChangeResult, RequestResult } from '../control/api';
import { parseCall } from '../control/schema';
import { connectControl, type WsControlClient } from '../control/ws-client';
import { DEMO_CONFIG } from '../config/load';
import { defaultDataDir } from './runtime';

/** Parses "5 3,1 [2]" style number lists. @throws InvalidArgumentError naming the bad token. */
export function parseValues(words: string[]): number[] {
  const tokens = words.join(' ').replace(/[[\]]/g, ' ').split(/[\s,]+/).filter(Boolean);
  return tokens.map((t) => {
    const n = Number(t);
    if (!Number.isFinite(n) || t.trim() === '') throw new InvalidArgumentError(`"${t}" is not a number`);
    return n;
  });
}

function intOption(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${v}" is not a positive integer`);
  return n;
}

interface Reach {
  endpoint?: string;
  data?: string;
}

/** Connects to the first reachable console. */
async function reach(o: Reach): Promise<WsControlClient> {
  const urls: string[] = [];
  if (o.endpoint) urls.push(o.endpoint);
  else {
    const file = join(resolve(o.data ?? defaultDataDir()), 'console.json');
    if (!existsSync(file)) {
      throw new UnavailableError(`no running cluster found: ${file} does not exist. Start one with \`clusterdesk up\` or pass --endpoint URL`);
    }
    const info = JSON.parse(readFileSync(file, 'utf8')) as { consoles: { id: string; url: string }[] };
    urls.push(...info.consoles.map((c) => c.url));
  }
  const errors: string[] = [];
  for (const u of urls) {
    const url = new URL(u);
    const ws = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}/control?token=${url.searchParams.get('token') ?? ''}`;
    try {
      return await connectControl(ws, { timeoutMs: 2000 });
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  throw new UnavailableError(`no node answered: ${errors.join('; ')}`);
}

async function withClient<T>(o: Reach, fn: (c: WsControlClient) => Promise<T>): Promise<T> {
  const c = await reach(o);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

function printStatus(s: ClusterStatus): string {
  const rows = [['ID', 'HOST', 'ROLE', 'TEAM', 'RAFT', 'TERM', 'COMMIT', 'STATE', 'PID', 'FOLDER']];
  for (const n of s.nodes) {
    rows.push([n.id + (n.id === s.leaderId ? '*' : ''), n.host, n.role, n.team ?? '-', n.raftState, String(n.term), String(n.commitIndex), n.up ? 'up' : 'down', n.pid ? String(n.pid) : '-', n.folder || '-']);
  }
  const members = s.membership ? `\nRaft voters: ${s.membership.voters.join(', ')}; learners: ${s.membership.learners.join(', ') || '-'}` : '';
  return `cluster ${s.clusterName}, leader ${s.leaderId ?? 'none'} (term ${s.term}), seen from ${s.self}\n${table(rows)}${members}`;
}

function printFiles(files: FileEntry[]): string {
  if (files.length === 0) return '(no files)';
  const nodes = [...new Set(files.flatMap((f) => Object.keys(f.replicas)))].sort();
  const rows = [['PATH', 'SIZE', 'VERSION', 'BY', ...nodes, 'LOCK']];
  for (const f of files) {
    rows.push([
      f.path,
      String(f.size),
      `v${f.version}`,
      f.modifiedBy,
      ...nodes.map((n) => (f.replicas[n] == null ? '-' : `v${f.replicas[n]}`)),
      f.lock ? `${f.lock.mode} by ${f.lock.holders.join(',')} since ${new Date(f.lock.since).toISOString()}` : '',
    ]);
  }
  return table(rows);
}

export function buildProgram(print: (s: string) => void = (s) => console.log(s)): Command {
  const program = new Command('clusterdesk')
    .description('ClusterDesk: turn a few machines into one cluster (Raft, locks, folder sync, routed compute, jobs)')
    .showHelpAfterError()
    .exitOverride();
  const reachOptions = (c: Command): Command =>
    c
      .option('--endpoint <url>', 'console URL of a node, with ?token= (as `up` prints it)')
      .option('--data <dir>', 'cluster data directory written by `up` (default $CLUSTERDESK_DATA or ~/.clusterdesk/demo)');

  program
    .command('up')
    .description('start every node of a config on this machine (each its own process); Ctrl-C stops them all')
    .option('--config <file>', 'cluster config', DEMO_CONFIG)
    .option('--data <dir>', 'data directory (default $CLUSTERDESK_DATA or ~/.clusterdesk/demo)')
    .option('--host <name>', 'start only the nodes of this host (run it on each machine of a multi-host cluster)')
    .addOption(new Option('--tick-ms <ms>', 'Raft tick in milliseconds').argParser(intOption).hideHelp())
    .action(async (o: { config: string; data?: string; host?: string; tickMs?: number }) => {
      const { up } = await import('./up');
      const cluster = await up({ config: o.config, data: o.data ?? defaultDataDir(), print, ...(o.host ? { host: o.host } : {}), ...(o.tickMs ? { tickMs: o.tickMs } : {}) });
      const stop = (): void => void cluster.stop().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      await cluster.exited;
    });

  program
    .command('node')
    .description('run one node of a config in this process')
    .requiredOption('--config <file>', 'cluster config')
    .requiredOption('--id <id>', 'node id in the config')
    .option('--data <dir>', 'this node\'s data directory', '')
    .option('--folder <dir>', 'synchronized folder (default <data>/folder)')
    .option('--token-file <file>', 'console token file (created if missing; default <data>/token)')
    .option('--no-console', 'do not serve the browser console')
    .option('--join', 'join a running cluster: boot as a Raft learner until `clusterdesk member add` adds this node')
    .addOption(new Option('--tick-ms <ms>', 'Raft tick in milliseconds').argParser(intOption).hideHelp())
    .addOption(new Option('--snapshot-entries <n>', 'compact the Raft log every n applied entries').argParser(intOption).hideHelp())
    .addOption(new Option('--snapshot-catch-up <n>', 'entries kept in memory below a snapshot for lagging followers').argParser(intOption).hideHelp())
    .addOption(new Option('--read-only <mode>', 'how the Raft leader confirms linearizable reads: safe (ReadIndex) or lease-based; default: the config\'s raft.readOnly').choices(['safe', 'lease-based']))
    .action(async (o: { config: string; id: string; data: string; folder?: string; tokenFile?: string; console: boolean; tickMs?: number; snapshotEntries?: number; join?: boolean; readOnly?: 'safe' | 'lease-based'; snapshotCatchUp?: number }) => {
      const { runNode } = await import('./run-node');
      await runNode({ ...o, data: o.data || join(defaultDataDir(), o.id) });
    });

  reachOptions(program.command('status').description('show every node of the cluster').option('--json', 'print JSON')).action(async (o: Reach & { json?: boolean }) => {
    const s = await withClient(o, (c) => c.call('status', {}));
    print(o.json ? JSON.stringify(s, null, 2) : printStatus(s));
  });

  reachOptions(program.command('ls').description('list the synchronized files with each node\'s version and lock').option('--json', 'print JSON')).action(async (o: Reach & { json?: boolean }) => {
    const files = await withClient(o, (c) => c.call('listFiles', {}));
    print(o.json ? JSON.stringify(files, null, 2) : printFiles(files));
  });

  reachOptions(program.command('lock <path>').description('lock a file (exclusive unless --shared)').option('--shared', 'take a shared lock')).action(async (path: string, o: Reach & { shared?: boolean }) => {
    const l = await withClient(o, (c) => c.call('lock', { path, mode: o.shared ? 'shared' : 'exclusive' }));
    print(`locked ${l.path} (${l.mode}) by ${l.holders.join(', ')} on ${l.host}, fencing token ${l.fencingToken}`);
  });

  reachOptions(program.command('unlock <path>').description('release a lock').option('--force', 'break a lock held by another node')).action(async (path: string, o: Reach & { force?: boolean }) => {
    const r = await withClient(o, (c) => c.call('unlock', { path, force: !!o.force }));
    print(r.released ? `unlocked ${r.path}` : `${r.path} was not locked`);
  });

  reachOptions(
    program
      .command('request <op> <values...>')
      .description('synchronous compute routed leader → team leader → worker: add NUMBERS | sort NUMBERS')
      .option('--team <team>', 'team to run it (default: any)')
      .option('--json', 'print JSON'),
  ).action(async (op: string, words: string[], o: Reach & { team?: string; json?: boolean }) => {
    if (op !== 'add' && op !== 'sort') throw new InvalidArgumentError(`unknown operation "${op}"; use add or sort`);
    const values = parseValues(words);
    const r: RequestResult = await withClient(o, (c) => c.call('request', { op, values, ...(o.team ? { team: o.team } : {}) }));
    print(o.json ? JSON.stringify(r) : `${JSON.stringify(r.result)}\nroute: ${r.route.join(' → ')} (${r.durationMs} ms)`);
  });

  reachOptions(
    program
      .command('submit <op> <values...>')
      .description('asynchronous job: add NUMBERS | sort NUMBERS; waits for the result unless --no-wait')
      .option('--team <team>', 'team to run it (default: any)')
      .option('--no-wait', 'print the job id and return')
      .option('--json', 'print JSON'),
  ).action(async (op: string, words: string[], o: Reach & { team?: string; wait: boolean; json?: boolean }) => {
    if (op !== 'add' && op !== 'sort') throw new InvalidArgumentError(`unknown operation "${op}"; use add or sort`);
    const values = parseValues(words);
    await withClient(o, async (c) => {
      const finished = new Promise<JobInfo>((res) => {
        c.onEvent((e) => {
          if (e.type === 'job' && e.job.id === job?.id && (e.job.state === 'done' || e.job.state === 'failed')) res(e.job);
        });
      });
      let job: JobInfo | null = null;
      job = await c.call('submit', { op, values, ...(o.team ? { team: o.team } : {}) });
      print(o.json && !o.wait ? JSON.stringify(job) : `job ${job.id} queued`);
      if (!o.wait) return;
      const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new UnavailableError(`job ${job?.id} did not finish within 60 s; see \`clusterdesk\` console`)), 60_000).unref());
      const done = await Promise.race([finished, timeout]);
      if (o.json) print(JSON.stringify(done));
      else if (done.state === 'done') print(`job ${done.id} done: ${JSON.stringify(done.result)}\nroute: ${done.route.join(' → ')}`);
      else throw new ClusterDeskError(done.error?.code ?? 'EJOB', `job ${done.id} failed: ${done.error?.message}`);
    });
  });
  const printMembers = (what: string, r: MembershipChangeResult): void =>
    print(`${what} (config entry ${r.index})\nvoters: ${r.voters.join(', ')}\nlearners: ${r.learners.join(', ') || '-'}`);
  const member = program.command('member').description('Raft membership changes, one server at a time (thesis §4.1)');
  reachOptions(
    member
      .command('add <id> <address>')
      .description('add node ID (peer address HOST:PORT) as a learner; then start it with `clusterdesk node --join`'),
  ).action(async (id: string, address: string, o: Reach) => {
    const { params } = parseCall<'memberAdd'>('memberAdd', { id, address }); // bad arguments: exit 2 before any connection
    printMembers(`added ${params.id} as a learner`, await withClient(o, (c) => c.call('memberAdd', params)));
  });
  reachOptions(member.command('promote <id>').description('promote learner ID to voter (refused until it has caught up)')).action(async (id: string, o: Reach) => {
    const { params } = parseCall<'memberPromote'>('memberPromote', { id });
    printMembers(`promoted ${params.id} to voter`, await withClient(o, (c) => c.call('memberPromote', params)));
  });
  reachOptions(member.command('remove <id>').description('remove member ID (voter or learner)')).action(async (id: string, o: Reach) => {
    const { params } = parseCall<'memberRemove'>('memberRemove', { id });
    printMembers(`removed ${params.id}`, await withClient(o, (c) => c.call('memberRemove', params)));
  });
  const leader = program.command('leader').description('Raft leadership');
  reachOptions(leader.command('transfer <id>').description('transfer Raft leadership to voter ID (thesis §3.10)')).action(async (id: string, o: Reach) => {
    const { params } = parseCall<'leaderTransfer'>('leaderTransfer', { id });
    const r = await withClient(o, (c) => c.call('leaderTransfer', params));
    print(`${r.leaderId} is the Raft leader`);
  });
  return program;
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], print?: (s: string) => void, printError: (s: string) => void = (s) => console.error(s)): Promise<number> {
  const program = buildProgram(print);
  program.configureOutput({ writeErr: (s) => printError(s.trimEnd()) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // InvalidArgumentError thrown by an action (commander reports its own parse errors itself).
    if (err instanceof InvalidArgumentError || err instanceof ValidationError || err instanceof ConfigError) {
      printError(`error: ${err.message}`);
      return 2;
    }
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const code = (err as { code?: string }).code ?? 'EINTERNAL';
    printError(`error [${code}]: ${(err as Error).message}`);
    return 1;
  }
}

const isEntry = process.argv[1] && /(?:main\.ts|cli\.js|clusterdesk(?:\.js)?)$/.test(process.argv[1]);
if (isEntry && !process.env.CLUSTERDESK_NO_AUTORUN) {
  const argv = process.argv.slice(2);
  main(argv).then((code) => {
    // Long-running commands (up, node) keep the event loop alive; the others end here.
    if (argv[0] !== 'up' && argv[0] !== 'node') process.exit(code);
    else if (code !== 0) process.exit(code);
  });
}
