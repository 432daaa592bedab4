/*
 * dns/packet.ts - DNS wire codec (RFC 1035, 2308, 3596) for the in-process resolver (A, AAAA, TXT, MX, SOA, CNAME).
 *
 * Exports:
 *   encodeQuery(id, name, qtype, out?)          standard query, RD=1, one IN question, no EDNS
 *   decodeMessage(buf)                          header, questions, answer, authority -> DnsMessage
 *   questionMatches(msg, name, qtype)           exactly one question, same name/type, class IN
 *   answersFor(msg, name, qtype, maxChain?)     records of qtype for name, following CNAMEs
 *   negativeTtl(msg)                            RFC 2308: min(SOA TTL, SOA MINIMUM) or null
 *   canonical(name)                             a name as decodeMessage writes it (lower-case, no dot)
 *
 * Every decode failure is ScreenError('SCR_ERR_DNS_PACKET', ..., { reason }); nothing else is
 * thrown and decoding is linear in the packet length: each name costs at most 255 wire octets
 * plus MAX_HOPS pointer jumps, and each record consumes at least 11 octets of the packet.
 *
 * Names come out lower-case (ASCII only), without the trailing dot, the root as ''. Octets that
 * are '.', '\', space, control or non-ASCII are written \DDD (RFC 1035 5.1), so two different
 * wire names (ignoring ASCII case) never decode to the same text. Records whose class is not IN
 * are bounds-checked and dropped. A TTL with the top bit set counts as 0 (RFC 2181 8).
 *
 * XXX: "a pointer points below its own offset" does NOT forbid loops: a pointer at 56 to a label
 * at 45 whose 10 octets end at 56 loops. The rule here is stronger: a pointer must point below the
 * start of the run of labels it ends (the name's start, or the previous pointer's target), so
 * each jump strictly lowers that start. Compressors only ever point at names written earlier, so
 * no real message is refused.
 */
import { ScreenError } from '../util/errors.js';
import { formatAddress } from '../net/cidr.js';
import type { DnsMessage, DnsQuestion, DnsRecord } from './types.js';

const T_A = 1, T_NS = 2, T_CNAME = 5, T_SOA = 6, T_PTR = 12, T_TXT = 16, T_MX = 15, T_AAAA = 28;
const CLASS_IN = 1;
/** Pointer jumps per name. Real compressors need one or two; Go's dnsmessage allows 10. */
const MAX_HOPS = 16;
const MAX_WIRE_NAME = 255;

function fail(reason: string): never {
  throw new ScreenError('SCR_ERR_DNS_PACKET', `malformed DNS packet: ${reason}`, { reason });
}

function badName(name: string, why: string): never {
  throw new ScreenError('SCR_ERR_DNS_PACKET', `cannot encode name ${JSON.stringify(name)}: ${why}`, { reason: 'bad-name', name });
}

/**
 * Encodes a standard query. `name` is ASCII without spaces, controls or '\' (a trailing dot is
 * tolerated), labels 1..63 octets, at most 253 characters. Case is kept as given (a resolver may
 * randomise it). Writes into `out` when it is large enough and returns the used part.
 */
export function encodeQuery(id: number, name: string, qtype: number, out?: Buffer): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff) fail('bad-id');
  if (!Number.isInteger(qtype) || qtype < 0 || qtype > 0xffff) fail('bad-qtype');
  let len = name.length;
  if (len > 0 && name.charCodeAt(len - 1) === 0x2e) len--;
  if (len === 0 || len > 253) badName(name, 'length must be 1..253');
  const size = 12 + len + 2 + 4;
  const b = out !== undefined && out.length >= size ? out : Buffer.allocUnsafe(size);
  b.writeUInt16BE(id, 0);
  b.writeUInt32BE(0x01000001, 2); // RD, qdcount 1
  b.writeUInt32BE(0, 6); b.writeUInt16BE(0, 10);
  let lenAt = 12;
  let p = 13;
  for (let i = 0; i <= len; i++) {
    const c = i === len ? 0x2e : name.charCodeAt(i);
    if (c === 0x2e) {
      const l = p - lenAt - 1;
      if (l < 1 || l > 63) badName(name, 'labels must be 1..63 octets');
      b[lenAt] = l;
      lenAt = p++;
    } else if (c <= 0x20 || c >= 0x7f || c === 0x5c) {
      badName(name, 'only printable ASCII without "\\"');
    } else {
      b[p++] = c;
    }
  }
  b[lenAt] = 0;
  b.writeUInt16BE(qtype, p);
  b.writeUInt16BE(CLASS_IN, p + 2);
  return size === b.length ? b : b.subarray(0, size);
}

