/*
 * Integration: log.destination syslog into a real rsyslogd (its own config,
 * UDP port and output file: test/helpers/rsyslog.ts). The lines land as
 * postscreen's do in mail.log, "Nov 30 21:54:25 host postfix/postscreen[pid]:
 * CONNECT from [...]:port to [...]:port", and Debian's stock fail2ban postfix
 * filter (mode aggressive) and pflogsumm count them as they count real
 * postscreen's lines for the same three clients (fixtures/syslog/postscreen-real.log,
 * made by scripts/postscreen-fixture.ts with the real Postfix postscreen).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRsyslog, cliProc, type Rsyslog, type CliProc } from '../helpers/rsyslog.js';
import { runLogClients } from '../helpers/log-clients.js';
import { findExecutable } from '../helpers/postfix.js';
import { repoRoot } from '../helpers/screener.js';

const run = promisify(execFile);
const FIXTURE = path.join(repoRoot(), 'fixtures', 'syslog', 'postscreen-real.log');
const REAL_ADDRS = ['127.0.5.1', '127.0.5.2', '127.0.5.3'];
const OUR_ADDRS = ['127.0.6.1', '127.0.6.2', '127.0.6.3'];

let rs: Rsyslog | null = null;
let scr: CliProc | null = null;
after(async () => {
  await scr?.stop();
  await rs?.stop();
});

function need(cmd: string, pkg: string): string {
  const bin = findExecutable(cmd);
  if (bin === null) throw new Error(`${cmd} is not installed: run scripts/setup-test-deps.sh (Debian package "${pkg}")`);
  return bin;
}

/** fail2ban-regex with the stock postfix filter, aggressive mode: the matched count and the client of each matched line, as its role (0 clean, 1 pregreet, 2 hangup). */
async function fail2ban(file: string, addrs: string[]): Promise<{ matched: number; roles: number[] }> {
  const bin = need('fail2ban-regex', 'fail2ban');
  const { stdout } = await run(bin, ['--print-all-matched', file, 'postfix[mode=aggressive]'], { maxBuffer: 1 << 22 });
  const m = /Lines: \d+ lines, \d+ ignored, (\d+) matched/.exec(stdout);
  assert.ok(m !== null, stdout);
  const start = stdout.indexOf('Matched line(s):');
  const section = start < 0 ? '' : stdout.slice(start, stdout.indexOf('\n`-', start));
  const roles = [...section.matchAll(/ from \[(127\.0\.\d+\.\d+)\]:\d+/g)].map((x) => addrs.indexOf(x[1] ?? '')).sort();
  return { matched: Number(m[1]), roles };
}

/** pflogsumm's "rejected" total. */
async function pflogsumm(file: string): Promise<number> {
  const bin = need('pflogsumm', 'pflogsumm');
  const { stdout } = await run(bin, [file], { maxBuffer: 1 << 22 });
  const m = /^\s*(\d+)\s+rejected\b/m.exec(stdout);
  assert.ok(m !== null, stdout);
  return Number(m[1]);
}

for (const transport of ['tcp', 'udp'] as const) {
test(`syslog destination over ${transport}: lines land in rsyslog's mail.log as postscreen's do; fail2ban and pflogsumm count them as real postscreen's`, { timeout: 90_000 }, async () => {
  // A test that failed half-way leaves nothing running for the next (a leaked rsyslogd would keep this file from ever exiting).
  await scr?.stop();
  scr = null;
  await rs?.stop();
  rs = null;
  rs = await startRsyslog();
  scr = await cliProc({
    backend: { address: 'sink:0' },
    pregreet: { wait: '2s', action: 'enforce' },
    log: { destination: 'syslog', syslog: { address: `127.0.0.1:${rs.port}`, transport } },
  });
  await runLogClients(scr.port, OUR_ADDRS, 2000);
  const pid = scr.pid;
  await rs.waitFor((t) => t.includes(`HANGUP after `) && t.includes(`DISCONNECT [${OUR_ADDRS[2]}]`), 10_000);
  assert.equal(await scr.stop(), 0);
  scr = null;
  await rs.waitFor((t) => t.includes(`postfix/postscreen[${pid}]: stopped`), 10_000);

  const ours = rs.text().split('\n').filter((l) => l.includes(`postfix/postscreen[${pid}]: `));
  assert.ok(ours.length >= 8, ours.join('\n'));
  for (const l of ours) assert.match(l, /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [^\s.]+ postfix\/postscreen\[\d+\]: \S/, l);
  const text = ours.join('\n');
  assert.match(text, new RegExp(`postfix/postscreen\\[${pid}\\]: CONNECT from \\[127\\.0\\.6\\.1\\]:\\d+ to \\[127\\.0\\.0\\.1\\]:\\d+$`, 'm'));
  assert.match(text, /: PASS NEW \[127\.0\.6\.1\]:\d+$/m);
  assert.match(text, /: PREGREET 10 after [\d.]+ from \[127\.0\.6\.2\]:\d+: EHLO foo\\r\\n$/m);
  assert.match(text, /: NOQUEUE: reject: RCPT from \[127\.0\.6\.2\]:\d+: 5\d\d .*; from=<a@example\.org>, to=<b@example\.test>, proto=ESMTP, helo=<foo>$/m);
  assert.match(text, /: HANGUP after [\d.]+ from \[127\.0\.6\.3\]:\d+ in tests before SMTP handshake$/m);

  const real = await fail2ban(FIXTURE, REAL_ADDRS);
  const mine = await fail2ban(rs.file, OUR_ADDRS);
  assert.equal(real.matched, 2, 'the fixture: PREGREET and HANGUP');
  assert.deepEqual(mine, real);
  const realRejected = await pflogsumm(FIXTURE);
  assert.equal(realRejected, 1, 'the fixture: the pregreet client\'s RCPT');
  assert.equal(await pflogsumm(rs.file), realRejected);
  await rs.stop();
  rs = null;
});
}
