/*
 * test/smtp/dummy-engine.test.ts - DummyEngine dialogues (lines in, replies and
 * events out), replies texts, and a property: random input never throws and
 * nothing is sent after close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DummyEngine, type EngineOptions, type EngineOutput } from '../../src/smtp/dummy-engine.js';
import { makeReplies, stripCrlf } from '../../src/smtp/replies.js';
import { EV, type EventName } from '../../src/log/events.js';
import { LineReader, type LineSink } from '../../src/smtp/line-reader.js';
import { DEEP_BIT, DEEP_TESTS, DeepTests, type DeepOptions } from '../../src/checks/deep.js';
import { deepOptions } from '../../src/session/deep.js';
import { validateConfig } from '../../src/config/validate.js';

const R = makeReplies('mx.example.org');

interface Harness extends EngineOutput {
  sent: string[];
  events: Array<{ name: EventName; fields: Record<string, unknown> }>;
  closes: number;
  sentAfterClose: boolean;
}

function harness(): Harness {
  const h: Harness = {
    sent: [],
    events: [],
    closes: 0,
    sentAfterClose: false,
    send(text) {
      if (h.closes > 0) h.sentAfterClose = true;
      h.sent.push(text);
    },
    close() {
      h.closes++;
    },
    event(name, fields) {
      h.events.push({ name, fields });
    },
  };
  return h;
}

function engine(opts: Partial<EngineOptions> = {}): { e: DummyEngine; h: Harness } {
  const h = harness();
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'test', commandCountLimit: 20, ...opts }, h);
  return { e, h };
}

const say = (e: DummyEngine, line: string): void => e.onLine(Buffer.from(line, 'latin1'), false);

const ENFORCE = '550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.example\r\n';

const dialogues: Array<{
  name: string;
  opts?: Partial<EngineOptions>;
  lines: string[];
  /** Replies in order, without CRLF (each reply's first line for multi-line ones). */
  replies: string[];
  events?: Array<{ name: EventName; fields: Record<string, unknown> }>;
  closed: boolean;
}> = [
  {
    name: 'polite client, still under test: 450 at RCPT, NOQUEUE, QUIT',
    lines: ['EHLO client.example', 'MAIL FROM:<a@example.com> SIZE=100', 'RCPT TO:<b@example.org>', 'QUIT'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', '450 4.3.2 Service currently unavailable', '221 2.0.0 Bye'],
    events: [{ name: EV.NOQUEUE, fields: { reply: '450 4.3.2 Service currently unavailable', helo: 'client.example', from: 'a@example.com', to: 'b@example.org', proto: 'ESMTP', reason: 'test' } }],
    closed: true,
  },
  {
    name: 'enforce: the given 550 at every RCPT, each logged',
    opts: { rejectReply: ENFORCE, rejectReason: 'dnsbl' },
    lines: ['helo bot', 'mail from:<>', 'rcpt to:<x@y>', 'rcpt to:<z@y>'],
    replies: ['250 mx.example.org', '250 2.1.0 Ok', stripCrlf(ENFORCE), stripCrlf(ENFORCE)],
    events: [
      { name: EV.NOQUEUE, fields: { reply: stripCrlf(ENFORCE), helo: 'bot', from: '', to: 'x@y', proto: 'SMTP', reason: 'dnsbl' } },
      { name: EV.NOQUEUE, fields: { reply: stripCrlf(ENFORCE), helo: 'bot', from: '', to: 'z@y', proto: 'SMTP', reason: 'dnsbl' } },
    ],
    closed: false,
  },
  {
    name: 'MAIL needs no HELO (postscreen_helo_required = no); NOQUEUE helo is empty',
    lines: ['MAIL FROM:<a@b>', 'RCPT TO:<c@d>'],
    replies: ['250 2.1.0 Ok', '450 4.3.2 Service currently unavailable'],
    events: [{ name: EV.NOQUEUE, fields: { reply: '450 4.3.2 Service currently unavailable', helo: '', from: 'a@b', to: 'c@d', proto: 'SMTP', reason: 'test' } }],
    closed: false,
  },
  {
    name: 'syntax errors: HELO/EHLO without name, MAIL/RCPT without colon',
    lines: ['HELO', 'EHLO   ', 'MAIL FROM <a@b>', 'MAIL FROM:<a@b>', 'RCPT TO <c@d>'],
    replies: ['501 Syntax: HELO hostname', '501 Syntax: EHLO hostname', '501 5.5.4 Syntax: MAIL FROM:<address>', '250 2.1.0 Ok', '501 5.5.4 Syntax: RCPT TO:<address>'],
    closed: false,
  },
  {
    name: 'sequence errors: RCPT before MAIL, nested MAIL, RSET clears',
    lines: ['RCPT TO:<c@d>', 'MAIL FROM:<a@b>', 'MAIL FROM:<a@b>', 'RSET', 'MAIL FROM:<a@b>'],
    replies: ['503 5.5.1 Error: need MAIL command', '250 2.1.0 Ok', '503 5.5.1 Error: nested MAIL command', '250 2.0.0 Ok', '250 2.1.0 Ok'],
    closed: false,
  },
  {
    name: 'HELO ends the transaction',
    lines: ['MAIL FROM:<a@b>', 'HELO again', 'RCPT TO:<c@d>'],
    replies: ['250 2.1.0 Ok', '250 mx.example.org', '503 5.5.1 Error: need MAIL command'],
    closed: false,
  },
  { name: 'DATA without MAIL: 503 need RCPT, close', lines: ['DATA', 'NOOP'], replies: ['503 5.5.1 Error: need RCPT command'], closed: true },
  { name: 'DATA in a transaction: 554 no valid recipients, close', lines: ['MAIL FROM:<a@b>', 'RCPT TO:<c@d>', 'DATA'], replies: ['250 2.1.0 Ok', '450 4.3.2 Service currently unavailable', '554 5.5.1 Error: no valid recipients'],
    events: [{ name: EV.NOQUEUE, fields: { reply: '450 4.3.2 Service currently unavailable', helo: '', from: 'a@b', to: 'c@d', proto: 'SMTP', reason: 'test' } },
      { name: EV.DATA_WITHOUT_VALID_RCPT, fields: { command: 'DATA', helo: '', from: 'a@b' } }], closed: true },
  { name: 'DATA with an argument: 501, close', lines: ['DATA now'], replies: ['501 5.5.4 Syntax: DATA'], closed: true },
  { name: 'BDAT without size: 501, close', lines: ['BDAT'], replies: ['501 5.5.4 Syntax: BDAT count [LAST]'], closed: true },
  { name: 'BDAT without MAIL: 554 need MAIL, close', lines: ['BDAT 10 LAST'], replies: ['554 5.5.1 Error: need MAIL command'], closed: true },
  { name: 'BDAT in a transaction: 554 no valid recipients, close', lines: ['HELO h', 'MAIL FROM:<a@b>', 'BDAT 10'], replies: ['250 mx.example.org', '250 2.1.0 Ok', '554 5.5.1 Error: no valid recipients'],
    events: [{ name: EV.DATA_WITHOUT_VALID_RCPT, fields: { command: 'BDAT', helo: 'h', from: 'a@b' } }], closed: true },
  {
    name: 'VRFY, ETRN, AUTH, XCLIENT, unknown, empty: 502; STARTTLS: 502 5.5.1; NOOP ok',
    lines: ['VRFY root', 'ETRN x', 'AUTH PLAIN', 'XCLIENT ADDR=1.2.3.4', 'GET / HTTP/1.0', '', 'STARTTLS', 'noop'],
    replies: [...Array(6).fill('502 5.5.2 Error: command not recognized'), '502 5.5.1 Error: command not implemented', '250 2.0.0 Ok'],
    closed: false,
  },
  {
    name: 'verbs are case-insensitive, split on SP only (a TAB is part of the verb)',
    lines: ['eHlO x', 'QuIt\tnow'],
    replies: ['250-mx.example.org', '502 5.5.2 Error: command not recognized'],
    closed: false,
  },
  {
    name: 'command count limit: the (limit+1)-th command gets 421, logged after the previous one',
    opts: { commandCountLimit: 3 },
    lines: ['NOOP', 'HELO a', 'NOOP', 'RSET', 'NOOP'],
    replies: ['250 2.0.0 Ok', '250 mx.example.org', '250 2.0.0 Ok', '421 mx.example.org Service unavailable - try again later'],
    events: [{ name: EV.COMMAND_COUNT_LIMIT, fields: { after: 'NOOP', count: 4, limit: 3 } }],
    closed: true,
  },
  {
    name: 'QUIT is exempt from the count limit',
    opts: { commandCountLimit: 1 },
    lines: ['NOOP', 'QUIT'],
    replies: ['250 2.0.0 Ok', '221 2.0.0 Bye'],
    closed: true,
  },
];

for (const d of dialogues) {
  test(`dummy-engine: ${d.name}`, () => {
    const { e, h } = engine(d.opts);
    for (const l of d.lines) say(e, l);
    assert.deepEqual(h.sent.map((s) => s.split('\r\n')[0]), d.replies);
    for (const s of h.sent) assert.ok(s.endsWith('\r\n'), `reply ends in CRLF: ${JSON.stringify(s)}`);
    assert.deepEqual(h.events, d.events ?? []);
    assert.equal(e.closed, d.closed);
    assert.equal(h.closes, d.closed ? 1 : 0);
  });
}

test('dummy-engine: EHLO reply is postscreen\'s list minus VRFY/ETRN/STARTTLS, never PIPELINING', () => {
  const { e, h } = engine();
  say(e, 'EHLO x');
  assert.equal(h.sent[0], '250-mx.example.org\r\n250-SIZE\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n');
  assert.ok(!h.sent[0]?.includes('PIPELINING'));
});

test('dummy-engine: addresses are unquoted like psc_extract_addr, route prefix cut, client text escaped', () => {
  const { e, h } = engine();
  say(e, 'HELO bad\x01name');
  say(e, 'MAIL FROM: <"john doe"@example.com>');
  say(e, 'RCPT TO:<@relay.example:user@example.org>');
  say(e, 'RCPT TO:bare@example.org NOTIFY=NEVER');
  say(e, 'RCPT TO:<a\\>b@x>');
  assert.equal(e.helo, 'bad\\001name');
  assert.equal(e.mailFrom, 'john doe@example.com');
  assert.deepEqual(e.rcpts, ['user@example.org', 'bare@example.org', 'a>b@x']);
  assert.equal(h.events.length, 3);
  assert.equal(h.events[0]?.fields['helo'], 'bad\\001name');
});

test('dummy-engine: onOverlong -> COMMAND LENGTH LIMIT, 421, close', () => {
  const { e, h } = engine();
  say(e, 'EHLO x');
  e.onOverlong(2049);
  assert.deepEqual(h.events, [{ name: EV.COMMAND_LENGTH_LIMIT, fields: { after: 'EHLO', length: 2049 } }]);
  assert.equal(h.sent.at(-1), R.commandTooLong);
  assert.equal(h.closes, 1);
  e.onOverlong(2049);
  e.onTimeout();
  say(e, 'NOOP');
  assert.equal(h.sent.length, 2, 'nothing after close');
  assert.equal(h.events.length, 1);
});

test('dummy-engine: onTimeout -> COMMAND TIME LIMIT after the last command, 421 4.4.2, close', () => {
  const { e, h } = engine();
  e.onTimeout();
  assert.deepEqual(h.events, [{ name: EV.COMMAND_TIME_LIMIT, fields: { after: 'CONNECT' } }]);
  assert.deepEqual(h.sent, ['421 4.4.2 mx.example.org Error: timeout exceeded\r\n']);
  assert.equal(h.closes, 1);
});

test('dummy-engine: setRejectReply mid-session changes later RCPT replies', () => {
  const { e, h } = engine();
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'RCPT TO:<c@d>');
  e.setRejectReply(R.reject('pipelining'), 'pipelining');
  say(e, 'RCPT TO:<e@f>');
  assert.equal(h.sent[2], '550 5.5.1 Protocol error\r\n');
  assert.equal(h.events[1]?.fields['reason'], 'pipelining');
});