/* Decoder. Module scratch, never held across calls (decoding is synchronous). */
const text = Buffer.allocUnsafe(1024); // 255 wire octets -> at most 4 * 254 characters
/** Offset just after the in-place part of the name read last. */
let nameEnd = 0;

/** Reads the name at `off`; its in-place part must end by `limit`. Sets nameEnd. */
function readName(buf: Buffer, off: number, limit: number): string {
  let p = off;
  let lim = limit;
  let runStart = off;
  let end = -1;
  let wire = 1;
  let hops = 0;
  let n = 0;
  for (;;) {
    if (p >= lim) fail('truncated name');
    const len = buf[p] ?? 0;
    if (len === 0) { p++; break; }
    if (len >= 0xc0) {
      if (p + 1 >= lim) fail('truncated name');
      const target = ((len & 0x3f) << 8) | (buf[p + 1] ?? 0);
      if (target >= runStart) fail('bad pointer');
      if (++hops > MAX_HOPS) fail('too many pointers');
      if (end < 0) end = p + 2;
      p = runStart = target;
      lim = buf.length;
      continue;
    }
    if (len > 63) fail('bad label type');
    wire += len + 1;
    if (wire > MAX_WIRE_NAME) fail('name too long');
    if (p + 1 + len > lim) fail('truncated name');
    if (n > 0) text[n++] = 0x2e;
    for (let i = p + 1, e = p + 1 + len; i < e; i++) {
      const c = buf[i] ?? 0;
      if (c >= 0x41 && c <= 0x5a) {
        text[n++] = c + 32;
      } else if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) {
        text[n++] = 0x5c;
        text[n++] = 48 + ((c / 100) | 0);
        text[n++] = 48 + (((c / 10) | 0) % 10);
        text[n++] = 48 + (c % 10);
      } else {
        text[n++] = c;
      }
    }
    p += 1 + len;
  }
  nameEnd = end < 0 ? p : end;
  return n === 0 ? '' : text.toString('latin1', 0, n);
}

function dotted(buf: Buffer, p: number): string {
  return `${buf[p] ?? 0}.${buf[p + 1] ?? 0}.${buf[p + 2] ?? 0}.${buf[p + 3] ?? 0}`;
}

/** Reads one resource record at `off` into `out` (if given and class IN); returns the next offset. */
function readRecord(buf: Buffer, off: number, out: DnsRecord[] | null): number {
  const name = readName(buf, off, buf.length);
  const p = nameEnd;
  if (p + 10 > buf.length) fail('truncated record');
  const type = buf.readUInt16BE(p), cls = buf.readUInt16BE(p + 2), rawTtl = buf.readUInt32BE(p + 4);
  const rd = p + 10;
  const rdEnd = rd + buf.readUInt16BE(p + 8);
  if (rdEnd > buf.length) fail('truncated record');
  if (out === null || cls !== CLASS_IN) return rdEnd;
  const ttl = rawTtl > 0x7fffffff ? 0 : rawTtl;
  let data = '';
  let soaMinimum = -1;
  switch (type) {
    case T_A:
      if (rdEnd - rd !== 4) fail('bad rdlength');
      data = dotted(buf, rd);
      break;
    case T_AAAA:
      if (rdEnd - rd !== 16) fail('bad rdlength');
      data = formatAddress({ family: 6, w0: buf.readUInt32BE(rd), w1: buf.readUInt32BE(rd + 4), w2: buf.readUInt32BE(rd + 8), w3: buf.readUInt32BE(rd + 12) });
      break;
    case T_CNAME: case T_NS: case T_PTR:
      data = readName(buf, rd, rdEnd);
      if (nameEnd !== rdEnd) fail('bad rdlength');
      break;
    case T_MX:
      if (rdEnd - rd < 3) fail('bad rdlength');
      data = readName(buf, rd + 2, rdEnd);
      if (nameEnd !== rdEnd) fail('bad rdlength');
      break;
    case T_TXT: {
      let q = rd;
      while (q < rdEnd) {
        const l = buf[q] ?? 0;
        if (q + 1 + l > rdEnd) fail('txt overrun');
        data += buf.toString('latin1', q + 1, q + 1 + l);
        q += 1 + l;
      }
      break;
    }
    case T_SOA: {
      const mname = readName(buf, rd, rdEnd);
      const rname = readName(buf, nameEnd, rdEnd);
      const q = nameEnd;
      if (q + 20 !== rdEnd) fail('bad soa');
      soaMinimum = buf.readUInt32BE(q + 16);
      data = `${mname === '' ? '.' : mname} ${rname === '' ? '.' : rname} ${buf.readUInt32BE(q)} ${buf.readUInt32BE(q + 4)} ${buf.readUInt32BE(q + 8)} ${buf.readUInt32BE(q + 12)} ${soaMinimum}`;
      break;
    }
    default:
      break;
  }
  out.push(soaMinimum < 0 ? { name, type, ttl, data } : { name, type, ttl, data, soaMinimum });
  return rdEnd;
}

