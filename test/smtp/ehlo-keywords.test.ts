/*
 * test/smtp/ehlo-keywords.test.ts - EHLO keywords: parseEhloKeywords, buildDummyEhlo,
 * missingKeywords, xclientAttributes (tables); fast-check: buildDummyEhlo's reply parses back to
 * what it offers and never offers a NEVER_OFFERED keyword.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  buildDummyEhlo, missingKeywords, NEVER_OFFERED, parseEhloKeywords, xclientAttributes,
} from '../../src/smtp/ehlo-keywords.js';
import { SmtpReplyReader, type SmtpReply } from '../../src/net/smtp-reply.js';
import { ScreenError } from '../../src/util/errors.js';
import { POSTFIX_EHLO, POSTFIX_KEYWORDS } from '../helpers/ehlo-samples.js';

/** The one reply in `text`, through SmtpReplyReader. */
function oneReply(text: string): SmtpReply {
  const r = new SmtpReplyReader();
  const got = r.feed(Buffer.from(text, 'latin1'));
  assert.equal(got.length, 1, JSON.stringify(text));
  assert.equal(r.rest().length, 0, JSON.stringify(text));
  const [reply] = got;
  assert.ok(reply !== undefined);
  return reply;
}

test('parseEhloKeywords table', () => {
  const cases: Array<{ label: string; reply: string; want: Array<[string, string]> }> = [
    { label: 'Postfix', reply: POSTFIX_EHLO, want: [...POSTFIX_KEYWORDS] },
    { label: 'hostname only', reply: '250 mx.example\r\n', want: [] },
    {
      label: 'case, spacing, empty lines',
      reply: '250-mx\r\n250-size   100 \r\n250-\r\n250-  dsn\r\n250-8bitmime\r\n250 Chunking\r\n',
      want: [['SIZE', '100'], ['DSN', ''], ['8BITMIME', ''], ['CHUNKING', '']],
    },
    {
      label: 'invalid keywords ignored',
      reply: '250-mx\r\n250--DASH\r\n250-UNDER_SCORE\r\n250-DOT.TED x\r\n250-\u00dfIZE\r\n250-\u017fIZE 9\r\n250-X-OK y\r\n250 A-\r\n',
      want: [['X-OK', 'y'], ['A-', '']],
    },
    {
      label: 'legacy AUTH= ignored, AUTH kept',
      reply: '250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n',
      want: [['AUTH', 'PLAIN LOGIN'], ['OK', '']],
    },
    {
      label: 'first occurrence wins',
      reply: '250-mx\r\n250-SIZE 1\r\n250-size 2\r\n250 SIZE 3\r\n',
      want: [['SIZE', '1']],
    },
    {
      label: 'params keep inner spacing and any bytes',
      reply: '250-mx\r\n250-XFOO a  b\tc\r\n250 BAR \u00e9\r\n',
      want: [['XFOO', 'a  b\tc'], ['BAR', '\u00e9']],
    },
  ];
  for (const c of cases) assert.deepEqual([...parseEhloKeywords(oneReply(c.reply))], c.want, c.label);
});

test('parseEhloKeywords rejects a reply that is not 250: SCR_ERR_SMTP_REPLY', () => {
  for (const text of ['554 5.7.1 go away\r\n', '502 5.5.2 Error: command not recognized\r\n', '220 mx ESMTP\r\n', '251-a\r\n251 b\r\n']) {
    const reply = oneReply(text);
    assert.throws(() => parseEhloKeywords(reply), (err: unknown) => {
      assert.ok(err instanceof ScreenError, text);
      assert.equal(err.code, 'SCR_ERR_SMTP_REPLY', text);
      assert.equal(err.details['value'], reply.code, text);
      return true;
    }, text);
  }
});

test('NEVER_OFFERED is frozen and names the drop list', () => {
  assert.ok(Object.isFrozen(NEVER_OFFERED));
  assert.deepEqual([...NEVER_OFFERED], ['PIPELINING', 'STARTTLS', 'AUTH', 'VRFY', 'ETRN', 'ATRN', 'TURN', 'X*']);
});

