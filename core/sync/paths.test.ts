import { describe, expect, it } from 'vitest';
import { PathError } from '../common/errors';
import { conflictCopyName, isConflictCopy, isTemporary, normalizePath } from './paths';

describe('normalizePath', () => {
  it('accepts portable relative paths and returns NFC', () => {
    expect(normalizePath('a.txt')).toBe('a.txt');
    expect(normalizePath('docs/sub/report v2.pdf')).toBe('docs/sub/report v2.pdf');
    expect(normalizePath('.env')).toBe('.env');
    expect(normalizePath('caf\u0065\u0301.txt')).toBe('caf\u00e9.txt');
    expect(normalizePath('console.txt')).toBe('console.txt'); // only exact reserved stems are refused
  });

  const rejected: [string, string, RegExp][] = [
    ['empty', '', /empty path/],
    ['NUL', 'a\u0000b', /NUL/],
    ['control char', 'a\u0001b', /control character/],
    ['absolute posix', '/etc/passwd', /absolute/],
    ['absolute windows drive', 'C:/Windows/x', /absolute/],
    ['absolute UNC/backslash', '\\\\server\\share', /absolute/],
    ['backslash separator', 'a\\b.txt', /not allowed on Windows/],
    ['parent traversal', '../secret', /traversal/],
    ['inner traversal', 'a/../../b', /traversal/],
    ['dot segment', './a', /traversal/],
    ['doubled slash', 'a//b', /empty path segment/],
    ['trailing slash', 'a/', /empty path segment/],
    ['CON', 'CON', /reserved device name/],
    ['prn with ext', 'dir/prn.txt', /reserved device name/],
    ['aux lowercase', 'aux', /reserved device name/],
    ['nul', 'nul.tar.gz', /reserved device name/],
    ['COM1', 'COM1', /reserved device name/],
    ['COM9', 'x/com9.log', /reserved device name/],
    ['LPT1', 'LPT1.txt', /reserved device name/],
    ['LPT9', 'lpt9', /reserved device name/],
    ['trailing dot', 'name.', /ends with a dot or a space/],
    ['trailing space', 'dir /a', /ends with a dot or a space/],
    ['<', 'a<b', /"<" is not allowed/],
    ['>', 'a>b', /">" is not allowed/],
    [':', 'ab:c', /":" is not allowed/],
    ['"', 'a"b', /not allowed on Windows/],
    ['|', 'a|b', /"\|" is not allowed/],
    ['?', 'a?b', /"\?" is not allowed/],
    ['*', 'a*b', /"\*" is not allowed/],
    ['too long total', 'a/'.repeat(130) + 'b', /longer than 260/],
    ['too long segment', 'x'.repeat(256), /longer than 260|longer than 255/],
  ];
  for (const [what, path, msg] of rejected) {
    it(`rejects ${what}`, () => {
      let caught: unknown;
      try {
        normalizePath(path);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(PathError);
      expect((caught as PathError).code).toBe('EPATH');
      expect((caught as PathError).message).toMatch(msg);
      expect((caught as PathError).message).toContain('invalid path');
    });
  }

  it('answers repeated calls the same, refusing a bad path every time (accepted paths are remembered)', () => {
    for (let round = 0; round < 3; round++) {
      expect(normalizePath('caf\u0065\u0301.txt')).toBe('caf\u00e9.txt'); // NFD in, NFC out, every time
      expect(normalizePath('caf\u00e9.txt')).toBe('caf\u00e9.txt');
      expect(() => normalizePath('../secret')).toThrow(PathError);
      expect(() => normalizePath(5 as unknown as string)).toThrow(PathError);
    }
    // Past the memory's size (it is emptied and refilled), every answer is still right.
    for (let i = 0; i < 70_000; i++) expect(normalizePath(`d${i % 7}/f${i}.txt`)).toBe(`d${i % 7}/f${i}.txt`);
    expect(normalizePath('caf\u0065\u0301.txt')).toBe('caf\u00e9.txt');
    expect(() => normalizePath('a//b')).toThrow(/empty path segment/);
  });

  it('accepts exactly 260 characters', () => {
    const p = 'd/'.repeat(100) + 'x'.repeat(60);
    expect(p.length).toBe(260);
    expect(normalizePath(p)).toBe(p);
  });
});

describe('conflictCopyName', () => {
  const date = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  it('follows Syncthing naming with a UTC timestamp', () => {
    expect(conflictCopyName('report.txt', date, 'B')).toBe('report.sync-conflict-20260102-030405-B.txt');
    expect(conflictCopyName('docs/a.tar.gz', date, 'node-2')).toBe('docs/a.tar.sync-conflict-20260102-030405-node-2.gz');
    expect(conflictCopyName('Makefile', date, 'A')).toBe('Makefile.sync-conflict-20260102-030405-A');
    expect(conflictCopyName('x/.env', date, 'A')).toBe('x/.env.sync-conflict-20260102-030405-A');
  });
  it('produces valid, recognisable paths', () => {
    const n = conflictCopyName('docs/report.txt', date, 'B');
    expect(normalizePath(n)).toBe(n);
    expect(isConflictCopy(n)).toBe(true);
    expect(isConflictCopy('docs/report.txt')).toBe(false);
  });
});

describe('isTemporary', () => {
  it('matches our temp files and OS litter only', () => {
    for (const n of ['.clusterdesk-tmp-abc', 'd/.clusterdesk-tmp-1', '.DS_Store', 'Thumbs.db', 'thumbs.db', '~$report.docx', '.a.txt.swp'])
      expect(isTemporary(n), n).toBe(true);
    for (const n of ['report.docx', 'tmp', '.clusterdesk', 'a.swp.txt', 'x/~notes.txt']) expect(isTemporary(n), n).toBe(false);
  });
});
