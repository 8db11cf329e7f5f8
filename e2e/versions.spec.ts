/// <reference lib="dom" />
/**
 * The Files view's History panel and Conflicts section against a real headless cluster (six node
 * processes on 127.0.0.1) in Debian's Chromium: a file's history shows who changed it from which
 * host, a confirmed restore commits the old bytes as a new version on every node (which keep the
 * replaced bytes under `.clusterdesk/versions/`), and "Keep copy" settles a conflict everywhere.
 */
import { test, expect } from '@playwright/test';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCluster, waitFor, type TestCluster } from '../test/helpers/cluster';

let cluster: TestCluster;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  cluster = await startTestCluster({ name: 'e2e-versions' });
  // "ready" means a Raft leader exists; each node's folder sync starts after that, in the
  // background (an upload before then fails with "sync engine is not running").
  for (const id of ['A', 'B', 'C', 'D', 'E', 'F']) {
    const log = join(cluster.data, id, 'node.log');
    await waitFor(`folder sync started on node ${id}`, () => existsSync(log) && readFileSync(log, 'utf8').includes('sync engine started'), 120_000);
  }
});
test.afterAll(async () => {
  await cluster?.stop();
});

/** Waits for a file's bytes on a node; on timeout, fails with the cluster's log lines about that path. */
async function waitBytes(id: string, path: string, expected: string | null, timeoutMs = 60_000): Promise<void> {
  try {
    await waitFor(`${path} ${expected === null ? 'gone' : JSON.stringify(expected)} on node ${id}`, () => read(id, path) === expected, timeoutMs);
  } catch (err) {
    const lines = cluster.output.filter((l) => l.includes(path)).slice(-30);
    throw new Error(`${(err as Error).message}; node ${id} holds ${JSON.stringify(read(id, path))}\n${lines.join('\n')}`);
  }
}

const read = (id: string, path: string): string | null => {
  const f = join(cluster.folder(id), path);
  return existsSync(f) ? readFileSync(f, 'utf8') : null;
};

test('History shows who changed a file; a confirmed restore brings the old bytes back on every node', async ({ page }) => {
  test.setTimeout(240_000);
  // The console of node F, a receiver: it kept the bytes a remote change replaced. (The writer, A,
  // edited its own file in place; it holds no copy of version 1 and would fetch it from a node that kept it.)
  await page.goto(cluster.consoleUrlOf('F'));
  await expect(page.getByTestId('connection-state')).toHaveText(/open/i);
  await page.getByTestId('nav-files').click();
  // Edits made in node A's folder (the sync engine commits them, retrying while the cluster is busy).
  writeFileSync(join(cluster.folder('A'), 'story.txt'), 'first draft\n');
  await waitBytes('F', 'story.txt', 'first draft\n');
  writeFileSync(join(cluster.folder('A'), 'story.txt'), 'second draft\n');
  await waitBytes('F', 'story.txt', 'second draft\n');
  // F kept the replaced bytes (simple versioning).
  const keptAtF = readdirSync(join(cluster.folder('F'), '.clusterdesk', 'versions')).filter((n) => n.startsWith('story.txt~'));
  expect(keptAtF).toHaveLength(1);
  expect(readFileSync(join(cluster.folder('F'), '.clusterdesk', 'versions', keptAtF[0]!), 'utf8')).toBe('first draft\n');

  await page.getByTestId('history-story.txt').click();
  const panel = page.getByTestId('history-panel');
  await expect(panel).toHaveAttribute('data-path', 'story.txt');
  await expect(panel.getByTestId('history-row-2')).toBeVisible();
  await expect(panel.getByTestId('history-row-1')).toBeVisible();
  await expect(panel.getByTestId('history-by-1')).toHaveText('A');
  await expect(panel.getByTestId('history-row-1')).toContainText('host1');
  await expect(panel.getByTestId('history-row-2')).toContainText('current');

  // Restore asks first; cancelling changes nothing.
  await panel.getByTestId('restore-v1').click();
  await panel.getByTestId('restore-cancel-v1').click();
  await expect(panel.getByTestId('restore-confirm-v1')).toHaveCount(0);
  await panel.getByTestId('restore-v1').click();
  await panel.getByTestId('restore-confirm-v1').click();

  await waitBytes('F', 'story.txt', 'first draft\n');
  await waitBytes('A', 'story.txt', 'first draft\n');
  await waitBytes('D', 'story.txt', 'first draft\n');
  await expect(panel.getByTestId('history-row-3')).toBeVisible();
  await expect(panel.getByTestId('history-by-3')).toHaveText('F');
  await expect(panel.getByTestId('history-row-3')).toContainText('current');
  await expect(page.getByTestId('file-row-story.txt')).toContainText('3');
  // Lock events appear in the open panel too.
  await page.getByTestId('lock-story.txt').click();
  await expect(panel.getByTestId('lock-event-0')).toHaveAttribute('data-action', 'lock');
  await expect(panel.getByTestId('lock-event-0')).toContainText('F');
  // The row's toggle acts on the lock state it shows: wait for the row to show the lock first.
  await expect(page.getByTestId('lock-state-story.txt')).toContainText('locked by F');
  await page.getByTestId('lock-story.txt').click();
  await expect(panel.getByTestId('lock-event-0')).toHaveAttribute('data-action', 'unlock');
  await page.screenshot({ path: 'test-results/history.png', fullPage: true });
});

