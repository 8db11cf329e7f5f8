/** Parsing of the compute form's numbers. */

/** Most numbers one request may carry (ControlCommands limit). */
export const MAX_VALUES = 100_000;

export type ParsedValues = { ok: true; values: number[] } | { ok: false; error: string };

/**
 * Parses comma- and/or whitespace-separated numbers ("1, 2 3.5 -4e2").
 * Errors name the first bad token: `"abc" is not a number`.
 */
export function parseValues(text: string): ParsedValues {
  const tokens = text.split(/[\s,]+/).filter((t) => t.length > 0);
  if (tokens.length === 0) return { ok: false, error: 'Enter at least one number.' };
  if (tokens.length > MAX_VALUES) return { ok: false, error: `At most ${MAX_VALUES.toLocaleString('en-US')} numbers per request (got ${tokens.length}).` };
  const values: number[] = [];
  for (const token of tokens) {
    const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(token) ? Number(token) : NaN;
    if (!Number.isFinite(n)) return { ok: false, error: `"${token}" is not a number.` };
    values.push(n);
  }
  return { ok: true, values };
}
