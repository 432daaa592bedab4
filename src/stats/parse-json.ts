/*
 * stats/parse-json.ts - one NDJSON line of our log (pino) -> Rec.
 *
 * Exports: parseJsonLine(line, rec) -> LineKind.
 * A line is an event when it is a JSON object with a string `event`
 * (log/events.ts); `time` is pino's epoch ms (or an ISO string when a log
 * shipper rewrote it). A JSON object without `event` (a plain pino message)
 * is 'other'; anything JSON.parse refuses, or a non-object, is 'malformed'.
 * Never throws.
 */
import { utcHour, type Rec } from './record.js';

export function parseJsonLine(line: string, rec: Rec): 'event' | 'other' | 'malformed' {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'malformed';
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'malformed';
  const o = v as Record<string, unknown>;
  rec.level = '';
  const ev = o['event'];
  if (typeof ev !== 'string' || ev === '') return 'other';
  rec.event = ev;
  rec.f = o;
  const time = o['time'];
  let t = NaN;
  if (typeof time === 'number') t = time;
  else if (typeof time === 'string') t = Date.parse(time);
  rec.t = Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? t : NaN; // past that, Date (and toISOString) cannot hold it
  rec.hour = utcHour(rec.t);
  rec.stamp = '';
  const c = o['client'];
  const p = o['port'];
  rec.client = typeof c === 'string' ? c : '';
  rec.port = typeof p === 'number' || typeof p === 'string' ? String(p) : '';
  const lv = o['level'];
  rec.level = typeof lv === 'number' && lv >= 40 ? (lv >= 60 ? 'fatal' : lv >= 50 ? 'error' : 'warning') : '';
  return 'event';
}
