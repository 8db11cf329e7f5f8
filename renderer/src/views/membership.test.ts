/**
 * The Topology view's Raft membership controls: which controls each node gets, the
 * ask-then-confirm flow, the calls they make and how refusals are shown.
 */
import { createElement, isValidElement, type ReactElement, type ReactNode } from 'react';
import { renderToString } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { createActions, type MemberOp } from '../actions';
import { ConsoleContext } from '../context';
import { createConsoleStore } from '../stores';
import { createFakeApi, type FakeApi } from '../testing/fakeApi';
import { node, status } from '../testing/fixtures';
import { MemberControls, TopologyView, memberOps, type MemberControlsProps } from './TopologyView';

function renderTopology(api: FakeApi = createFakeApi(), withMembership = true): string {
  const store = createConsoleStore();
  store.getState().setConnection('open');
  store.getState().applyStatus(
    status({
      nodes: [node('A', { role: 'leader', team: null, raftState: 'leader' }), node('B', { role: 'team-leader' }), node('D', { raftState: 'learner' }), node('X')],
      ...(withMembership ? { membership: { voters: ['A', 'B'], learners: ['D'] } } : {}),
    }),
  );
  const s = { ...store, getInitialState: () => store.getState() };
  return renderToString(createElement(ConsoleContext.Provider, { value: { store: s, actions: createActions(api, s) } }, createElement(TopologyView)));
}

/** All elements of a rendered tree (function components are not expanded). */
function elements(n: ReactNode): ReactElement<Record<string, unknown>>[] {
  if (Array.isArray(n)) return n.flatMap(elements);
  if (!isValidElement(n)) return [];
  const el = n as ReactElement<Record<string, unknown>>;
  return [el, ...elements(el.props.children as ReactNode)];
}

function byTestId(tree: ReactNode, id: string): ReactElement<Record<string, unknown>> | undefined {
  return elements(tree).find((e) => e.props['data-testid'] === id);
}

function controls(over: Partial<MemberControlsProps> = {}) {
  const log: string[] = [];
  const props: MemberControlsProps = {
    id: 'D',
    ops: ['promote', 'remove'],
    confirming: null,
    busy: false,
    error: null,
    onAsk: (op: MemberOp) => log.push(`ask ${op}`),
    onConfirm: () => log.push('confirm'),
    onCancel: () => log.push('cancel'),
    ...over,
  };
  return { tree: MemberControls(props), log };
}

describe('Topology membership controls', () => {
  it('offers promote to learners, leadership to other voters, removal to members, nothing to non-members', () => {
    expect(memberOps('D', 'learner', 2, 'A')).toEqual(['promote', 'remove']);
    expect(memberOps('B', 'voter', 2, 'A')).toEqual(['transfer', 'remove']);
    expect(memberOps('A', 'voter', 2, 'A')).toEqual(['remove']);
    expect(memberOps('A', 'voter', 1, 'A')).toEqual([]);
    expect(memberOps('X', 'not a member', 2, 'A')).toEqual([]);
    const html = renderTopology();
    expect(html).toContain('data-testid="membership-table"');
    expect(html).toMatch(/data-testid="member-row-D" data-kind="learner"/);
    expect(html).toMatch(/data-testid="member-row-X" data-kind="not a member"/);
    for (const id of ['member-promote-D', 'member-remove-D', 'member-transfer-B', 'member-remove-B', 'member-remove-A']) expect(html).toContain(`data-testid="${id}"`);
    for (const id of ['member-transfer-A', 'member-promote-B', 'member-remove-X', 'member-promote-X']) expect(html).not.toContain(`data-testid="${id}"`);
    // Without a membership in the status (an older node), no controls at all.
    expect(renderTopology(createFakeApi(), false)).not.toContain('membership-table');
  });

  it('asks first, then confirms or cancels; shows the node refusal', () => {
    const first = controls();
    expect(byTestId(first.tree, 'member-confirm-D')).toBeUndefined();
    (byTestId(first.tree, 'member-remove-D')!.props.onClick as () => void)();
    expect(first.log).toEqual(['ask remove']);

    const asking = controls({ confirming: 'remove' });
    expect(renderToString(asking.tree)).toContain('Remove D from the cluster?');
    expect(byTestId(asking.tree, 'member-remove-D')).toBeUndefined();
    (byTestId(asking.tree, 'member-confirm-D')!.props.onClick as () => void)();
    (byTestId(asking.tree, 'member-cancel-D')!.props.onClick as () => void)();
    expect(asking.log).toEqual(['confirm', 'cancel']);

    const busy = controls({ confirming: 'promote', busy: true });
    expect(byTestId(busy.tree, 'member-confirm-D')!.props.disabled).toBe(true);
    expect(renderToString(busy.tree)).toContain('Promote D to voter?');

    const refused = controls({ error: 'learner D has not caught up (EUNAVAILABLE)' });
    expect(renderToString(refused.tree)).toMatch(/data-testid="member-error-D" role="alert">learner D has not caught up \(EUNAVAILABLE\)</);
  });

  it('calls memberPromote / memberRemove / leaderTransfer and reports success or the typed refusal', async () => {
    const api = createFakeApi();
    api.handle('memberPromote', (p) => ({ index: 9, voters: ['A', 'B', p.id], learners: [] }));
    api.handle('leaderTransfer', (p) => ({ leaderId: p.id }));
    api.fail('memberRemove', 'EINVAL', 'node A is the last voter and cannot be removed', 'ValidationError');
    const store = createConsoleStore();
    const actions = createActions(api, store);
    expect(await actions.membership('promote', 'D')).toBeNull();
    expect(await actions.membership('transfer', 'B')).toBeNull();
    expect(await actions.membership('remove', 'A')).toBe('node A is the last voter and cannot be removed (EINVAL)');
    expect(api.calls).toEqual([
      { method: 'memberPromote', params: { id: 'D' } },
      { method: 'leaderTransfer', params: { id: 'B' } },
      { method: 'memberRemove', params: { id: 'A' } },
    ]);
    expect(store.getState().toasts.map((t) => `${t.level}: ${t.title}`)).toEqual(['info: D is a voter', 'info: Leadership transferred', 'error: Could not remove A']);
  });
});
