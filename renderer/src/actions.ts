/**
 * Console commands: each calls the node through the {@link ControlApi} and records the outcome in the store
 * (results, errors as toasts). The node decides everything; the console only asks and shows.
 */
import type { ComputeOp, ControlApi, FileEntry } from '../../core/control/api';
import { loadSyncIssues } from './stores';
import { describeError } from './api/errors';
import { bytesToBase64 } from './lib/base64';
import type { ConsoleStore } from './stores';

/** Largest file `upload` accepts (64 MiB of raw bytes). */
export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;

/** What an upload needs from a browser `File` (so tests can pass plain objects). */
export interface UploadSource {
  name: string;
  size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface ConsoleActions {
  toggleLock(file: FileEntry): Promise<void>;
  breakLock(path: string): Promise<void>;
  renameFile(from: string, to: string): Promise<boolean>;
  deleteFile(path: string): Promise<boolean>;
  uploadFiles(files: UploadSource[]): Promise<void>;
  request(op: ComputeOp, values: number[], team: string | null): Promise<void>;
  submit(op: ComputeOp, values: number[], team: string | null): Promise<void>;
  /** Opens the History panel of `path` and loads it. */
  openHistory(path: string): Promise<void>;
  closeHistory(): void;
  /** Restores `versionId` (a kept version id or `v<N>`) of `path`; true on success. Reloads the panel. */
  restoreVersion(path: string, versionId: string): Promise<boolean>;
  /** Keeps one side of a conflict (`copy` is the conflict copy's path); true on success. */
  resolveConflict(copy: string, keep: 'original' | 'copy'): Promise<boolean>;
  /**
   * Raft membership (thesis §4.1) and leadership transfer (§3.10). Each resolves with null on
   * success (an info toast says what changed) or the error text (also shown as a toast).
   */
  membership(op: MemberOp, id: string): Promise<string | null>;
}

/** A membership control of the Topology view. */
export type MemberOp = 'promote' | 'remove' | 'transfer';

/** Reads a file's bytes, reporting progress (0..1) when a `FileReader` is available. */
function readBytes(file: UploadSource, onProgress: (fraction: number) => void): Promise<ArrayBuffer> {
  if (typeof FileReader !== 'undefined' && typeof Blob !== 'undefined' && file instanceof Blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onprogress = (ev) => {
        if (ev.lengthComputable && ev.total > 0) onProgress(ev.loaded / ev.total);
      };
      reader.onerror = () => reject(reader.error ?? new Error('could not read the file'));
      reader.onload = () => resolve(reader.result as ArrayBuffer);
      reader.readAsArrayBuffer(file);
    });
  }
  return file.arrayBuffer();
}

