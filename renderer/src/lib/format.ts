/** Display helpers (pure). */

const pad = (n: number): string => String(n).padStart(2, '0');

/** Local wall-clock time `HH:MM:SS` of an epoch-ms timestamp. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local `YYYY-MM-DD HH:MM:SS`. */
export function formatDateTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatTime(ms)}`;
}

/** Human size: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Age of `then` relative to `now`: `now`, `4s ago`, `3m ago`, `2h ago`. */
export function formatAge(then: number, now: number): string {
  if (!then) return 'never';
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 1) return 'now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}

/** `A → B → C`. */
export function formatRoute(route: string[]): string {
  return route.join(' → ');
}

/** Stable colour per team name (unknown / no team = grey). */
export function teamColor(team: string | null): string {
  if (!team) return '#8a94a6';
  const named: Record<string, string> = {
    green: '#2f9e5b',
    pink: '#d6457e',
    blue: '#3272d9',
    red: '#d64545',
    orange: '#e0822a',
    purple: '#8250c8',
    yellow: '#c9a21a',
    teal: '#1f9c9c',
  };
  const key = team.toLowerCase();
  if (named[key]) return named[key];
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h}, 55%, 45%)`;
}
