/*
 * net/proxy-protocol.ts - HAProxy PROXY protocol v1 (text) and v2 (binary) codec.
 *
 * Exports:
 *   ProxyHeader, ProxyDecode, ProxyAllow, ProxyErrorReason, Endpoint
 *   PROXY_V1_MAX_LENGTH (107), PROXY_V2_MAX_LENGTH (1024, cap on the v2 length field)
 *   decodeProxyHeader(buf, allow, maxV2Length?)  'incomplete' | 'done' + consumed + header;
 *                                                 malformed input throws ScreenError SCR_ERR_PROXY
 *   encodeProxyV1(src, dst), encodeProxyV2(src, dst)   PROXY command, TCP4/TCP6 by address family
 *
 * Facts from haproxy's proxy-protocol.txt: a v1 line is "PROXY TCP4|TCP6|UNKNOWN ..." ending in
 * CRLF, at most 107 bytes; v2 is a 12-byte signature, version/command, family/transport, a 16-bit
 * big-endian length, then addresses and TLVs. LOCAL (v2) and UNKNOWN (v1) carry no usable address:
 * the caller keeps the socket's own endpoints.
 * The decoder never loops on input and throws nothing but ScreenError. `incomplete` means the
 * buffer is a prefix of a header that may still be valid; the caller bounds the wait with a timer.
 * Addresses in a decoded header are canonical text (normalizeAddress): ::ffff:a.b.c.d is a.b.c.d.
 */
import { formatAddress, parseAddressInto } from './cidr.js';
import { ScreenError } from '../util/errors.js';

export type ProxyAllow = 'v1' | 'v2' | 'any';

export interface ProxyHeader {
  version: 1 | 2;
  command: 'PROXY' | 'LOCAL';
  family: 'TCP4' | 'TCP6' | 'UNKNOWN';
  srcAddr?: string;
  srcPort?: number;
  dstAddr?: string;
  dstPort?: number;
}

export type ProxyDecode =
  | { status: 'incomplete' }
  | { status: 'done'; consumed: number; header: ProxyHeader };

export interface Endpoint {
  addr: string;
  port: number;
}

export type ProxyErrorReason =
  | 'bad signature' | 'v1 line too long' | 'v1 bad character' | 'v1 bad line ending'
  | 'v1 bad protocol' | 'v1 bad field count' | 'bad address' | 'bad port'
  | 'v2 bad version' | 'v2 bad command' | 'v2 bad family' | 'v2 unsupported family'
  | 'v2 length too large' | 'v2 address block too short' | 'v2 bad TLV';

export const PROXY_V1_MAX_LENGTH = 107;
export const PROXY_V2_MAX_LENGTH = 1024;

const V1_SIG = Buffer.from('PROXY ', 'latin1');
const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const INCOMPLETE: ProxyDecode = Object.freeze({ status: 'incomplete' }) as ProxyDecode;

function fail(reason: ProxyErrorReason, detail?: string): ScreenError {
  return new ScreenError('SCR_ERR_PROXY', detail === undefined ? `PROXY header: ${reason}` : `PROXY header: ${reason}: ${detail}`,
    { reason });
}

/** True if buf[0..n) equals sig[0..n) for n = min(buf.length, sig.length). */
function prefixMatches(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/**
 * Decodes a PROXY header at the start of buf. `allow` picks the accepted versions.
 * Throws ScreenError('SCR_ERR_PROXY', ..., { reason }) on malformed or disallowed input.
 */
export function decodeProxyHeader(buf: Buffer, allow: ProxyAllow, maxV2Length = PROXY_V2_MAX_LENGTH): ProxyDecode {
  if (buf.length === 0) return INCOMPLETE;
  if (allow !== 'v2' && buf[0] === 0x50) {
    if (!prefixMatches(buf, V1_SIG)) throw fail('bad signature');
    return decodeV1(buf);
  }
  if (allow !== 'v1' && buf[0] === 0x0d) {
    if (!prefixMatches(buf, V2_SIG)) throw fail('bad signature');
    return decodeV2(buf, maxV2Length);
  }
  throw fail('bad signature');
}

function parsePort(text: string): number {
  if (text.length === 0 || text.length > 5) throw fail('bad port', text);
  let v = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) throw fail('bad port', text);
    v = v * 10 + (c - 48);
  }
  if (v > 65535) throw fail('bad port', text);
  return v;
}

