/*
 * stats/summary.ts - the Aggregator's tables -> the report as plain data.
 *
 * Exports: Summary (the shape `smtpscreen stats --json` prints), HOUR_COLUMNS, HourColumn, Counts, HistJSON.
 * Every renderer (stats/render-text.ts, stats/render-html.ts) reads this and
 * nothing else, so the three outputs cannot disagree. Counts of keyed tables
 * are lower bounds when their `approximate` is true (stats/bounded.ts).
 */
import type { Histogram } from './bounded.js';

/** Per-hour columns, in the order of the table and of the stacked chart. */
export const HOUR_COLUMNS = ['connections', 'pass_old', 'pass_new', 'allowlisted', 'rejected', 'dropped', 'deferred', 'busy', 'hangups', 'would'] as const;
export type HourColumn = (typeof HOUR_COLUMNS)[number];


export type HistJSON = ReturnType<Histogram['toJSON']>;
export type Counts = Record<string, number>;

export interface Summary {
  input: { lines: number; events: number; other: number; malformed: number; formats: { json: number; postscreen: number };
    malformed_samples: Array<{ line: number; text: string }>; first: string | null; last: string | null };
  connections: { total: number; all_ports_busy: number; too_many_connections: number; proxy_fail: number; disconnects: number };
  verdicts: { pass_old: number; pass_new: number; pass_new_deep: number; allowlisted: number; denylisted: number; rejected: number;
    dropped: number; deferred: number; handoffs: number; pass_new_ratio: number | null };
  tests: Record<string, Counts>;
  would: Record<string, Counts>;
  hangups: Counts;
  rejects: { lines: number; by_command: Counts; codes: Counts; reasons: Counts; top_clients: Counts; approximate: boolean };
  networks: { top: Array<{ network: string; rejects: number; dnsbl_sites: Counts }>; approximate: boolean };
  dnsbl: { events: number; site_hits: Counts; late: Counts; slow: Counts; error_answers: Counts; suspended: Counts; scores: Counts;
    lookup_ms: HistJSON };
  greylist: { deferred: number; deferred_by_reason: Counts; networks_deferred: number; retried: number; passed: number;
    never_retried: number; approximate: boolean; pass_delay_ms: HistJSON };
  deep: { fallbacks: Counts; fallbacks_total: number };
  backend: { handoffs_by_verdict: Counts; failures: Counts; failures_total: number; probe_failures: Counts; handshake_ms: HistJSON };
  stress: { periods: Array<{ enter: string; leave: string | null; count: number; duration_ms: number | null }>; enters: number;
    total_ms: number };
  greeting_delay_ms: HistJSON;
  hours: Array<{ hour: number } & Record<HourColumn, number>>;
  events: Counts;
  warnings: number;
}