test('dummy-engine: setFinalReply answers the next command (not QUIT) and closes', () => {
  const a = engine();
  a.e.setFinalReply(R.allPortsBusy);
  say(a.e, 'EHLO x');
  assert.deepEqual(a.h.sent, [R.allPortsBusy]);
  assert.equal(a.e.closed, true);
  const b = engine();
  b.e.setFinalReply(R.allPortsBusy);
  say(b.e, 'QUIT');
  assert.deepEqual(b.h.sent, [R.bye]);
});

test('replies: postscreen texts and hostname validation', () => {
  assert.equal(R.teaser, '220-mx.example.org ESMTP\r\n');
  assert.equal(R.greeting, '220 mx.example.org ESMTP\r\n');
  assert.equal(makeReplies('h', 'Hello there').greeting, '220 h Hello there\r\n');
  assert.equal(R.tooManyConnections, '421 4.7.0 Error: too many connections\r\n');
  assert.equal(R.allPortsBusy, '421 4.3.2 All server ports are busy\r\n');
  assert.equal(R.dropFor('pregreet'), '521 5.5.1 Protocol error\r\n');
  assert.equal(R.dropFor('denylist'), '521 5.3.2 Service currently unavailable\r\n');
  assert.equal(R.reject('denylist'), '550 5.3.2 Service currently unavailable\r\n');
  assert.equal(R.reject('pregreet'), '550 5.5.1 Protocol error\r\n');
  for (const bad of ['', 'a b', 'a\r\nb', 'h\u00e9']) {
    assert.throws(() => makeReplies(bad), (err: { code?: string }) => err.code === 'SCR_ERR_CONFIG');
  }
  assert.throws(() => makeReplies('ok', 'x\r\n250 y'), (err: { code?: string }) => err.code === 'SCR_ERR_CONFIG');
});

