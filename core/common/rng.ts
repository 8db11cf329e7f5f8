/**
 * Seeded pseudo-random numbers for deterministic modules (Raft election timeouts, simulators).
 * Algorithm: Alea by Johannes Baagøe (as used in Temporal's `alea.ts`), which gives the same
 * sequence for the same seed on every platform.
 *
 * Deterministic module: imports nothing from `node:`.
 */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max) ; throws RangeError when max <= min. */
  int(min: number, max: number): number;
}

function mash(): (data: string) => number {
  let n = 0xefc8249d;
  return (data: string): number => {
    for (let i = 0; i < data.length; i++) {
      n += data.charCodeAt(i);
      let h = 0.02519603282416938 * n;
      n = h >>> 0;
      h -= n;
      h *= n;
      n = h >>> 0;
      h -= n;
      n += h * 0x100000000;
    }
    return (n >>> 0) * 2.3283064365386963e-10;
  };
}

/** Creates an Alea generator from any string or number seed. Same seed, same sequence. */
export function createRng(seed: string | number): Rng {
  const m = mash();
  let s0 = m(' ');
  let s1 = m(' ');
  let s2 = m(' ');
  let c = 1;
  const key = String(seed);
  s0 -= m(key);
  if (s0 < 0) s0 += 1;
  s1 -= m(key);
  if (s1 < 0) s1 += 1;
  s2 -= m(key);
  if (s2 < 0) s2 += 1;
  const next = (): number => {
    const t = 2091639 * s0 + c * 2.3283064365386963e-10;
    s0 = s1;
    s1 = s2;
    c = t | 0;
    s2 = t - c;
    return s2;
  };
  return {
    next,
    int(min: number, max: number): number {
      if (!(max > min)) throw new RangeError(`int(${min}, ${max}): max must exceed min`);
      return min + Math.floor(next() * (max - min));
    },
  };
}
