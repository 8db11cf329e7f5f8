/**
 * `clusterdesk up`: starts every node of a config (or, with `--host`, the nodes of one host) on this
 * machine, each as its own OS process,
 * and stops them all on Ctrl-C or SIGTERM. Prints the data directory, the console URL (with its
 * token) and a line `ready` once the cluster has a Raft leader. A node that dies is reported and
 * left down (so failover can be watched); `up` keeps running while any node runs.
 *
 * Writes `<data>/console.json` = { cluster, token, consoles: [{ id, url }] } so that the other
 * CLI commands (`status`, `ls`, `lock`, …) find the running cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadClusterConfig } from '../config/load';
import { addressOf } from '../config/schema';
import { ConfigError } from '../common/errors';
import { ensureToken } from './run-node';
import { selfCommand } from './runtime';

export interface UpOptions {
  config: string;
  data: string;
  /** Print to this function (tests capture it). */
  print?: (line: string) => void;
  tickMs?: number;
  /** Start only the nodes of this host (the per-host start script of a multi-machine cluster). */
  host?: string;
}

export interface RunningCluster {
  children: Map<string, ChildProcess>;
  stop(): Promise<void>;
  /** Resolves when every child has exited. */
  exited: Promise<void>;
}

export async function up(o: UpOptions): Promise<RunningCluster> {
  const print = o.print ?? ((l: string) => console.log(l));
  const topology = loadClusterConfig(o.config);
  if (o.host && !topology.config.hosts[o.host]) {
    throw new ConfigError(`host "${o.host}" is not in ${o.config}; hosts: ${Object.keys(topology.config.hosts).join(', ')}`);
  }
  const local = topology.config.processes.filter((p) => !o.host || p.host === o.host);
  const data = resolve(o.data);
  mkdirSync(data, { recursive: true });
  const token = ensureToken(join(data, 'token'));
  const consoles = topology.config.processes.map((p) => {
    const a = addressOf(topology, p.id);
    return { id: p.id, url: `http://${a.host}:${a.consolePort}/?token=${token}` };
  });
  writeFileSync(join(data, 'console.json'), JSON.stringify({ cluster: topology.config.name, config: resolve(o.config), token, consoles }, null, 2), { mode: 0o600 });
  print(`cluster ${topology.config.name}: starting ${local.length} nodes (${local.map((p) => p.id).join(', ')})${o.host ? ` of host ${o.host}` : ''}`);
  print(`data directory: ${data}`);

  const children = new Map<string, ChildProcess>();
  let readyPrinted = false;
  let stopping = false;
  const exits: Promise<void>[] = [];
  for (const p of local) {
    const args = ['node', '--config', resolve(o.config), '--id', p.id, '--data', join(data, p.id), '--token-file', join(data, 'token')];
    if (o.tickMs) args.push('--tick-ms', String(o.tickMs));
    const cmd = selfCommand(args);
    const child = spawn(cmd.command, cmd.args, { env: cmd.env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    children.set(p.id, child);
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) print(`[${p.id}] ${summarize(line)}`);
    });
    child.on('message', (m: { type?: string; leaderId?: string | null; pid?: number; folder?: string }) => {
      if (m?.type !== 'status') return;
      if (m.leaderId && !readyPrinted) {
        readyPrinted = true;
        print(`console: ${consoles.find((c) => c.id === local[0]?.id)?.url}`);
        print(`leader: ${m.leaderId}`);
        print('ready');
      }
    });
    exits.push(
      new Promise<void>((r) =>
        child.on('exit', (code, signal) => {
          children.delete(p.id);
          if (!stopping) print(`node ${p.id} exited (${signal ? `signal ${signal}` : `code ${code}`})`);
          r();
        }),
      ),
    );
    print(`node ${p.id}: pid ${child.pid}, folder ${join(data, p.id, 'folder')}, log ${join(data, p.id, 'node.log')}`);
  }
  const exited = Promise.all(exits).then(() => undefined);
  const stop = async (): Promise<void> => {
    if (stopping) return exited;
    stopping = true;
    for (const c of children.values()) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of children.values()) c.kill('SIGKILL');
    }, 8000);
    await exited;
    clearTimeout(timer);
    rmSync(join(data, 'console.json'), { force: true });
    print('all nodes stopped');
  };
  return { children, stop, exited };
}

/** Pino JSON lines on stderr → "LEVEL message". */
function summarize(line: string): string {
  try {
    const j = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
    const level = j.level && j.level >= 50 ? 'error' : 'warn';
    return `${level}: ${j.msg ?? ''}${j.err ? ` (${typeof j.err === 'string' ? j.err : JSON.stringify(j.err)})` : ''}`;
  } catch {
    return line;
  }
}
