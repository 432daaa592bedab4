/*
 * test/fuzz/targets-proxy-cidr.ts - fuzz targets for the PROXY v1/v2 decoder
 * and the address / CIDR parsers it and the access lists use.
 *
 * Exports: proxyTarget, cidrTarget, addressText (arbitrary: address-like text).
 * proxy: random bytes, valid v1 lines and v2 headers (random addresses,
 *   ports, LOCAL/UNKNOWN, TLVs, trailing bytes) and their mutations, under
 *   each `allow` and sometimes a small v2 length cap. Properties: only
 *   SCR_ERR_PROXY with a known reason; a header fed in random splits (the
 *   caller re-decodes the bytes so far) ends as the one-shot decode of the
 *   whole; a done header decodes the same from exactly its consumed bytes,
 *   holds canonical addresses and ports 0..65535, and re-encodes to itself;
 *   an unmutated header decodes to what was encoded.
 * cidr: address-like text through parseAddress / normalizeAddress /
 *   parseCidr, and random access lists through CidrMatcher. Properties:
 *   parse(format(x)) is x; acceptance agrees with node:net isIP (zone ids
 *   aside); canonical IPv6 text agrees with the WHATWG URL serializer;
 *   parseCidr throws only SCR_ERR_CIDR and formatCidr re-parses to itself;
 *   the matcher's first match equals a linear scan of the list.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import {
  decodeProxyHeader, encodeProxyV1, encodeProxyV2, PROXY_V1_MAX_LENGTH, type ProxyAllow, type ProxyDecode,
} from '../../src/net/proxy-protocol.js';
import { CidrMatcher, formatAddress, formatCidr, normalizeAddress, parseAddress, parseCidr, type Cidr } from '../../src/net/cidr.js';
import { chunked, mutated, only, showBytes, type FuzzTarget } from './harness.js';

const REASONS = new Set([
  'bad signature', 'v1 line too long', 'v1 bad character', 'v1 bad line ending', 'v1 bad protocol', 'v1 bad field count',
  'bad address', 'bad port', 'v2 bad version', 'v2 bad command', 'v2 bad family', 'v2 unsupported family',
  'v2 length too large', 'v2 address block too short', 'v2 bad TLV',
]);

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const v6 = fc.array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 })
  .map((g) => g.map((x) => x.toString(16)).join(':'));
const anyAddr = fc.oneof(v4, v6, v4.map((a) => `::ffff:${a}`));
const port = fc.oneof(fc.nat(65535), fc.constantFrom(0, 1, 25, 65535));

/** Address-like text: valid forms, near-valid edits of them, and random characters of the alphabet. */
export const addressText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: anyAddr },
  { weight: 2, arbitrary: anyAddr.map((a) => a.replace(/(^|:)0(:0)+(?=:|$)/, '$1:')) },
  { weight: 3, arbitrary: fc.tuple(anyAddr, fc.array(fc.tuple(fc.nat(), fc.constantFrom('', ':', '::', '.', '0', '00', 'f', 'g', '1.2.3.4', ':::', '%eth0', ' ', 'ffff', '256')), { minLength: 1, maxLength: 3 }))
    .map(([a, eds]) => eds.reduce((s, [at, tok]) => { const i = at % (s.length + 1); return s.slice(0, i) + tok + s.slice(i + (at % 3)); }, a)) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(...'0123456789abcdefABCDEF:.'.split('')), { maxLength: 45 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 50 }) },
);

function encodeOk(src: string, sp: number, dst: string, dp: number, v: 1 | 2): Buffer {
  return v === 1 ? encodeProxyV1({ addr: src, port: sp }, { addr: dst, port: dp }) : encodeProxyV2({ addr: src, port: sp }, { addr: dst, port: dp });
}

