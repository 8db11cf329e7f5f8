/**
 * The logging interface every ClusterDesk module takes. It is the subset of pino's `Logger`
 * that we use, so a pino logger (the adapters' choice) fits, and tests can pass {@link silentLogger}.
 * Call shape: `log.info({ key: value }, 'message')` or `log.info('message')`.
 *
 * Deterministic module: imports nothing from `node:`.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

/** A logger that discards everything. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
