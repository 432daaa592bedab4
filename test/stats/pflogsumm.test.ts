/*
 * `smtpscreen stats` in postscreen format against Debian's pflogsumm (1.1.5)
 * on the same files: the real Postfix postscreen log kept as a fixture
 * (fixtures/syslog/postscreen-real.log) and a day of postscreen lines
 * (fixtures/stats/postscreen-day.log: DNSBL, pregreet, pipelining, greylist-
 * style 450, denylist, refused connections, other programs' lines). pflogsumm
 * has no postscreen section: it counts postscreen's NOQUEUE lines as
 * "rejected", per hour and in its reject detail by command and client; those
 * are the numbers compared, plus the known counts of the day fixture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { findExecutable } from '../helpers/postfix.js';
import { repoRoot } from '../helpers/screener.js';
import { statsJson } from './run.js';

const run = promisify(execFile);
const REAL = path.join(repoRoot(), 'fixtures', 'syslog', 'postscreen-real.log');
const DAY = path.join(repoRoot(), 'fixtures', 'stats', 'postscreen-day.log');

interface Pflog { rejected: number; perHour: number[]; byCommand: Record<string, number>; byClient: Record<string, number> }

/** pflogsumm's numbers: "N rejected", the rejected column per hour, and the reject detail summed by command and by client. */
async function pflogsumm(file: string): Promise<Pflog> {
  const bin = findExecutable('pflogsumm');
  if (bin === null) throw new Error('pflogsumm is not installed: run scripts/setup-test-deps.sh (Debian package "pflogsumm")');
  const { stdout } = await run(bin, [file], { maxBuffer: 1 << 22 });
  const rejected = Number(/^\s*(\d+)\s+rejected\b/m.exec(stdout)?.[1]);
  const perHour = new Array<number>(24).fill(0);
  for (const m of stdout.matchAll(/^\s+(\d{2})00-\d{4}\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)\s*$/gm)) perHour[Number(m[1])] = Number(m[2]);
  const detail = stdout.slice(stdout.indexOf('message reject detail'), stdout.indexOf('message reject warning detail'));
  const byCommand: Record<string, number> = {};
  const byClient: Record<string, number> = {};
  let cmd = '';
  for (const line of detail.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^ {2}(\S+)$/.exec(line)) !== null) cmd = m[1] as string;
    else if ((m = /^\s+(\d+)\s{3}(\S+)$/.exec(line)) !== null) {
      byCommand[cmd] = (byCommand[cmd] ?? 0) + Number(m[1]);
      byClient[m[2] as string] = (byClient[m[2] as string] ?? 0) + Number(m[1]);
    }
  }
  return { rejected, perHour, byCommand, byClient };
}

for (const [name, file] of [['the real postscreen log', REAL], ['the postscreen day fixture', DAY]] as const) {
  test(`${name}: rejects, per hour, by command and by client as pflogsumm counts them`, async () => {
    const p = await pflogsumm(file);
    const s = await statsJson(['--format', 'postscreen', file]);
    assert.ok(p.rejected > 0, 'pflogsumm counted rejects');
    assert.equal(s.rejects.lines, p.rejected, 'total');
    assert.deepEqual(s.hours.map((h) => h.rejected + h.deferred + h.busy), p.perHour, 'per hour');
    assert.deepEqual(s.rejects.by_command, p.byCommand, 'by command');
    assert.deepEqual(s.rejects.top_clients, p.byClient, 'by client');
  });
}

test('the real postscreen log: its three clients (clean, pregreet, hangup)', async () => {
  const s = await statsJson([REAL]);
  assert.deepEqual([s.connections.total, s.verdicts.pass_new, s.verdicts.rejected, s.tests['pregreet'], s.hangups],
    [3, 1, 1, { unknown: 1 }, { pregreet: 1 }]);
  assert.equal(s.input.malformed, 3, 'its three comment lines');
});

test('the postscreen day fixture: the known counts', async () => {
  const s = await statsJson([DAY]);
  assert.deepEqual(s.input, { lines: 49, events: 42, other: 6, malformed: 1, formats: { json: 0, postscreen: 48 },
    malformed_samples: [{ line: 49, text: 'this line is no syslog line at all' }], first: 'Nov 30 07:00:01', last: 'Nov 30 12:30:00' });
  assert.deepEqual(s.connections, { total: 12, all_ports_busy: 1, too_many_connections: 1, proxy_fail: 0, disconnects: 8 });
  assert.deepEqual([s.verdicts.pass_old, s.verdicts.pass_new, s.verdicts.allowlisted, s.verdicts.denylisted, s.verdicts.rejected,
    s.verdicts.deferred], [1, 2, 1, 1, 5, 1]);
  assert.deepEqual(Object.keys(s.tests).sort(), ['bare_newline', 'command_time_limit', 'denylist', 'dnsbl', 'non_smtp', 'pipelining', 'pregreet']);
  assert.deepEqual(s.rejects.reasons, { 'Protocol error (550)': 2, 'blocked using zen.spamhaus.org (550)': 2,
    'Service currently unavailable (450)': 1, 'Service currently unavailable (550)': 1 });
  assert.deepEqual(s.networks.top, [{ network: '198.51.100.0/24', rejects: 4, dnsbl_sites: { 'zen.spamhaus.org': 2 } },
    { network: '2001:db8:1:2::/64', rejects: 1, dnsbl_sites: {} }]);
  assert.deepEqual(s.stress.periods, [{ enter: 'Nov 30 12:00:00', leave: 'Nov 30 12:30:00', count: 150, duration_ms: 1_800_000 }]);
  assert.equal(s.greeting_delay_ms.count, 4, 'PASS OLD, WHITELISTED, two PASS NEW');
  assert.equal(s.greeting_delay_ms.max, 6000);
  assert.equal(s.warnings, 1);
});