const lineArb = fc.oneof(
  fc.constantFrom('EHLO x', 'HELO', 'MAIL FROM:<a@b>', 'MAIL FROM:', 'RCPT TO:<c@d>', 'RCPT TO:', 'RSET', 'NOOP', 'DATA', 'BDAT 1', 'QUIT', 'VRFY x', 'STARTTLS', ''),
  fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a).toString('latin1')),
  fc.array(fc.constantFrom('M', 'A', 'I', 'L', 'R', 'C', 'P', 'T', ':', '<', '>', '"', '\\', '@', ' ', 'q'), { maxLength: 30 }).map((a) => a.join('')),
);
const stepArb = fc.oneof(
  { weight: 20, arbitrary: lineArb.map((l) => ({ kind: 'line' as const, l })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'overlong' as const, l: '' }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'timeout' as const, l: '' }) },
);

test('dummy-engine property: random input never throws, never sends after close, closes at most once', () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 40 }), fc.integer({ min: 1, max: 30 }), fc.boolean(), (steps, limit, enforce) => {
      const { e, h } = engine({ commandCountLimit: limit, rejectReply: enforce ? ENFORCE : null });
      for (const s of steps) {
        if (s.kind === 'line') e.onLine(Buffer.from(s.l, 'latin1'), false);
        else if (s.kind === 'overlong') e.onOverlong(100);
        else e.onTimeout();
      }
      assert.equal(h.sentAfterClose, false);
      assert.ok(h.closes <= 1);
      assert.equal(e.closed, h.closes === 1);
      assert.ok(e.commands <= limit + 1);
      for (const s of h.sent) assert.match(s, /^(\d{3}[ -][\x20-\x7e]*\r\n)+$/);
      for (const ev of h.events) for (const v of Object.values(ev.fields)) if (typeof v === 'string') assert.match(v, /^[\x20-\x7e]*$/);
    }),
    { numRuns: 2000 },
  );
});

// ---- deep protocol tests ------------------------------------------------------------
// Dialogues fed through the real LineReader, as session/dummy.ts wires it: each
// chunk is one read, so "EHLO x\r\nMAIL ...\r\n" in one chunk is pipelining.

const D30 = 2_592_000_000;

function deepOpts(deep: Record<string, unknown>): DeepOptions {
  const o = deepOptions(validateConfig({ deep }));
  assert.ok(o !== null, 'some deep test enabled');
  return o;
}

const ALL_ON = { pipelining: { enable: true }, non_smtp: { enable: true }, bare_newline: { enable: true } };

function deepSession(deep: Record<string, unknown>, opts: Partial<EngineOptions> = {}): {
  e: DummyEngine; h: Harness; d: DeepTests; feed: (chunk: string) => void;
} {
  const o = deepOpts(deep);
  const todo = DEEP_TESTS.reduce((m, t) => (o[t].enable ? m | DEEP_BIT[t] : m), 0);
  const d = new DeepTests(o, todo);
  const reader = new LineReader(2048);
  const h = harness();
  const out: EngineOutput = { ...h, send: h.send, close: h.close, event: h.event, pending: () => reader.rest() };
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, deep: d, ...opts }, out);
  const sink: LineSink = {
    onLine(line, bareLf, buffered) {
      e.onLine(line, bareLf, buffered);
      if (e.closed) reader.stop();
    },
    onOverlong(n) {
      e.onOverlong(n);
      if (e.closed) reader.stop();
    },
  };
  return { e, h, d, feed: (chunk) => reader.feed(Buffer.from(chunk, 'latin1'), sink) };
}

const DEFER = '450 4.3.2 Service currently unavailable';
const PROTO = '550 5.5.1 Protocol error';
const noq = (to: string, reason: string, reply = DEFER, helo = 'x'): { name: EventName; fields: Record<string, unknown> } =>
  ({ name: EV.NOQUEUE, fields: { reply, helo, from: 'a@b', to, proto: 'ESMTP', reason } });

