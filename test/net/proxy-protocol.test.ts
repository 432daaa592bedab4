/*
 * test/net/proxy-protocol.test.ts - PROXY v1/v2 decode tables, error reasons, and fast-check
 * properties: round trips, prefixes are 'incomplete', arbitrary bytes never throw anything but
 * ScreenError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeProxyHeader, encodeProxyV1, encodeProxyV2, PROXY_V1_MAX_LENGTH, type ProxyAllow, type ProxyHeader,
} from '../../src/net/proxy-protocol.js';
import { normalizeAddress, parseAddress } from '../../src/net/cidr.js';
import { ScreenError } from '../../src/util/errors.js';

const SIG = '0d0a0d0a000d0a515549540a';
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const v2 = (verCmd: string, fam: string, body: string): Buffer => {
  const b = hex(body);
  return Buffer.concat([hex(SIG + verCmd + fam), Buffer.from([b.length >> 8, b.length & 255]), b]);
};

test('decode table: valid headers', () => {
  const cases: Array<{ label: string; input: Buffer; allow: ProxyAllow; consumed: number; header: ProxyHeader }> = [
    {
      label: 'v1 TCP4', allow: 'any', input: Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n'),
      consumed: 44, header: { version: 1, command: 'PROXY', family: 'TCP4', srcAddr: '192.0.2.1', dstAddr: '198.51.100.2', srcPort: 56324, dstPort: 25 },
    },
    {
      label: 'v1 TCP6 normalised', allow: 'v1', input: Buffer.from('PROXY TCP6 2001:DB8:0::1 ::ffff:10.0.0.1 1 65535\r\n'),
      consumed: 50, header: { version: 1, command: 'PROXY', family: 'TCP6', srcAddr: '2001:db8::1', dstAddr: '10.0.0.1', srcPort: 1, dstPort: 65535 },
    },
    {
      label: 'v1 UNKNOWN with trailing junk', allow: 'any', input: Buffer.from('PROXY UNKNOWN ffff::1 whatever\r\n'),
      consumed: 32, header: { version: 1, command: 'PROXY', family: 'UNKNOWN' },
    },
    {
      label: 'v1 UNKNOWN bare', allow: 'any', input: Buffer.from('PROXY UNKNOWN\r\n'),
      consumed: 15, header: { version: 1, command: 'PROXY', family: 'UNKNOWN' },
    },
    {
      label: 'v2 TCP4', allow: 'v2', input: v2('21', '11', 'c0000201 c6336402 dc04 0019'),
      consumed: 28, header: { version: 2, command: 'PROXY', family: 'TCP4', srcAddr: '192.0.2.1', dstAddr: '198.51.100.2', srcPort: 56324, dstPort: 25 },
    },
    {
      label: 'v2 TCP6 with TLVs', allow: 'any',
      input: v2('21', '21', '20010db8000000000000000000000001 00000000000000000000ffff0a000001 0001 0002 04 0000 01 0002 6832'),
      consumed: 16 + 36 + 3 + 5, header: { version: 2, command: 'PROXY', family: 'TCP6', srcAddr: '2001:db8::1', dstAddr: '10.0.0.1', srcPort: 1, dstPort: 2 },
    },
    {
      label: 'v2 LOCAL', allow: 'any', input: v2('20', '00', ''),
      consumed: 16, header: { version: 2, command: 'LOCAL', family: 'UNKNOWN' },
    },
    {
      label: 'v2 LOCAL ignores its address block', allow: 'any', input: v2('20', '11', 'ffff'),
      consumed: 18, header: { version: 2, command: 'LOCAL', family: 'UNKNOWN' },
    },
    {
      label: 'v2 PROXY UNSPEC', allow: 'any', input: v2('21', '00', '04 0001 00'),
      consumed: 20, header: { version: 2, command: 'PROXY', family: 'UNKNOWN' },
    },
  ];
  for (const c of cases) {
    const r = decodeProxyHeader(c.input, c.allow);
    assert.deepEqual(r, { status: 'done', consumed: c.consumed, header: c.header }, c.label);
  }
});

test('decode table: malformed headers throw SCR_ERR_PROXY with a reason', () => {
  const long = `PROXY TCP4 1.2.3.4 5.6.7.8 1 2${' '.repeat(100)}\r\n`;
  const cases: Array<{ label: string; input: Buffer; allow: ProxyAllow; reason: string }> = [
    { label: 'not a header', input: Buffer.from('EHLO example.com\r\n'), allow: 'any', reason: 'bad signature' },
    { label: 'v1 wrong magic', input: Buffer.from('PROXZ TCP4'), allow: 'any', reason: 'bad signature' },
    { label: 'v1 when only v2 allowed', input: Buffer.from('PROXY TCP4'), allow: 'v2', reason: 'bad signature' },
    { label: 'v2 when only v1 allowed', input: hex(SIG), allow: 'v1', reason: 'bad signature' },
    { label: 'v2 wrong magic', input: hex('0d0a0d0a000d0a5155495421'), allow: 'any', reason: 'bad signature' },
    { label: 'v1 too long, no CR', input: Buffer.from(`PROXY ${'x'.repeat(120)}`), allow: 'any', reason: 'v1 line too long' },
    { label: 'v1 too long, CR late', input: Buffer.from(long), allow: 'any', reason: 'v1 line too long' },
    { label: 'v1 control char', input: Buffer.from('PROXY TCP4\t1.2.3.4'), allow: 'any', reason: 'v1 bad character' },
    { label: 'v1 bare CR', input: Buffer.from('PROXY UNKNOWN\rX'), allow: 'any', reason: 'v1 bad line ending' },
    { label: 'v1 bad protocol', input: Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), allow: 'any', reason: 'v1 bad protocol' },
    { label: 'v1 empty protocol', input: Buffer.from('PROXY \r\n'), allow: 'any', reason: 'v1 bad protocol' },
    { label: 'v1 missing port', input: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), allow: 'any', reason: 'v1 bad field count' },
    { label: 'v1 double space', input: Buffer.from('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n'), allow: 'any', reason: 'v1 bad field count' },
    { label: 'v1 TCP4 with IPv6', input: Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), allow: 'any', reason: 'bad address' },
    { label: 'v1 TCP6 with IPv4', input: Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'), allow: 'any', reason: 'bad address' },
    { label: 'v1 bad octet', input: Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'), allow: 'any', reason: 'bad address' },
    { label: 'v1 port too big', input: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), allow: 'any', reason: 'bad port' },
    { label: 'v1 port not a number', input: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'), allow: 'any', reason: 'bad port' },
    { label: 'v2 version 1', input: hex(`${SIG}11`), allow: 'any', reason: 'v2 bad version' },
    { label: 'v2 command 2', input: hex(`${SIG}22`), allow: 'any', reason: 'v2 bad command' },
    { label: 'v2 family 4', input: hex(`${SIG}2141`), allow: 'any', reason: 'v2 bad family' },
    { label: 'v2 transport 3', input: hex(`${SIG}2113`), allow: 'any', reason: 'v2 bad family' },
    { label: 'v2 AF_UNIX', input: v2('21', '31', '00'.repeat(216)), allow: 'any', reason: 'v2 unsupported family' },
    { label: 'v2 UDP', input: v2('21', '12', '00'.repeat(12)), allow: 'any', reason: 'v2 unsupported family' },
    { label: 'v2 length over cap', input: hex(`${SIG}2111 0401`), allow: 'any', reason: 'v2 length too large' },
    { label: 'v2 short INET block', input: v2('21', '11', '00'.repeat(11)), allow: 'any', reason: 'v2 address block too short' },
    { label: 'v2 short INET6 block', input: v2('21', '21', '00'.repeat(35)), allow: 'any', reason: 'v2 address block too short' },
    { label: 'v2 TLV overruns', input: v2('21', '11', `${'00'.repeat(12)} 04 0005 0000`), allow: 'any', reason: 'v2 bad TLV' },
    { label: 'v2 TLV header cut', input: v2('21', '11', `${'00'.repeat(12)} 04 00`), allow: 'any', reason: 'v2 bad TLV' },
  ];
  for (const c of cases) {
    assert.throws(() => decodeProxyHeader(c.input, c.allow), (err: unknown) => {
      assert.ok(err instanceof ScreenError, c.label);
      assert.equal(err.code, 'SCR_ERR_PROXY', c.label);
      assert.equal(err.details['reason'], c.reason, c.label);
      return true;
    }, c.label);
  }
});

test('v1 line limit: 107 bytes with CRLF is accepted, 108 is not', () => {
  const base = 'PROXY UNKNOWN ';
  const ok = Buffer.from(`${base}${'x'.repeat(PROXY_V1_MAX_LENGTH - base.length - 2)}\r\n`);
  assert.equal(ok.length, 107);
  assert.deepEqual(decodeProxyHeader(ok, 'v1'), { status: 'done', consumed: 107, header: { version: 1, command: 'PROXY', family: 'UNKNOWN' } });
  const tooLong = Buffer.from(`${base}${'x'.repeat(PROXY_V1_MAX_LENGTH - base.length - 1)}\r\n`);
  assert.throws(() => decodeProxyHeader(tooLong, 'v1'), { code: 'SCR_ERR_PROXY' });
  // Incomplete up to the cap, an error right after it.
  assert.deepEqual(decodeProxyHeader(tooLong.subarray(0, 105), 'v1'), { status: 'incomplete' });
  assert.throws(() => decodeProxyHeader(tooLong.subarray(0, 106), 'v1'), { code: 'SCR_ERR_PROXY' });
});

test('encode table', () => {
  const cases: Array<{ label: string; src: { addr: string; port: number }; dst: { addr: string; port: number }; v1: string; v2: string }> = [
    {
      label: 'IPv4', src: { addr: '192.0.2.1', port: 56324 }, dst: { addr: '198.51.100.2', port: 25 },
      v1: 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n', v2: `${SIG}2111000c c0000201 c6336402 dc04 0019`,
    },
    {
      label: 'v4-mapped is IPv4', src: { addr: '::ffff:192.0.2.1', port: 1 }, dst: { addr: '::ffff:198.51.100.2', port: 2 },
      v1: 'PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n', v2: `${SIG}2111000c c0000201 c6336402 0001 0002`,
    },
    {
      label: 'IPv6', src: { addr: '2001:db8::1', port: 0 }, dst: { addr: '::1', port: 587 },
      v1: 'PROXY TCP6 2001:db8::1 ::1 0 587\r\n',
      v2: `${SIG}21210024 20010db8000000000000000000000001 00000000000000000000000000000001 0000 024b`,
    },
    {
      label: 'mixed families go v6', src: { addr: '192.0.2.1', port: 1 }, dst: { addr: '::1', port: 2 },
      v1: 'PROXY TCP6 ::ffff:c000:201 ::1 1 2\r\n',
      v2: `${SIG}21210024 00000000000000000000ffffc0000201 00000000000000000000000000000001 0001 0002`,
    },
  ];
  for (const c of cases) {
    assert.equal(encodeProxyV1(c.src, c.dst).toString('latin1'), c.v1, c.label);
    assert.equal(encodeProxyV2(c.src, c.dst).toString('hex'), hex(c.v2).toString('hex'), c.label);
  }
  for (const bad of [{ addr: 'x', port: 1 }, { addr: '1.2.3.4', port: 65536 }, { addr: '1.2.3.4', port: 1.5 }]) {
    assert.throws(() => encodeProxyV1(bad, { addr: '1.2.3.4', port: 1 }), { code: 'SCR_ERR_PROXY' });
    assert.throws(() => encodeProxyV2(bad, { addr: '1.2.3.4', port: 1 }), { code: 'SCR_ERR_PROXY' });
  }
});

/* Generators. */
const addr = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4().map((a) => `::ffff:${a}`));
const endpoint = fc.record({ addr, port: fc.integer({ min: 0, max: 65535 }) });
const validHeader = fc.tuple(endpoint, endpoint, fc.boolean()).map(([s, d, useV2]) => (useV2 ? encodeProxyV2(s, d) : encodeProxyV1(s, d)));

