/*
 * config/unknown-key.ts - what to tell about a key that is not in the schema.
 *
 * Exports: unknownProblem(path, candidates).
 * In this order: a removed or renamed key names its replacement (RENAMED); a postscreen
 * parameter name names our key for it ("postscreen_greet_wait" -> pregreet.wait); otherwise the
 * nearest candidate by edit distance (whole path, or last part) when it is near enough to be a
 * typo. Not a hot path: only on a configuration error.
 */
import { RENAMED, SCHEMA } from './schema.js';

/** postscreen parameter -> our key, from the rows' `postscreen` column. */
const POSTSCREEN_NAMES = new Map<string, string>();
for (const s of SCHEMA) {
  const name = s.postscreen?.split(' ')[0] ?? '';
  if (name.startsWith('postscreen_') && !POSTSCREEN_NAMES.has(name)) POSTSCREEN_NAMES.set(name, s.key);
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}

/** unknownProblem - why `path` is not a key, with the nearest of `candidates` when one is near. */
export function unknownProblem(path: string, candidates: readonly string[]): string {
  const renamed = RENAMED[path];
  if (renamed !== undefined) return `removed; use "${renamed}" instead`;
  const last = path.slice(path.lastIndexOf('.') + 1);
  const ps = POSTSCREEN_NAMES.get(last);
  if (ps !== undefined) return `unknown key (postscreen's ${last} is "${ps}" here)`;
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const cl = c.slice(c.lastIndexOf('.') + 1);
    const d = Math.min(distance(path, c), distance(last, cl) + 1); // prefer a whole-path match
    if (d < bestD) { bestD = d; best = c; }
  }
  const near = best !== null && bestD <= Math.max(2, Math.floor(last.length / 3));
  return near ? `unknown key (did you mean "${best}"?)` : 'unknown key';
}
