/**
 * Electron main process: one window, single instance, and one cluster node running in this
 * process. With no `--config`, it runs the demo cluster: this process is the configured leader
 * (node A) and the other nodes of `two-hosts-local.json` are started as child processes, as
 * `clusterdesk up` would. The renderer reaches the node only through the preload's ControlApi
 * bridge; every IPC message's sender is checked against our own window (Electron security checklist).
 */
import { app, BrowserWindow, ipcMain, shell, type IpcMainInvokeEvent } from 'electron';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { answerIpcCall } from './ipc';
import { DEMO_CONFIG, loadClusterConfig } from '../../core/config/load';
import { ClusterNode } from '../../core/node/node';
import { createNodeLogger } from '../../core/node/log';
import { selfCommand, defaultDataDir } from '../../core/cli/runtime';
import { ensureToken } from '../../core/cli/run-node';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};

let win: BrowserWindow | null = null;
let node: ClusterNode | null = null;
const children: ChildProcess[] = [];

async function startCluster(): Promise<ClusterNode> {
  const configPath = resolve(arg('config') ?? DEMO_CONFIG);
  const topology = loadClusterConfig(configPath);
  const id = arg('id') ?? topology.preferredLeader;
  const data = resolve(arg('data') ?? defaultDataDir());
  mkdirSync(data, { recursive: true });
  const tokenFile = join(data, 'token');
  ensureToken(tokenFile);
  if (!arg('config')) {
    for (const p of topology.config.processes) {
      if (p.id === id) continue;
      const cmd = selfCommand(['node', '--config', configPath, '--id', p.id, '--data', join(data, p.id), '--token-file', tokenFile]);
      children.push(spawn(cmd.command, cmd.args, { env: cmd.env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
    }
  }
  const { logger } = createNodeLogger(join(data, id, 'node.log'), { node: id });
  const n = new ClusterNode({ topology, id, dataDir: join(data, id), logger });
  await n.start();
  return n;
}

function isOurFrame(e: IpcMainInvokeEvent): boolean {
  const url = e.senderFrame?.url ?? '';
  return !!win && e.sender === win.webContents && (url.startsWith('file://') || (!!process.env.ELECTRON_RENDERER_URL && url.startsWith(process.env.ELECTRON_RENDERER_URL)));
}

function createWindow(): void {
  win = new BrowserWindow({
    width: 1280,
    height: 820,
    title: 'ClusterDesk',
    webPreferences: { preload: fileURLToPath(new URL('../preload/index.cjs', import.meta.url)), contextIsolation: true, sandbox: true, nodeIntegration: false },
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (e) => e.preventDefault());
  if (process.env.ELECTRON_RENDERER_URL) void win.loadURL(process.env.ELECTRON_RENDERER_URL);
  else void win.loadFile(fileURLToPath(new URL('../renderer/index.html', import.meta.url)));
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  ipcMain.handle('cd:call', (e, method: unknown, params: unknown) => answerIpcCall(isOurFrame(e), node, method, params));
  app.whenReady().then(async () => {
    createWindow();
    node = await startCluster();
    node.onEvent((event) => win?.webContents.send('cd:event', event));
  });
  app.on('window-all-closed', () => app.quit());
  app.on('before-quit', () => {
    for (const c of children) c.kill('SIGTERM');
    void node?.stop();
  });
}