const deepDialogues: Array<{
  name: string;
  deep: Record<string, unknown>;
  opts?: Partial<EngineOptions>;
  chunks: string[];
  replies: string[];
  events: Array<{ name: EventName; fields: Record<string, unknown> }>;
  closed: boolean;
  /** DeepTests bits after the dialogue. */
  passed: number;
  failed: number;
  complete: boolean;
}> = [
  {
    name: 'well-behaved client: every test passes at RCPT, the RCPT still gets 450',
    deep: ALL_ON,
    chunks: ['EHLO x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n', 'QUIT\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', DEFER, '221 2.0.0 Bye'],
    events: [noq('c@d', 'deep')],
    closed: true, passed: 7, failed: 0, complete: true,
  },
  {
    name: 'hangup before RCPT: nothing passed yet',
    deep: ALL_ON,
    chunks: ['EHLO x\r\n', 'MAIL FROM:<a@b>\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok'],
    events: [],
    closed: false, passed: 0, failed: 0, complete: false,
  },
  {
    name: 'pipelining, enforce: logged after EHLO with the pipelined bytes, later RCPT refused with 550',
    deep: { pipelining: { enable: true } },
    chunks: ['EHLO x\r\nMAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', PROTO],
    events: [
      { name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\n', action: 'enforce' } },
      noq('c@d', 'pipelining', PROTO),
    ],
    closed: false, passed: 0, failed: 1, complete: false,
  },
  {
    name: 'pipelining, drop: 521 at once, the pipelined command is not answered',
    deep: { pipelining: { enable: true, action: 'drop' } },
    chunks: ['EHLO x\r\nMAIL FROM:<a@b>\r\n'],
    replies: ['521 5.5.1 Protocol error'],
    events: [{ name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\n', action: 'drop' } }],
    closed: true, passed: 0, failed: 1, complete: false,
  },
  {
    name: 'pipelining, ignore: logged once, the session goes on, the test passes (short TTL)',
    deep: { pipelining: { enable: true, action: 'ignore' } },
    chunks: ['EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n', 'QUIT\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', DEFER, '221 2.0.0 Bye'],
    events: [
      { name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n', action: 'ignore' } },
      noq('c@d', 'deep'),
    ],
    closed: true, passed: 1, failed: 0, complete: true,
  },
  {
    name: 'pipelining: a partial next command counts; BDAT payload does not',
    deep: { pipelining: { enable: true } },
    chunks: ['MAIL FROM:<a@b>\r\n', 'BDAT 5 LAST\r\nhello'],
    replies: ['250 2.1.0 Ok', '554 5.5.1 Error: no valid recipients'],
    events: [{ name: EV.DATA_WITHOUT_VALID_RCPT, fields: { command: 'BDAT', helo: '', from: 'a@b' } }],
    closed: true, passed: 0, failed: 0, complete: false,
  },
  {
    name: 'pipelining after RCPT: the test fails before RCPT could pass it, the RCPT itself gets the 550',
    deep: { pipelining: { enable: true } },
    chunks: ['EHLO x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\nQUIT\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', PROTO, '221 2.0.0 Bye'],
    events: [
      { name: EV.COMMAND_PIPELINING, fields: { after: 'RCPT', sample: 'QUIT\\r\\n', action: 'enforce' } },
      noq('c@d', 'pipelining', PROTO),
    ],
    closed: true, passed: 0, failed: 1, complete: false,
  },
  {
    name: 'non-SMTP, drop (postscreen default): GET gets the 521 "I can break rules, too"',
    deep: { non_smtp: { enable: true } },
    chunks: ['GET / HTTP/1.0\r\n'],
    replies: ['521 5.7.0 Error: I can break rules, too. Goodbye.'],
    events: [{ name: EV.NON_SMTP_COMMAND, fields: { after: 'CONNECT', sample: 'GET / HTTP/1.0', action: 'drop' } }],
    closed: true, passed: 0, failed: 2, complete: false,
  },
  {
    name: 'non-SMTP, enforce: a header-like line gets 502, later RCPT 550; forbidden verbs any case',
    deep: { non_smtp: { enable: true, action: 'enforce' } },
    chunks: ['EHLO x\r\n', 'Subject: hello\r\n', 'post /x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n'],
    replies: ['250-mx.example.org', '502 5.5.2 Error: command not recognized', '502 5.5.2 Error: command not recognized', '250 2.1.0 Ok', PROTO],
    events: [
      { name: EV.NON_SMTP_COMMAND, fields: { after: 'EHLO', sample: 'Subject: hello', action: 'enforce' } },
      noq('c@d', 'non_smtp', PROTO),
    ],
    closed: false, passed: 0, failed: 2, complete: false,
  },
  {
    name: 'non-SMTP: known verbs never fail (VRFY, AUTH, XCLIENT), nor unknown extensions; the test passes at RCPT',
    deep: { non_smtp: { enable: true, action: 'enforce' } },
    chunks: ['VRFY root\r\n', 'AUTH PLAIN x\r\n', 'XCLIENT ADDR=1.2.3.4\r\n', 'X-FOO bar\r\n', 'EHLO x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n'],
    replies: [...Array(4).fill('502 5.5.2 Error: command not recognized'), '250-mx.example.org', '250 2.1.0 Ok', DEFER],
    events: [noq('c@d', 'deep')],
    closed: false, passed: 2, failed: 0, complete: true,
  },
  {
    name: 'non-SMTP: a verb that is not UTF-8 (TLS ClientHello on the plaintext port)',
    deep: { non_smtp: { enable: true } },
    chunks: ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n'],
    replies: ['521 5.7.0 Error: I can break rules, too. Goodbye.'],
    events: [{ name: EV.NON_SMTP_COMMAND, fields: { after: 'CONNECT', sample: '\\026\\003\\001\\002\\000\\001\\000\\001\\374\\003\\003', action: 'drop' } }],
    closed: true, passed: 0, failed: 2, complete: false,
  },
  {
    name: 'bare newline, ignore (postscreen default): logged, the line is still processed, the test passes',
    deep: { bare_newline: { enable: true } },
    chunks: ['EHLO x\n', 'MAIL FROM:<a@b>\n', 'RCPT TO:<c@d>\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', DEFER],
    events: [{ name: EV.BARE_NEWLINE, fields: { after: 'CONNECT', sample: 'EHLO x', action: 'ignore' } }, noq('c@d', 'deep')],
    closed: false, passed: 4, failed: 0, complete: true,
  },
  {
    name: 'bare newline, enforce after a pass at RCPT: the later offence withdraws the pass',
    deep: { bare_newline: { enable: true, action: 'enforce' } },
    chunks: ['EHLO x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n', 'RSET\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<e@f>\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', DEFER, '250 2.0.0 Ok', '250 2.1.0 Ok', PROTO],
    events: [
      noq('c@d', 'deep'),
      { name: EV.BARE_NEWLINE, fields: { after: 'RCPT', sample: 'RSET', action: 'enforce' } },
      noq('e@f', 'bare_newline', PROTO),
    ],
    closed: false, passed: 0, failed: 4, complete: false,
  },
  {
    name: 'bare newline and pipelining on one line: both logged, the first drop wins',
    deep: { pipelining: { enable: true, action: 'drop' }, bare_newline: { enable: true, action: 'enforce' } },
    chunks: ['EHLO x\nQUIT\n'],
    replies: ['521 5.5.1 Protocol error'],
    events: [
      { name: EV.BARE_NEWLINE, fields: { after: 'CONNECT', sample: 'EHLO x', action: 'enforce' } },
      { name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: 'QUIT\\n', action: 'drop' } },
    ],
    closed: true, passed: 0, failed: 5, complete: false,
  },
  {
    name: 'an early enforced failure keeps its 550; a deep enforce does not replace it',
    deep: { pipelining: { enable: true } },
    opts: { rejectReply: ENFORCE, rejectReason: 'dnsbl' },
    chunks: ['EHLO x\r\nMAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', stripCrlf(ENFORCE)],
    events: [
      { name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\n', action: 'enforce' } },
      noq('c@d', 'dnsbl', stripCrlf(ENFORCE)),
    ],
    closed: false, passed: 0, failed: 1, complete: false,
  },
  {
    name: 'hard error limit 2: the second error reply is followed by 421 too many errors',
    deep: { bare_newline: { enable: true } },
    opts: { hardErrorLimit: 2 },
    chunks: ['FOO\r\n', 'NOOP\r\n', 'BAR\r\n', 'NOOP\r\n'],
    replies: ['502 5.5.2 Error: command not recognized', '250 2.0.0 Ok', '502 5.5.2 Error: command not recognized', '421 4.7.0 mx.example.org Error: too many errors'],
    events: [{ name: EV.COMMAND_ERROR_LIMIT, fields: { after: 'UNIMPLEMENTED', count: 2, limit: 2 } }],
    closed: true, passed: 0, failed: 0, complete: false,
  },
  {
    name: 'hard error limit 1 (stress-like): the 450 at RCPT counts; the test passed before the 421',
    deep: ALL_ON,
    opts: { hardErrorLimit: 1 },
    chunks: ['EHLO x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n'],
    replies: ['250-mx.example.org', '250 2.1.0 Ok', DEFER, '421 4.7.0 mx.example.org Error: too many errors'],
    events: [noq('c@d', 'deep'), { name: EV.COMMAND_ERROR_LIMIT, fields: { after: 'RCPT', count: 1, limit: 1 } }],
    closed: true, passed: 7, failed: 0, complete: true,
  },
];

for (const d of deepDialogues) {
  test(`dummy-engine deep: ${d.name}`, () => {
    const { e, h, d: deep, feed } = deepSession(d.deep, d.opts);
    for (const c of d.chunks) feed(c);
    assert.deepEqual(h.sent.map((s) => s.split('\r\n')[0]), d.replies);
    assert.deepEqual(h.events, d.events);
    assert.equal(e.closed, d.closed);
    assert.equal(h.sentAfterClose, false);
    assert.deepEqual({ passed: deep.passed, failed: deep.failed, complete: deep.complete },
      { passed: d.passed, failed: d.failed, complete: d.complete });
  });
}

test('dummy-engine deep: without deep tests GET, bare LF and pipelining are just commands (the defaults)', () => {
  const h = harness();
  const reader = new LineReader(2048);
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'x', commandCountLimit: 20 }, h);
  reader.feed(Buffer.from('GET / HTTP/1.0\nEHLO x\r\nMAIL FROM:<a@b>\r\n'), { onLine: (l, b, n) => e.onLine(l, b, n), onOverlong: (n) => e.onOverlong(n) });
  assert.deepEqual(h.sent.map((s) => s.split('\r\n')[0]), ['502 5.5.2 Error: command not recognized', '250-mx.example.org', '250 2.1.0 Ok']);
  assert.deepEqual(h.events, []);
});

test('dummy-engine deep: the pass TTLs: full TTL at RCPT, the shortest TTL of all tests after an ignored failure', () => {
  const { d, feed } = deepSession({ pipelining: { enable: true, action: 'ignore' }, bare_newline: { enable: true, ttl: '7d' } });
  feed('EHLO x\r\nMAIL FROM:<a@b>\r\n');
  feed('RCPT TO:<c@d>\r\n');
  const now = 1_000_000;
  // ignoreTtl = min(pregreet.ttl 1d, dnsbl.ttl_min 1m, deep TTLs) = 1m
  assert.equal(d.opts.ignoreTtl, 60_000);
  assert.equal(d.passUntil('pipelining', now), now + 60_000);
  assert.equal(d.passUntil('bare_newline', now), now + 7 * 86_400_000);
  assert.equal(d.passUntil('non_smtp', now), 0, 'not run');
  assert.equal(D30, d.opts.non_smtp.ttl);
});

// ---- STARTTLS ---------------------------------------------------------------

test('dummy-engine: without TLS, STARTTLS is not offered in EHLO and gets 502 5.5.1', () => {
  const { e, h } = engine();
  say(e, 'EHLO x');
  say(e, 'STARTTLS');
  assert.ok(!h.sent[0]?.includes('STARTTLS'));
  assert.equal(h.sent[1], '502 5.5.1 Error: command not implemented\r\n');
  assert.equal(e.tlsActive, false);
});

test('dummy-engine: with TLS, EHLO offers STARTTLS; STARTTLS gets 220 Ready through startTls, forgets HELO and the transaction', () => {
  const { e, h } = engine({ tls: true });
  const upgrades: string[] = [];
  h.startTls = (reply: string) => { upgrades.push(reply); };
  say(e, 'EHLO client.example');
  assert.ok(h.sent[0]?.includes('250-STARTTLS\r\n'), h.sent[0]);
  assert.ok(!h.sent[0]?.includes('PIPELINING'));
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'STARTTLS extra');
  assert.equal(h.sent.at(-1), '501 5.5.4 Syntax: STARTTLS\r\n');
  say(e, 'STARTTLS');
  assert.deepEqual(upgrades, ['220 2.0.0 Ready to start TLS\r\n']);
  assert.equal(e.tlsActive, true);
  assert.equal(e.helo, null, 'HELO forgotten (RFC 3207)');
  assert.equal(e.mailFrom, null, 'transaction forgotten');
  // Inside TLS: RCPT needs a new MAIL; STARTTLS is no longer offered.
  const before = h.sent.length;
  say(e, 'RCPT TO:<c@d>');
  say(e, 'EHLO client.example');
  say(e, 'STARTTLS');
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'RCPT TO:<c@d>');
  const after = h.sent.slice(before);
  assert.equal(after[0], '503 5.5.1 Error: need MAIL command\r\n');
  assert.ok(after[1]?.startsWith('250-mx.example.org') && !after[1].includes('STARTTLS'), after[1]);
  assert.equal(after[2], '554 5.5.1 Error: TLS already active\r\n');
  assert.equal(after[4], '450 4.3.2 Service currently unavailable\r\n');
  assert.equal(h.events.at(-1)?.fields['helo'], 'client.example');
  assert.equal(e.closed, false);
});

