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
 *   summarize(msg, name, qtype)                 ReplySummary: what the resolver takes from a reply
 *   quickReply(buf, query)                      ReplySummary of the common reply shape without
 *                                               decoding names (no allocation but the records), or null
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

/**
 * Walks the name at `off` (its in-place part must end by `limit`), checking it and writing its
 * text into the scratch `text`; returns the text's length. Sets nameEnd. Allocates nothing.
 */
function walkName(buf: Buffer, off: number, limit: number): number {
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
  return n;
}

/** Reads the name at `off`; its in-place part must end by `limit`. Sets nameEnd. */
function readName(buf: Buffer, off: number, limit: number): string {
  const n = walkName(buf, off, limit);
  return n === 0 ? '' : text.toString('latin1', 0, n);
}

/** The dotted quads of 127.0.0.0/24 (what DNSBLs answer), made once each: an answer costs no string. */
const LOOPBACK_24: string[] = [];

function dotted(buf: Buffer, p: number): string {
  const a = buf[p] ?? 0, b = buf[p + 1] ?? 0, c = buf[p + 2] ?? 0, d = buf[p + 3] ?? 0;
  if (a === 127 && b === 0 && c === 0) return LOOPBACK_24[d] ??= `127.0.0.${d}`;
  return `${a}.${b}.${c}.${d}`;
}

/* The record walked last (walkRecord). Scratch like `text`: read before the next walk. */
let rType = 0;
let rClass = 0;
let rTtl = 0;
let rData = 0;
let rSoaMin = -1;
/** The owner is exactly a pointer to offset 12: the (first) question's name. */
let rOwnerIsQuestion = false;

/**
 * Checks the resource record at `off` and leaves its fields in the r* scratch; returns the next
 * offset. Every record: its owner name, its fixed part and its RDLENGTH within the packet. The
 * RDATA of a class IN record too when `data` (answer and authority sections; additional records
 * are only bounds-checked): A 4 octets, AAAA 16, a CNAME/NS/PTR/MX target name that ends where
 * the RDATA does, TXT strings that fit, an SOA's two names and 20 octets. The one owner of what a
 * well-formed record is: decodeMessage and quickReply both walk with it.
 */
function walkRecord(buf: Buffer, off: number, data: boolean): number {
  walkName(buf, off, buf.length);
  const p = nameEnd;
  rOwnerIsQuestion = buf[off] === 0xc0 && buf[off + 1] === 12;
  if (p + 10 > buf.length) fail('truncated record');
  rType = buf.readUInt16BE(p);
  rClass = buf.readUInt16BE(p + 2);
  const rawTtl = buf.readUInt32BE(p + 4);
  const rd = rData = p + 10;
  const rdEnd = rd + buf.readUInt16BE(p + 8);
  if (rdEnd > buf.length) fail('truncated record');
  if (!data || rClass !== CLASS_IN) return rdEnd;
  rTtl = rawTtl > 0x7fffffff ? 0 : rawTtl;
  rSoaMin = -1;
  switch (rType) {
    case T_A:
      if (rdEnd - rd !== 4) fail('bad rdlength');
      break;
    case T_AAAA:
      if (rdEnd - rd !== 16) fail('bad rdlength');
      break;
    case T_CNAME: case T_NS: case T_PTR:
      walkName(buf, rd, rdEnd);
      if (nameEnd !== rdEnd) fail('bad rdlength');
      break;
    case T_MX:
      if (rdEnd - rd < 3) fail('bad rdlength');
      walkName(buf, rd + 2, rdEnd);
      if (nameEnd !== rdEnd) fail('bad rdlength');
      break;
    case T_TXT:
      for (let q = rd; q < rdEnd; q += 1 + (buf[q] ?? 0)) {
        if (q + 1 + (buf[q] ?? 0) > rdEnd) fail('txt overrun');
      }
      break;
    case T_SOA: {
      walkName(buf, rd, rdEnd);
      walkName(buf, nameEnd, rdEnd);
      if (nameEnd + 20 !== rdEnd) fail('bad soa');
      rSoaMin = buf.readUInt32BE(nameEnd + 16);
      break;
    }
    default:
      break;
  }
  return rdEnd;
}

/** The text of the RDATA walked last (an A, AAAA, TXT, CNAME/NS/PTR or MX record; '' otherwise). */
function recordData(buf: Buffer, rdEnd: number): string {
  const rd = rData;
  switch (rType) {
    case T_A:
      return dotted(buf, rd);
    case T_AAAA:
      return formatAddress({ family: 6, w0: buf.readUInt32BE(rd), w1: buf.readUInt32BE(rd + 4), w2: buf.readUInt32BE(rd + 8), w3: buf.readUInt32BE(rd + 12) });
    case T_CNAME: case T_NS: case T_PTR:
      return readName(buf, rd, rdEnd);
    case T_MX:
      return readName(buf, rd + 2, rdEnd);
    case T_TXT: {
      let data = '';
      for (let q = rd; q < rdEnd; q += 1 + (buf[q] ?? 0)) data += buf.toString('latin1', q + 1, q + 1 + (buf[q] ?? 0));
      return data;
    }
    default:
      return '';
  }
}