/** A v2 header with a chosen command, family byte, address block and TLVs. */
const v2Raw = fc.record({
  cmd: fc.constantFrom(0x20, 0x21, 0x22, 0x11),
  fam: fc.constantFrom(0x00, 0x11, 0x21, 0x12, 0x31, 0x10, 0x41),
  block: fc.uint8Array({ maxLength: 60 }),
  tlvs: fc.array(fc.tuple(fc.nat(255), fc.uint8Array({ maxLength: 20 })), { maxLength: 3 }),
}).map(({ cmd, fam, block, tlvs }) => {
  const body = Buffer.concat([Buffer.from(block), ...tlvs.map(([t, v]) => Buffer.concat([Buffer.from([t, v.length >> 8, v.length & 255]), Buffer.from(v)]))]);
  const head = Buffer.alloc(16);
  V2_SIG.copy(head);
  head[12] = cmd;
  head[13] = fam;
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
});

const v1Text = fc.tuple(fc.constantFrom('TCP4', 'TCP6', 'UNKNOWN', 'TCP5', 'tcp4', ''), fc.array(fc.oneof(anyAddr, port.map(String), fc.string({ maxLength: 8 })), { maxLength: 5 }), fc.constantFrom('\r\n', '\n', '\r', '', '\r\r\n'))
  .map(([p, f, end]) => Buffer.from(`PROXY ${[p, ...f].join(' ')}${end}`, 'latin1'));

const validHeader = fc.tuple(anyAddr, port, anyAddr, port, fc.constantFrom(1 as const, 2 as const)).map(([s, sp, d, dp, v]) => encodeOk(s, sp, d, dp, v));

const DICT = ['PROXY ', 'TCP4 ', 'TCP6 ', 'UNKNOWN', '\r\n', ' ', ':', '.', '65535', '65536', '255.255.255.255', '::ffff:', '\0', '\r'].map((s) => Buffer.from(s, 'latin1'))
  .concat([V2_SIG, Buffer.from([0x21, 0x11, 0x00, 0x0c]), Buffer.from([0x21, 0x21, 0x00, 0x24]), Buffer.from([0xff, 0xff])]);

interface ProxyCase {
  buf: Buffer;
  allow: ProxyAllow;
  max: number | undefined;
  cuts: number[];
  /** Encoded from these endpoints, unmutated: must decode to them. */
  sent: { src: string; sp: number; dst: string; dp: number; v: 1 | 2 } | null;
}

const proxyInput: fc.Arbitrary<ProxyCase> = fc.record({
  kind: fc.nat(5),
  sent: fc.tuple(anyAddr, port, anyAddr, port, fc.constantFrom(1 as const, 2 as const)),
  other: fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    v1Text, v2Raw,
    mutated(fc.oneof(validHeader, v2Raw, v1Text), DICT),
  ),
  tail: fc.uint8Array({ maxLength: 16 }),
  allow: fc.constantFrom<ProxyAllow>('any', 'any', 'v1', 'v2'),
  max: fc.option(fc.nat(120), { freq: 5 }),
  cuts: fc.array(fc.nat(), { maxLength: 8 }),
}).map(({ kind, sent, other, tail, allow, max, cuts }) => {
  if (kind === 0) {
    const [src, sp, dst, dp, v] = sent;
    return { buf: Buffer.concat([encodeOk(src, sp, dst, dp, v), Buffer.from(tail)]), allow, max: undefined, cuts, sent: { src, sp, dst, dp, v } };
  }
  return { buf: kind === 1 ? Buffer.concat([other, Buffer.from(tail)]) : other, allow, max: max ?? undefined, cuts, sent: null };
});

type Outcome = { k: 'incomplete' } | { k: 'done'; consumed: number; header: string } | { k: 'error'; reason: string };

function decode(buf: Buffer, allow: ProxyAllow, max: number | undefined): Outcome {
  const r = only('SCR_ERR_PROXY', () => decodeProxyHeader(buf, allow, max));
  if (!r.ok) {
    const reason = String(r.error.details['reason']);
    assert.ok(REASONS.has(reason), `unknown reason ${reason}`);
    return { k: 'error', reason };
  }
  const d: ProxyDecode = r.value;
  return d.status === 'incomplete' ? { k: 'incomplete' } : { k: 'done', consumed: d.consumed, header: JSON.stringify(d.header) };
}