test('buildDummyEhlo table', () => {
  const cases: Array<{ label: string; keywords: ReadonlyMap<string, string>; plain: string; tls: string; offered: string[] }> = [
    {
      label: 'Postfix',
      keywords: parseEhloKeywords(oneReply(POSTFIX_EHLO)),
      plain: '250-screen.example\r\n250-SIZE 10240000\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n',
      tls: '250-screen.example\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n',
      offered: ['SIZE', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING'],
    },
    {
      label: 'empty map',
      keywords: new Map(),
      plain: '250 screen.example\r\n',
      tls: '250-screen.example\r\n250 STARTTLS\r\n',
      offered: [],
    },
    {
      label: 'only never-offered keywords',
      keywords: new Map([['PIPELINING', ''], ['AUTH', 'PLAIN'], ['ATRN', ''], ['TURN', ''], ['XFORWARD', 'NAME'], ['X-ANONYMOUSTLS', ''], ['XEXCH50', '']]),
      plain: '250 screen.example\r\n',
      tls: '250-screen.example\r\n250 STARTTLS\r\n',
      offered: [],
    },
    {
      label: 'params with control or non-ASCII characters: keyword dropped; params trimmed',
      keywords: new Map([['SIZE', '10\x00'], ['DSN', ' '], ['BAR', 'a\r\n250 EVIL'], ['BAZ', '\u00e9'], ['DEL', '\x7f'], ['OK', ' x y ']]),
      plain: '250-screen.example\r\n250-DSN\r\n250 OK x y\r\n',
      tls: '250-screen.example\r\n250-STARTTLS\r\n250-DSN\r\n250 OK x y\r\n',
      offered: ['DSN', 'OK'],
    },
    {
      label: 'STARTTLS first without SIZE',
      keywords: new Map([['8BITMIME', ''], ['STARTTLS', ''], ['CHUNKING', '']]),
      plain: '250-screen.example\r\n250-8BITMIME\r\n250 CHUNKING\r\n',
      tls: '250-screen.example\r\n250-STARTTLS\r\n250-8BITMIME\r\n250 CHUNKING\r\n',
      offered: ['8BITMIME', 'CHUNKING'],
    },
    {
      label: 'STARTTLS after SIZE, SIZE last',
      keywords: new Map([['DSN', ''], ['SIZE', '']]),
      plain: '250-screen.example\r\n250-DSN\r\n250 SIZE\r\n',
      tls: '250-screen.example\r\n250-DSN\r\n250-SIZE\r\n250 STARTTLS\r\n',
      offered: ['DSN', 'SIZE'],
    },
    {
      label: 'lower-case keys upper-cased, first wins, invalid keys and over-long lines dropped',
      keywords: new Map([['size', '5'], ['SIZE', '6'], ['AUTH=LOGIN', ''], ['-X', ''], ['\u00dfIZE', ''], ['LONG', 'p'.repeat(507)], ['OK', 'p'.repeat(503)]]),
      plain: `250-screen.example\r\n250-SIZE 5\r\n250 OK ${'p'.repeat(503)}\r\n`,
      tls: `250-screen.example\r\n250-SIZE 5\r\n250-STARTTLS\r\n250 OK ${'p'.repeat(503)}\r\n`,
      offered: ['SIZE', 'OK'],
    },
  ];
  for (const c of cases) {
    const got = buildDummyEhlo('screen.example', c.keywords);
    assert.equal(got.plain, c.plain, c.label);
    assert.equal(got.tls, c.tls, c.label);
    assert.deepEqual(got.offered, c.offered, c.label);
  }
});

test('buildDummyEhlo refuses a hostname that is not one printable word: SCR_ERR_CONFIG', () => {
  for (const hostname of ['', 'two words', 'mx\r\n250 X', 'm\u00e9']) {
    assert.throws(() => buildDummyEhlo(hostname, new Map()), { code: 'SCR_ERR_CONFIG' }, JSON.stringify(hostname));
  }
});

test('missingKeywords table', () => {
  const cases: Array<{ label: string; offered: string[]; backend: ReadonlyMap<string, string>; want: string[] }> = [
    { label: 'all there', offered: ['SIZE', 'DSN'], backend: POSTFIX_KEYWORDS, want: [] },
    { label: 'params differ: not missing', offered: ['SIZE'], backend: new Map([['SIZE', '1']]), want: [] },
    { label: 'some gone, in offered order', offered: ['SIZE', 'DSN', 'SMTPUTF8', 'CHUNKING'], backend: new Map([['DSN', ''], ['SIZE', '']]), want: ['SMTPUTF8', 'CHUNKING'] },
    { label: 'empty backend', offered: ['8BITMIME'], backend: new Map(), want: ['8BITMIME'] },
    { label: 'nothing offered', offered: [], backend: new Map(), want: [] },
  ];
  for (const c of cases) assert.deepEqual(missingKeywords(c.offered, c.backend), c.want, c.label);
});

test('xclientAttributes table', () => {
  const cases: Array<{ label: string; keywords: ReadonlyMap<string, string>; want: string[] | null }> = [
    { label: 'Postfix', keywords: POSTFIX_KEYWORDS, want: ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'LOGIN', 'DESTADDR', 'DESTPORT'] },
    { label: 'no XCLIENT', keywords: new Map([['SIZE', '']]), want: null },
    { label: 'bare XCLIENT', keywords: new Map([['XCLIENT', '']]), want: [] },
    { label: 'case and spacing', keywords: new Map([['XCLIENT', 'name  Addr\tport']]), want: ['NAME', 'ADDR', 'PORT'] },
  ];
  for (const c of cases) {
    const got = xclientAttributes(c.keywords);
    assert.deepEqual(got === null ? null : [...got], c.want, c.label);
  }
});

