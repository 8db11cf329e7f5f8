/**
 * Compute slice: the last synchronous request (result or error) and the jobs map, updated by `job` events.
 * A job reaching `done` or `failed` raises one toast; jobs already finished when first listed raise none.
 */
import type { JobInfo, RequestResult } from '../../../core/control/api';
import type { SliceCreator } from './types';

export interface ComputeSlice {
  lastResult: RequestResult | null;
  lastError: string | null;
  /** A request or submit is in flight. */
  computeBusy: boolean;
  jobs: Record<string, JobInfo>;
  /** Ids of finished jobs already announced (or finished before this console saw them). */
  notifiedJobs: Record<string, true>;
  setComputeBusy(busy: boolean): void;
  setRequestResult(result: RequestResult): void;
  setComputeError(message: string | null): void;
  setJobs(jobs: JobInfo[]): void;
  applyJob(job: JobInfo): void;
}

const finished = (job: JobInfo): boolean => job.state === 'done' || job.state === 'failed';

/** Formats a compute result: numbers as is, arrays as JSON (`[1,2,3]`). */
export function formatResult(result: number | number[] | null): string {
  if (result === null) return '';
  return Array.isArray(result) ? JSON.stringify(result) : String(result);
}

export const createComputeSlice: SliceCreator<ComputeSlice> = (set, get) => ({
  lastResult: null,
  lastError: null,
  computeBusy: false,
  jobs: {},
  notifiedJobs: {},
  setComputeBusy(busy) {
    set({ computeBusy: busy });
  },
  setRequestResult(result) {
    set({ lastResult: result, lastError: null, computeBusy: false });
  },
  setComputeError(message) {
    set({ lastError: message, computeBusy: false });
  },
  setJobs(list) {
    for (const job of list) {
      if (get().jobs[job.id]) {
        get().applyJob(job); // known job: may have finished while we were away
      } else {
        set({
          jobs: { ...get().jobs, [job.id]: job },
          notifiedJobs: finished(job) ? { ...get().notifiedJobs, [job.id]: true } : get().notifiedJobs,
        });
      }
    }
  },
  applyJob(job) {
    const prev = get().jobs[job.id];
    // Never move a finished job back (events and call answers may arrive out of order).
    if (prev && finished(prev) && !finished(job)) return;
    set({ jobs: { ...get().jobs, [job.id]: job } });
    if (finished(job) && !get().notifiedJobs[job.id]) {
      set({ notifiedJobs: { ...get().notifiedJobs, [job.id]: true } });
      get().pushToast(
        job.state === 'done'
          ? { level: 'success', title: `Job ${job.id} done`, message: `${job.op} → ${formatResult(job.result)}` }
          : { level: 'error', title: `Job ${job.id} failed`, message: job.error ? `${job.error.message} (${job.error.code})` : 'failed' },
      );
    }
  },
});
