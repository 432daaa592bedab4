import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPostscreen, formatDelay } from '../../src/log/postscreen-format.js';
import { EV } from '../../src/log/events.js';

const C = { client: '192.0.2.1', port: 5678 };

const CASES: Array<{ ev: Record<string, unknown>; line: string }> = [
  { ev: { event: EV.CONNECT, ...C, local: '127.0.0.1', local_port: 2525 }, line: 'CONNECT from [192.0.2.1]:5678 to [127.0.0.1]:2525' },
  { ev: { event: EV.CONNECT, client: '2001:db8::1', port: 25, local: '::1', local_port: 25 }, line: 'CONNECT from [2001:db8::1]:25 to [::1]:25' },
  { ev: { event: EV.PASS_NEW, ...C }, line: 'PASS NEW [192.0.2.1]:5678' },
  { ev: { event: EV.PASS_OLD, ...C }, line: 'PASS OLD [192.0.2.1]:5678' },
  { ev: { event: EV.PREGREET, ...C, bytes: 11, after_ms: 210, sample: 'EHLO foo\\r\\n', action: 'enforce' },
    line: 'PREGREET 11 after 0.21 from [192.0.2.1]:5678: EHLO foo\\r\\n' },
  { ev: { event: EV.HANGUP, ...C, after_ms: 2100, phase: 'deep' }, line: 'HANGUP after 2.1 from [192.0.2.1]:5678 in tests after SMTP handshake' },
  { ev: { event: EV.HANGUP, ...C, after_ms: 430, phase: 'early' }, line: 'HANGUP after 0.43 from [192.0.2.1]:5678 in tests before SMTP handshake' },
  { ev: { event: EV.DENYLISTED, ...C, entry: '192.0.2.0/24', action: 'enforce' }, line: 'DENYLISTED [192.0.2.1]:5678' },
  { ev: { event: EV.ALLOWLISTED, ...C, entry: '192.0.2.0/24' }, line: 'ALLOWLISTED [192.0.2.1]:5678' },
  { ev: { event: EV.DNSBL, ...C, score: 3 }, line: 'DNSBL rank 3 for [192.0.2.1]:5678' },
  { ev: { event: EV.NOQUEUE, ...C, phase: 'RCPT', reply: '550 5.7.1 Service unavailable; client [192.0.2.1] blocked using pregreet',
    from: 'x@example.com', to: 'y@example.net', helo: 'h.example' },
    line: 'NOQUEUE: reject: RCPT from [192.0.2.1]:5678: 550 5.7.1 Service unavailable; client [192.0.2.1] blocked using pregreet; ' +
      'from=<x@example.com>, to=<y@example.net>, proto=ESMTP, helo=<h.example>' },
  { ev: { event: EV.NOQUEUE, ...C, reply: '550 5.5.1 Protocol error', from: '' },
    line: 'NOQUEUE: reject: RCPT from [192.0.2.1]:5678: 550 5.5.1 Protocol error; from=<>, proto=SMTP' },
  { ev: { event: EV.DISCONNECT, ...C, duration_ms: 1234, bytes_in: 10, bytes_out: 20 }, line: 'DISCONNECT [192.0.2.1]:5678' },
  { ev: { event: EV.COMMAND_TIME_LIMIT, ...C, phase: 'RCPT' }, line: 'COMMAND TIME LIMIT from [192.0.2.1]:5678 after RCPT' },
  { ev: { event: EV.COMMAND_COUNT_LIMIT, ...C, phase: 'RCPT' }, line: 'COMMAND COUNT LIMIT from [192.0.2.1]:5678 after RCPT' },
  { ev: { event: EV.COMMAND_LENGTH_LIMIT, ...C, phase: 'MAIL' }, line: 'COMMAND LENGTH LIMIT from [192.0.2.1]:5678 after MAIL' },
  { ev: { event: EV.COMMAND_PIPELINING, ...C, phase: 'EHLO', sample: 'MAIL FROM:<>\\r\\n' },
    line: 'COMMAND PIPELINING from [192.0.2.1]:5678 after EHLO: MAIL FROM:<>\\r\\n' },
  { ev: { event: EV.NON_SMTP_COMMAND, ...C, phase: 'CONNECT', sample: 'GET / HTTP/1.1' },
    line: 'NON-SMTP COMMAND from [192.0.2.1]:5678 after CONNECT: GET / HTTP/1.1' },
  { ev: { event: EV.BARE_NEWLINE, ...C, phase: 'DATA' }, line: 'BARE NEWLINE from [192.0.2.1]:5678 after DATA' },
  // The fields the dummy engine emits: `after` and `sample`.
  { ev: { event: EV.COMMAND_PIPELINING, ...C, after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\n', action: 'enforce' },
    line: 'COMMAND PIPELINING from [192.0.2.1]:5678 after EHLO: MAIL FROM:<a@b>\\r\\n' },
  { ev: { event: EV.NON_SMTP_COMMAND, ...C, after: 'CONNECT', sample: 'GET / HTTP/1.0', action: 'drop' },
    line: 'NON-SMTP COMMAND from [192.0.2.1]:5678 after CONNECT: GET / HTTP/1.0' },
  { ev: { event: EV.BARE_NEWLINE, ...C, after: 'EHLO', sample: 'MAIL FROM:<a@b>', action: 'ignore' },
    line: 'BARE NEWLINE from [192.0.2.1]:5678 after MAIL FROM:<a@b>' },
  { ev: { event: EV.COMMAND_TIME_LIMIT, ...C, after: 'RCPT' }, line: 'COMMAND TIME LIMIT from [192.0.2.1]:5678 after RCPT' },
  { ev: { event: EV.COMMAND_ERROR_LIMIT, ...C, after: 'RCPT', count: 1, limit: 1 }, line: 'COMMAND ERROR LIMIT from [192.0.2.1]:5678 after RCPT' },
  { ev: { event: EV.ALL_PORTS_BUSY, ...C, count: 19000 }, line: 'NOQUEUE: reject: CONNECT from [192.0.2.1]:5678: all server ports busy' },
  { ev: { event: EV.TOO_MANY_CONNECTIONS, ...C, count: 50 }, line: 'NOQUEUE: reject: CONNECT from [192.0.2.1]:5678: too many connections' },
  { ev: { event: EV.GREYLIST, ...C, reason: 'new triplet' }, line: 'GREYLIST [192.0.2.1]:5678: new triplet' },
  { ev: { event: EV.HANDOFF, ...C, backend: '127.0.0.1:10025', mode: 'xclient', verdict: 'new' },
    line: 'HANDOFF [192.0.2.1]:5678 to 127.0.0.1:10025 (xclient, new)' },
  { ev: { event: EV.BACKEND_FAIL, ...C, backend: '127.0.0.1:10025', stage: 'connect', reason: 'ECONNREFUSED' },
    line: 'BACKEND FAIL 127.0.0.1:10025 at connect for [192.0.2.1]:5678: ECONNREFUSED' },
  { ev: { event: EV.BACKEND_FAIL, backend: '127.0.0.1:10025', stage: 'ehlo', reason: 'handoff mode', detail: 'it expects none', probe: true, retry_ms: 60000 },
    line: 'BACKEND FAIL 127.0.0.1:10025 at ehlo (probe): handoff mode: it expects none' },
  { ev: { event: EV.BACKEND_OK, backend: '127.0.0.1:10025', mode: 'xclient', down_ms: 60000 },
    line: 'BACKEND OK 127.0.0.1:10025 (xclient)' },
  // postscreen_smtpd.c's line, as postfix_exporter and log summarisers read it.
  { ev: { event: EV.DATA_WITHOUT_VALID_RCPT, ...C, command: 'DATA', helo: 'x', from: 'a@b' }, line: 'DATA without valid RCPT from [192.0.2.1]:5678' },
  { ev: { event: EV.DATA_WITHOUT_VALID_RCPT, ...C, command: 'BDAT', helo: 'x', from: 'a@b' }, line: 'BDAT without valid RCPT from [192.0.2.1]:5678' },
  { ev: { event: EV.CACHE_ADMIN, op: 'pass', address: '192.0.2.1', ttl_ms: 86400000, by: 'socket' }, line: 'CACHE ADMIN pass 192.0.2.1 by socket' },
  { ev: { event: EV.HANDOFF, ...C, backend: '127.0.0.1:10025', mode: 'xclient', verdict: 'new', code: 550, after: 'RCPT', relayed: 'RCPT' },
    line: 'HANDOFF [192.0.2.1]:5678 to 127.0.0.1:10025 (xclient, new)' },
  { ev: { event: EV.HANDOFF_FALLBACK, ...C, reason: 'backend does not offer XCLIENT', stage: 'start' },
    line: 'HANDOFF FALLBACK for [192.0.2.1]:5678 at start: backend does not offer XCLIENT; 450 at RCPT, reconnect' },
  { ev: { event: EV.BACKEND_EHLO, backend: '127.0.0.1:10025', state: 'learned', offered: ['SIZE', 'DSN'], xclient: ['ADDR'] },
    line: 'BACKEND EHLO 127.0.0.1:10025 learned: offered SIZE DSN' },
  { ev: { event: EV.BACKEND_EHLO, backend: '127.0.0.1:10025', state: 'failed', reason: 'connect: ECONNREFUSED' },
    line: 'BACKEND EHLO 127.0.0.1:10025 failed: connect: ECONNREFUSED' },
  { ev: { event: EV.PROXY_FAIL, peer: '10.0.0.1', reason: 'untrusted' }, line: 'PROXY FAIL from [10.0.0.1]: untrusted' },
  { ev: { event: EV.STRESS, state: 'enter', count: 14000 }, line: 'entering STRESS mode with 14000 connections' },
  { ev: { event: EV.STRESS, state: 'leave', count: 9000 }, line: 'leaving STRESS mode with 9000 connections' },
  { ev: { event: EV.CACHE, op: 'load', entries: 42, file: '/var/lib/smtpscreen/cache' }, line: 'cache /var/lib/smtpscreen/cache load: entries=42' },
  { ev: { event: EV.STARTED, listen: ['127.0.0.1:2525'], backend: 'sink:0', handoff: 'xclient', pid: 1 },
    line: 'daemon started -- listen=127.0.0.1:2525 backend=sink:0 handoff=xclient' },
  { ev: { event: EV.STOPPING, signal: 'SIGTERM', open: 3, drain_ms: 30000 }, line: 'terminating on signal SIGTERM, draining 3 sessions for up to 30s' },
  { ev: { event: EV.STOPPED, forced: 2 }, line: 'stopped (forced: 2)' },
  { ev: { event: EV.STOPPED, forced: 0 }, line: 'stopped' },
  { ev: { event: EV.ACCEPT_ERROR, code: 'EMFILE', listener: '0.0.0.0:25' }, line: 'accept on 0.0.0.0:25: EMFILE' },
  // Unknown events and plain messages: generic key=value rendering.
  { ev: { event: 'SOMETHING NEW', level: 30, time: 1, ...C, note: 'two words' },
    line: 'SOMETHING NEW client=192.0.2.1 port=5678 note="two words"' },
  { ev: { level: 40, time: 1, msg: 'plain message', n: 1 }, line: 'plain message n=1' },
];

for (const c of CASES) {
  test(`formatPostscreen: ${c.line.slice(0, 50)}`, () => {
    assert.equal(formatPostscreen({ level: 30, time: 1700000000000, ...c.ev }), c.line);
  });
}

test('every event renders with no fields but its name, without throwing', () => {
  for (const name of Object.values(EV)) {
    const line = formatPostscreen({ event: name });
    assert.equal(typeof line, 'string');
    assert.ok(line.length > 0, name);
    assert.ok(!/[\r\n]/.test(line), name);
  }
});

test('missing client renders as unknown', () => {
  assert.equal(formatPostscreen({ event: EV.PASS_NEW }), 'PASS NEW [unknown]:unknown');
  assert.equal(formatPostscreen({ event: EV.PREGREET }), 'PREGREET unknown after unknown from [unknown]:unknown');
});

test('odd field types do not throw', () => {
  const cyc: Record<string, unknown> = {};
  cyc['self'] = cyc;
  assert.equal(typeof formatPostscreen({ event: EV.HANDOFF, backend: cyc }), 'string');
  assert.equal(typeof formatPostscreen({ event: 'X', a: { b: [1, 2] }, c: null }), 'string');
  assert.equal(typeof formatPostscreen({}), 'string');
});

test('raw control characters never reach the line', () => {
  const line = formatPostscreen({ event: EV.PREGREET, ...C, bytes: 5, after_ms: 1, sample: 'a\r\nCONNECT from [1.2.3.4]:1' });
  assert.ok(!/[\r\n]/.test(line));
  assert.ok(line.endsWith('a??CONNECT from [1.2.3.4]:1'), line);
});

const DELAYS: Array<[number, string]> = [
  [0, '0'], [1, '0.001'], [5, '0.005'], [21, '0.021'], [210, '0.21'], [200, '0.2'], [999, '1'], [123, '0.12'],
  [1000, '1'], [2100, '2.1'], [2149, '2.1'], [9960, '10'], [17_000, '17'], [123_456, '123'],
];
for (const [ms, text] of DELAYS) {
  test(`formatDelay(${ms}) = ${text}`, () => assert.equal(formatDelay(ms), text));
}
