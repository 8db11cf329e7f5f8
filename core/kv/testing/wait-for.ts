/**
 * Polls `fn` every `everyMs` (default 10 ms) until it returns a truthy value, which it resolves
 * with; rejects with "timed out waiting for <what>" after `timeoutMs` (default 20 s). For tests.
 */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 10): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
