/** Activity slice: the node's activity log, newest last, at most {@link ACTIVITY_LIMIT} entries. */
import type { ActivityEntry } from '../../../core/control/api';
import type { SliceCreator } from './types';

export const ACTIVITY_LIMIT = 200;

export interface ActivitySlice {
  activity: ActivityEntry[];
  setActivity(entries: ActivityEntry[]): void;
  appendActivity(entry: ActivityEntry): void;
}

export const createActivitySlice: SliceCreator<ActivitySlice> = (set, get) => ({
  activity: [],
  setActivity(entries) {
    set({ activity: [...entries].sort((a, b) => a.at - b.at).slice(-ACTIVITY_LIMIT) });
  },
  appendActivity(entry) {
    set({ activity: [...get().activity, entry].slice(-ACTIVITY_LIMIT) });
  },
});
