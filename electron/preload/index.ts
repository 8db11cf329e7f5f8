/**
 * The narrow preload bridge: exposes `window.clusterdesk` with two named functions and nothing
 * else (never raw `ipcRenderer`). Errors come back as `{ name, code, message }` and are rethrown
 * as Error objects carrying `code` and `name`.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

type Envelope = { ok: true; result: unknown } | { ok: false; error: { name: string; code: string; message: string } };

contextBridge.exposeInMainWorld('clusterdesk', {
  call: async (method: string, params: unknown): Promise<unknown> => {
    const r = (await ipcRenderer.invoke('cd:call', method, params)) as Envelope;
    if (r.ok) return r.result;
    throw Object.assign(new Error(r.error.message), { code: r.error.code, name: r.error.name });
  },
  onEvent: (listener: (event: unknown) => void): (() => void) => {
    const wrapped = (_e: IpcRendererEvent, event: unknown): void => listener(event);
    ipcRenderer.on('cd:event', wrapped);
    return () => ipcRenderer.removeListener('cd:event', wrapped);
  },
});
