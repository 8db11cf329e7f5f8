/**
 * The desktop app under Electron (Playwright `_electron`). Skips, saying why, where no Electron
 * binary exists (as on machines where it cannot be downloaded) or no display is available.
 */
import { test, expect, _electron as electron } from '@playwright/test';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/cluster';

function electronBinary(): string | null {
  try {
    const p = createRequire(import.meta.url)('electron') as unknown;
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}
const binary = electronBinary();
const display = process.platform !== 'linux' || !!process.env.DISPLAY || !!process.env.WAYLAND_DISPLAY;

test('the desktop window opens and shows the console connected over IPC', async () => {
  test.skip(!binary, 'no Electron binary: it cannot be downloaded on this machine (installed with ELECTRON_SKIP_BINARY_DOWNLOAD=1)');
  test.skip(!display, 'no display (DISPLAY/WAYLAND_DISPLAY unset)');
  const app = await electron.launch({ executablePath: binary as string, args: [ROOT, '--data', mkdtempSync(join(tmpdir(), 'clusterdesk-electron-'))] });
  try {
    const win = await app.firstWindow();
    await expect(win.getByTestId('connection-state')).toHaveText(/open/i);
    await expect(win.getByTestId('nav-topology')).toBeVisible();
  } finally {
    await app.close();
  }
});
