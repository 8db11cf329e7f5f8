import { describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import { parseCall, parseCallFrame } from './schema';

describe('ControlApi input validation', () => {
  it('accepts well-formed calls', () => {
    expect(parseCall('request', { op: 'sort', values: [3, 1] }).params).toEqual({ op: 'sort', values: [3, 1] });
    expect(parseCall('status', undefined).params).toEqual({});
    expect(parseCall<'upload'>('upload', { path: 'a.txt', dataBase64: 'aGk=' }).params.path).toBe('a.txt');
  });
  it('rejects unknown methods, wrong types, extra fields and bad base64', () => {
    expect(() => parseCall('rm -rf', {})).toThrow(/unknown method/);
    expect(() => parseCall('__proto__', {})).toThrow(ValidationError);
    expect(() => parseCall('request', { op: 'eval', values: [] })).toThrow(/op/);
    expect(() => parseCall('request', { op: 'sort', values: ['1'] })).toThrow(/values\.0/);
    expect(() => parseCall('lock', { path: 'a', evil: true })).toThrow(/evil|Unrecognized/);
    expect(() => parseCall('lock', { path: '' })).toThrow(/path/);
    expect(() => parseCall('upload', { path: 'a', dataBase64: 'not base64!' })).toThrow(/not base64/);
    expect(() => parseCall('status', { x: 1 })).toThrow(ValidationError);
  });
  it('rejects malformed frames', () => {
    expect(() => parseCallFrame('{')).toThrow(/not JSON/);
    expect(() => parseCallFrame('[]')).toThrow(/kind/);
    expect(() => parseCallFrame('{"kind":"call","id":"1","method":"status"}')).toThrow(/integer/);
    expect(parseCallFrame('{"kind":"call","id":7,"method":"status","params":{}}').id).toBe(7);
  });
  it('validates the history, restore, conflict and problem calls (hostile input)', () => {
    expect(parseCall('fileHistory', { path: 'docs/a.txt' }).params).toEqual({ path: 'docs/a.txt' });
    expect(parseCall('restoreVersion', { path: 'a', versionId: '20261124-142500' }).params).toEqual({ path: 'a', versionId: '20261124-142500' });
    expect(parseCall<'restoreVersion'>('restoreVersion', { path: 'a', versionId: '20261124-142500-2' }).params.versionId).toBe('20261124-142500-2');
    expect(parseCall<'restoreVersion'>('restoreVersion', { path: 'a', versionId: 'v12' }).params.versionId).toBe('v12');
    expect(parseCall<'resolveConflict'>('resolveConflict', { path: 'a.sync-conflict-20260101-000000-B.txt', keep: 'copy' }).params.keep).toBe('copy');
    expect(parseCall('listConflicts', undefined).params).toEqual({});
    expect(parseCall('listProblems', {}).params).toEqual({});

    expect(() => parseCall('fileHistory', {})).toThrow(/path/);
    expect(() => parseCall('fileHistory', { path: 'x'.repeat(1025) })).toThrow(/path/);
    expect(() => parseCall('fileHistory', { path: ['a'] })).toThrow(ValidationError);
    expect(() => parseCall('fileHistory', { path: 'a', __proto__: { evil: 1 }, extra: 1 })).toThrow(ValidationError);
    for (const versionId of ['../../etc/passwd', '20261124-142500/../x', '20261124', 'v0', 'v-1', 'v1e3', '', 'v99999999999999999', 12]) {
      expect(() => parseCall('restoreVersion', { path: 'a', versionId }), String(versionId)).toThrow(/versionId/);
    }
    expect(() => parseCall('restoreVersion', { path: 'a' })).toThrow(/versionId/);
    expect(() => parseCall('resolveConflict', { path: 'a', keep: 'both' })).toThrow(/keep/);
    expect(() => parseCall('resolveConflict', { path: 'a' })).toThrow(/keep/);
    expect(() => parseCall('resolveConflict', { path: 1, keep: 'copy' })).toThrow(/path/);
    expect(() => parseCall('listConflicts', { all: true })).toThrow(ValidationError);
    expect(() => parseCall('listProblems', { x: 1 })).toThrow(ValidationError);
    expect(() => parseCall('listProblems', 'str')).toThrow(ValidationError);
  });
});