/**
 * Decodes a DNS message. Counts are believed only as far as the packet goes: a count larger than
 * the data fails with 'truncated ...' when the packet ends. Trailing octets are ignored.
 */
export function decodeMessage(buf: Buffer): DnsMessage {
  if (buf.length < 12) fail('short header');
  const flags = buf.readUInt16BE(2);
  const qd = buf.readUInt16BE(4), an = buf.readUInt16BE(6), ns = buf.readUInt16BE(8), ar = buf.readUInt16BE(10);
  const questions: DnsQuestion[] = [];
  const answers: DnsRecord[] = [];
  const authority: DnsRecord[] = [];
  let p = 12;
  for (let i = 0; i < qd; i++) {
    const name = readName(buf, p, buf.length);
    p = nameEnd;
    if (p + 4 > buf.length) fail('truncated question');
    questions.push({ name, qtype: buf.readUInt16BE(p), qclass: buf.readUInt16BE(p + 2) });
    p += 4;
  }
  for (let i = 0; i < an; i++) p = readRecord(buf, p, answers);
  for (let i = 0; i < ns; i++) p = readRecord(buf, p, authority);
  for (let i = 0; i < ar; i++) p = readRecord(buf, p, null);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >>> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authority,
  };
}

/** Query name as decodeMessage would print it: ASCII lower-case, no trailing dot. */
export function canonical(name: string): string {
  const n = name.length > 0 && name.charCodeAt(name.length - 1) === 0x2e ? name.slice(0, -1) : name;
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return n.toLowerCase();
  }
  return n;
}

/** True when msg has exactly one question: this name (ASCII case-insensitive), this type, class IN. */
export function questionMatches(msg: DnsMessage, name: string, qtype: number): boolean {
  if (msg.questions.length !== 1) return false;
  const q = msg.questions[0];
  return q !== undefined && q.qtype === qtype && q.qclass === CLASS_IN && q.name === canonical(name);
}

/**
 * Records of `qtype` for `name` in the answer section, following CNAMEs there (at most maxChain;
 * a longer chain or a loop is { cnameLoop: true }). ttl is the minimum over the records and the
 * CNAMEs used; 0 when nothing was used. records is empty when there are none (NODATA).
 */
export function answersFor(msg: DnsMessage, name: string, qtype: number, maxChain = 8): { records: string[]; ttl: number } | { cnameLoop: true } {
  let cur = canonical(name);
  let ttl = Infinity;
  for (let hops = 0; ; hops++) {
    const records: string[] = [];
    let cname: DnsRecord | undefined;
    for (const r of msg.answers) {
      if (r.name !== cur) continue;
      if (r.type === qtype) {
        records.push(r.data);
        if (r.ttl < ttl) ttl = r.ttl;
      } else if (r.type === T_CNAME && cname === undefined) {
        cname = r;
      }
    }
    if (records.length > 0 || cname === undefined) return { records, ttl: ttl === Infinity ? 0 : ttl };
    if (hops >= maxChain) return { cnameLoop: true };
    if (cname.ttl < ttl) ttl = cname.ttl;
    cur = cname.data;
  }
}

/** RFC 2308 negative-caching TTL: min(SOA TTL, SOA MINIMUM) of the first SOA in authority; null if none. */
export function negativeTtl(msg: DnsMessage): number | null {
  for (const r of msg.authority) {
    if (r.type === T_SOA) return Math.min(r.ttl, r.soaMinimum ?? r.ttl);
  }
  return null;
}
