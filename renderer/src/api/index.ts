/**
 * Picks the transport: the Electron preload bridge when present, otherwise the page's WebSocket.
 * Public surface of the console's API layer.
 */
import type { ControlApi } from '../../../core/control/api';
import { createIpcApi } from './ipc';
import { createPageWsApi } from './websocket';

export { ControlCallError, describeError, toCallError } from './errors';
export type { ConnectionState } from './websocket';

/** The ControlApi for this window. */
export function createControlApi(): ControlApi {
  if (typeof window !== 'undefined' && window.clusterdesk) return createIpcApi(window.clusterdesk);
  return createPageWsApi();
}
