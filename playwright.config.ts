import { defineConfig } from '@playwright/test';

// The console is tested in Debian's Chromium (Playwright cannot download its own browsers here).
// CHROMIUM_PATH overrides the binary.
export default defineConfig({
  testDir: 'e2e',
  timeout: 120_000,
  expect: { timeout: 20_000 },
  workers: 1,
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync'],
    },
    screenshot: 'only-on-failure',
    trace: 'off',
  },
});