export function createActions(api: ControlApi, store: ConsoleStore): ConsoleActions {
  const s = () => store.getState();
  const fail = (title: string) => (err: unknown) => {
    s().pushToast({ level: 'error', title, message: describeError(err) });
  };

  async function uploadOne(file: UploadSource): Promise<void> {
    const id = s().startUpload(file.name, file.size);
    if (file.size > MAX_UPLOAD_BYTES) {
      const message = `${file.name} is ${(file.size / 1024 / 1024).toFixed(1)} MiB; the limit is 64 MiB per file.`;
      s().updateUpload(id, { phase: 'error', error: message });
      s().pushToast({ level: 'error', title: 'File too large', message });
      return;
    }
    try {
      const buffer = await readBytes(file, (progress) => s().updateUpload(id, { progress }));
      s().updateUpload(id, { phase: 'uploading', progress: 1 });
      const dataBase64 = bytesToBase64(new Uint8Array(buffer));
      await api.call('upload', { path: file.name, dataBase64 });
      s().updateUpload(id, { phase: 'done' });
    } catch (err) {
      const message = describeError(err);
      s().updateUpload(id, { phase: 'error', error: message });
      s().pushToast({ level: 'error', title: `Upload of ${file.name} failed`, message });
    }
  }

  async function compute(kind: 'request' | 'submit', op: ComputeOp, values: number[], team: string | null): Promise<void> {
    const params = team ? { op, values, team } : { op, values };
    s().setComputeBusy(true);
    try {
      if (kind === 'request') {
        s().setRequestResult(await api.call('request', params));
      } else {
        const job = await api.call('submit', params);
        s().setComputeBusy(false);
        s().setComputeError(null);
        s().applyJob(job);
        s().pushToast({ level: 'info', title: `Job ${job.id} submitted`, message: `${op} of ${values.length} number(s)` });
      }
    } catch (err) {
      s().setComputeError(describeError(err));
    }
  }

  return {
    async toggleLock(file) {
      if (file.lock) {
        await api.call('unlock', { path: file.path }).then(() => undefined, fail(`Could not unlock ${file.path}`));
      } else {
        await api.call('lock', { path: file.path }).then(() => undefined, fail(`Could not lock ${file.path}`));
      }
    },
    async breakLock(path) {
      await api.call('unlock', { path, force: true }).then(() => undefined, fail(`Could not break the lock on ${path}`));
    },
    async renameFile(from, to) {
      try {
        await api.call('renameFile', { from, to });
        return true;
      } catch (err) {
        fail(`Could not rename ${from}`)(err);
        return false;
      }
    },
    async deleteFile(path) {
      try {
        await api.call('deleteFile', { path });
        return true;
      } catch (err) {
        fail(`Could not delete ${path}`)(err);
        return false;
      }
    },
    async uploadFiles(files) {
      // One at a time: each is up to 64 MiB of base64 in memory.
      for (const file of files) await uploadOne(file);
    },
    async openHistory(path) {
      s().openHistory(path);
      try {
        s().setHistory(await api.call('fileHistory', { path }));
      } catch (err) {
        if (s().historyPath === path) s().setHistory(null, describeError(err));
      }
    },
    closeHistory() {
      s().closeHistory();
    },
    async restoreVersion(path, versionId) {
      try {
        const r = await api.call('restoreVersion', { path, versionId });
        s().pushToast({ level: 'success', title: `Restored ${r.path}`, message: versionId.startsWith('v') ? `version ${versionId.slice(1)} is committed as a new version` : `the version kept at ${versionId} is committed as a new version` });
        if (s().historyPath === path) {
          const h = await api.call('fileHistory', { path }).catch(() => null);
          if (h) s().setHistory(h);
        }
        return true;
      } catch (err) {
        fail(`Could not restore ${path}`)(err);
        return false;
      }
    },
    async resolveConflict(copy, keep) {
      try {
        const r = await api.call('resolveConflict', { path: copy, keep });
        s().pushToast({ level: 'success', title: `Resolved ${r.original}`, message: keep === 'copy' ? `kept the copy ${copy}` : `kept the original; removed ${copy}` });
        s().setConflicts(s().conflicts.filter((c) => c.copy !== copy));
        await loadSyncIssues(store, api);
        return true;
      } catch (err) {
        fail(`Could not resolve the conflict on ${copy}`)(err);
        return false;
      }
    },
    async membership(op, id) {
      try {
        if (op === 'transfer') {
          const r = await api.call('leaderTransfer', { id });
          s().pushToast({ level: 'info', title: 'Leadership transferred', message: `${r.leaderId} is the Raft leader` });
        } else {
          const r = op === 'promote' ? await api.call('memberPromote', { id }) : await api.call('memberRemove', { id });
          s().pushToast({ level: 'info', title: op === 'promote' ? `${id} is a voter` : `${id} was removed`, message: `voters ${r.voters.join(', ')}; learners ${r.learners.join(', ') || 'none'}` });
        }
        return null;
      } catch (err) {
        const message = describeError(err);
        const title = op === 'transfer' ? `Could not transfer leadership to ${id}` : op === 'promote' ? `Could not promote ${id}` : `Could not remove ${id}`;
        s().pushToast({ level: 'error', title, message });
        return message;
      }
    },
    request: (op, values, team) => compute('request', op, values, team),
    submit: (op, values, team) => compute('submit', op, values, team),
  };
}