const v1Words = new Uint32Array(4);

function parseV1Addr(text: string, v6: boolean): string {
  // TCP4 takes dotted quads only, TCP6 IPv6 text only.
  const family = text.includes(':') === v6 ? parseAddressInto(text, v1Words) : 0;
  if (family === 0) throw fail('bad address', text);
  return formatAddress({ family, w0: v1Words[0] ?? 0, w1: v1Words[1] ?? 0, w2: v1Words[2] ?? 0, w3: v1Words[3] ?? 0 });
}

function decodeV1(buf: Buffer): ProxyDecode {
  // The CR may sit at index 105 at most: 107 bytes including CRLF.
  const lastCr = PROXY_V1_MAX_LENGTH - 2;
  const limit = Math.min(buf.length, lastCr + 1);
  let cr = -1;
  for (let i = V1_SIG.length; i < limit; i++) {
    const c = buf[i] ?? 0;
    if (c === 0x0d) { cr = i; break; }
    if (c < 0x20 || c > 0x7e) throw fail('v1 bad character');
  }
  if (cr < 0) {
    if (buf.length > lastCr) throw fail('v1 line too long');
    return INCOMPLETE;
  }
  if (cr + 1 >= buf.length) return INCOMPLETE;
  if (buf[cr + 1] !== 0x0a) throw fail('v1 bad line ending');
  const consumed = cr + 2;
  const fields = buf.toString('latin1', V1_SIG.length, cr).split(' ');
  const proto = fields[0] ?? '';
  if (proto === 'UNKNOWN') {
    // The rest of an UNKNOWN line is ignored by receivers (spec 2.1).
    return { status: 'done', consumed, header: { version: 1, command: 'PROXY', family: 'UNKNOWN' } };
  }
  if (proto !== 'TCP4' && proto !== 'TCP6') throw fail('v1 bad protocol', proto);
  if (fields.length !== 5) throw fail('v1 bad field count');
  const v6 = proto === 'TCP6';
  const header: ProxyHeader = {
    version: 1,
    command: 'PROXY',
    family: proto,
    srcAddr: parseV1Addr(fields[1] ?? '', v6),
    dstAddr: parseV1Addr(fields[2] ?? '', v6),
    srcPort: parsePort(fields[3] ?? ''),
    dstPort: parsePort(fields[4] ?? ''),
  };
  return { status: 'done', consumed, header };
}