const SAMPLE_KEYWORDS = [
  'PIPELINING', 'SIZE', 'STARTTLS', 'AUTH', 'VRFY', 'ETRN', 'ATRN', 'TURN', 'XCLIENT', 'XFORWARD', 'X-FOO', 'xexch50',
  '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING', 'ENHANCEDSTATUSCODES', 'size', 'Auth', 'pipelining', 'AUTH=LOGIN',
];
const keywordArb = fc.oneof(
  fc.constantFrom(...SAMPLE_KEYWORDS),
  fc.string({ unit: fc.constantFrom(...'aZx09-=. _\u00df'.split('')), maxLength: 10 }),
);
const paramsArb = fc.oneof(
  fc.constant(''),
  fc.string({ unit: fc.constantFrom(...'ab 0=-,.\t\r\n\x00\x7f\u00e9'.split('')), maxLength: 20 }),
  fc.string({ maxLength: 20 }),
);

/** Reference model of what buildDummyEhlo offers (test only). */
function expectedOffer(keywords: ReadonlyMap<string, string>): Map<string, string> {
  const want = new Map<string, string>();
  const seen = new Set<string>();
  for (const [key, value] of keywords) {
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(key)) continue;
    const k = key.toUpperCase();
    if (seen.has(k)) continue;
    seen.add(k);
    if (NEVER_OFFERED.includes(k) || k.startsWith('X')) continue;
    const p = value.trim();
    if (!/^[\x20-\x7e]*$/.test(p)) continue;
    want.set(k, p);
  }
  return want;
}

test('property: buildDummyEhlo replies parse back to what is offered, never a NEVER_OFFERED keyword', () => {
  fc.assert(fc.property(fc.array(fc.tuple(keywordArb, paramsArb), { maxLength: 15 }), (entries) => {
    const keywords = new Map(entries);
    const got = buildDummyEhlo('screen.example', keywords);
    const want = expectedOffer(keywords);
    assert.deepEqual(got.offered, [...want.keys()]);
    const plain = oneReply(got.plain);
    assert.equal(plain.code, 250);
    assert.equal(plain.lines[0], 'screen.example');
    assert.match(got.plain, /^(?:250-[\x20-\x7e]*\r\n)*250 [\x20-\x7e]*\r\n$/);
    assert.deepEqual([...parseEhloKeywords(plain)], [...want]);
    for (const k of parseEhloKeywords(plain).keys()) {
      assert.ok(!NEVER_OFFERED.includes(k) && !k.startsWith('X'), k);
    }
    const tls = parseEhloKeywords(oneReply(got.tls));
    const order = [...want.keys()];
    order.splice(order.indexOf('SIZE') + 1, 0, 'STARTTLS');
    assert.deepEqual([...tls.keys()], order);
    for (const line of got.tls.split('\r\n')) assert.ok(line.length + 2 <= 512);
  }), { numRuns: 2000 });
});
