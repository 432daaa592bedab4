/*
 * test/smtp/dummy-engine.test.ts - DummyEngine dialogues (lines in, replies and
 * events out), replies texts, and a property: random input never throws and
 * nothing is sent after close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DummyEngine, type EngineOptions, type EngineOutput } from '../../src/smtp/dummy-engine.js';
import { makeReplies, dnsblReply, stripCrlf } from '../../src/smtp/replies.js';
import { EV, type EventName } from '../../src/log/events.js';

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
    events: [{ name: EV.NOQUEUE, fields: { reply: '450 4.3.2 Service currently unavailable', helo: '', from: 'a@b', to: 'c@d', proto: 'SMTP', reason: 'test' } }], closed: true },
  { name: 'DATA with an argument: 501, close', lines: ['DATA now'], replies: ['501 5.5.4 Syntax: DATA'], closed: true },
  { name: 'BDAT without size: 501, close', lines: ['BDAT'], replies: ['501 5.5.4 Syntax: BDAT count [LAST]'], closed: true },
  { name: 'BDAT without MAIL: 554 need MAIL, close', lines: ['BDAT 10 LAST'], replies: ['554 5.5.1 Error: need MAIL command'], closed: true },
  { name: 'BDAT in a transaction: 554 no valid recipients, close', lines: ['MAIL FROM:<a@b>', 'BDAT 10'], replies: ['250 2.1.0 Ok', '554 5.5.1 Error: no valid recipients'], closed: true },
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
  assert.equal(dnsblReply(550, '192.0.2.1', 'zen.example'), '550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.example\r\n');
  assert.equal(dnsblReply(521, '::1', 'bad\r\nsite'), '521 5.7.1 Service unavailable; client [::1] blocked using bad??site\r\n');
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
