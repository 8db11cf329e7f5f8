/**
 * Free loopback ports for test and benchmark clusters. Blocks are drawn below Linux's ephemeral
 * range (32768–60999) so outgoing connections never take them meanwhile.
 */
import { createServer } from 'node:net';

/** True when 127.0.0.1:`port` can be bound now. */
export async function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

/**
 * Finds `count` consecutive free ports in 20000–31999 and returns the first. With `offsets`,
 * every `port + offset` must be free too (e.g. [0, 1000] for a gRPC port and its console port).
 * @throws Error after 50 unlucky draws.
 */
export async function freePortBlock(count: number, offsets: number[] = [0]): Promise<number> {
  const top = 32000 - count - Math.max(...offsets);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * ((top - 20000) / 10)) * 10;
    let ok = true;
    for (let i = 0; i < count && ok; i++) for (const o of offsets) ok = ok && (await portFree(base + o + i));
    if (ok) return base;
  }
  throw new Error('no free port block found');
}
