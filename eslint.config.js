// Lint: TypeScript rules plus the layering rule (VS Code's `code-layering` idea): deterministic
// core modules and the renderer may not import Node built-ins or Electron; the renderer may not
// import core modules other than the shared contract files.
import tseslint from 'typescript-eslint';
import globals from 'globals';

const nodeBuiltins = ['node:*', 'fs', 'fs/*', 'path', 'os', 'net', 'http', 'https', 'child_process', 'crypto', 'worker_threads', 'stream', 'zlib', 'dgram', 'tls', 'url', 'util', 'events', 'timers', 'process', 'buffer'];
const noNode = {
  patterns: [
    { group: nodeBuiltins, message: 'Deterministic modules and the renderer may not import Node built-ins: keep I/O in adapters (see DESIGN.md, Layout).' },
    { group: ['electron', 'electron/*'], message: 'Only electron/ may import Electron.' },
    { group: ['chokidar', '@grpc/*', 'piscina', 'pino', 'ws', 'prom-client'], message: 'I/O libraries belong in adapters, not in deterministic modules or the renderer.' },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'test-results/**', 'playwright-report/**'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Deterministic modules: Raft, the replicated state machine, the WAL codec, config rules,
    // routing, compute tasks, the request queue, the ControlApi contract and validation, errors, rng.
    files: [
      'core/raft/**/*.ts',
      'core/kv/state-machine.ts',
      'core/kv/types.ts',
      'core/overlay/**/*.ts',
      'core/compute/**/*.ts',
      'core/config/schema.ts',
      'core/control/api.ts',
      'core/control/schema.ts',
      'core/common/**/*.ts',
      'core/sync/paths.ts',
      'core/sync/planner.ts',
      'core/sync/index-record.ts',
      'core/sync/history.ts',
      'core/sync/ignores.ts',
      'core/sim/**/*.ts',
    ],
    ignores: ['**/*.test.ts', 'core/raft/wal.ts', 'core/raft/testing/**'],
    rules: { 'no-restricted-imports': ['error', noNode] },
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...noNode.patterns,
            { group: ['**/core/**', '!**/core/control', '!**/core/control/api', '!**/core/common', '!**/core/common/errors'], message: 'The renderer talks to the node only through the ControlApi contract.' },
          ],
        },
      ],
    },
  },
);