test('dummy-engine: with TLS but no startTls output, STARTTLS sends the 220 itself', () => {
  const { e, h } = engine({ tls: true });
  say(e, 'STARTTLS');
  assert.deepEqual(h.sent, ['220 2.0.0 Ready to start TLS\r\n']);
});

// ---- same-connection handoff (deep.after_pass: handoff) -------------------------------

/** A deep session whose output records handover() calls and answers them with `take`. */
function handoverSession(deep: Record<string, unknown>, take: boolean, opts: Partial<EngineOptions> = {}): {
  e: DummyEngine; h: Harness; offers: Array<Record<string, string | null>>; say: (line: string) => void;
} {
  const o = deepOpts(deep);
  const todo = DEEP_TESTS.reduce((m, t) => (o[t].enable ? m | DEEP_BIT[t] : m), 0);
  const h = harness();
  const offers: Array<Record<string, string | null>> = [];
  const out: EngineOutput = {
    send: h.send, close: h.close, event: h.event,
    handover(env) {
      offers.push({
        helo: env.heloLine?.toString('latin1') ?? null, name: env.heloName?.toString('latin1') ?? null,
        mail: env.mailLine.toString('latin1'), rcpt: env.rcptLine.toString('latin1'),
      });
      return take;
    },
  };
  const e = new DummyEngine({
    replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, hardErrorLimit: 20,
    deep: new DeepTests(o, todo), keepEnvelope: true, ...opts,
  }, out);
  return { e, h, offers, say: (line) => e.onLine(Buffer.from(line, 'latin1'), false, 0) };
}

test('dummy-engine handover: the RCPT that completes the deep tests offers the raw envelope; taken, the engine answers nothing more', () => {
  const { e, h, offers, say: s } = handoverSession(ALL_ON, true);
  s('EHLO  Client.Example  extra');
  s('MAIL FROM:<A@b.example> SIZE=100 BODY=8BITMIME');
  s('RCPT TO:<c@d.example> NOTIFY=NEVER');
  assert.deepEqual(offers, [{
    helo: 'EHLO  Client.Example  extra', name: 'Client.Example',
    mail: 'MAIL FROM:<A@b.example> SIZE=100 BODY=8BITMIME', rcpt: 'RCPT TO:<c@d.example> NOTIFY=NEVER',
  }]);
  assert.equal(h.sent.length, 2, 'EHLO and MAIL answered, the RCPT is not');
  assert.equal(h.events.length, 0, 'no NOQUEUE: the recipient was not refused');
  s('DATA');
  assert.equal(h.sent.length, 2, 'input while the backend is asked is ignored');
  e.handedOver();
  assert.equal(e.closed, true);
  assert.equal(h.closes, 0, 'the engine does not close the connection the backend now owns');
});