/** Reads one resource record at `off` into `out` (if given and class IN); returns the next offset. */
function readRecord(buf: Buffer, off: number, out: DnsRecord[] | null): number {
  const next = walkRecord(buf, off, out !== null);
  if (out === null || rClass !== CLASS_IN) return next;
  const type = rType, ttl = rTtl, soaMinimum = rSoaMin, rd = rData;
  let data: string;
  if (type === T_SOA) {
    const mname = readName(buf, rd, next);
    const rname = readName(buf, nameEnd, next);
    const q = nameEnd;
    data = `${mname === '' ? '.' : mname} ${rname === '' ? '.' : rname} ${buf.readUInt32BE(q)} ${buf.readUInt32BE(q + 4)} ${buf.readUInt32BE(q + 8)} ${buf.readUInt32BE(q + 12)} ${soaMinimum}`;
  } else {
    data = recordData(buf, next);
  }
  const name = readName(buf, off, buf.length);
  out.push(soaMinimum < 0 ? { name, type, ttl, data } : { name, type, ttl, data, soaMinimum });
  return next;
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

/** What the resolver takes from a reply to its one question: summarize(), or quickReply(). */
export interface ReplySummary {
  rcode: number;
  tc: boolean;
  /** The records of the question's type for its name, following CNAMEs in the answer section; [] for none. */
  records: string[];
  /** The CNAME chain was longer than answersFor's maxChain, or looped (records is then []). */
  cnameLoop: boolean;
  /** The minimum TTL over those records and the CNAMEs followed; 0 when none. */
  ttl: number;
  /** negativeTtl(), or -1 when the authority section has no SOA. */
  negTtl: number;
}

/** The summary of a decoded reply to the question (name, qtype): answersFor and negativeTtl. */
export function summarize(msg: DnsMessage, name: string, qtype: number): ReplySummary {
  const a = answersFor(msg, name, qtype);
  const loop = 'cnameLoop' in a;
  return {
    rcode: msg.rcode,
    tc: msg.tc,
    records: loop || a.records.length === 0 ? NO_RECORDS : a.records,
    cnameLoop: loop,
    ttl: loop ? 0 : a.ttl,
    negTtl: negativeTtl(msg) ?? -1,
  };
}

/** The records of a reply that has none (frozen: shared by every such reply and the cache). */
const NO_RECORDS = Object.freeze([]) as unknown as string[];
const quick: ReplySummary = { rcode: 0, tc: false, records: NO_RECORDS, cnameLoop: false, ttl: 0, negTtl: -1 };

/**
 * quickReply - the resolver's hot path: the summary of `buf` as a reply to `query` (the bytes
 * encodeQuery sent), without decoding names into strings or building a DnsMessage. It decides
 * only the common shape: a response (QR) to an A or TXT question, one question repeating ours
 * (ASCII case aside), and every class IN answer owned by that question's name through the
 * pointer to offset 12, none of them a CNAME. Anything else returns null: decode it in full
 * (decodeMessage, questionMatches, summarize), which then decides. It walks every record with
 * the same checks as decodeMessage (walkRecord) and throws the same SCR_ERR_DNS_PACKET, so a
 * packet it takes gives what the full path gives (test/dns/quick-reply.property.test.ts).
 * The summary returned is one object reused by every call: read it before the next call.
 * The records array is new for each reply (or the question's answers are none: a shared []).
 */
export function quickReply(buf: Buffer, query: Buffer): ReplySummary | null {
  const qEnd = query.length;
  const qtype = query.readUInt16BE(qEnd - 4);
  if (qtype !== T_A && qtype !== T_TXT) return null;
  if (buf.length < qEnd) return null;
  const flags = buf.readUInt16BE(2);
  if ((flags & 0x8000) === 0 || buf.readUInt16BE(4) !== 1) return null;
  for (let i = 12; i < qEnd - 4; i++) {
    let c = buf[i] as number;
    if (c >= 0x41 && c <= 0x5a) c += 32;
    if (c !== query[i]) return null;
  }
  for (let i = qEnd - 4; i < qEnd; i++) if (buf[i] !== query[i]) return null;
  const an = buf.readUInt16BE(6), ns = buf.readUInt16BE(8), ar = buf.readUInt16BE(10);
  let p = qEnd;
  let records: string[] | null = null;
  let ttl = 0;
  for (let i = 0; i < an; i++) {
    const next = walkRecord(buf, p, true);
    if (rClass === CLASS_IN) {
      if (!rOwnerIsQuestion || rType === T_CNAME) return null;
      if (rType === qtype) {
        if (records === null) {
          records = [];
          ttl = rTtl;
        } else if (rTtl < ttl) {
          ttl = rTtl;
        }
        records.push(recordData(buf, next));
      }
    }
    p = next;
  }
  let negTtl = -1;
  for (let i = 0; i < ns; i++) {
    p = walkRecord(buf, p, true);
    if (negTtl < 0 && rClass === CLASS_IN && rType === T_SOA) negTtl = Math.min(rTtl, rSoaMin);
  }
  for (let i = 0; i < ar; i++) p = walkRecord(buf, p, false);
  quick.rcode = flags & 0xf;
  quick.tc = (flags & 0x0200) !== 0;
  quick.records = records ?? NO_RECORDS;
  quick.cnameLoop = false;
  quick.ttl = ttl;
  quick.negTtl = negTtl;
  return quick;
}
