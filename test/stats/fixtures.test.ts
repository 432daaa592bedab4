/*
 * `smtpscreen stats` against log fixtures with known counts.
 * fixtures/stats/day.ndjson: 13 clients over three hours, written by hand so
 * that every count below is known (the comments say which client makes it):
 * pass old/new, allowlist, pregreet, DNSBL drop, greylist defer/retry/never,
 * pipelining, denylist drop, hangup, ports busy, backend and fallback
 * failures, a stress period, shadow-mode events with `would`, one plain pino
 * line and two malformed lines. The same events rendered as postscreen lines
 * (log/postscreen-format.ts, behind a syslog prefix) give the same counts for
 * everything postscreen's text carries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatPostscreen } from '../../src/log/postscreen-format.js';
import { repoRoot } from '../helpers/screener.js';
import { get, statsJson } from './run.js';

const DAY = path.join(repoRoot(), 'fixtures', 'stats', 'day.ndjson');

const EXPECT: ReadonlyArray<readonly [string, unknown]> = [
  ['/input/lines', 64], ['/input/events', 61], ['/input/other', 1], ['/input/malformed', 2],
  ['/connections/total', 13], ['/connections/all_ports_busy', 1],
  ['/verdicts/pass_old', 1], ['/verdicts/pass_new', 4], ['/verdicts/allowlisted', 1], ['/verdicts/denylisted', 1],
  ['/verdicts/rejected', 2], /* pregreet, pipelining */ ['/verdicts/dropped', 2], /* dnsbl drop, denylist drop */
  ['/verdicts/deferred', 2], /* greylisted v4 and v6 */ ['/verdicts/handoffs', 6], ['/verdicts/pass_new_ratio', 0.8],
  ['/tests/pregreet', { enforce: 1, shadow: 1 }], ['/tests/dnsbl', { drop: 1, shadow: 1 }], ['/tests/pipelining', { enforce: 1 }],
  ['/tests/denylist', { drop: 1 }],
  ['/would', { dnsbl: { reject: 1 }, pregreet: { drop: 1 }, greylist: { defer: 1 } }],
  ['/hangups', { pregreet: 1 }],
  ['/rejects/lines', 5], ['/rejects/codes', { 450: 2, 550: 2 }],
  ['/rejects/reasons', { 'greylist (450)': 2, 'denylist (drop)': 1, 'dnsbl (drop)': 1, 'pipelining (550)': 1, 'pregreet (550)': 1 }],
  ['/networks/top', [{ network: '198.51.100.0/24', rejects: 3, dnsbl_sites: { 'bl.example': 1, 'zen.example': 1 } },
    { network: '2001:db8:1:2::/64', rejects: 1, dnsbl_sites: {} }]],
  ['/dnsbl/events', 2], ['/dnsbl/site_hits', { 'zen.example': 2, 'bl.example': 1 }], ['/dnsbl/late', { 'bl.example': 1 }],
  ['/dnsbl/slow', { 'bl.example': 1 }], ['/dnsbl/suspended', { 'bl.example': 1 }], ['/dnsbl/lookup_ms/count', 2], ['/dnsbl/lookup_ms/max', 300],
  ['/greylist/deferred', 2], ['/greylist/networks_deferred', 2], ['/greylist/retried', 1], ['/greylist/passed', 1],
  ['/greylist/never_retried', 1], /* the /64; the shadow defer is not real */
  ['/deep/fallbacks', { 'tls (at start)': 1 }], ['/backend/failures_total', 1], ['/backend/probe_failures', { '127.0.0.1:10025 at connect: ECONNREFUSED': 1 }],
  ['/backend/handshake_ms/count', 6],
  ['/stress/enters', 1], ['/stress/total_ms', 1_800_000], ['/stress/periods/0/count', 90],
  ['/greeting_delay_ms/count', 6], ['/greeting_delay_ms/max', 6020], ['/greeting_delay_ms/buckets/0/count', 3], /* 50, 30, 100 ms */
  ['/warnings', 4],
  ['/hours/8', { hour: 8, connections: 5, pass_old: 1, pass_new: 0, allowlisted: 1, rejected: 1, dropped: 1, deferred: 0, busy: 1, hangups: 1, would: 0 }],
  ['/hours/9', { hour: 9, connections: 5, pass_old: 0, pass_new: 2, allowlisted: 0, rejected: 1, dropped: 0, deferred: 2, busy: 0, hangups: 0, would: 0 }],
  ['/hours/14', { hour: 14, connections: 3, pass_old: 0, pass_new: 2, allowlisted: 0, rejected: 0, dropped: 1, deferred: 0, busy: 0, hangups: 0, would: 3 }],
  ['/input/first', '2026-11-30T08:00:00.000Z'], ['/input/last', '2026-11-30T14:41:00.000Z'],
];

test('JSON fixture: every count is the known one', async () => {
  const s = await statsJson([DAY]);
  for (const [p, want] of EXPECT) assert.deepEqual(get(s, p), want, p);
  const busyHours = s.hours.filter((h) => h.connections > 0).map((h) => h.hour);
  assert.deepEqual(busyHours, [8, 9, 14], 'no other hour has traffic');
  assert.equal(s.input.malformed_samples.length, 2);
  assert.match(s.input.malformed_samples[1]?.text ?? '', /^garbage/);
});

