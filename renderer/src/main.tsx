/** Console entry: picks the transport, builds the store, follows the node, renders. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createActions } from './actions';
import { createControlApi } from './api';
import { App } from './App';
import { ConsoleContext } from './context';
import { connectStore, createConsoleStore } from './stores';
import '@xyflow/react/dist/style.css';
import './styles.css';

const api = createControlApi();
const store = createConsoleStore();
connectStore(store, api);
const actions = createActions(api, store);
if ('endpoint' in api && !/[?&]token=[^&]/.test(String(api.endpoint))) {
  store.getState().setConnectionHint('No console token: open the URL printed by `clusterdesk node` (it ends in ?token=…).');
}

// A file dropped outside the Files drop zone must not navigate the window to it.
for (const type of ['dragover', 'drop'] as const) {
  window.addEventListener(type, (e) => e.preventDefault());
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ConsoleContext.Provider value={{ store, actions }}>
        <App />
      </ConsoleContext.Provider>
    </StrictMode>,
  );
}
