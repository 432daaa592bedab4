/*
 * Shadow mode in the logs: the Emitter counts would-have outcomes apart; the
 * postscreen text of a shadowed failure starts with "SHADOW (would X): ", and
 * Debian's stock fail2ban postfix filter (mode aggressive: it bans on
 * PREGREET, COMMAND ... LIMIT and NOQUEUE reject lines) matches the real
 * lines and none of the shadowed ones; the dummy engine logs a shadowed deep
 * test with `would` and goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Emitter } from '../../src/log/emit.js';
import { EV } from '../../src/log/events.js';
import { formatEvent } from '../../src/log/postscreen-format.js';
import { findExecutable } from '../helpers/postfix.js';
import { DummyEngine, type EngineOutput } from '../../src/smtp/dummy-engine.js';
import { makeReplies } from '../../src/smtp/replies.js';
import { DeepTests } from '../../src/checks/deep.js';
import { deepOptions } from '../../src/session/deep.js';
import { validateConfig } from '../../src/config/validate.js';

const run = promisify(execFile);

test('Emitter: every emit counts under its name; shadowed ones (with would) are counted apart by outcome', () => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
  const em = new Emitter(log);
  em.emit(EV.DNSBL, { client: '192.0.2.1', action: 'enforce' });
  em.emit(EV.DNSBL, { client: '192.0.2.2', action: 'shadow', would: 'reject' });
  em.emit(EV.DNSBL, { client: '192.0.2.3', action: 'shadow', would: 'drop' });
  em.emit(EV.GREYLIST, { client: '192.0.2.4', state: 'defer', action: 'shadow', would: 'defer' });
  em.emit(EV.PREGREET, { client: '192.0.2.5', action: 'shadow', would: 'reject' });
  em.emit(EV.PREGREET);
  assert.equal(em.counts[EV.DNSBL], 3);
  assert.equal(em.counts[EV.PREGREET], 2);
  assert.deepEqual(em.would, { DNSBL: { reject: 1, drop: 1 }, GREYLIST: { defer: 1 }, PREGREET: { reject: 1 } });
  const shadowLine = JSON.parse(lines[1] ?? '{}') as Record<string, unknown>;
  assert.equal(shadowLine['would'], 'reject');
  assert.match(String(shadowLine['msg']), /^SHADOW \(would reject\): DNSBL rank unknown for \[192\.0\.2\.2\]/);
});

const CLIENT = { client: '192.0.2.7', port: 4321 };
/** [event, fields] of failures, each logged for real and shadowed. */
const FAILURES: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
  [EV.PREGREET, { bytes: 11, after_ms: 210, sample: 'EHLO x\\r\\n' }],
  [EV.DNSBL, { score: 3, hits: [{ site: 'bl.test', weight: 3, records: ['127.0.0.2'] }] }],
  [EV.COMMAND_PIPELINING, { after: 'MAIL', sample: 'RCPT TO:<a@b>\\r\\n' }],
  [EV.NON_SMTP_COMMAND, { after: 'CONNECT', sample: 'GET / HTTP/1.0' }],
  [EV.BARE_NEWLINE, { after: 'EHLO', sample: 'MAIL FROM:<a@b>\\n' }],
  [EV.DENYLISTED, { entry: '192.0.2.0/24' }],
  [EV.GREYLIST, { network: '192.0.2.0/24', state: 'defer', reason: 'new' }],
];

test('postscreen text: a shadowed failure is the real line behind "SHADOW (would X): "', () => {
  for (const [name, fields] of FAILURES) {
    const real = formatEvent(name, { ...CLIENT, ...fields, action: 'enforce' });
    const would = name === EV.GREYLIST ? 'defer' : 'drop';
    const shadow = formatEvent(name, { ...CLIENT, ...fields, action: 'shadow', would });
    assert.equal(shadow, `SHADOW (would ${would}): ${real}`, name);
    // `would` without action shadow (a malformed record) is not taken for shadow.
    assert.equal(formatEvent(name, { ...CLIENT, ...fields, action: 'enforce', would }), real, name);
  }
});

test('fail2ban (stock postfix filter, aggressive): the real lines match, the shadowed ones do not', async () => {
  const bin = findExecutable('fail2ban-regex');
  if (bin === null) throw new Error('fail2ban-regex is not installed: run scripts/setup-test-deps.sh (Debian package "fail2ban")');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-shadow-f2b-'));
  try {
    const line = (msg: string): string => `Dec  1 00:00:01 vm postfix/postscreen[4242]: ${msg}`;
    const real = [
      formatEvent(EV.PREGREET, { ...CLIENT, ...FAILURES[0]?.[1], action: 'enforce' }),
      formatEvent(EV.NOQUEUE, { ...CLIENT, reply: '550 5.7.1 Service unavailable; client [192.0.2.7] blocked using bl.test', from: 'a@b', to: 'c@d', helo: 'x', proto: 'ESMTP' }),
      formatEvent(EV.COMMAND_TIME_LIMIT, { ...CLIENT, after: 'RCPT' }),
    ];
    const shadowed = FAILURES.map(([name, fields]) => formatEvent(name, { ...CLIENT, ...fields, action: 'shadow', would: name === EV.GREYLIST ? 'defer' : 'reject' }));
    const file = path.join(dir, 'mail.log');
    fs.writeFileSync(file, [...real, ...shadowed].map(line).join('\n') + '\n');
    const { stdout } = await run(bin, ['--print-all-matched', file, 'postfix[mode=aggressive]'], { maxBuffer: 1 << 22 });
    const m = /Lines: (\d+) lines, \d+ ignored, (\d+) matched/.exec(stdout);
    assert.ok(m !== null, stdout);
    assert.equal(Number(m[1]), real.length + shadowed.length);
    assert.equal(Number(m[2]), real.length, `only the real lines match:\n${stdout}`);
    const matched = stdout.slice(stdout.indexOf('Matched line(s):'), stdout.indexOf('Missed line(s):'));
    assert.ok(matched.includes('PREGREET 11') && !matched.includes('SHADOW'), matched);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dummy engine: a shadowed deep test logs action shadow and would, then the session goes on to RCPT', () => {
  const cfg = validateConfig({ hostname: 'mx.example.org', mode: 'shadow', deep: { pipelining: { enable: true, action: 'enforce' } } });
  const opts = deepOptions(cfg);
  assert.ok(opts !== null);
  const deep = new DeepTests(opts, 1);
  const sent: string[] = [];
  const events: Array<[string, Record<string, unknown>]> = [];
  const out: EngineOutput = { send: (t) => sent.push(t), close: () => undefined, event: (n, f) => events.push([n, f]) };
  const engine = new DummyEngine({ replies: makeReplies('mx.example.org', 'ESMTP'), rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, deep }, out);
  engine.onLine(Buffer.from('EHLO x'), false, 0);
  engine.onLine(Buffer.from('MAIL FROM:<a@b>'), false, 16); // more input already there: pipelining
  engine.onLine(Buffer.from('RCPT TO:<c@d>'), false, 0);
  const pipe = events.find(([n]) => n === EV.COMMAND_PIPELINING);
  assert.deepEqual(pipe?.[1], { after: 'MAIL', sample: '', action: 'shadow', would: 'reject' });
  assert.equal(engine.closed, false);
  assert.equal(deep.complete, true);
  const noq = events.find(([n]) => n === EV.NOQUEUE);
  assert.equal(noq?.[1]['reason'], 'deep', 'the RCPT gets the deep tests\' 450 (reconnect), as a client that passed');
});
