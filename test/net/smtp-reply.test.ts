/*
 * test/net/smtp-reply.test.ts - SmtpReplyReader (tables and fast-check: chunk-split invariance,
 * arbitrary bytes only throw ScreenError; the raw bytes stay intact; linear time in tiny chunks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SmtpReplyReader } from '../../src/net/smtp-reply.js';
import { ScreenError } from '../../src/util/errors.js';

test('SmtpReplyReader table', () => {
  const cases: Array<{ label: string; input: string; replies: Array<{ code: number; lines: string[]; raw: string }>; rest: string }> = [
    { label: 'greeting', input: '220 mx ESMTP\r\n', replies: [{ code: 220, lines: ['mx ESMTP'], raw: '220 mx ESMTP\r\n' }], rest: '' },
    {
      label: 'multi-line', input: '250-mx\r\n250-PIPELINING\r\n250 XCLIENT NAME ADDR\r\n',
      replies: [{ code: 250, lines: ['mx', 'PIPELINING', 'XCLIENT NAME ADDR'], raw: '250-mx\r\n250-PIPELINING\r\n250 XCLIENT NAME ADDR\r\n' }], rest: '',
    },
    {
      label: 'two replies, leftover bytes', input: '220 hi\r\n220 again\n250-part',
      replies: [{ code: 220, lines: ['hi'], raw: '220 hi\r\n' }, { code: 220, lines: ['again'], raw: '220 again\n' }], rest: '250-part',
    },
    { label: 'code only', input: '250\r\n421-\r\n421 \r\n', replies: [{ code: 250, lines: [''], raw: '250\r\n' }, { code: 421, lines: ['', ''], raw: '421-\r\n421 \r\n' }], rest: '' },
    { label: 'partial multi-line stays in rest', input: '250-a\r\n250-b\r\n', replies: [], rest: '250-a\r\n250-b\r\n' },
  ];
  for (const c of cases) {
    const r = new SmtpReplyReader();
    const got = r.feed(Buffer.from(c.input, 'latin1'));
    assert.deepEqual(got.map((x) => ({ code: x.code, lines: x.lines, raw: x.raw.toString('latin1') })), c.replies, c.label);
    assert.equal(r.rest().toString('latin1'), c.rest, c.label);
  }
});

test('SmtpReplyReader errors: SCR_ERR_SMTP_REPLY', () => {
  const cases: Array<{ label: string; chunks: string[]; reason: string }> = [
    { label: 'no code', chunks: ['hello\r\n'], reason: 'no 3-digit reply code' },
    { label: 'short code', chunks: ['25\r\n'], reason: 'no 3-digit reply code' },
    { label: 'first digit 6', chunks: ['600 x\r\n'], reason: 'no 3-digit reply code' },
    { label: 'bad separator', chunks: ['250x\r\n'], reason: 'no space or hyphen after code' },
    { label: 'mixed codes', chunks: ['250-a\r\n', '251 b\r\n'], reason: 'mixed codes in a multi-line reply' },
    { label: 'long line with LF', chunks: [`250 ${'a'.repeat(2100)}\r\n`], reason: 'line too long' },
    { label: 'long line without LF', chunks: ['250 ', 'a'.repeat(1500), 'a'.repeat(1500)], reason: 'line too long' },
    { label: 'endless multi-line', chunks: Array.from({ length: 40 }, () => `250-${'a'.repeat(2000)}\r\n`), reason: 'reply too long' },
  ];
  for (const c of cases) {
    const r = new SmtpReplyReader();
    assert.throws(() => { for (const ch of c.chunks) r.feed(Buffer.from(ch, 'latin1')); }, (err: unknown) => {
      assert.ok(err instanceof ScreenError, c.label);
      assert.equal(err.code, 'SCR_ERR_SMTP_REPLY', c.label);
      assert.equal(err.details['reason'], c.reason, c.label);
      return true;
    }, c.label);
  }
});

const replyText = fc.tuple(
  fc.integer({ min: 200, max: 559 }),
  fc.array(fc.string({ unit: fc.constantFrom(...'abc XYZ-=.:0123'.split('')), maxLength: 30 }), { minLength: 1, maxLength: 5 }),
  fc.boolean(),
).map(([code, lines, crlf]) => lines.map((l, i) => `${code}${i === lines.length - 1 ? ' ' : '-'}${l}${crlf ? '\r\n' : '\n'}`).join(''));

test('property: SmtpReplyReader gives the same replies for any chunk split', () => {
  fc.assert(fc.property(fc.array(replyText, { maxLength: 6 }), fc.string({ unit: fc.constantFrom('2', '5', '0', '-', ' ', 'x'), maxLength: 6 }),
    fc.array(fc.nat(), { maxLength: 10 }), (replies, tail, cutsRaw) => {
      const all = Buffer.from(replies.join('') + tail, 'latin1');
      const whole = new SmtpReplyReader();
      const want = whole.feed(all).map((x) => ({ code: x.code, lines: x.lines, raw: x.raw.toString('latin1') }));
      assert.equal(want.length, replies.length);
      const cuts = [...new Set(cutsRaw.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
      const split = new SmtpReplyReader();
      const got: typeof want = [];
      let from = 0;
      for (const to of [...cuts, all.length]) {
        for (const x of split.feed(all.subarray(from, to))) got.push({ code: x.code, lines: x.lines, raw: x.raw.toString('latin1') });
        from = to;
      }
      assert.deepEqual(got, want);
      assert.equal(split.rest().toString('latin1'), tail);
      assert.equal(whole.rest().toString('latin1'), tail);
    }), { numRuns: 2000 });
});

test('property: SmtpReplyReader on arbitrary bytes only returns or throws ScreenError', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (chunks) => {
    const r = new SmtpReplyReader({ maxLine: 64, maxReply: 256 });
    try {
      for (const ch of chunks) r.feed(Buffer.from(ch));
      assert.ok(r.rest().length <= 256 + 64 + 1);
    } catch (err) {
      assert.ok(err instanceof ScreenError, String(err));
      assert.equal(err.code, 'SCR_ERR_SMTP_REPLY');
    }
  }), { numRuns: 3000 });
});

test('SmtpReplyReader: a reply cut before its last LF reads as the whole one, up to the reply size bound', () => {
  // 10 bytes of "250-" lines (the bound), then a last line of maxLine bytes plus its CR waiting for the LF.
  const data = Buffer.from('250-abcd\r\n250 abcd\r\n', 'latin1');
  const opts = { maxLine: 8, maxReply: 10 };
  assert.deepEqual(new SmtpReplyReader(opts).feed(data).map((r) => r.lines), [['abcd', 'abcd']]);
  const r = new SmtpReplyReader(opts);
  assert.deepEqual(r.feed(data.subarray(0, data.length - 1)), []);
  assert.deepEqual(r.feed(data.subarray(data.length - 1)).map((x) => x.lines), [['abcd', 'abcd']]);
});

test('SmtpReplyReader: the raw bytes of a reply stay intact while later chunks arrive', () => {
  const r = new SmtpReplyReader();
  const raws: Buffer[] = [];
  const text = '250-one\r\n250 two\r\n220 three\r\n354 go ahead\r\n';
  const data = Buffer.from(text.repeat(50), 'latin1');
  for (let i = 0; i < data.length; i += 3) for (const x of r.feed(data.subarray(i, i + 3))) raws.push(x.raw);
  assert.equal(Buffer.concat(raws).toString('latin1'), text.repeat(50));
  assert.equal(r.rest().length, 0);
});

/** ms per call of fn: min over 5 batches of at least ~10 ms. */
function perCall(fn: () => void): number {
  let reps = 1;
  for (let d = 0; d < 10 && reps < 4096; reps *= 2) {
    const a = performance.now();
    for (let i = 0; i < reps; i++) fn();
    d = performance.now() - a;
    if (d >= 10) break;
  }
  let best = Infinity;
  for (let b = 0; b < 5; b++) {
    const a = performance.now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (performance.now() - a) / reps);
  }
  return best;
}

