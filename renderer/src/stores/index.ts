/**
 * The console store: zustand slices merged into one vanilla store (usable without React), plus
 * {@link connectStore}, which projects a {@link ControlApi}'s answers and events into it.
 * No cluster logic lives here: the store only records what the node reports.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { ControlApi, ControlEvent } from '../../../core/control/api';
import { describeError } from '../api/errors';
import { createActivitySlice } from './activity';
import { createClusterSlice } from './cluster';
import { createComputeSlice } from './compute';
import { createConnectionSlice } from './connection';
import { createFilesSlice } from './files';
import { createSyncSlice } from './sync';
import { createToastsSlice } from './toasts';
import type { ConsoleState } from './types';

export type { ConsoleState } from './types';
export type { StatusChange } from './cluster';
export type { UploadItem } from './files';
export type { Toast } from './toasts';
export { formatResult } from './compute';

export type ConsoleStore = StoreApi<ConsoleState>;

/** A fresh store with every slice. */
export function createConsoleStore(): ConsoleStore {
  return createStore<ConsoleState>()((...a) => ({
    ...createConnectionSlice(...a),
    ...createClusterSlice(...a),
    ...createFilesSlice(...a),
    ...createComputeSlice(...a),
    ...createActivitySlice(...a),
    ...createToastsSlice(...a),
    ...createSyncSlice(...a),
  }));
}

/** Routes one pushed event to its slice. */
export function applyEvent(store: ConsoleStore, event: ControlEvent): void {
  const s = store.getState();
  switch (event.type) {
    case 'status':
      s.applyStatus(event.status);
      break;
    case 'files':
      s.setFiles(event.files);
      break;
    case 'job':
      s.applyJob(event.job);
      break;
    case 'activity':
      s.appendActivity(event.entry);
      break;
  }
}

/**
 * Follows `api`: subscribes to events and connection changes, and on every (re)connection loads
 * `status`, `listFiles`, `listJobs` and `activity`. A snapshot answer is dropped when a newer event of the
 * same kind arrived while it was in flight. Returns a function that unsubscribes.
 */
export function connectStore(store: ConsoleStore, api: ControlApi): () => void {
  /** Events seen per kind, to tell whether a snapshot answer is already stale. */
  const seen = { status: 0, files: 0, activity: 0 };
  let generation = 0;

  const offEvent = api.onEvent((event) => {
    if (event.type === 'status') seen.status++;
    else if (event.type === 'files') seen.files++;
    else if (event.type === 'activity') seen.activity++;
    applyEvent(store, event);
    if (event.type === 'files') scheduleIssues();
  });

  // Conflicts, refused paths and the open History panel change with the files: reload them
  // (coalesced) after files events.
  let issuesTimer: ReturnType<typeof setTimeout> | null = null;
  const scheduleIssues = (): void => {
    if (issuesTimer) return;
    issuesTimer = setTimeout(() => {
      issuesTimer = null;
      void loadSyncIssues(store, api);
      const path = store.getState().historyPath;
      if (path) api.call('fileHistory', { path }).then((h) => store.getState().setHistory(h), () => undefined);
    }, ISSUES_RELOAD_MS);
  };

  const load = (): void => {
    const gen = ++generation;
    const mark = { ...seen };
    const fail = (what: string) => (err: unknown) => {
      if (gen !== generation) return;
      store.getState().pushToast({ level: 'error', title: `Could not load ${what}`, message: describeError(err) });
    };
    api.call('status', {}).then((status) => {
      if (gen === generation && seen.status === mark.status) store.getState().applyStatus(status);
    }, fail('status'));
    api.call('listFiles', {}).then((files) => {
      if (gen === generation && seen.files === mark.files) store.getState().setFiles(files);
    }, fail('files'));
    api.call('listJobs', {}).then((jobs) => {
      if (gen === generation) store.getState().setJobs(jobs);
    }, fail('jobs'));
    api.call('activity', {}).then((entries) => {
      if (gen === generation && seen.activity === mark.activity) store.getState().setActivity(entries);
    }, fail('activity'));
    void loadSyncIssues(store, api);
  };

  let wasOpen = false;
  const offConnection = api.onConnection((state) => {
    store.getState().setConnection(state);
    const endpoint = (api as { endpoint?: unknown }).endpoint;
    if (typeof endpoint === 'string') store.getState().setEndpoint(endpoint);
    if (state === 'open' && !wasOpen) load();
    wasOpen = state === 'open';
  });

  return () => {
    offEvent();
    offConnection();
    if (issuesTimer) clearTimeout(issuesTimer);
    generation++;
  };
}

/** Delay (ms) coalescing conflict/problem reloads after `files` events. */
export const ISSUES_RELOAD_MS = 300;

/**
 * Loads the conflict copies and the refused paths into the store. Failures leave the lists as
 * they were (a node of an older version may not know these calls): they are not worth a toast.
 */
export async function loadSyncIssues(store: ConsoleStore, api: ControlApi): Promise<void> {
  await Promise.all([
    api.call('listConflicts', {}).then((c) => store.getState().setConflicts(c), () => undefined),
    api.call('listProblems', {}).then((p) => store.getState().setProblems(p), () => undefined),
  ]);
}
