/** Files slice: the committed, non-deleted files (sorted by path) and the progress of this console's uploads. */
import type { FileEntry } from '../../../core/control/api';
import type { SliceCreator } from './types';

export type UploadPhase = 'reading' | 'uploading' | 'done' | 'error';

/** One upload started from this console. */
export interface UploadItem {
  id: number;
  /** Target path (the dropped file's name). */
  path: string;
  size: number;
  phase: UploadPhase;
  /** 0..1 of the reading phase; 1 once sent. */
  progress: number;
  error: string | null;
  startedAt: number;
}

/** Uploads kept in the list (finished ones are dropped oldest first). */
export const UPLOAD_LIMIT = 20;

export interface FilesSlice {
  files: FileEntry[];
  uploads: UploadItem[];
  setFiles(files: FileEntry[]): void;
  startUpload(path: string, size: number, at?: number): number;
  updateUpload(id: number, patch: Partial<Pick<UploadItem, 'phase' | 'progress' | 'error'>>): void;
  clearFinishedUploads(): void;
}

let nextUploadId = 1;

export const createFilesSlice: SliceCreator<FilesSlice> = (set, get) => ({
  files: [],
  uploads: [],
  setFiles(files) {
    const visible = files.filter((f) => !f.deleted).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    set({ files: visible });
  },
  startUpload(path, size, at = Date.now()) {
    const id = nextUploadId++;
    const item: UploadItem = { id, path, size, phase: 'reading', progress: 0, error: null, startedAt: at };
    let uploads = [...get().uploads, item];
    while (uploads.length > UPLOAD_LIMIT) {
      const idx = uploads.findIndex((u) => u.phase === 'done' || u.phase === 'error');
      if (idx < 0) break;
      uploads = uploads.filter((_, i) => i !== idx);
    }
    set({ uploads });
    return id;
  },
  updateUpload(id, patch) {
    set({ uploads: get().uploads.map((u) => (u.id === id ? { ...u, ...patch } : u)) });
  },
  clearFinishedUploads() {
    set({ uploads: get().uploads.filter((u) => u.phase !== 'done' && u.phase !== 'error') });
  },
});
