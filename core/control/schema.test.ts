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
});
