/// <reference lib="dom" />
/**
 * The browser console against a real headless cluster (six node processes on 127.0.0.1), in
 * Debian's Chromium: topology, drag-and-drop upload, click-to-lock and routed compute.
 */
import { test, expect } from '@playwright/test';
import { readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCluster, waitFor, type TestCluster } from '../test/helpers/cluster';

let cluster: TestCluster;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  cluster = await startTestCluster({ name: 'e2e-cluster' });
});
test.afterAll(async () => {
  await cluster?.stop();
});

test('topology shows six nodes and the Raft leader', async ({ page }) => {
  await page.goto(cluster.consoleUrl);
  await expect(page.getByTestId('connection-state')).toHaveText(/open/i);
  await page.getByTestId('nav-topology').click();
  for (const id of ['A', 'B', 'C', 'D', 'E', 'F']) {
    await expect(page.getByTestId(`topo-node-${id}`)).toHaveAttribute('data-up', 'true');
  }
  await expect(page.getByTestId('leader-id')).toHaveText(/^[ABE]$/);
  const leader = (await page.getByTestId('leader-id').textContent())?.trim();
  await expect(page.getByTestId(`topo-node-${leader}`)).toHaveAttribute('data-raft-state', 'leader');
  await page.screenshot({ path: 'test-results/topology.png', fullPage: true });
});

test('a file dropped on the Files view reaches another node; clicking lock makes it read-only there', async ({ page }) => {
  await page.goto(cluster.consoleUrl);
  await page.getByTestId('nav-files').click();
  const content = 'dropped from the browser\n';
  // Build a real DataTransfer with a File and dispatch the drop on the drop zone.
  const dataTransfer = await page.evaluateHandle((text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], 'dropped.txt', { type: 'text/plain' }));
    return dt;
  }, content);
  await page.getByTestId('file-drop').dispatchEvent('dragenter', { dataTransfer });
  await page.getByTestId('file-drop').dispatchEvent('dragover', { dataTransfer });
  await page.getByTestId('file-drop').dispatchEvent('drop', { dataTransfer });

  const onF = join(cluster.folder('F'), 'dropped.txt');
  await waitFor('dropped.txt on node F', () => existsSync(onF) && readFileSync(onF, 'utf8') === content, 30_000);
  await expect(page.getByTestId('file-row-dropped.txt')).toBeVisible();

  await page.getByTestId('lock-dropped.txt').click();
  await expect(page.getByTestId('lock-state-dropped.txt')).toContainText(/locked by A/);
  await waitFor('dropped.txt read-only on node E', () => (statSync(join(cluster.folder('E'), 'dropped.txt')).mode & 0o222) === 0, 30_000);
  await page.screenshot({ path: 'test-results/files.png', fullPage: true });

  await page.getByTestId('lock-dropped.txt').click();
  await expect(page.getByTestId('lock-state-dropped.txt')).toContainText(/unlocked/);
});

test('the Compute view returns a sorted array with its route', async ({ page }) => {
  await page.goto(cluster.consoleUrl);
  await page.getByTestId('nav-compute').click();
  await page.getByTestId('compute-op').selectOption('sort');
  await page.getByTestId('compute-values').fill('9, 4, 7, -1, 0');
  await page.getByTestId('compute-request').click();
  await expect(page.getByTestId('compute-result')).toHaveText('[-1,0,4,7,9]');
  await expect(page.getByTestId('compute-route')).toContainText('→');
  await page.screenshot({ path: 'test-results/compute.png', fullPage: true });
});

test('the Health view lists every node with its Raft state', async ({ page }) => {
  await page.goto(cluster.consoleUrl);
  await page.getByTestId('nav-health').click();
  for (const id of ['A', 'B', 'C', 'D', 'E', 'F']) await expect(page.getByTestId(`health-row-${id}`)).toBeVisible();
  await expect(page.getByTestId('health-row-C')).toContainText('learner');
});

test('when the node serving the console is killed, the console fails over and shows the new leader', async ({ page }) => {
  const before = await cluster.status('A');
  const a = before.nodes.find((n) => n.id === 'A');
  await page.goto(cluster.consoleUrlOf('A'));
  await page.getByTestId('nav-topology').click();
  await expect(page.getByTestId('connection-state')).toHaveText(/open/i);
  process.kill(a?.pid as number, 'SIGKILL');
  // The console reconnects through another node's console and follows the election.
  await expect(page.getByTestId('topo-node-A')).toHaveAttribute('data-up', 'false', { timeout: 60_000 });
  await expect(page.getByTestId('leader-id')).toHaveText(/^[BE]$/, { timeout: 60_000 });
  await expect(page.getByTestId('connection-state')).toHaveText(/open/i);
  await page.screenshot({ path: 'test-results/failover.png', fullPage: true });
});
