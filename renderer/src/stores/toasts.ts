/** Toasts slice: transient notifications (job finished, call failed…). The view dismisses them on a timer. */
import type { SliceCreator } from './types';

export interface Toast {
  id: number;
  level: 'info' | 'success' | 'error';
  title: string;
  message: string;
  at: number;
}

export const TOAST_LIMIT = 6;

export interface ToastsSlice {
  toasts: Toast[];
  pushToast(toast: Omit<Toast, 'id' | 'at'> & { at?: number }): number;
  dismissToast(id: number): void;
}

let nextToastId = 1;

export const createToastsSlice: SliceCreator<ToastsSlice> = (set, get) => ({
  toasts: [],
  pushToast({ at = Date.now(), ...rest }) {
    const id = nextToastId++;
    set({ toasts: [...get().toasts, { ...rest, id, at }].slice(-TOAST_LIMIT) });
    return id;
  },
  dismissToast(id) {
    set({ toasts: get().toasts.filter((t) => t.id !== id) });
  },
});