/** The fixture's events as postscreen syslog lines: "ISO host postfix/postscreen[pid]: [warning: ]text". */
function asPostscreen(ndjson: string): string {
  const out: string[] = [];
  for (const line of ndjson.split('\n')) {
    let r: Record<string, unknown>;
    try { r = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
    if (typeof r['event'] !== 'string') continue;
    const lv = r['level'] === 40 ? 'warning: ' : '';
    out.push(`${new Date(r['time'] as number).toISOString()} mx1 postfix/postscreen[4242]: ${lv}${formatPostscreen(r)}`);
  }
  return out.join('\n') + '\n';
}

test('the same events in postscreen format: the same counts for what postscreen text carries', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-fix-'));
  const file = path.join(dir, 'day.log');
  writeFileSync(file, asPostscreen(readFileSync(DAY, 'utf8')));
  const j = await statsJson([DAY]);
  const p = await statsJson(['--format', 'postscreen', file]);
  assert.equal(p.input.events, 61, 'every event line parsed as an event');
  assert.equal(p.input.malformed + p.input.other, 0);
  const SAME = ['/connections', '/verdicts/pass_old', '/verdicts/pass_new', '/verdicts/allowlisted', '/verdicts/denylisted',
    '/verdicts/rejected', '/verdicts/deferred', '/verdicts/handoffs', '/hangups', '/rejects/lines', '/rejects/codes',
    '/dnsbl/events', '/dnsbl/slow', '/dnsbl/suspended', '/greylist/passed', '/greylist/retried', '/deep', '/backend/failures',
    '/backend/probe_failures', '/stress', '/greeting_delay_ms', '/warnings', '/input/first', '/input/last'];
  for (const k of SAME) assert.deepEqual(get(p, k), get(j, k), k);
  for (const h of [8, 9, 14]) {
    for (const c of ['connections', 'pass_old', 'pass_new', 'rejected', 'deferred', 'busy', 'hangups'] as const) {
      assert.equal(p.hours[h]?.[c], j.hours[h]?.[c], `hour ${h} ${c}`);
    }
  }
  // What the text does not carry: the action (drop) and the DNSBL sites.
  assert.deepEqual(p.tests['pipelining'], { unknown: 1 });
  assert.equal(p.verdicts.dropped, 0);
  assert.deepEqual(p.dnsbl.site_hits, {});
});

test('auto-detection per line: JSON and postscreen lines mixed in one input count as either alone', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-mix-'));
  const ndjson = readFileSync(DAY, 'utf8').split('\n');
  const ps = asPostscreen(readFileSync(DAY, 'utf8')).split('\n');
  const file = path.join(dir, 'mixed.log');
  // Hour 8 as JSON lines (19 events), hours 9 and 14 as postscreen lines.
  const hourOf = (l: string): number => { try { return new Date((JSON.parse(l) as { time: number }).time).getUTCHours(); } catch { return -1; } };
  const h8 = ndjson.filter((l) => l.includes('"event"') && hourOf(l) === 8);
  writeFileSync(file, [...h8, ...ps.filter((l) => /T(09|14):/.test(l))].join('\n'));
  const s = await statsJson([file]);
  assert.equal(s.connections.total, 13);
  assert.equal(s.input.formats.json, 19);
  assert.equal(s.verdicts.pass_new, 4);
  assert.equal(s.verdicts.handoffs, 6);
});

test('--format json: a postscreen line is malformed; --format postscreen: a JSON line is', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-force-'));
  const file = path.join(dir, 'two.log');
  writeFileSync(file, '{"time":1,"event":"CONNECT","client":"192.0.2.1","port":1}\n' +
    'Nov 30 21:54:22 mx postfix/postscreen[1]: CONNECT from [192.0.2.2]:5 to [192.0.2.9]:25\n');
  assert.deepEqual([(await statsJson([file])).connections.total], [2]);
  const j = await statsJson(['--format', 'json', file]);
  assert.deepEqual([j.connections.total, j.input.malformed], [1, 1]);
  const p = await statsJson(['--format', 'postscreen', file]);
  assert.deepEqual([p.connections.total, p.input.malformed], [1, 1]);
});

test('our own text formats: postscreen (ISO, no host), journal, and syslog datagrams', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-own-'));
  const file = path.join(dir, 'own.log');
  writeFileSync(file, [
    '2026-11-30T21:57:44.123Z smtpscreen[4242]: CONNECT from [192.0.2.1]:5678 to [127.0.0.1]:25',
    '2026-11-30T21:57:50.123Z smtpscreen[4242]: PASS NEW [192.0.2.1]:5678',
    '<6>CONNECT from [192.0.2.2]:5679 to [127.0.0.1]:25',
    '<4>warning: entering STRESS mode with 90 connections',
    '<22>Nov 30 18:30:14 mx1 postfix/postscreen[4242]: CONNECT from [192.0.2.3]:5680 to [127.0.0.1]:25',
    '<22>Nov 30 18:30:15 mx1 postfix/smtpd[99]: connect from unknown[192.0.2.3]',
  ].join('\n'));
  const s = await statsJson([file]);
  assert.deepEqual([s.input.events, s.input.other, s.input.malformed], [5, 1, 0]);
  assert.equal(s.connections.total, 3);
  assert.equal(s.verdicts.pass_new, 1);
  assert.equal(s.greeting_delay_ms.max, 6000);
  assert.equal(s.stress.enters, 1);
  assert.equal(s.warnings, 1);
  assert.deepEqual(s.hours.filter((h) => h.connections > 0).map((h) => h.hour), [18, 21], 'the hour as written; the journal line has none');
});
