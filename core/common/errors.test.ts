import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errCode, NotFoundError } from './errors';

describe('errCode', () => {
  it("gives a Node system error's code and undefined for anything else", () => {
    let enoent: unknown;
    try {
      readFileSync('/no/such/file/for/errCode');
    } catch (err) {
      enoent = err;
    }
    expect(errCode(enoent)).toBe('ENOENT');
    expect(errCode(new NotFoundError('x'))).toBe('ENOENT'); // ClusterDesk's errors carry a code too
    for (const v of [null, undefined, 5, 'ENOENT', {}, { code: 7 }, new Error('plain')]) expect(errCode(v)).toBeUndefined();
  });
});
