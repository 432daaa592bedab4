/*
 * stats/record.ts - one log line as `smtpscreen stats` sees it, whatever its format.
 *
 * Exports: Rec, LineKind, newRec(), utcHour(ms).
 * Both parsers (stats/parse-json.ts, stats/parse-postscreen.ts) fill the same
 * reused Rec: the event name of log/events.ts, the client, the time, and the
 * fields named as in the JSON log (a postscreen line gives the ones its text
 * carries), so the aggregator never asks which format a line came in.
 */

/** What a line was: an event, a line to count but not summarise (another program, an event-less record), or garbage. */
export type LineKind = 'event' | 'other' | 'malformed';

export interface Rec {
  /** Event name as in log/events.ts ("PASS NEW"). */
  event: string;
  /** Epoch milliseconds (syslog's traditional stamp: read as UTC in the year guessed); NaN when the line has none. */
  t: number;
  /** Hour of day as written in the line (JSON: UTC), -1 when unknown. */
  hour: number;
  /** The time as written, for first/last (may be ''). */
  stamp: string;
  client: string;
  port: string;
  /** The event's fields, named as in the JSON log. */
  f: Record<string, unknown>;
  /** Postfix level prefix of a postscreen line ("warning"), '' otherwise. */
  level: string;
}

export function newRec(): Rec {
  return { event: '', t: NaN, hour: -1, stamp: '', client: '', port: '', f: {}, level: '' };
}

// One Date per hour of log, not per line: the hour of the last stamp seen is kept.
let hourStart = 0;
let hourEnd = -1;
let hourVal = -1;

/** utcHour - the UTC hour of day of epoch ms (cached per hour). */
export function utcHour(ms: number): number {
  if (!Number.isFinite(ms)) return -1;
  if (ms >= hourStart && ms < hourEnd) return hourVal;
  hourStart = ms - (((ms % 3_600_000) + 3_600_000) % 3_600_000);
  hourEnd = hourStart + 3_600_000;
  hourVal = new Date(hourStart).getUTCHours();
  return hourVal;
}
