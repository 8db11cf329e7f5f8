import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import { Hasher } from './hasher';
import { ObjectStore } from './object-store';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('ObjectStore + Hasher', () => {
  let dir: string;
  let hasher: Hasher;
  let store: ObjectStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cd-objects-'));
    hasher = new Hasher({ threads: 1 });
    store = new ObjectStore(join(dir, 'data'), (p) => hasher.hash(p));
    await store.init();
  });
  afterAll(async () => {
    await hasher.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes on a worker thread, matching node:crypto', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const f = join(dir, 'big.bin');
    await writeFile(f, bytes);
    const r = await hasher.hash(f);
    expect(r.sha256).toBe(sha(bytes));
    expect(r.size).toBe(bytes.length);
    await expect(hasher.hash(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('accepts an explicit workerPath', async () => {
    const h = new Hasher({ workerPath: fileURLToPath(new URL('./hash-worker.ts', import.meta.url)), threads: 1 });
    try {
      const f = join(dir, 'w.txt');
      await writeFile(f, 'worker path');
      expect((await h.hash(f)).sha256).toBe(sha('worker path'));
    } finally {
      await h.destroy();
    }
  });

  it('stores files content-addressed and serves them back', async () => {
    const f = join(dir, 'a.txt');
    await writeFile(f, 'hello');
    const h = sha('hello');
    expect(store.has(h)).toBe(false);
    await store.putFile(f, h);
    expect(store.has(h)).toBe(true);
    expect(store.pathOf(h)).toBe(join(dir, 'data', 'objects', h.slice(0, 2), h));
    const chunks: Buffer[] = [];
    for await (const c of store.createReadStream(h)) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
  });

  it('putFile refuses a file whose bytes do not match', async () => {
    const f = join(dir, 'b.txt');
    await writeFile(f, 'actual');
    await expect(store.putFile(f, sha('claimed'))).rejects.toBeInstanceOf(ValidationError);
    expect(store.has(sha('claimed'))).toBe(false);
  });

  it('writeFromStream verifies SHA-256 and writes nothing on mismatch', async () => {
    const good = Buffer.from('streamed bytes');
    await store.writeFromStream(sha(good), Readable.from([good]));
    expect(await readFile(store.pathOf(sha(good)))).toEqual(good);

    const wrong = sha('something else');
    await expect(store.writeFromStream(wrong, Readable.from([Buffer.from('tampered')]))).rejects.toBeInstanceOf(ValidationError);
    expect(store.has(wrong)).toBe(false);
    expect(await readdir(join(dir, 'data', 'objects', 'tmp'))).toEqual([]);
    expect(() => store.pathOf('../../etc/passwd')).toThrow(ValidationError);
  });
});
