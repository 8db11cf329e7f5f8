import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScript } from './testing/interaction';

/** Golden scripted tests; run with REWRITE=1 to regenerate the expected outputs. */
const dir = join(import.meta.dirname, 'testdata');
describe('raft interaction scripts', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt'))) {
    it(file, () => {
      const path = join(dir, file);
      const script = readFileSync(path, 'utf8');
      const actual = runScript(script);
      if (process.env.REWRITE === '1') writeFileSync(path, actual);
      else expect(actual).toBe(script);
    });
  }
});
