/**
 * Sync-issues slice: the History panel of one file (committed changes and the versions the node
 * kept), the conflict copies with their originals, and the paths the node refuses to sync.
 */
import type { ConflictEntry, FileHistory, SyncProblem } from '../../../core/control/api';
import type { SliceCreator } from './types';

export interface SyncSlice {
  /** Path whose History panel is open, null when closed. */
  historyPath: string | null;
  /** The loaded history of {@link historyPath} (null while loading or after an error). */
  history: FileHistory | null;
  historyError: string | null;
  conflicts: ConflictEntry[];
  problems: SyncProblem[];
  openHistory(path: string): void;
  setHistory(history: FileHistory | null, error?: string | null): void;
  closeHistory(): void;
  setConflicts(conflicts: ConflictEntry[]): void;
  setProblems(problems: SyncProblem[]): void;
}

export const createSyncSlice: SliceCreator<SyncSlice> = (set, get) => ({
  historyPath: null,
  history: null,
  historyError: null,
  conflicts: [],
  problems: [],
  openHistory(path) {
    set({ historyPath: path, history: get().history?.path === path ? get().history : null, historyError: null });
  },
  setHistory(history, error = null) {
    // An answer for a panel closed or switched meanwhile is dropped.
    const want = get().historyPath;
    if (history && history.path !== want) return;
    set({ history, historyError: error });
  },
  closeHistory() {
    set({ historyPath: null, history: null, historyError: null });
  },
  setConflicts(conflicts) {
    set({ conflicts: [...conflicts].sort((a, b) => (a.original < b.original ? -1 : a.original > b.original ? 1 : b.copyModifiedAt - a.copyModifiedAt)) });
  },
  setProblems(problems) {
    set({ problems: [...problems].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) });
  },
});