/** Only ever returns, or throws a ScreenError with code SCR_ERR_PROXY. */
function decodesOrThrowsScreenError(buf: Buffer, allow: ProxyAllow): void {
  try {
    const r = decodeProxyHeader(buf, allow);
    if (r.status === 'done') assert.ok(r.consumed > 0 && r.consumed <= buf.length);
  } catch (err) {
    assert.ok(err instanceof ScreenError, `non-ScreenError: ${String(err)}`);
    assert.equal(err.code, 'SCR_ERR_PROXY');
  }
}

test('property: encode -> decode round trip (v1, v2, IPv4, IPv6)', () => {
  fc.assert(fc.property(endpoint, endpoint, fc.boolean(), fc.uint8Array({ maxLength: 20 }), (src, dst, useV2, trailer) => {
    const enc = useV2 ? encodeProxyV2(src, dst) : encodeProxyV1(src, dst);
    const r = decodeProxyHeader(Buffer.concat([enc, trailer]), 'any');
    assert.equal(r.status, 'done');
    if (r.status !== 'done') return;
    assert.equal(r.consumed, enc.length);
    assert.equal(r.header.version, useV2 ? 2 : 1);
    assert.equal(r.header.command, 'PROXY');
    assert.equal(r.header.srcAddr, normalizeAddress(src.addr));
    assert.equal(r.header.dstAddr, normalizeAddress(dst.addr));
    assert.equal(r.header.srcPort, src.port);
    assert.equal(r.header.dstPort, dst.port);
    const both4 = parseAddress(src.addr)?.family === 4 && parseAddress(dst.addr)?.family === 4;
    assert.equal(r.header.family, both4 ? 'TCP4' : 'TCP6');
  }), { numRuns: 2000 });
});

