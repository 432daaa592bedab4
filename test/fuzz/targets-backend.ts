/*
 * test/fuzz/targets-backend.ts - fuzz targets for what reads (and writes to)
 * the backend: the SMTP reply reader, EHLO keyword parsing and the dummy
 * EHLO built from it, and XCLIENT command building.
 *
 * Exports: smtpReplyTarget, xclientTarget.
 * smtp-reply: streams of replies (random codes, multi-line, CRLF or LF, text
 *   with any byte) and their mutations or random bytes, in random chunks, with
 *   random small line / reply limits. Properties: only SCR_ERR_SMTP_REPLY;
 *   chunking changes nothing (same replies, or an error either way); the raw
 *   bytes of the replies plus rest() are the input; each reply's lines are
 *   its raw bytes' lines; a 250 reply's EHLO keywords are upper-case
 *   ehlo-keywords, and the dummy EHLO built from them is a well-formed reply
 *   of lines <= 512 octets offering none of NEVER_OFFERED.
 * xclient: XCLIENT attributes (any Unicode text, long values, address
 *   text, odd ports) through buildXclient. Properties: only SCR_ERR_CIDR for a
 *   bad address or port; lines "XCLIENT ...CRLF" of printable ASCII, each at
 *   most 512 octets; every attribute sent once; xtext decodes to the UTF-8 of
 *   the value (a prefix of it when cut to fit).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildXclient, XCLIENT_MAX_LINE, type XclientAttrs } from '../../src/net/xclient.js';
import { SmtpReplyReader, type SmtpReply } from '../../src/net/smtp-reply.js';
import { buildDummyEhlo, NEVER_OFFERED, parseEhloKeywords } from '../../src/smtp/ehlo-keywords.js';
import { normalizeAddress } from '../../src/net/cidr.js';
import { chunked, isScreenError, mutated, only, showBytes, type FuzzTarget } from './harness.js';
import { addressText } from './targets-proxy-cidr.js';
import { assertReply } from './targets-smtp.js';

const code = fc.oneof(fc.constantFrom(220, 221, 250, 354, 421, 450, 451, 550, 554), fc.integer({ min: 200, max: 599 }));
const text = fc.oneof(
  fc.constantFrom('', 'mx.example ESMTP', 'PIPELINING', 'SIZE 10240000', 'XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT', '8BITMIME', 'AUTH PLAIN LOGIN', 'AUTH=LOGIN', 'STARTTLS', 'ENHANCEDSTATUSCODES', 'x-private y', ' SIZE ', 'size'),
  fc.string({ maxLength: 30 }),
  fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1').replace(/\n/g, '')),
);
const reply = fc.tuple(code, fc.array(text, { minLength: 1, maxLength: 6 }), fc.constantFrom('\r\n', '\r\n', '\n'))
  .map(([c, lines, eol]) => lines.map((l, i) => `${c}${i === lines.length - 1 ? ' ' : '-'}${l}${eol}`).join(''));
const stream = fc.array(reply, { maxLength: 5 }).map((rs) => Buffer.from(rs.join(''), 'latin1'));
const DICT = ['250-', '250 ', '550 ', '\r\n', '\n', '\r', '-', ' ', '25', '2500', 'PIPELINING', 'XCLIENT'].map((s) => Buffer.from(s, 'latin1'));

interface ReplyCase {
  data: Buffer;
  cuts: number[];
  maxLine: number | undefined;
  maxReply: number | undefined;
}

type Fed = { ok: true; replies: SmtpReply[]; rest: Buffer } | { ok: false };

function feedAll(pieces: readonly Buffer[], o: ReplyCase): Fed {
  const r = new SmtpReplyReader({ ...(o.maxLine === undefined ? {} : { maxLine: o.maxLine }), ...(o.maxReply === undefined ? {} : { maxReply: o.maxReply }) });
  const replies: SmtpReply[] = [];
  const res = only('SCR_ERR_SMTP_REPLY', () => {
    for (const p of pieces) for (const x of r.feed(p)) replies.push({ code: x.code, lines: x.lines, raw: Buffer.from(x.raw) });
  });
  return res.ok ? { ok: true, replies, rest: Buffer.from(r.rest()) } : { ok: false };
}

const NEVER = NEVER_OFFERED.map((k) => (k.endsWith('*') ? new RegExp(`^${k.slice(0, -1)}`) : new RegExp(`^${k}$`)));

export const smtpReplyTarget: FuzzTarget<ReplyCase> = {
  name: 'smtp-reply',
  what: 'net/smtp-reply.ts SmtpReplyReader (feed in random chunks, rest); smtp/ehlo-keywords.ts parseEhloKeywords, buildDummyEhlo',
  arb: fc.record({
    data: fc.oneof({ weight: 4, arbitrary: stream }, { weight: 3, arbitrary: mutated(stream, DICT) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) }),
    cuts: fc.array(fc.nat(), { maxLength: 20 }),
    maxLine: fc.option(fc.integer({ min: 3, max: 40 }), { freq: 2 }),
    maxReply: fc.option(fc.integer({ min: 3, max: 120 }), { freq: 2 }),
  }).map((x) => ({ ...x, maxLine: x.maxLine ?? undefined, maxReply: x.maxReply ?? undefined })),
  check(c) {
    const whole = feedAll([c.data], c);
    const split = feedAll(chunked(c.data, c.cuts), c);
    assert.equal(split.ok, whole.ok, 'chunking does not change whether the input is an error');
    if (!whole.ok || !split.ok) return;
    assert.deepEqual(split.replies.map((r) => [r.code, r.lines]), whole.replies.map((r) => [r.code, r.lines]), 'same replies in chunks');
    assert.deepEqual(split.rest, whole.rest);
    assert.deepEqual(Buffer.concat([...whole.replies.map((r) => r.raw), whole.rest]), c.data, 'raw replies and rest are the input');
    for (const r of whole.replies) {
      assert.ok(r.code >= 200 && r.code <= 599);
      const lines = r.raw.toString('latin1').split('\n').slice(0, -1).map((l) => l.replace(/\r$/, ''));
      assert.deepEqual(r.lines, lines.map((l) => l.slice(4)), 'lines are the raw lines after the code');
      assert.ok(lines.every((l, i) => l.startsWith(String(r.code)) && l[3] === (i === lines.length - 1 ? ' ' : '-') || (l.length === 3 && i === lines.length - 1)));
      const kw = only('SCR_ERR_SMTP_REPLY', () => parseEhloKeywords(r));
      assert.equal(kw.ok, r.code === 250, 'EHLO keywords from a 250 reply only');
      if (!kw.ok) continue;
      for (const k of kw.value.keys()) assert.match(k, /^[A-Z0-9][A-Z0-9-]*$/);
      const d = buildDummyEhlo('mx.fuzz.example', kw.value);
      for (const s of [d.plain, d.tls]) {
        assertReply(s);
        for (const l of s.split('\r\n')) assert.ok(l.length + 2 <= 512, 'reply line <= 512 octets');
      }
      for (const k of d.offered) assert.ok(!NEVER.some((re) => re.test(k)), `${k} is never offered`);
    }
  },
  show: (c) => `maxLine ${c.maxLine} maxReply ${c.maxReply} cuts ${c.cuts.length}: ${showBytes(c.data)}`,
  linear: [
    {
      shape: 'one multi-line reply (maxReply-bound) in 1-byte chunks',
      n: 6_000,
      make: (n) => {
        const line = '250-0123456789abcdef0123456789abcdef0123456789abcdef0123\r\n';
        const data = Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n), 'latin1');
        const pieces = Array.from({ length: n }, (_, i) => data.subarray(i, i + 1));
        return () => {
          const r = new SmtpReplyReader({ maxReply: 1 << 20 });
          for (const p of pieces) r.feed(p);
        };
      },
    },
    {
      shape: 'one long line without LF in 64-byte chunks (line limit = input size)',
      n: 60_000,
      make: (n) => {
        const data = Buffer.alloc(n, 0x41);
        data.write('250 ', 0, 'latin1');
        const pieces = Array.from({ length: Math.ceil(n / 64) }, (_, i) => data.subarray(i * 64, i * 64 + 64));
        return () => {
          const r = new SmtpReplyReader({ maxLine: n + 2 });
          for (const p of pieces) r.feed(p);
        };
      },
    },
    {
      shape: 'n one-line replies, 64 to a chunk (pipelined replies)',
      n: 50_000,
      make: (n) => {
        const data = Buffer.from('250 ok\r\n'.repeat(Math.ceil(n / 8)), 'latin1');
        const pieces = Array.from({ length: Math.ceil(data.length / 512) }, (_, i) => data.subarray(i * 512, i * 512 + 512));
        return () => {
          const r = new SmtpReplyReader();
          for (const p of pieces) r.feed(p);
        };
      },
    },
  ],
};

/** RFC 3461 xtext decoded to bytes. */
function xtextDecode(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '+') {
      out.push(Number.parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i));
  }
  return Buffer.from(out);
}