test('dummy-engine handover: refused by the session, the RCPT gets the 450 and NOQUEUE, and the session goes on', () => {
  const { e, h, offers, say: s } = handoverSession(ALL_ON, false);
  s('HELO c.example');
  s('MAIL FROM:<a@b>');
  s('RCPT TO:<x@y>');
  assert.equal(offers.length, 1);
  assert.equal(offers[0]?.['helo'], 'HELO c.example');
  assert.equal(stripCrlf(h.sent.at(-1) ?? ''), DEFER);
  assert.deepEqual(h.events.map((x) => x.name), [EV.NOQUEUE]);
  assert.equal(e.closed, false);
});

test('dummy-engine handover: refuseHandedRcpt() after a take answers the held RCPT with the 450 and NOQUEUE, then the dialogue goes on', () => {
  const { e, h, say: s } = handoverSession(ALL_ON, true);
  s('EHLO c.example');
  s('MAIL FROM:<a@b>');
  s('RCPT TO:<x@y>');
  e.refuseHandedRcpt();
  assert.equal(stripCrlf(h.sent.at(-1) ?? ''), DEFER);
  assert.deepEqual(h.events.map((x) => [x.name, x.fields['to'], x.fields['helo']]), [[EV.NOQUEUE, 'x@y', 'c.example']]);
  e.refuseHandedRcpt();
  assert.equal(h.sent.length, 3, 'EHLO, MAIL, the 450: a second refusal sends nothing');
  s('QUIT');
  assert.equal(stripCrlf(h.sent.at(-1) ?? ''), '221 2.0.0 Bye');
});

test('dummy-engine handover: not offered after a failed deep test, to an enforced client, without MAIL, or without keepEnvelope', () => {
  const cases: Array<{ name: string; take?: Partial<EngineOptions>; lines: string[]; feedChunk?: string }> = [
    { name: 'bare newline enforced', lines: [] , feedChunk: 'EHLO x\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n' },
    { name: 'enforced client (550 at RCPT)', take: { rejectReply: ENFORCE }, lines: ['EHLO x', 'MAIL FROM:<a@b>', 'RCPT TO:<c@d>'] },
    { name: 'RCPT without MAIL', lines: ['EHLO x', 'RCPT TO:<c@d>'] },
    { name: 'keepEnvelope off', take: { keepEnvelope: false }, lines: ['EHLO x', 'MAIL FROM:<a@b>', 'RCPT TO:<c@d>'] },
  ];
  for (const c of cases) {
    const { e, h, offers, say: s } = handoverSession({ bare_newline: { enable: true, action: 'enforce' } }, true, c.take ?? {});
    if (c.feedChunk !== undefined) {
      for (const line of c.feedChunk.split(/(?<=\n)/)) e.onLine(Buffer.from(line.replace(/\r?\n$/, ''), 'latin1'), !line.endsWith('\r\n'), 0);
    }
    for (const l of c.lines) s(l);
    assert.equal(offers.length, 0, c.name);
    assert.match(h.sent.at(-1) ?? '', /^[45]\d\d /, `${c.name}: the RCPT is refused`);
  }
});

test('dummy-engine handover: RSET and a new HELO change what is replayed; STARTTLS forgets the HELO line', () => {
  const { offers, say: s } = handoverSession(ALL_ON, false, { tls: true });
  s('EHLO first.example');
  s('MAIL FROM:<old@b>');
  s('RSET');
  s('HELO second.example');
  s('MAIL FROM:<new@b>');
  s('RCPT TO:<r1@d>');
  assert.deepEqual(offers[0], { helo: 'HELO second.example', name: 'second.example', mail: 'MAIL FROM:<new@b>', rcpt: 'RCPT TO:<r1@d>' });
  const t = handoverSession(ALL_ON, false, { tls: true });
  t.say('EHLO a.example');
  t.say('STARTTLS');
  t.say('MAIL FROM:<a@b>');
  t.say('RCPT TO:<c@d>');
  assert.equal(t.offers[0]?.['helo'], null, 'no HELO after STARTTLS');
});

test('dummy-engine: learned EHLO replies replace the built-in list', () => {
  const plain = '250-mx.example.org\r\n250 SIZE 1000\r\n';
  const tls = '250-mx.example.org\r\n250-SIZE 1000\r\n250 STARTTLS\r\n';
  const { e, h } = engine({ ehlo: { plain, tls } });
  say(e, 'EHLO x');
  assert.equal(h.sent.at(-1), plain);
  const t = engine({ ehlo: { plain, tls }, tls: true });
  say(t.e, 'EHLO x');
  assert.equal(t.h.sent.at(-1), tls);
  say(t.e, 'HELO x');
  assert.equal(t.h.sent.at(-1), R.helo);
});

test('dummy-engine handover property: random input, takes and refusals: one offer per held RCPT, nothing sent while held, replies well-formed', () => {
  const refuseArb = fc.constant({ kind: 'refuse' as const, l: '' });
  const steps = fc.array(fc.oneof({ weight: 8, arbitrary: stepArb }, { weight: 1, arbitrary: refuseArb }), { maxLength: 40 });
  fc.assert(
    fc.property(steps, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), (list, takes) => {
      let offers = 0;
      let held = false;
      const h = harness();
      const out: EngineOutput = {
        send: (t) => { assert.equal(held, false, 'nothing is sent while the RCPT is held'); h.send(t); },
        close: h.close, event: h.event,
        handover(env) {
          assert.equal(held, false, 'no offer while one is held');
          assert.match(env.mailLine.toString('latin1'), /^ *MAIL/i);
          assert.match(env.rcptLine.toString('latin1'), /^ *RCPT/i);
          const take = takes[offers++ % takes.length] ?? false;
          held = take;
          return take;
        },
      };
      const o = deepOpts(ALL_ON);
      const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 30, hardErrorLimit: 5,
        deep: new DeepTests(o, 7), keepEnvelope: true }, out);
      for (const s of list) {
        if (s.kind === 'refuse') {
          held = false;
          e.refuseHandedRcpt();
        } else if (s.kind === 'line') e.onLine(Buffer.from(s.l, 'latin1'), false, 0);
        else if (s.kind === 'overlong') { if (!held) e.onOverlong(100); } else if (!held) e.onTimeout();
      }
      assert.equal(h.sentAfterClose, false);
      assert.ok(h.closes <= 1);
      for (const t of h.sent) assert.match(t, /^(\d{3}[ -][\x20-\x7e]*\r\n)+$/);
    }),
    { numRuns: 1000 },
  );
});

/** An engine whose out.askRcpt asks (true) or declines (false); the asks are recorded. */
function policySession(ask: boolean, opts: Partial<EngineOptions> = {}): { e: DummyEngine; h: Harness; asks: string[][] } {
  const h = harness();
  const asks: string[][] = [];
  const out: EngineOutput = {
    send: (t) => h.send(t), close: () => h.close(), event: (n, f) => h.event(n, f),
    askRcpt(helo, from, to) {
      asks.push([helo, from, to]);
      return ask;
    },
  };
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'test', commandCountLimit: 20, ...opts }, out);
  return { e, h, asks };
}

