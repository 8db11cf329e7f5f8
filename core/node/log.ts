/**
 * The per-node log file (pino, JSON lines): `<dataDir>/node.log`. Warnings and errors are also
 * written to stderr so a supervisor or terminal sees them.
 */
import pino from 'pino';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../common/logger';

export function createNodeLogger(file: string, bindings: Record<string, unknown>, level = process.env.CLUSTERDESK_LOG_LEVEL ?? 'info'): { logger: Logger; flush(): void } {
  mkdirSync(dirname(file), { recursive: true });
  const fileDest = pino.destination({ dest: file, sync: false, mkdir: true });
  const logger = pino(
    { level, base: bindings, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream([
      { level: level as pino.Level, stream: fileDest },
      { level: 'error', stream: process.stderr },
    ]),
  );
  return { logger: logger as unknown as Logger, flush: () => fileDest.flushSync() };
}
