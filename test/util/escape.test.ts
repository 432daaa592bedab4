/*
 * test/util/escape.test.ts - escapeClientText: postscreen's escape(3) rendering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { escapeClientText } from '../../src/util/escape.js';

const cases: Array<{ name: string; input: Buffer | string; max?: number; want: string }> = [
  { name: 'printable text unchanged', input: 'EHLO mail.example.com', want: 'EHLO mail.example.com' },
  { name: 'CRLF as C escapes', input: Buffer.from('EHLO x\r\n'), want: 'EHLO x\\r\\n' },
  { name: 'tab, bell, backspace, vtab, formfeed', input: Buffer.from([9, 7, 8, 11, 12]), want: '\\t\\a\\b\\v\\f' },
  { name: 'NUL and other controls as octal', input: Buffer.from([0, 1, 0x1b, 0x1f]), want: '\\000\\001\\033\\037' },
  { name: 'DEL and high bytes as octal', input: Buffer.from([0x7f, 0x80, 0xff]), want: '\\177\\200\\377' },
  { name: 'backslash doubled', input: 'a\\b', want: 'a\\\\b' },
  { name: 'string is taken as UTF-8', input: 'h\u00e9', want: 'h\\303\\251' },
  { name: 'truncated at max input bytes with ...', input: 'abcdef', max: 4, want: 'abcd...' },
  { name: 'exactly max: no ...', input: 'abcd', max: 4, want: 'abcd' },
  { name: 'escapes count as one input byte', input: Buffer.from('\r\n\r\nxyz'), max: 3, want: '\\r\\n\\r...' },
  { name: 'default max is 100', input: 'x'.repeat(150), want: 'x'.repeat(100) + '...' },
  { name: 'empty', input: '', want: '' },
  { name: 'max 0', input: 'a', max: 0, want: '...' },
];

for (const c of cases) {
  test(`escape: ${c.name}`, () => {
    assert.equal(escapeClientText(c.input, c.max), c.want);
  });
}

/** Inverse of the escape (for the round-trip property). */
function unescape(s: string): Buffer {
  const out: number[] = [];
  const named: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '\\': 0x5c };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch !== '\\') {
      out.push(ch.charCodeAt(0));
      continue;
    }
    const next = s[i + 1] as string;
    if (next in named) {
      out.push(named[next] as number);
      i += 1;
    } else {
      out.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Buffer.from(out);
}

test('escape property: output is printable ASCII, bounded, and decodes back to the input', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 150 }), (arr, max) => {
      const buf = Buffer.from(arr);
      const s = escapeClientText(buf, max);
      assert.match(s, /^[\x20-\x7e]*$/);
      assert.ok(s.length <= 4 * max + 3);
      const cut = buf.length > max;
      const body = cut ? s.slice(0, -3) : s;
      if (cut) assert.ok(s.endsWith('...'));
      assert.deepEqual(unescape(body), buf.subarray(0, max));
    }),
    { numRuns: 2000 },
  );
});