const POLICY_550 = '550 5.7.1 <c@d>: Recipient address rejected: policy says no\r\n';

test('dummy-engine policy at RCPT: the RCPT is held until answerRcpt; the service\'s reply is sent and logged with reason policy', () => {
  const { e, h, asks } = policySession(true);
  say(e, 'EHLO client.example');
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'RCPT TO:<c@d>');
  assert.deepEqual(asks, [['client.example', 'a@b', 'c@d']]);
  assert.equal(h.sent.length, 2, 'EHLO and MAIL answered, the RCPT waits for the service');
  say(e, 'NOOP');
  assert.equal(h.sent.length, 2, 'input while the service is asked is ignored');
  e.answerRcpt(POLICY_550);
  assert.equal(h.sent.at(-1), POLICY_550);
  assert.deepEqual(h.events, [{ name: EV.NOQUEUE, fields: {
    reply: stripCrlf(POLICY_550), helo: 'client.example', from: 'a@b', to: 'c@d', proto: 'ESMTP', reason: 'policy',
  } }]);
  assert.equal(e.errors, 1, 'the service\'s 550 counts as an error reply');
  e.answerRcpt(POLICY_550);
  assert.equal(h.sent.length, 3, 'a second answer sends nothing');
  say(e, 'QUIT');
  assert.equal(h.sent.at(-1), R.bye, 'the dialogue goes on after the answer');
});

test('dummy-engine policy at RCPT: answerRcpt(null) gives the engine\'s own refusal; declining asks gives it at once', () => {
  const a = policySession(true, { rejectReply: ENFORCE, rejectReason: 'dnsbl' });
  say(a.e, 'MAIL FROM:<a@b>');
  say(a.e, 'RCPT TO:<c@d>');
  a.e.answerRcpt(null);
  assert.deepEqual(a.h.sent.slice(1), [ENFORCE]);
  assert.deepEqual(a.h.events, [{ name: EV.NOQUEUE, fields: {
    reply: stripCrlf(ENFORCE), helo: '', from: 'a@b', to: 'c@d', proto: 'SMTP', reason: 'dnsbl',
  } }]);
  const b = policySession(false);
  say(b.e, 'HELO h');
  say(b.e, 'MAIL FROM:<a@b>');
  say(b.e, 'RCPT TO:<c@d>');
  assert.equal(b.asks.length, 1);
  assert.equal(b.h.sent.at(-1), R.deferRcpt, 'declined: the 450 at once');
  say(b.e, 'NOOP');
  assert.equal(b.h.sent.at(-1), R.ok, 'and the engine reads on');
  b.e.answerRcpt(POLICY_550);
  assert.equal(b.h.sent.at(-1), R.ok, 'an answer nobody waits for sends nothing');
});

test('dummy-engine policy at RCPT: the answer that reaches the hard error limit ends the session with 421', () => {
  for (const reply of [POLICY_550, null]) {
    const { e, h } = policySession(true, { hardErrorLimit: 1 });
    say(e, 'MAIL FROM:<a@b>');
    say(e, 'RCPT TO:<c@d>');
    e.answerRcpt(reply);
    assert.deepEqual(h.events.map((x) => x.name), [EV.NOQUEUE, EV.COMMAND_ERROR_LIMIT]);
    assert.deepEqual(h.events[1]?.fields, { after: 'RCPT', count: 1, limit: 1 });
    assert.equal(h.sent.at(-1), R.tooManyErrors);
    assert.equal(e.closed, true);
    assert.equal(h.closes, 1);
  }
  const ok = policySession(true, { hardErrorLimit: 2 });
  say(ok.e, 'MAIL FROM:<a@b>');
  say(ok.e, 'RCPT TO:<c@d>');
  ok.e.answerRcpt(POLICY_550);
  assert.equal(ok.e.closed, false, 'one error of two allowed');
  const closed = policySession(true);
  say(closed.e, 'MAIL FROM:<a@b>');
  say(closed.e, 'RCPT TO:<c@d>');
  closed.e.onTimeout();
  closed.e.answerRcpt(POLICY_550);
  assert.equal(closed.h.sent.at(-1), R.timeout, 'an answer after close sends nothing');
});

// ---- what the log and the session read from the engine -----------------------------

test('dummy-engine: leading spaces before the verb are skipped (postscreen\'s mystrtok), as for every verb', () => {
  const { e, h } = engine();
  say(e, ' EHLO x');
  say(e, '   MAIL FROM:<a@b>');
  say(e, '  RCPT TO:<c@d>');
  assert.deepEqual(h.sent.map((s) => s.split('\r\n')[0]), ['250-mx.example.org', '250 2.1.0 Ok', DEFER]);
  assert.equal(e.protocol, 'ESMTP');
  assert.equal(e.where, 'RCPT');
});

test('dummy-engine: "after X" names the last command: XCLIENT and XFORWARD by name, a longer or unknown verb as UNIMPLEMENTED', () => {
  const after = (line: string): unknown => {
    const { e, h } = engine();
    say(e, line);
    e.onTimeout();
    assert.equal(stripCrlf(h.sent[0] ?? ''), '502 5.5.2 Error: command not recognized', line);
    return h.events.at(-1)?.fields['after'];
  };
  assert.equal(after('XCLIENT ADDR=192.0.2.1'), 'XCLIENT');
  assert.equal(after('xforward NAME=x'), 'XFORWARD');
  assert.equal(after('VRFY root'), 'VRFY');
  assert.equal(after('XCLIENTS x'), 'UNIMPLEMENTED', 'XCLIENT is the whole word');
  assert.equal(after('XCLIEN x'), 'UNIMPLEMENTED');
  assert.equal(after('FOO'), 'UNIMPLEMENTED');
});

test('dummy-engine: the session reads protocol (never downgraded by HELO), where, rcpts (cleared with the transaction) and its output', () => {
  const { e, h } = engine();
  assert.equal(e.output, h);
  assert.deepEqual(e.rcpts, [], 'no recipient before RCPT');
  assert.equal(e.protocol, 'SMTP');
  assert.equal(e.where, 'CONNECT');
  say(e, 'HELO a');
  assert.equal(e.protocol, 'SMTP');
  say(e, 'EHLO a');
  say(e, 'HELO a');
  assert.equal(e.protocol, 'ESMTP', 'a later HELO does not downgrade');
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'RCPT TO:<c@d>');
  say(e, 'RCPT TO:<e@f>');
  assert.deepEqual(e.rcpts, ['c@d', 'e@f']);
  say(e, 'RSET');
  assert.deepEqual(e.rcpts, [], 'RSET ends the transaction');
  assert.equal(e.where, 'RSET');
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'RCPT TO:<g@h>');
  assert.deepEqual(e.rcpts, ['g@h']);
  say(e, 'HELO b');
  assert.deepEqual(e.rcpts, [], 'so does HELO');
});