function v4Text(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** 16 bytes at `at` as canonical text; v4-mapped becomes a dotted quad. */
function v6Text(buf: Buffer, at: number): string {
  const w0 = buf.readUInt32BE(at);
  const w1 = buf.readUInt32BE(at + 4);
  const w2 = buf.readUInt32BE(at + 8);
  const w3 = buf.readUInt32BE(at + 12);
  if (w0 === 0 && w1 === 0 && w2 === 0xffff) return formatAddress({ family: 4, w0: w3, w1: 0, w2: 0, w3: 0 });
  return formatAddress({ family: 6, w0, w1, w2, w3 });
}

function decodeV2(buf: Buffer, maxV2Length: number): ProxyDecode {
  if (buf.length > 12) {
    const verCmd = buf[12] ?? 0;
    if (verCmd >> 4 !== 2) throw fail('v2 bad version');
    if ((verCmd & 15) > 1) throw fail('v2 bad command');
  }
  if (buf.length > 13) {
    const famTr = buf[13] ?? 0;
    if (famTr >> 4 > 3 || (famTr & 15) > 2) throw fail('v2 bad family');
  }
  if (buf.length < 16) return INCOMPLETE;
  const len = buf.readUInt16BE(14);
  if (len > maxV2Length) throw fail('v2 length too large', String(len));
  if (buf.length < 16 + len) return INCOMPLETE;
  const consumed = 16 + len;
  const local = ((buf[12] ?? 0) & 15) === 0;
  const fam = (buf[13] ?? 0) >> 4;
  const transport = (buf[13] ?? 0) & 15;
  if (local) {
    // LOCAL: the proxy's own connection (health check); any address block is ignored.
    return { status: 'done', consumed, header: { version: 2, command: 'LOCAL', family: 'UNKNOWN' } };
  }
  let header: ProxyHeader;
  let tlvAt: number;
  if (fam === 0) {
    header = { version: 2, command: 'PROXY', family: 'UNKNOWN' };
    tlvAt = 16;
  } else if (fam === 3 || transport !== 1) {
    throw fail('v2 unsupported family', `family ${fam} transport ${transport}`);
  } else if (fam === 1) {
    if (len < 12) throw fail('v2 address block too short');
    header = {
      version: 2, command: 'PROXY', family: 'TCP4',
      srcAddr: v4Text(buf, 16), dstAddr: v4Text(buf, 20),
      srcPort: buf.readUInt16BE(24), dstPort: buf.readUInt16BE(26),
    };
    tlvAt = 28;
  } else {
    if (len < 36) throw fail('v2 address block too short');
    header = {
      version: 2, command: 'PROXY', family: 'TCP6',
      srcAddr: v6Text(buf, 16), dstAddr: v6Text(buf, 32),
      srcPort: buf.readUInt16BE(48), dstPort: buf.readUInt16BE(50),
    };
    tlvAt = 52;
  }
  // TLVs are skipped, but each must fit inside the declared length.
  while (tlvAt < consumed) {
    if (tlvAt + 3 > consumed) throw fail('v2 bad TLV');
    tlvAt += 3 + buf.readUInt16BE(tlvAt + 1);
    if (tlvAt > consumed) throw fail('v2 bad TLV');
  }
  return { status: 'done', consumed, header };
}

/** Parses both endpoints; mixed families are written as IPv6 (v4-mapped). */
function endpoints(src: Endpoint, dst: Endpoint): { v6: boolean; s: Uint32Array; d: Uint32Array } {
  const s = new Uint32Array(4);
  const d = new Uint32Array(4);
  const fs = parseAddressInto(src.addr, s);
  const fd = parseAddressInto(dst.addr, d);
  if (fs === 0) throw fail('bad address', src.addr);
  if (fd === 0) throw fail('bad address', dst.addr);
  for (const p of [src.port, dst.port]) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw fail('bad port', String(p));
  }
  const v6 = fs === 6 || fd === 6;
  if (v6) {
    for (const [w, f] of [[s, fs], [d, fd]] as const) {
      if (f === 4) { w[3] = w[0] ?? 0; w[0] = 0; w[1] = 0; w[2] = 0xffff; }
    }
  }
  return { v6, s, d };
}

function v6Hex(w: Uint32Array): string {
  return formatAddress({ family: 6, w0: w[0] ?? 0, w1: w[1] ?? 0, w2: w[2] ?? 0, w3: w[3] ?? 0 });
}

function v4Dotted(x: number): string {
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
}

/** "PROXY TCP4|TCP6 src dst sport dport\r\n". Throws SCR_ERR_PROXY for a bad address or port. */
export function encodeProxyV1(src: Endpoint, dst: Endpoint): Buffer {
  const { v6, s, d } = endpoints(src, dst);
  // XXX: with mixed families the IPv4 end is written v4-mapped (::ffff:102:304) so the TCP6
  // line keeps one family; decoders normalise it back to a dotted quad.
  const sa = v6 ? v6Hex(s) : v4Dotted(s[0] ?? 0);
  const da = v6 ? v6Hex(d) : v4Dotted(d[0] ?? 0);
  return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${sa} ${da} ${src.port} ${dst.port}\r\n`, 'latin1');
}

/** Binary v2 header, PROXY command, STREAM over INET or INET6, no TLVs. */
export function encodeProxyV2(src: Endpoint, dst: Endpoint): Buffer {
  const { v6, s, d } = endpoints(src, dst);
  const len = v6 ? 36 : 12;
  const out = Buffer.allocUnsafe(16 + len);
  V2_SIG.copy(out, 0);
  out[12] = 0x21;
  out[13] = v6 ? 0x21 : 0x11;
  out.writeUInt16BE(len, 14);
  if (v6) {
    for (let k = 0; k < 4; k++) {
      out.writeUInt32BE(s[k] ?? 0, 16 + 4 * k);
      out.writeUInt32BE(d[k] ?? 0, 32 + 4 * k);
    }
    out.writeUInt16BE(src.port, 48);
    out.writeUInt16BE(dst.port, 50);
  } else {
    out.writeUInt32BE(s[0] ?? 0, 16);
    out.writeUInt32BE(d[0] ?? 0, 20);
    out.writeUInt16BE(src.port, 24);
    out.writeUInt16BE(dst.port, 26);
  }
  return out;
}
