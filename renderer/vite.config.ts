/**
 * Standalone build of the console only: `npx vite build --config renderer/vite.config.ts`.
 * The normal build is `electron-vite build` (electron.vite.config.ts); this mirrors its renderer section
 * so the console can be built before the main/preload entries exist. `base: './'` keeps asset paths
 * relative, so one build works from `file://` (Electron) and from `http://127.0.0.1:PORT/` (browser).
 * (`__dirname` is provided by Vite when it bundles this file; no Node import is needed.)
 */
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: __dirname,
  base: './',
  plugins: [react()],
  build: {
    outDir: '../out/renderer',
    emptyOutDir: true,
  },
});
