#!/usr/bin/env node
// `npm start`: builds the console if needed, then opens the desktop app where an Electron runtime
// and a display exist; otherwise runs the demo cluster headless (`clusterdesk up`) and prints the
// console URL. Extra arguments go to `clusterdesk up` (e.g. `npm start -- --data /tmp/demo`).
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const built = join(root, 'out', 'renderer', 'index.html');
const stale = !existsSync(built) || ['renderer', 'electron', 'core'].some((d) => newest(join(root, d)) > statSync(built).mtimeMs);
if (stale) {
  console.log('building the console (electron-vite build)…');
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function electronBinary() {
  try {
    const p = require('electron');
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}
const hasDisplay = process.platform === 'win32' || process.platform === 'darwin' || !!process.env.DISPLAY || !!process.env.WAYLAND_DISPLAY;
const electron = electronBinary();
if (electron && hasDisplay && !process.env.CLUSTERDESK_HEADLESS) {
  const child = spawn(electron, [root, ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  console.log(electron ? 'no display: running headless' : 'no Electron runtime here: running the demo cluster headless');
  const child = spawn(process.execPath, [join(root, 'bin', 'clusterdesk.js'), 'up', ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => child.kill(s));
  child.on('exit', (code) => process.exit(code ?? 0));
}
