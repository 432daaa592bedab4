/*
 * test/checks/non-smtp.test.ts - the non-SMTP command test: forbidden verbs,
 * header-like words (Postfix's is_header), UTF-8 validity; pipelining and
 * bare-newline helpers; DeepTests bookkeeping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ForbiddenCommands, isHeaderName, isValidUtf8, nonSmtpCommand, nonSmtpFields } from '../../src/checks/non-smtp.js';
import { pipelined, pipeliningFields } from '../../src/checks/pipelining.js';
import { bareNewline, bareNewlineFields } from '../../src/checks/bare-newline.js';
import { DEEP_BIT, DEEP_TESTS, DeepTests, type DeepOptions } from '../../src/checks/deep.js';

const FORBIDDEN = new ForbiddenCommands(['CONNECT', 'GET', 'POST']);

/** The first word of `line` (split on SP, as the engine), then the verdict. */
function verdict(line: string, forbidden = FORBIDDEN): string | null {
  const b = Buffer.from(line, 'latin1');
  let s = 0;
  while (s < b.length && b[s] === 0x20) s++;
  let e = s;
  while (e < b.length && b[e] !== 0x20) e++;
  return nonSmtpCommand(b, s, e, forbidden);
}

const CASES: Array<{ line: string; want: string | null; why: string }> = [
  { line: 'GET / HTTP/1.0', want: 'forbidden', why: 'HTTP request' },
  { line: 'get /', want: 'forbidden', why: 'case does not matter' },
  { line: 'POST /cgi-bin/x HTTP/1.1', want: 'forbidden', why: 'HTTP POST' },
  { line: 'CONNECT mx.example:25 HTTP/1.1', want: 'forbidden', why: 'proxy probe' },
  { line: '  GET /', want: 'forbidden', why: 'leading spaces are skipped' },
  { line: 'GETX /', want: null, why: 'whole word only' },
  { line: 'GE', want: null, why: 'prefix is not the word' },
  { line: 'Subject: hello', want: 'header', why: 'header line' },
  { line: 'To:<a@b>', want: 'header', why: 'anything may follow the colon' },
  { line: 'X-Mailer\t: x', want: 'header', why: 'tabs before the colon (RFC 822 obsolete syntax)' },
  { line: 'Subject : hello', want: null, why: 'the word ends at SP, as postscreen\'s token' },
  { line: ':foo', want: null, why: 'no name before the colon' },
  { line: 'Na\x01me: x', want: null, why: 'a control character breaks the header name; it is valid UTF-8' },
  { line: 'Na\x7fme: x', want: null, why: 'DEL is no printable character either: not a header name' },
  { line: 'Na~me: x', want: 'header', why: '~ (0x7e) is the last printable character' },
  { line: 'X-FOO bar', want: null, why: 'an unknown extension is not non-SMTP' },
  { line: '', want: null, why: 'empty line' },
  { line: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', want: 'utf8', why: 'TLS ClientHello (its random bytes are no UTF-8)' },
  { line: '\x16\x03\x01\x00', want: null, why: 'control bytes alone are valid UTF-8' },
  { line: 'caf\xc3\xa9 x', want: null, why: 'valid UTF-8 verb' },
  { line: 'caf\xe9 x', want: 'utf8', why: 'latin1 byte' },
];

for (const c of CASES) {
  test(`non-smtp: ${JSON.stringify(c.line)} -> ${String(c.want)} (${c.why})`, () => {
    assert.equal(verdict(c.line), c.want);
  });
}

test('non-smtp: the forbidden list is configurable; an empty list forbids nothing', () => {
  assert.equal(verdict('HELP me', new ForbiddenCommands(['help'])), 'forbidden');
  assert.equal(verdict('GET /', new ForbiddenCommands([])), null);
  assert.equal(new ForbiddenCommands(['A', '']).size, 1);
});

test('non-smtp: only the letters a-z are folded: a forbidden word with a, z or a bracket matches as written', () => {
  const f = new ForbiddenCommands(['ZAP', 'X[', 'Y@']);
  const has = (s: string): boolean => f.has(Buffer.from(s, 'latin1'), 0, s.length);
  assert.equal(has('zap'), true, 'z and a are letters');
  assert.equal(has('Zap'), true);
  assert.equal(has('x{'), false, '{ (0x7b) is no lower-case [');
  assert.equal(has('x['), true);
  assert.equal(has('y`'), false, '` (0x60) is no lower-case @');
});

test('non-smtp: isHeaderName: spaces or tabs may come between the name and the colon, never before the name', () => {
  // The engine splits the verb on SP, so only a tab reaches it there; isHeaderName itself is Postfix's is_header().
  const h = (s: string): boolean => isHeaderName(Buffer.from(s, 'latin1'), 0, s.length);
  assert.equal(h('Subject :'), true);
  assert.equal(h('Subject \t :x'), true);
  assert.equal(h(' Subject:'), false);
  assert.equal(h('\tSubject:'), false);
  assert.equal(h('Sub ject:'), false, 'one name, no space inside');
});

test('non-smtp: isValidUtf8 on sub-ranges: a sequence cut by the end of the range is invalid', () => {
  const b = Buffer.from([0x63, 0xc3, 0xa9, 0xe2, 0x82, 0xac]); // "c", U+00E9, U+20AC
  assert.equal(isValidUtf8(b, 0, 3), true);
  assert.equal(isValidUtf8(b, 0, 2), false, 'the lead byte without its continuation');
  assert.equal(isValidUtf8(b, 3, 5), false, 'two of three bytes');
  assert.equal(isValidUtf8(b, 3, 6), true);
  assert.equal(isValidUtf8(b, 1, 6), true);
});

test('non-smtp: isValidUtf8 at the edges of RFC 3629: surrogates, overlong forms, U+10FFFF, lead bytes F5-FF', () => {
  const v = (...a: number[]): boolean => isValidUtf8(Buffer.from(a), 0, a.length);
  assert.equal(v(0xed, 0x9f, 0xbf), true, 'U+D7FF');
  assert.equal(v(0xed, 0xa0, 0x80), false, 'U+D800, the first surrogate');
  assert.equal(v(0xed, 0xbf, 0xbf), false, 'U+DFFF, the last surrogate');
  assert.equal(v(0xee, 0x80, 0x80), true, 'U+E000');
  assert.equal(v(0xe0, 0x80, 0x80), false, 'overlong NUL in three bytes');
  assert.equal(v(0xe0, 0x9f, 0xbf), false, 'overlong U+07FF');
  assert.equal(v(0xe0, 0xa0, 0x80), true, 'U+0800');
  assert.equal(v(0xf0, 0x8f, 0xbf, 0xbf), false, 'overlong U+FFFF');
  assert.equal(v(0xf4, 0x8f, 0xbf, 0xbf), true, 'U+10FFFF, the last code point');
  assert.equal(v(0xf4, 0x90, 0x80, 0x80), false, 'U+110000');
  for (let b = 0xf5; b <= 0xff; b++) assert.equal(v(b, 0x80, 0x80, 0x80), false, `lead byte ${b.toString(16)}`);
});

test('non-smtp: isHeaderName on sub-ranges', () => {
  const b = Buffer.from('xxSubject:yy');
  assert.equal(isHeaderName(b, 2, 10), true);
  assert.equal(isHeaderName(b, 2, 9), false, 'colon outside the range');
  assert.equal(isHeaderName(b, 0, 0), false);
});

test('non-smtp property: isValidUtf8 agrees with the WHATWG fatal decoder', () => {
  const dec = new TextDecoder('utf-8', { fatal: true });
  const valid = (u: Uint8Array): boolean => {
    try {
      dec.decode(u);
      return true;
    } catch {
      return false;
    }
  };
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 12 }),
    fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
    fc.array(fc.constantFrom(0xc0, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x80, 0xa0, 0xbf, 0x9f, 0x8f, 0x41), { maxLength: 8 }).map((a) => new Uint8Array(a)),
  );
  fc.assert(fc.property(bytes, (u) => {
    const b = Buffer.from(u);
    assert.equal(isValidUtf8(b, 0, b.length), valid(u), JSON.stringify([...u]));
  }), { numRuns: 5000 });
});

