/**
 * Test helpers: a real cluster of real node processes on 127.0.0.1, started through the
 * `clusterdesk up` CLI in a temporary data directory with a copy of the two-host topology on
 * free ports. Used by the integration tests and the Playwright e2e tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectControl, type WsControlClient } from '../../core/control/ws-client';
import type { ClusterStatus } from '../../core/control/api';
import { freePortBlock } from './ports';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = join(ROOT, 'bin', 'clusterdesk.js');


/** Writes a copy of the two-host topology on 127.0.0.1 with ports base..base+11. */
export function writeTestConfig(dir: string, base: number, name = 'test-cluster'): string {
  const demo = JSON.parse(readFileSync(join(ROOT, 'resources/clusters/two-hosts-local.json'), 'utf8')) as {
    name: string;
    processes: { port: number; consolePort?: number }[];
  };
  demo.name = name;
  demo.processes.forEach((p, i) => {
    p.port = base + i;
    p.consolePort = base + 6 + i;
  });
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify(demo, null, 2));
  return file;
}

export interface TestCluster {
  dir: string;
  config: string;
  data: string;
  token: string;
  consoleUrl: string;
  output: string[];
  process: ChildProcess;
  folder(id: string): string;
  consoleUrlOf(id: string): string;
  /** A ControlApi client connected to node `id`'s console. */
  client(id: string): Promise<WsControlClient>;
  /** Runs the CLI against this cluster; resolves with exit code and output. */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  status(via?: string): Promise<ClusterStatus>;
  /** pid of node `id` (from status). */
  stop(): Promise<void>;
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; then throws with `what`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ''}`);
}

/**
 * Starts `clusterdesk up` on a fresh copy of the two-host topology (or on the config that
 * `writeConfig` writes into `dir`, using `ports` consecutive free ports from `base`); resolves after `ready`.
 */
export async function startTestCluster(opts: { name?: string; ports?: number; writeConfig?: (dir: string, base: number) => string } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'clusterdesk-test-'));
  const base = await freePortBlock(opts.ports ?? 12);
  const config = opts.writeConfig ? opts.writeConfig(dir, base) : writeTestConfig(dir, base, opts.name);
  const data = join(dir, 'data');
  const output: string[] = [];
  const child = spawn(process.execPath, [CLI, 'up', '--config', config, '--data', data], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CLUSTERDESK_LOG_LEVEL: 'debug' } });
  const onLine = (chunk: Buffer): void => {
    for (const l of chunk.toString().split('\n')) if (l.trim()) output.push(l);
  };
  child.stdout.on('data', onLine);
  child.stderr.on('data', onLine);
  let exited = false;
  child.on('exit', () => (exited = true));
  try {
    await waitFor('the cluster to print "ready"', () => {
      if (exited) throw new Error(`clusterdesk up exited early:\n${output.join('\n')}`);
      return output.includes('ready');
    }, 120_000);
  } catch (err) {
    child.kill('SIGTERM');
    throw new Error(`${(err as Error).message}\n--- clusterdesk up printed:\n${output.slice(-40).join('\n')}`);
  }
  const info = JSON.parse(readFileSync(join(data, 'console.json'), 'utf8')) as { token: string; consoles: { id: string; url: string }[] };
  const consoleUrl = (output.find((l) => l.startsWith('console: ')) ?? '').slice('console: '.length);
  const cluster: TestCluster = {
    dir,
    config,
    data,
    token: info.token,
    consoleUrl,
    output,
    process: child,
    folder: (id) => join(data, id, 'folder'),
    consoleUrlOf: (id) => info.consoles.find((c) => c.id === id)?.url ?? '',
    async client(id) {
      const u = new URL(cluster.consoleUrlOf(id));
      return connectControl(`ws://${u.host}/control?token=${info.token}`);
    },
    cli(args) {
      return new Promise((r) => {
        const p = spawn(process.execPath, [CLI, ...args, '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        p.on('exit', (code) => r({ code: code ?? -1, stdout, stderr }));
      });
    },
    async status(via) {
      const ids = via ? [via] : info.consoles.map((c) => c.id);
      let last: unknown;
      for (const id of ids) {
        try {
          const c = await cluster.client(id);
          try {
            return await c.call('status', {});
          } finally {
            c.close();
          }
        } catch (err) {
          last = err;
        }
      }
      throw last;
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await waitFor('clusterdesk up to exit', () => exited, 20_000).catch(() => child.kill('SIGKILL'));
      }
      if (!process.env.KEEP_TEST_DATA && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
