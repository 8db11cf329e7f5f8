/**
 * The narrow preload bridge: exposes `window.clusterdesk` with two named functions and nothing
 * else (never raw `ipcRenderer`). Calls resolve to `{ ok: true, result }` or
 * `{ ok: false, error: { name, code, message } }`.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

type Envelope = { ok: true; result: unknown } | { ok: false; error: { name: string; code: string; message: string } };

contextBridge.exposeInMainWorld('clusterdesk', {
  // Resolves with the envelope itself: contextBridge keeps only the message of a thrown error,
  // so the renderer's IPC adapter unwraps it and rebuilds the typed error.
  call: (method: string, params: unknown): Promise<Envelope> => ipcRenderer.invoke('cd:call', method, params) as Promise<Envelope>,
  onEvent: (listener: (event: unknown) => void): (() => void) => {
    const wrapped = (_e: IpcRendererEvent, event: unknown): void => listener(event);
    ipcRenderer.on('cd:event', wrapped);
    return () => ipcRenderer.removeListener('cd:event', wrapped);
  },
});