test('non-smtp property: a header-like word is one name without SP or control characters, then optional tabs, then a colon', () => {
  const ref = (s: string): boolean => /^[\x21-\x39\x3b-\x7e]+\t*:/.test(s);
  fc.assert(fc.property(fc.string({ unit: fc.constantFrom('S', 'x', ':', '\t', '-', '\x01', '\x80', '0'), maxLength: 10 }), (s) => {
    const b = Buffer.from(s, 'latin1');
    assert.equal(isHeaderName(b, 0, b.length), ref(s), JSON.stringify(s));
  }), { numRuns: 3000 });
});

test('pipelining: any byte after the command fails, except after BDAT; the sample is escaped', () => {
  assert.equal(pipelined(false, 0), false);
  assert.equal(pipelined(false, 1), true);
  assert.equal(pipelined(true, 100), false);
  assert.deepEqual(pipeliningFields('EHLO', Buffer.from('MAIL FROM:<a>\r\n\x00')), { after: 'EHLO', sample: 'MAIL FROM:<a>\\r\\n\\000' });
  assert.equal(pipeliningFields('X', Buffer.alloc(300, 0x41)).sample, 'A'.repeat(100) + '...');
});

test('bare newline and non-SMTP fields: the line, escaped, at most 100 bytes', () => {
  assert.equal(bareNewline(true), true);
  assert.equal(bareNewline(false), false);
  assert.deepEqual(bareNewlineFields('MAIL', Buffer.from('RCPT TO:<a\r>')), { after: 'MAIL', sample: 'RCPT TO:<a\\r>' });
  assert.deepEqual(nonSmtpFields('CONNECT', Buffer.from('GET /\x7f')), { after: 'CONNECT', sample: 'GET /\\177' });
});