export const proxyTarget: FuzzTarget<ProxyCase> = {
  name: 'proxy',
  what: 'net/proxy-protocol.ts decodeProxyHeader (v1, v2; one-shot and in random splits), encodeProxyV1/V2',
  arb: proxyInput,
  check({ buf, allow, max, cuts, sent }) {
    const whole = decode(buf, allow, max);
    // Streaming: the bytes so far are decoded again after each read; the first answer must be the whole's.
    let acc = 0;
    let streamed: Outcome = { k: 'incomplete' };
    for (const piece of chunked(buf, cuts)) {
      acc += piece.length;
      streamed = decode(buf.subarray(0, acc), allow, max);
      if (streamed.k !== 'incomplete') break;
    }
    assert.deepEqual(streamed, whole, 'split input decodes as the whole');
    if (whole.k === 'done') {
      assert.ok(whole.consumed >= 8 && whole.consumed <= buf.length);
      assert.deepEqual(decode(buf.subarray(0, whole.consumed), allow, max), whole, 'exactly the consumed bytes decode the same');
      const h = decodeProxyHeader(buf, allow, max);
      assert.ok(h.status === 'done');
      const hd = h.header;
      if (hd.version === 1) assert.ok(whole.consumed <= PROXY_V1_MAX_LENGTH);
      if (hd.family !== 'UNKNOWN') {
        for (const a of [hd.srcAddr, hd.dstAddr]) assert.equal(normalizeAddress(a as string), a, 'canonical address');
        for (const p of [hd.srcPort, hd.dstPort]) assert.ok(Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 65535);
        const again = (hd.version === 1 ? encodeProxyV1 : encodeProxyV2)({ addr: hd.srcAddr as string, port: hd.srcPort as number }, { addr: hd.dstAddr as string, port: hd.dstPort as number });
        const back = decodeProxyHeader(again, 'any');
        assert.ok(back.status === 'done');
        assert.deepEqual([back.header.srcAddr, back.header.dstAddr, back.header.srcPort, back.header.dstPort], [hd.srcAddr, hd.dstAddr, hd.srcPort, hd.dstPort], 're-encodes to itself');
      }
    }
    if (sent !== null && (allow === 'any' || allow === `v${sent.v}`)) {
      assert.equal(whole.k, 'done', 'an encoded header decodes');
      const h = decodeProxyHeader(buf, allow);
      assert.ok(h.status === 'done');
      assert.deepEqual([h.header.srcAddr, h.header.srcPort, h.header.dstAddr, h.header.dstPort],
        [normalizeAddress(sent.src), sent.sp, normalizeAddress(sent.dst), sent.dp]);
    }
  },
  show: (x) => `allow ${x.allow}${x.max === undefined ? '' : ` max ${x.max}`} cuts ${x.cuts.length}: ${showBytes(x.buf)}`,
  linear: [
    {
      shape: 'v1 header of n bytes without CR (a long header with no terminator)',
      n: 5000,
      make: (n) => {
        const line = Buffer.alloc(n, 0x31);
        line.write('PROXY TCP4 ', 0, 'latin1');
        return () => {
          try {
            decodeProxyHeader(line, 'any');
          } catch { /* v1 line too long: the documented error, after 107 bytes */ }
        };
      },
    },
    {
      shape: 'v2 header of n bytes of empty TLVs (length cap raised to n)',
      n: 6000,
      make: (n) => {
        const head = Buffer.concat([V2_SIG, Buffer.from([0x21, 0x11, 0x00, 0x00]), Buffer.alloc(12), Buffer.alloc(n - (n % 3), 0)]);
        for (let i = 28; i < head.length; i += 3) head[i] = 0x04;
        head.writeUInt16BE(head.length - 16, 14);
        return () => { decodeProxyHeader(head, 'any', 65535); };
      },
    },
  ],
};

interface CidrCase {
  texts: string[];
  prefixes: string[];
  list: Array<[string, number]>;
  probes: string[];
}