test('a conflict copy is listed with its original; "Keep copy" replaces the original everywhere', async ({ page }) => {
  test.setTimeout(240_000);
  await page.goto(cluster.consoleUrl);
  await page.getByTestId('nav-files').click();
  writeFileSync(join(cluster.folder('A'), 'plan.txt'), 'plan from A\n');
  await waitBytes('C', 'plan.txt', 'plan from A\n');
  // Node C's edit lost a race: its bytes were kept as a Syncthing-style conflict copy.
  const copy = 'plan.sync-conflict-20261124-142500-C.txt';
  writeFileSync(join(cluster.folder('C'), copy), 'plan from C\n');
  await waitBytes('A', copy, 'plan from C\n');

  const row = page.getByTestId(`conflict-row-${copy}`);
  await expect(row).toBeVisible();
  await expect(row).toContainText('plan.txt');
  await row.getByTestId(`conflict-keep-copy-${copy}`).click();

  await waitBytes('F', 'plan.txt', 'plan from C\n');
  await waitBytes('C', copy, null);
  await expect(page.getByTestId(`conflict-row-${copy}`)).toHaveCount(0);
  await expect(page.getByTestId('conflicts')).toHaveCount(0);
});

test('the new calls answer hostile input over the real WebSocket with typed errors', async () => {
  const c = await cluster.client('A');
  try {
    const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (err: { code?: string }) => err.code);
    const call = (method: string, params: unknown) => codeOf(c.call(method as 'listProblems', params as Record<string, never>));
    expect(await call('restoreVersion', { path: 'story.txt', versionId: '../../../etc/passwd' })).toBe('EINVAL');
    expect(await call('restoreVersion', { path: '../story.txt', versionId: 'v1' })).toBe('EPATH');
    expect(await call('restoreVersion', { path: 'story.txt', versionId: '20200101-000000' })).toBe('ENOENT');
    expect(await call('restoreVersion', { path: 'story.txt', versionId: 'v999' })).toBe('ENOENT');
    expect(await call('fileHistory', { path: 'C:\\Windows\\win.ini' })).toBe('EPATH');
    expect(await call('fileHistory', { path: 'a', extra: 1 })).toBe('EINVAL');
    expect(await call('resolveConflict', { path: 'story.txt', keep: 'copy' })).toBe('EINVAL'); // not a conflict copy
    expect(await call('resolveConflict', { path: 'x.sync-conflict-20260101-000000-B.txt', keep: 'both' })).toBe('EINVAL');
    expect(await call('resolveConflict', { path: 'x.sync-conflict-20260101-000000-B.txt', keep: 'copy' })).toBe('ENOENT');
    expect(await call('listProblems', { all: true })).toBe('EINVAL');
    expect(await call('listConflicts', [])).toBe('EINVAL');
    // The node is still fine afterwards.
    expect(Array.isArray(await c.call('listProblems', {}))).toBe(true);
  } finally {
    c.close();
  }
});
