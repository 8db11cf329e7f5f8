/** React access to the console store and actions (provided once by `main.tsx`). */
import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { ConsoleActions } from './actions';
import type { ConsoleState, ConsoleStore } from './stores';

export interface ConsoleContextValue {
  store: ConsoleStore;
  actions: ConsoleActions;
}

export const ConsoleContext = createContext<ConsoleContextValue | null>(null);

function useConsoleContext(): ConsoleContextValue {
  const ctx = useContext(ConsoleContext);
  if (!ctx) throw new Error('ConsoleContext is missing');
  return ctx;
}

/** Selects from the console store (re-renders when the selected value changes). */
export function useConsole<T>(selector: (state: ConsoleState) => T): T {
  return useStore(useConsoleContext().store, selector);
}

export function useActions(): ConsoleActions {
  return useConsoleContext().actions;
}