/** A list entry: an address from the probes' neighbourhood with a prefix length (host bits cleared when valid). */
const entryText = fc.tuple(anyAddr, fc.nat(130), fc.boolean()).map(([a, len, tidy]) => {
  if (!tidy) return `${a}/${len}`;
  const p = parseAddress(a);
  if (p === null) return a;
  const bits = p.family === 4 ? len % 33 : len % 129;
  const w = [p.w0, p.w1, p.w2, p.w3].map((x, i) => {
    const keep = Math.max(0, Math.min(32, bits - 32 * (p.family === 4 ? 0 : i)));
    return keep === 0 ? 0 : (x & ((0xffffffff << (32 - keep)) >>> 0)) >>> 0;
  });
  const net = formatAddress(p.family === 4 ? { family: 4, w0: w[0] ?? 0, w1: 0, w2: 0, w3: 0 } : { family: 6, w0: w[0] ?? 0, w1: w[1] ?? 0, w2: w[2] ?? 0, w3: w[3] ?? 0 });
  return `${net}/${bits}`;
});

function contains(c: Cidr, a: { family: 4 | 6; w0: number; w1: number; w2: number; w3: number }): boolean {
  if (c.family !== a.family) return false;
  const cw = [c.w0, c.w1, c.w2, c.w3];
  const aw = [a.w0, a.w1, a.w2, a.w3];
  for (let i = 0; i < 4; i++) {
    const keep = Math.max(0, Math.min(32, c.prefix - 32 * i));
    const m = keep === 0 ? 0 : (0xffffffff << (32 - keep)) >>> 0;
    if ((((aw[i] as number) & m) >>> 0) !== (((cw[i] as number) & m) >>> 0)) return false;
  }
  return true;
}

export const cidrTarget: FuzzTarget<CidrCase> = {
  name: 'cidr',
  what: 'net/cidr.ts parseAddress, normalizeAddress, formatAddress, parseCidr, formatCidr, CidrMatcher (first match wins)',
  arb: fc.record({
    texts: fc.array(addressText, { minLength: 1, maxLength: 4 }),
    prefixes: fc.array(fc.oneof(entryText, fc.tuple(addressText, fc.string({ maxLength: 5 })).map(([a, l]) => `${a}/${l}`)), { maxLength: 3 }),
    list: fc.array(fc.tuple(entryText, fc.nat(1000)), { maxLength: 12 }),
    probes: fc.array(anyAddr, { minLength: 1, maxLength: 6 }),
  }),
  check({ texts, prefixes, list, probes }) {
    for (const t of texts) {
      const a = parseAddress(t);
      const n = normalizeAddress(t);
      assert.equal(a === null, n === null);
      if (!t.includes('%')) assert.equal(a !== null, isIP(t) !== 0, `agrees with node:net on ${JSON.stringify(t)}`);
      if (a === null || n === null) continue;
      assert.equal(formatAddress(a), n);
      assert.deepEqual(parseAddress(n), a, 'parse(format(x)) is x');
      assert.equal(normalizeAddress(n), n);
      if (a.family === 6) assert.equal(`[${n}]`, new URL(`http://[${t}]/`).hostname, 'RFC 5952 text as the URL serializer writes it');
    }
    for (const p of prefixes) {
      const r = only('SCR_ERR_CIDR', () => parseCidr(p));
      if (!r.ok) continue;
      const again = parseCidr(formatCidr(r.value));
      assert.deepEqual([again.family, again.w0, again.w1, again.w2, again.w3, again.prefix], [r.value.family, r.value.w0, r.value.w1, r.value.w2, r.value.w3, r.value.prefix]);
    }
    const entries: Array<[Cidr, number]> = [];
    for (const [text, v] of list) {
      const r = only('SCR_ERR_CIDR', () => parseCidr(text));
      if (r.ok) entries.push([r.value, v]);
    }
    const m = CidrMatcher.fromList(entries);
    for (const probe of [...probes, ...entries.map(([c]) => formatAddress(c))]) {
      const a = parseAddress(probe);
      assert.ok(a !== null);
      const want = entries.find(([c]) => contains(c, a));
      assert.equal(m.match(probe), want?.[1], `first match for ${probe}`);
    }
  },
  show: (x) => JSON.stringify(x).slice(0, 300),
  linear: [
    {
      shape: 'access list of n prefixes: build and one lookup per entry',
      n: 2000,
      make: (n) => {
        const texts = Array.from({ length: n }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
        return () => {
          const m = CidrMatcher.fromList(texts.map((t, i) => [t, i] as const));
          for (let i = 0; i < n; i++) m.match(`10.${(i >> 8) & 255}.${i & 255}.7`);
        };
      },
    },
  ],
};