test('dummy-engine deep: a late enforced verdict (setRejectReply) keeps its 550 when a deep test enforces after it', () => {
  const { e, h, feed } = deepSession({ pipelining: { enable: true } });
  feed('EHLO x\r\n');
  e.setRejectReply(ENFORCE, 'dnsbl');
  feed('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n');
  assert.equal(h.sent.at(-1), ENFORCE);
  assert.deepEqual(h.events.map((x) => [x.name, x.fields['reason'] ?? x.fields['action']]), [[EV.COMMAND_PIPELINING, 'enforce'], [EV.NOQUEUE, 'dnsbl']]);
});

test('dummy-engine deep: bare newline with drop: 521 and nothing more, the offending line is not answered', () => {
  const { e, h, feed } = deepSession({ bare_newline: { enable: true, action: 'drop' }, non_smtp: { enable: true } });
  feed('GET / HTTP/1.0\n');
  assert.deepEqual(h.sent, ['521 5.5.1 Protocol error\r\n']);
  assert.deepEqual(h.events, [{ name: EV.BARE_NEWLINE, fields: { after: 'CONNECT', sample: 'GET / HTTP/1.0', action: 'drop' } }]);
  assert.equal(e.closed, true);
  assert.equal(e.commands, 0);
});

test('dummy-engine deep: non-SMTP looks only at verbs the engine does not know, even when a known one is in forbidden_commands', () => {
  const { h, feed } = deepSession({ non_smtp: { enable: true }, forbidden_commands: ['VRFY', 'NOOP', 'GET'] });
  feed('VRFY root\r\n');
  feed('NOOP\r\n');
  assert.equal(h.events.length, 0, 'VRFY and NOOP are known verbs');
  assert.deepEqual(h.sent.map((s) => s.split('\r\n')[0]), ['502 5.5.2 Error: command not recognized', '250 2.0.0 Ok']);
  feed('get /\r\n');
  assert.deepEqual(h.events.map((x) => x.name), [EV.NON_SMTP_COMMAND]);
});

test('dummy-engine deep: pipelining detected with an output that cannot show the pending input: an empty sample, no crash', () => {
  const o = deepOpts({ pipelining: { enable: true } });
  const h = harness();
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, deep: new DeepTests(o, DEEP_BIT.pipelining) }, h);
  e.onLine(Buffer.from('EHLO x'), false, 17);
  assert.deepEqual(h.events, [{ name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: '', action: 'enforce' } }]);
});

test('dummy-engine deep: in shadow mode a failure logs action shadow and what it would have done, and the session goes on', () => {
  for (const [action, would] of [['drop', 'drop'], ['enforce', 'reject']] as const) {
    const o = deepOptions(validateConfig({ mode: 'shadow', deep: { pipelining: { enable: true, action } } }));
    assert.ok(o !== null);
    const h = harness();
    const reader = new LineReader(2048);
    const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, deep: new DeepTests(o, DEEP_BIT.pipelining), ...{} },
      { ...h, send: h.send, close: h.close, event: h.event, pending: () => reader.rest() });
    reader.feed(Buffer.from('EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n'), { onLine: (l, b, n) => e.onLine(l, b, n), onOverlong: (n) => e.onOverlong(n) });
    assert.deepEqual(h.events[0], { name: EV.COMMAND_PIPELINING, fields: { after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n', action: 'shadow', would } }, action);
    assert.deepEqual(h.sent.map((s) => s.split('\r\n')[0]), ['250-mx.example.org', '250 2.1.0 Ok', DEFER], `${action}: nothing enforced`);
    assert.equal(h.events[1]?.fields['reason'], 'deep');
  }
  // Built by hand without `would` (a per-test shadow): it would reject.
  const o = deepOpts({ bare_newline: { enable: true } });
  const d = new DeepTests({ ...o, bare_newline: { ...o.bare_newline, action: 'shadow' } }, DEEP_BIT.bare_newline);
  const h = harness();
  const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, deep: d }, h);
  e.onLine(Buffer.from('EHLO x'), true, 0);
  assert.deepEqual(h.events, [{ name: EV.BARE_NEWLINE, fields: { after: 'CONNECT', sample: 'EHLO x', action: 'shadow', would: 'reject' } }]);
});

test('dummy-engine handover: not offered with no deep test due or no deep tests at all, nor without out.handover; the RCPT gets the 450', () => {
  const o = deepOpts(ALL_ON);
  for (const [name, deep, withHandover] of [
    ['no test due (todo 0)', new DeepTests(o, 0), true],
    ['no deep tests', null, true],
    ['no handover in the output', new DeepTests(o, 7), false],
  ] as const) {
    const h = harness();
    const offers: string[] = [];
    const out: EngineOutput = withHandover ? { ...h, send: h.send, close: h.close, event: h.event, handover: () => { offers.push(name); return true; } } : h;
    const e = new DummyEngine({ replies: R, rejectReply: null, rejectReason: 'deep', commandCountLimit: 20, deep, keepEnvelope: true }, out);
    for (const l of ['EHLO x', 'MAIL FROM:<a@b>', 'RCPT TO:<c@d>']) say(e, l);
    assert.deepEqual(offers, [], name);
    assert.equal(h.sent.at(-1), R.deferRcpt, name);
    assert.deepEqual(h.events.map((x) => x.name), [EV.NOQUEUE], name);
  }
});

test('dummy-engine handover: refuseHandedRcpt() that reaches the hard error limit ends the session with 421; no limit, no end', () => {
  for (const [limit, ends] of [[1, true], [2, false], [0, false]] as const) {
    const { e, h, say: s } = handoverSession(ALL_ON, true, { hardErrorLimit: limit });
    s('EHLO x');
    s('MAIL FROM:<a@b>');
    s('RCPT TO:<c@d>');
    e.refuseHandedRcpt();
    assert.equal(e.closed, ends, `limit ${limit}`);
    if (ends) {
      assert.deepEqual(h.events.map((x) => x.name), [EV.NOQUEUE, EV.COMMAND_ERROR_LIMIT]);
      assert.deepEqual(h.events[1]?.fields, { after: 'RCPT', count: 1, limit: 1 });
      assert.deepEqual(h.sent.slice(-2), [R.deferRcpt, R.tooManyErrors]);
      assert.equal(h.closes, 1);
    } else {
      assert.deepEqual(h.events.map((x) => x.name), [EV.NOQUEUE], `limit ${limit}`);
      assert.equal(h.sent.at(-1), R.deferRcpt);
    }
  }
});

test('dummy-engine policy at RCPT: a client that sent no HELO is asked about and logged with an empty helo', () => {
  const { e, h, asks } = policySession(true);
  say(e, 'MAIL FROM:<a@b>');
  say(e, 'RCPT TO:<c@d>');
  assert.deepEqual(asks, [['', 'a@b', 'c@d']]);
  e.answerRcpt(POLICY_550);
  assert.equal(h.events[0]?.fields['helo'], '');
});
