import { describe, expect, it } from 'vitest';
import { DEFAULT_IGNORES, IgnoreRules } from './ignores';
import { conflictCopyName, conflictOriginal } from './paths';

describe('IgnoreRules', () => {
  it('ignores editor temp files, OS metadata and .clusterdesk/ by default', () => {
    const r = new IgnoreRules();
    for (const p of ['a.txt~', 'dir/.a.txt.swp', '.a.txt.swo', 'x.tmp', '~$Report.docx', '.#notes.org', '4913', 'sub/4913', '.DS_Store', 'sub/Thumbs.db', 'thumbs.db', 'desktop.ini', '._photo.jpg', '.Spotlight-V100/store.db', '.Trashes/501/x', '.clusterdesk/versions/a.txt~20260101-000000']) {
      expect(r.ignores(p), p).toBe(true);
    }
    for (const p of ['a.txt', 'docs/report.docx', 'swp', 'notes.swp.txt', '.clusterdeskignore', 'sub/.clusterdesk/x', '49130']) {
      expect(r.ignores(p), p).toBe(false);
    }
    expect(DEFAULT_IGNORES).toContain('/.clusterdesk/');
  });

  it('applies .clusterdeskignore in gitignore syntax, replacing the previous rules on reload', () => {
    const r = new IgnoreRules();
    expect(r.load('# comment\n\nbuild/\n*.log\n!keep.log\n/root-only.txt\r\n')).toEqual(['build/', '*.log', '!keep.log', '/root-only.txt']);
    expect(r.ignores('build/a/b.o')).toBe(true);
    expect(r.ignores('src/build/x')).toBe(true);
    expect(r.ignores('debug.log')).toBe(true);
    expect(r.ignores('keep.log')).toBe(false);
    expect(r.ignores('root-only.txt')).toBe(true);
    expect(r.ignores('sub/root-only.txt')).toBe(false);
    r.load(null);
    expect(r.ignores('debug.log')).toBe(false);
    expect(r.patterns()).toEqual([]);
  });

  it('cannot un-ignore the meta folder and never ignores the ignore file itself', () => {
    const r = new IgnoreRules();
    r.load('!.clusterdesk/\n!.clusterdesk/**\n.clusterdeskignore\n*\n');
    expect(r.ignores('.clusterdesk/versions/x~20260101-000000')).toBe(true);
    expect(r.ignores('.clusterdeskignore')).toBe(false);
  });

  it('does not throw on odd input', () => {
    const r = new IgnoreRules();
    r.load('[\n\\\n**/\n');
    expect(() => r.ignores('/abs')).not.toThrow();
    expect(r.ignores('')).toBe(false);
  });
});

describe('conflictOriginal', () => {
  it('inverts conflictCopyName', () => {
    const d = new Date(Date.UTC(2026, 10, 24, 14, 25, 0));
    for (const p of ['a.txt', 'docs/report.final.pdf', '.env', 'noext', 'dir/sub/archive.tar.gz', 'x-y_z']) {
      expect(conflictOriginal(conflictCopyName(p, d, 'node-B_2'))).toBe(p);
    }
    expect(conflictOriginal('a.txt')).toBeNull();
    expect(conflictOriginal('a.sync-conflict-2026-B.txt')).toBeNull();
  });
});