test('SmtpReplyReader: a long reply in tiny chunks costs time linear in its length', () => {
  // Each chunk used to copy and search the whole reply so far: 10 times the bytes took 50-450 times as long.
  const shapes: Array<{ what: string; make: (n: number) => () => void }> = [
    {
      what: 'multi-line reply in 1-byte chunks',
      make: (n) => {
        const line = '250-0123456789abcdef0123456789abcdef0123456789abcdef0123\r\n';
        const data = Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n), 'latin1');
        return () => {
          const r = new SmtpReplyReader({ maxReply: 1 << 20 });
          for (let i = 0; i < n; i++) r.feed(data.subarray(i, i + 1));
        };
      },
    },
    {
      what: 'one line without LF in 16-byte chunks',
      make: (n) => {
        const data = Buffer.alloc(n, 0x41);
        data.write('250 ', 0, 'latin1');
        return () => {
          const r = new SmtpReplyReader({ maxLine: n + 2 });
          for (let i = 0; i < n; i += 16) r.feed(data.subarray(i, i + 16));
        };
      },
    },
  ];
  for (const s of shapes) {
    const small = s.make(6000);
    const large = s.make(60_000);
    small();
    large();
    const ratio = perCall(large) / perCall(small);
    assert.ok(ratio < 30, `${s.what}: 10 times the input took ${ratio.toFixed(1)} times as long (linear: about 10)`);
  }
});
