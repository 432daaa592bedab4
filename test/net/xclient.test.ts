/*
 * test/net/xclient.test.ts - xtext, XCLIENT command building (tables and fast-check: xtext round
 * trip).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildXclient, xtextEncode, XCLIENT_MAX_LINE, type XclientAttrs } from '../../src/net/xclient.js';

/** Reference xtext decoder (test only). */
function xtextDecode(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '+') { bytes.push(parseInt(s.slice(i + 1, i + 3), 16)); i += 2; } else bytes.push(s.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

test('xtextEncode table', () => {
  const cases: Array<{ input: string; want: string }> = [
    { input: 'mail.example.com', want: 'mail.example.com' },
    { input: '', want: '' },
    { input: 'a+b=c', want: 'a+2Bb+3Dc' },
    { input: 'two words', want: 'two+20words' },
    { input: '!~', want: '!~' },
    { input: '\x7f\x00\r\n', want: '+7F+00+0D+0A' },
    { input: 'é', want: '+C3+A9' },
    { input: '[UNAVAILABLE]', want: '[UNAVAILABLE]' },
  ];
  for (const c of cases) assert.equal(xtextEncode(c.input), c.want, JSON.stringify(c.input));
});

test('property: xtext output is plain printable ASCII and decodes back', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
    const enc = xtextEncode(s);
    assert.match(enc, /^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/);
    assert.equal(xtextDecode(enc), Buffer.from(s, 'utf8').toString('utf8'));
  }), { numRuns: 2000 });
});

test('buildXclient table', () => {
  const cases: Array<{ label: string; attrs: XclientAttrs; want: string[] }> = [
    {
      label: 'IPv4, all attributes',
      attrs: { addr: '192.0.2.1', port: 4242, name: 'mx.example.com', helo: 'mx', proto: 'ESMTP', login: 'u', destaddr: '198.51.100.2', destport: 25 },
      want: ['XCLIENT NAME=mx.example.com ADDR=192.0.2.1 PORT=4242 PROTO=ESMTP HELO=mx LOGIN=u DESTADDR=198.51.100.2 DESTPORT=25\r\n'],
    },
    {
      label: 'IPv6 and unknown name',
      attrs: { addr: '2001:DB8:0:0::1' },
      want: ['XCLIENT NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1\r\n'],
    },
    {
      label: 'v4-mapped client is IPv4, IPv6 destination',
      attrs: { addr: '::ffff:192.0.2.1', destaddr: '::1', proto: 'SMTP' },
      want: ['XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1 PROTO=SMTP DESTADDR=IPV6:::1\r\n'],
    },
    {
      label: 'client text is xtext',
      attrs: { addr: '192.0.2.1', helo: 'evil HELO=x', name: 'a+b' },
      want: ['XCLIENT NAME=a+2Bb ADDR=192.0.2.1 HELO=evil+20HELO+3Dx\r\n'],
    },
  ];
  for (const c of cases) assert.deepEqual(buildXclient(c.attrs), c.want, c.label);
});

test('buildXclient splits long attribute sets and cuts over-long values', () => {
  const cases: Array<{ label: string; attrs: XclientAttrs; lines: number }> = [
    { label: 'long HELO and LOGIN', attrs: { addr: '192.0.2.1', name: 'n'.repeat(200), helo: 'h'.repeat(300), login: 'l'.repeat(300) }, lines: 3 },
    { label: 'HELO longer than a line', attrs: { addr: '192.0.2.1', helo: 'h'.repeat(1000) }, lines: 2 },
    { label: 'escaped HELO longer than a line', attrs: { addr: '192.0.2.1', helo: ' '.repeat(400) }, lines: 2 },
  ];
  for (const c of cases) {
    const lines = buildXclient(c.attrs);
    assert.equal(lines.length, c.lines, c.label);
    for (const line of lines) {
      assert.ok(Buffer.byteLength(line) <= XCLIENT_MAX_LINE, `${c.label}: ${line.length}`);
      assert.match(line, /^XCLIENT( [A-Z]+=(?:[!-*,-<>-~]|\+[0-9A-F]{2})+)+\r\n$/, c.label);
    }
    const all = lines.join('');
    assert.match(all, /ADDR=192\.0\.2\.1/, c.label);
    if (c.attrs.helo !== undefined) assert.match(all, / HELO=/, c.label);
    if (c.attrs.login !== undefined) assert.match(all, / LOGIN=l{300}/, c.label);
  }
});

test('buildXclient rejects a bad address or port', () => {
  for (const attrs of [{ addr: 'mx.example.com' }, { addr: '1.2.3.4', port: 70000 }, { addr: '1.2.3.4', destaddr: '' }]) {
    assert.throws(() => buildXclient(attrs), { code: 'SCR_ERR_CIDR' });
  }
});
