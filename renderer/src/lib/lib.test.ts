import { describe, expect, it } from 'vitest';
import { bytesToBase64 } from './base64';
import { formatAge, formatBytes, formatRoute } from './format';
import { parseValues } from './values';

describe('parseValues', () => {
  it('accepts comma and space separated numbers', () => {
    expect(parseValues('3, 1 2,,  -4.5\n1e3')).toEqual({ ok: true, values: [3, 1, 2, -4.5, 1000] });
  });
  it('names the first bad token', () => {
    expect(parseValues('1, abc, 2')).toEqual({ ok: false, error: '"abc" is not a number.' });
    expect(parseValues('0x10')).toMatchObject({ ok: false });
    expect(parseValues('Infinity')).toMatchObject({ ok: false });
  });
  it('refuses empty input', () => {
    expect(parseValues('  , ')).toMatchObject({ ok: false, error: 'Enter at least one number.' });
  });
});

describe('bytesToBase64', () => {
  it('matches one-shot btoa for small and chunk-crossing inputs', () => {
    for (const n of [0, 1, 2, 3, 0x8000 + 5]) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 7) & 0xff);
      let binary = '';
      for (const b of bytes) binary += String.fromCharCode(b);
      expect(bytesToBase64(bytes)).toBe(btoa(binary));
    }
    expect(bytesToBase64(new TextEncoder().encode('hi!'))).toBe('aGkh');
  });
});

describe('format', () => {
  it('formats sizes, ages and routes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatAge(1000, 5000)).toBe('4s ago');
    expect(formatRoute(['A', 'B', 'C'])).toBe('A → B → C');
  });
});
