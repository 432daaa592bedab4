/*
 * util/duration.ts - duration text <-> milliseconds.
 *
 * Exports: parseDuration(text), formatDuration(ms), DURATION_UNITS.
 * Accepted: "300ms", "6s", "5m", "1h", "1d", "1w", and a bare number, which
 * is seconds as in Postfix (postconf(5) time values default to seconds). A
 * fraction is allowed when the result is a whole number of milliseconds
 * ("1.5s" = 1500, "0.5ms" is refused). Negative values are refused.
 * formatDuration() gives back the shortest exact form, so that
 * formatDuration(parseDuration(x)) round-trips through the config printer.
 */
import { ScreenError } from './errors.js';

/** Unit suffixes and their size in milliseconds, largest first (formatDuration relies on the order). */
export const DURATION_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

const UNIT_MS: ReadonlyMap<string, number> = new Map(DURATION_UNITS);

// Digits, an optional fraction, an optional unit. No sign, no exponent, no spaces inside.
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/;

function bad(value: string | number, why: string): ScreenError {
  return new ScreenError('SCR_ERR_DURATION', `bad duration ${JSON.stringify(value)}: ${why}`, { value });
}

/** parseDuration - duration text (or a number of seconds) to whole milliseconds. */
export function parseDuration(text: string | number): number {
  let ms: number;
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw bad(text, 'want a non-negative number of seconds');
    ms = text * 1000;
  } else if (typeof text === 'string') {
    const m = DURATION_RE.exec(text.trim());
    if (m === null) throw bad(text, 'want a number with an optional unit ms, s, m, h, d or w (e.g. "6s", "1d")');
    const unit = UNIT_MS.get(m[2] ?? 's') ?? 1000;
    ms = Number(m[1]) * unit;
  } else {
    throw bad(String(text), 'want a string such as "6s" or a number of seconds');
  }
  // XXX 0.1 * 3 style float noise: accept values within a nanosecond of a whole ms.
  const rounded = Math.round(ms);
  if (Math.abs(ms - rounded) > 1e-6) throw bad(text, 'not a whole number of milliseconds');
  if (!Number.isSafeInteger(rounded)) throw bad(text, 'too large');
  return rounded;
}

/** formatDuration - shortest exact text for a number of milliseconds ("6s", "1d", "1500ms"). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms}ms`;
  if (ms === 0) return '0s';
  for (const [unit, size] of DURATION_UNITS) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`; // not a whole number of ms: say it as it is
}