const valueText = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('', '+', '=', 'a b', '[UNAVAILABLE]', 'é'.repeat(300), '+'.repeat(600)));
const portArb = fc.oneof(fc.nat(65535), fc.constantFrom(-1, 65536, 1.5, Number.NaN));

export const xclientTarget: FuzzTarget<XclientAttrs> = {
  name: 'xclient',
  what: 'net/xclient.ts buildXclient, xtextEncode',
  arb: fc.record({
    addr: addressText,
    port: portArb, name: valueText, helo: valueText, login: valueText,
    proto: fc.constantFrom('SMTP' as const, 'ESMTP' as const),
    destaddr: addressText, destport: portArb,
  }, { requiredKeys: ['addr'] }),
  check(a) {
    let lines: string[];
    try {
      lines = buildXclient(a);
    } catch (e) {
      if (!isScreenError(e, 'SCR_ERR_CIDR')) throw e;
      const bad = normalizeAddress(a.addr) === null || (a.destaddr !== undefined && normalizeAddress(a.destaddr) === null)
        || [a.port, a.destport].some((p) => p !== undefined && !(Number.isInteger(p) && p >= 0 && p <= 65535));
      assert.ok(bad, 'SCR_ERR_CIDR only for a bad address or port');
      return;
    }
    const seen = new Map<string, string>();
    for (const l of lines) {
      assert.match(l, /^XCLIENT( [A-Z]+=[\x21-\x7e]*)+\r\n$/, 'printable XCLIENT line');
      assert.ok(Buffer.byteLength(l) <= XCLIENT_MAX_LINE, `line of ${l.length} octets`);
      for (const attr of l.slice(8, -2).split(' ')) {
        const eq = attr.indexOf('=');
        const k = attr.slice(0, eq);
        assert.ok(!seen.has(k), `${k} sent once`);
        seen.set(k, attr.slice(eq + 1));
      }
    }
    const want: Array<[string, string | undefined]> = [['NAME', a.name], ['HELO', a.helo], ['LOGIN', a.login]];
    for (const [k, v] of want) {
      if (v === undefined) {
        if (k === 'NAME') assert.equal(seen.get(k), '[UNAVAILABLE]');
        else assert.ok(!seen.has(k));
        continue;
      }
      const got = xtextDecode(seen.get(k) ?? '');
      const full = Buffer.from(v, 'utf8');
      assert.ok(full.subarray(0, got.length).equals(got), `${k} decodes to (a prefix of) the value`);
      // Cut only when " K=value" would not fit one line (" K=" + 503 - 3 - 2 octets at least: a +HH is never split).
      if (got.length < full.length) assert.ok(1 + k.length + 1 + (seen.get(k) ?? '').length >= XCLIENT_MAX_LINE - 9 - 2, `${k} cut only when it did not fit`);
    }
    assert.equal(seen.get('ADDR')?.replace(/^IPV6:/, ''), normalizeAddress(a.addr));
    if (a.port !== undefined) assert.equal(seen.get('PORT'), String(a.port));
    if (a.proto !== undefined) assert.equal(seen.get('PROTO'), a.proto);
  },
  show: (a) => JSON.stringify(a).slice(0, 300),
  linear: [
    {
      shape: 'HELO of n octets needing escapes (cut to fit one line)',
      n: 2000,
      make: (n) => {
        const helo = '+'.repeat(n);
        return () => { buildXclient({ addr: '192.0.2.1', helo }); };
      },
    },
  ],
};
