#!/usr/bin/env node
// The `clusterdesk` command. Runs the TypeScript CLI through tsx (no build step needed).
import { register } from 'tsx/esm/api';

register();
await import('../core/cli/main.ts');