const OPTS: DeepOptions = {
  pipelining: { enable: true, action: 'enforce', ttl: 1000 },
  non_smtp: { enable: true, action: 'drop', ttl: 2000 },
  bare_newline: { enable: true, action: 'ignore', ttl: 3000 },
  forbidden: FORBIDDEN,
  ignoreTtl: 10,
};

test('DeepTests: due until failed once; rcpt passes what has not failed; ignore passes with the short TTL', () => {
  const d = new DeepTests(OPTS, DEEP_BIT.pipelining | DEEP_BIT.bare_newline);
  assert.equal(d.due('non_smtp'), false, 'not in todo');
  assert.equal(d.due('pipelining'), true);
  assert.equal(d.fail('bare_newline'), 'ignore');
  assert.equal(d.due('bare_newline'), false, 'skipped after one failure');
  assert.equal(d.complete, false);
  d.rcpt();
  assert.equal(d.complete, true);
  assert.equal(d.passUntil('pipelining', 100), 1100);
  assert.equal(d.passUntil('bare_newline', 100), 110, 'ignored: short TTL');
  assert.equal(d.passUntil('non_smtp', 100), 0);
  assert.equal(d.fail('pipelining'), 'enforce');
  assert.equal(d.complete, false);
  assert.equal(d.passUntil('pipelining', 100), 0, 'a later failure withdraws the pass');
  d.rcpt();
  assert.equal(d.passUntil('pipelining', 100), 0, 'and RCPT does not give it back');
  assert.equal(d.failed, DEEP_BIT.pipelining);
});

test('DeepTests: an enforce failure of one test leaves the TTL of the others as it was', () => {
  const d = new DeepTests(OPTS, 7);
  assert.equal(d.fail('bare_newline'), 'ignore');
  assert.equal(d.fail('pipelining'), 'enforce');
  d.rcpt();
  assert.equal(d.passUntil('bare_newline', 100), 110, 'still the short TTL of an ignored failure');
  assert.equal(d.passUntil('non_smtp', 100), 2100, 'passed at RCPT: its own TTL, not the short one');
  assert.equal(d.passUntil('pipelining', 100), 0);
  assert.equal(d.ignored, DEEP_BIT.bare_newline);
});

test('DeepTests: todo is masked to the three tests', () => {
  assert.equal(new DeepTests(OPTS, 0xff).todo, 7);
});

test('DeepTests: shadow counts as ignore (a short pass) and is marked shadowed; drop fails like enforce', () => {
  const opts: DeepOptions = { ...OPTS, pipelining: { enable: true, action: 'shadow', ttl: 1000, would: 'drop' } };
  const d = new DeepTests(opts, 7);
  assert.deepEqual(DEEP_TESTS.map((id) => d.due(id)), [true, true, true]);
  assert.equal(d.fail('pipelining'), 'shadow');
  assert.deepEqual([d.passed, d.ignored, d.shadowed, d.failed], [DEEP_BIT.pipelining, DEEP_BIT.pipelining, DEEP_BIT.pipelining, 0]);
  assert.equal(d.passUntil('pipelining', 100), 110, 'the short TTL, as ignore');
  assert.equal(d.fail('bare_newline'), 'ignore');
  assert.equal(d.shadowed, DEEP_BIT.pipelining, 'ignore is not shadow');
  assert.equal(d.ignored, DEEP_BIT.pipelining | DEEP_BIT.bare_newline);
  d.rcpt();
  assert.equal(d.complete, true, 'shadow and ignore failures still complete the session');
  assert.equal(d.passUntil('non_smtp', 100), 2100, 'passed at RCPT: its own TTL');
  assert.equal(d.fail('non_smtp'), 'drop');
  assert.deepEqual([d.failed, d.passed & DEEP_BIT.non_smtp, d.complete], [DEEP_BIT.non_smtp, 0, false]);
  assert.deepEqual(DEEP_TESTS.map((id) => d.due(id)), [false, false, false], 'each failed once: none is tested again');
  const none = new DeepTests(OPTS, 0);
  assert.equal(none.complete, true, 'nothing due, nothing failed');
  assert.equal(none.passUntil('pipelining', 100), 0);
  none.rcpt();
  assert.equal(none.passed, 0, 'RCPT passes only due tests');
});
