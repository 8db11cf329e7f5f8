/** Shared types of the console store (the zustand slices pattern: one store, one file per slice). */
import type { StateCreator } from 'zustand/vanilla';
import type { ActivitySlice } from './activity';
import type { ClusterSlice } from './cluster';
import type { ComputeSlice } from './compute';
import type { ConnectionSlice } from './connection';
import type { FilesSlice } from './files';
import type { SyncSlice } from './sync';
import type { ToastsSlice } from './toasts';

/** The whole console state: every slice merged. */
export type ConsoleState = ConnectionSlice & ClusterSlice & FilesSlice & ComputeSlice & ActivitySlice & ToastsSlice & SyncSlice;

/** A slice creator that can read (and call) the other slices. */
export type SliceCreator<T> = StateCreator<ConsoleState, [], [], T>;