test('property: every proper prefix of a valid header is incomplete', () => {
  fc.assert(fc.property(validHeader, fc.nat(), (enc, n) => {
    const cut = n % enc.length;
    assert.deepEqual(decodeProxyHeader(enc.subarray(0, cut), 'any'), { status: 'incomplete' });
  }), { numRuns: 2000 });
});

test('property: arbitrary and mutated bytes only return or throw ScreenError', () => {
  const mutated = fc.tuple(validHeader, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat())
    .map(([enc, flips, cut]) => {
      const b = Buffer.from(enc);
      for (const [at, v] of flips) b[at % b.length] = v;
      return b.subarray(0, Math.max(1, b.length - (cut % 4)));
    });
  const withSig = fc.uint8Array({ maxLength: 80 }).map((tail) => Buffer.concat([hex(SIG), Buffer.from(tail)]));
  const v1ish = fc.string({ maxLength: 120 }).map((s) => Buffer.from(`PROXY ${s}`, 'latin1'));
  const input = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), mutated, withSig, v1ish);
  fc.assert(fc.property(input, fc.constantFrom<ProxyAllow>('v1', 'v2', 'any'), (buf, allow) => {
    decodesOrThrowsScreenError(buf, allow);
  }), { numRuns: 10000 });
});

test('error text: the reason, then the offending field when there is one (the listener logs it as the failure reason)', () => {
  const text = (input: Buffer): string => {
    try {
      decodeProxyHeader(input, 'any');
    } catch (err) {
      assert.ok(err instanceof ScreenError);
      return err.message;
    }
    return assert.fail('no error');
  };
  assert.equal(text(Buffer.from('EHLO x\r\n')), 'PROXY header: bad signature');
  assert.equal(text(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n')), 'PROXY header: bad port: 65536');
  assert.equal(text(Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')), 'PROXY header: v1 bad protocol: UDP4');
  assert.equal(text(v2('21', '31', '00'.repeat(216))), 'PROXY header: v2 unsupported family: family 3 transport 1');
  assert.equal(text(hex(`${SIG}2111 0401`)), 'PROXY header: v2 length too large: 1025');
});

test('decode edges: printable bytes, port digits, the v2 length cap, v4-mapped detection, an empty last TLV', () => {
  const done = (input: Buffer, header: ProxyHeader, maxV2?: number): void => {
    assert.deepEqual(decodeProxyHeader(input, 'any', maxV2), { status: 'done', consumed: input.length, header }, input.toString('latin1'));
  };
  const reason = (input: Buffer, want: string, maxV2?: number): void => {
    assert.throws(() => decodeProxyHeader(input, 'any', maxV2), (err: unknown) => err instanceof ScreenError && err.details['reason'] === want, `${input.toString('hex')}: ${want}`);
  };
  const unknown1: ProxyHeader = { version: 1, command: 'PROXY', family: 'UNKNOWN' };
  // Space (0x20) and '~' (0x7e) are the ends of the printable range a v1 line may hold; DEL (0x7f) and 0x1f are not.
  done(Buffer.from('PROXY UNKNOWN ~ ~\r\n'), unknown1);
  reason(Buffer.from('PROXY UNKNOWN \x7f\r\n', 'latin1'), 'v1 bad character');
  reason(Buffer.from('PROXY UNKNOWN \x1f\r\n', 'latin1'), 'v1 bad character');
  // Ports: 1 to 5 decimal digits, at most 65535.
  const tcp4 = (ports: string): Buffer => Buffer.from(`PROXY TCP4 192.0.2.1 198.51.100.2 ${ports}\r\n`);
  const h4 = (srcPort: number, dstPort: number): ProxyHeader => ({ version: 1, command: 'PROXY', family: 'TCP4', srcAddr: '192.0.2.1', dstAddr: '198.51.100.2', srcPort, dstPort });
  done(tcp4('0 65535'), h4(0, 65535));
  done(tcp4('09 00025'), h4(9, 25));
  for (const bad of ['1 ', '000025 25', '1/ 25', '1: 25', '25 2a']) reason(tcp4(bad), 'bad port');
  // v2: the length field may be exactly the cap, not one more; the cap can be lowered.
  const local = (len: number): Buffer => v2('20', '00', '00'.repeat(len));
  const localHeader: ProxyHeader = { version: 2, command: 'LOCAL', family: 'UNKNOWN' };
  done(local(1024), localHeader);
  reason(local(1025), 'v2 length too large');
  done(local(12), localHeader, 12);
  reason(local(13), 'v2 length too large', 12);
  // v4-mapped only when the first 80 bits are zero and the next 16 are ones.
  const six = (src: string): Buffer => v2('21', '21', `${src} 00000000000000000000000000000001 0019 0019`);
  const h6 = (srcAddr: string): ProxyHeader => ({ version: 2, command: 'PROXY', family: 'TCP6', srcAddr, dstAddr: '::1', srcPort: 25, dstPort: 25 });
  done(six('00000000000000000000ffff0a000001'), h6('10.0.0.1'));
  done(six('2001 0db8 0000 0000 0000 ffff 0a00 0001'.replace(/ /g, '')), h6('2001:db8::ffff:a00:1'));
  done(six('0000 0000 0001 0000 0000 ffff 0a00 0001'.replace(/ /g, '')), h6('::1:0:0:ffff:a00:1'));
  done(six('00000000000000000000000000000001'), h6('::1'));
  // TLVs: an empty TLV may end the block exactly; one byte less is a cut TLV header.
  const v4 = 'c0000201 c6336402 0019 0019';
  const h2: ProxyHeader = { version: 2, command: 'PROXY', family: 'TCP4', srcAddr: '192.0.2.1', dstAddr: '198.51.100.2', srcPort: 25, dstPort: 25 };
  done(v2('21', '11', `${v4} 04 0000`), h2);
  done(v2('21', '11', `${v4} 01 0002 6832 04 0000`), h2);
  reason(v2('21', '11', `${v4} 04 0001`), 'v2 bad TLV');
  reason(v2('21', '11', `${v4} 04`), 'v2 bad TLV');
});

test('encode edges: a bad destination address or port, port bounds, a full IPv6 destination', () => {
  const ok = { addr: '192.0.2.1', port: 25 };
  for (const bad of [{ addr: 'x', port: 1 }, { addr: '', port: 1 }, { addr: '1.2.3.4', port: -1 }, { addr: '1.2.3.4', port: 65536 }, { addr: '1.2.3.4', port: Number.NaN }]) {
    for (const enc of [encodeProxyV1, encodeProxyV2]) {
      assert.throws(() => enc(ok, bad), { code: 'SCR_ERR_PROXY' }, `dst ${JSON.stringify(bad)}`);
      assert.throws(() => enc(bad, ok), { code: 'SCR_ERR_PROXY' }, `src ${JSON.stringify(bad)}`);
    }
  }
  assert.throws(() => encodeProxyV1(ok, { addr: 'x', port: 1 }), { message: 'PROXY header: bad address: x' });
  assert.throws(() => encodeProxyV2({ addr: '1.2.3', port: 1 }, ok), (err: unknown) => err instanceof ScreenError && err.details['reason'] === 'bad address' && err.message === 'PROXY header: bad address: 1.2.3');
  assert.throws(() => encodeProxyV2(ok, { addr: '1.2.3.4', port: 65536 }), (err: unknown) => err instanceof ScreenError && err.details['reason'] === 'bad port');
  assert.throws(() => encodeProxyV1(ok, { addr: '1.2.3.4', port: -1 }), { message: 'PROXY header: bad port: -1' });
  assert.equal(encodeProxyV1({ addr: '192.0.2.1', port: 0 }, { addr: '192.0.2.2', port: 65535 }).toString('latin1'), 'PROXY TCP4 192.0.2.1 192.0.2.2 0 65535\r\n');
  const src = { addr: '2001:db8::1', port: 1 };
  const dst = { addr: '2001:db8:1:2:3:4:5:6', port: 2 };
  assert.equal(encodeProxyV1(src, dst).toString('latin1'), 'PROXY TCP6 2001:db8::1 2001:db8:1:2:3:4:5:6 1 2\r\n');
  assert.equal(encodeProxyV2(src, dst).toString('hex'), hex(`${SIG}21210024 20010db8000000000000000000000001 20010db8000100020003000400050006 0001 0002`).toString('hex'));
});
