import { describe, expect, it } from 'vitest';
import { ValidationError } from '../common/errors';
import { CONTROL_METHODS } from './api';
import { parseCall } from './schema';

describe('ControlApi membership calls: input validation', () => {
  it('accepts well-formed calls', () => {
    expect(parseCall('memberAdd', { id: 'D', address: '10.0.0.4:50054' }).params).toEqual({ id: 'D', address: '10.0.0.4:50054' });
    expect(parseCall<'memberAdd'>('memberAdd', { id: 'node_4', address: 'host-4.lan:1' }).params.id).toBe('node_4');
    expect(parseCall<'memberAdd'>('memberAdd', { id: 'D', address: '[::1]:65535' }).params.address).toBe('[::1]:65535');
    for (const m of ['memberPromote', 'memberRemove', 'leaderTransfer'] as const) expect(parseCall(m, { id: 'B' }).params).toEqual({ id: 'B' });
    for (const m of ['memberAdd', 'memberPromote', 'memberRemove', 'leaderTransfer']) expect(CONTROL_METHODS).toContain(m);
  });

  it('rejects hostile ids, addresses, types and extra fields', () => {
    const bad: [string, unknown, RegExp][] = [
      ['memberAdd', { id: 'D' }, /address/],
      ['memberAdd', { id: '', address: 'h:1' }, /id/],
      ['memberAdd', { id: '1D', address: 'h:1' }, /id/],
      ['memberAdd', { id: 'D\u0000', address: 'h:1' }, /id/],
      ['memberAdd', { id: '__proto__', address: 'h:1' }, /id/],
      ['memberAdd', { id: 'D', address: 'h:0' }, /port/],
      ['memberAdd', { id: 'D', address: 'h:123456' }, /address/],
      ['memberAdd', { id: 'D', address: 'http://h:1' }, /address/],
      ['memberAdd', { id: 'D', address: 'h:1/../x' }, /address/],
      ['memberAdd', { id: 'D', address: ' h:1' }, /address/],
      ['memberAdd', { id: 'D', address: `${'a'.repeat(300)}:1` }, /address/],
      ['memberAdd', { id: 'D', address: 5 }, /address/],
      ['memberAdd', { id: 'D', address: 'h:1', role: 'voter' }, /role|Unrecognized/],
      ['memberPromote', { id: 7 }, /id/],
      ['memberPromote', null, /id/],
      ['memberRemove', { id: ['B'] }, /id/],
      ['memberRemove', { id: 'B', force: true }, /force|Unrecognized/],
      ['leaderTransfer', { id: 'B C' }, /id/],
      ['leaderTransfer', 'B', /params|expected object/i],
    ];
    for (const [method, params, message] of bad) {
      expect(() => parseCall(method, params), `${method} ${JSON.stringify(params)}`).toThrow(ValidationError);
      expect(() => parseCall(method, params)).toThrow(message);
    }
  });
});
