/**
 * Test hosts in Linux network namespaces: one namespace per host, each with a veth into one
 * bridge in the root namespace (address `.254`, so the test itself reaches every host), on a /24
 * of 10.213.x.0 chosen per test process. `partition` cuts hosts apart with blackhole routes inside
 * their namespaces (packets between them are dropped both ways, the test still reaches all of
 * them); `heal` removes those routes. Everything is created by the test and removed by `destroy`.
 *
 * Needs root and iproute2 (`ip netns`); {@link netnsUnavailable} says why it cannot run otherwise.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

function ip(args: string[], ns?: string): void {
  const full = ns ? ['netns', 'exec', ns, 'ip', ...args] : args;
  const r = spawnSync('ip', full, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${full.join(' ')} failed: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
}

/** Null when network namespaces can be created here, else the reason (for a test's skip message). */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  const probe = `cdprobe${process.pid % 100000}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error) return `iproute2 is not installed (${r.error.message})`;
  if (r.status !== 0) return `ip netns add failed: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

export interface NetHost {
  name: string;
  ns: string;
  address: string;
}

export class NetnsLab {
  readonly hosts: NetHost[] = [];
  /** The root namespace's address on the bridge (the test's own). */
  readonly gateway: string;
  private readonly bridge: string;
  private readonly tag: string;
  private readonly cuts = new Set<string>();

  /** Creates a bridge and one namespace per name. */
  constructor(names: string[]) {
    this.tag = `cd${process.pid % 10000}`;
    const subnet = `10.213.${process.pid % 250}`;
    this.gateway = `${subnet}.254`;
    this.bridge = `${this.tag}br`;
    try {
      ip(['link', 'add', this.bridge, 'type', 'bridge']);
      ip(['addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
      ip(['link', 'set', this.bridge, 'up']);
      names.forEach((name, i) => {
        const ns = `${this.tag}-${name}`;
        const veth = `${this.tag}v${i}`;
        const address = `${subnet}.${i + 1}`;
        ip(['netns', 'add', ns]);
        this.hosts.push({ name, ns, address });
        ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`]);
        ip(['link', 'set', `${veth}p`, 'netns', ns]);
        ip(['link', 'set', veth, 'master', this.bridge]);
        ip(['link', 'set', veth, 'up']);
        ip(['addr', 'add', `${address}/24`, 'dev', `${veth}p`], ns);
        ip(['link', 'set', `${veth}p`, 'up'], ns);
        ip(['link', 'set', 'lo', 'up'], ns);
      });
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  host(name: string): NetHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no test host ${name}`);
    return h;
  }

  /** Spawns `cmd args` inside host `name`'s namespace (`ip netns exec` execs it: the pid is the command's). */
  spawn(name: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.host(name).ns, cmd, ...args], options);
  }

  /** Drops all traffic between every host of `side` and every host of `other`, both ways. */
  partition(side: string[], other: string[]): void {
    for (const a of side)
      for (const b of other) {
        for (const [from, to] of [
          [a, b],
          [b, a],
        ] as const) {
          const key = `${from}>${to}`;
          if (this.cuts.has(key)) continue;
          ip(['route', 'add', 'blackhole', `${this.host(to).address}/32`], this.host(from).ns);
          this.cuts.add(key);
        }
      }
  }

  /** Removes every cut made by {@link partition}. */
  heal(): void {
    for (const key of [...this.cuts]) {
      const [from, to] = key.split('>') as [string, string];
      ip(['route', 'del', 'blackhole', `${this.host(to).address}/32`], this.host(from).ns);
      this.cuts.delete(key);
    }
  }

  /** Deletes the namespaces (their veths go with them) and the bridge. Idempotent; never throws. */
  destroy(): void {
    for (const h of this.hosts) spawnSync('ip', ['netns', 'del', h.ns]);
    this.hosts.length = 0;
    spawnSync('ip', ['link', 'del', this.bridge]);
  }
}
