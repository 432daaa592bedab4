/*
 * test/helpers/dns-encode.ts - a DNS response encoder for tests, the fake responder and benches:
 * clarity over speed (the screener itself never encodes a response).
 *
 * Exports: encodeResponse(opts), ResponseRecord, ResponseOptions.
 * Names are presentation text (\DDD and \X escapes; '' or '.' is the root); a name that cannot
 * be encoded, bad record data or a response over 65,535 octets throws an Error.
 */
import { parseAddressInto } from '../../src/net/cidr.js';
import { QTYPE } from '../../src/dns/types.js';

const CLASS_IN = 1;
const MAX_WIRE_NAME = 255;

function fail(reason: string): never {
  throw new Error(`encodeResponse: ${reason}`);
}

function badName(name: string, why: string): never {
  throw new Error(`encodeResponse: cannot encode name ${JSON.stringify(name)}: ${why}`);
}

/** name: presentation text (\DDD and \X escapes; '' or '.' is the root). data: as DnsRecord.data; unknown types: raw latin1 rdata. */
export interface ResponseRecord { name: string; type: number; ttl: number; data: string }

export interface ResponseOptions {
  id: number;
  question: { name: string; qtype: number; qclass?: number };
  rcode?: number;
  tc?: boolean;
  aa?: boolean;
  answers?: ResponseRecord[];
  authority?: ResponseRecord[];
  additional?: ResponseRecord[];
  /** Compress names (RFC 1035 4.1.4) in owners and in CNAME/NS/PTR/SOA data. */
  compress?: boolean;
}

/** Presentation text to wire labels; throws when not encodable. */
function labelsOf(name: string): Buffer[] {
  const labels: Buffer[] = [];
  if (name === '.' || name === '') return labels;
  let cur: number[] = [];
  let wire = 1;
  for (let i = 0; i <= name.length; i++) {
    let c = i === name.length ? 0x2e : name.charCodeAt(i);
    if (c === 0x2e) {
      if (cur.length === 0) {
        if (i === name.length && i > 0) break; // trailing dot
        badName(name, 'empty label');
      }
      if (cur.length > 63) badName(name, 'label longer than 63 octets');
      wire += cur.length + 1;
      labels.push(Buffer.from(cur));
      cur = [];
      continue;
    }
    if (c === 0x5c) {
      const d = name.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(d)) { c = Number(d); i += 3; } else { c = name.charCodeAt(++i); }
      if (!(c <= 255)) badName(name, 'bad escape');
    }
    if (c > 255) badName(name, 'not a latin1 character');
    cur.push(c);
  }
  if (wire > MAX_WIRE_NAME) badName(name, 'longer than 255 octets');
  return labels;
}

class Writer {
  readonly buf = Buffer.alloc(65535);
  p = 0;
  readonly names: Map<string, number> | null;
  constructor(compress: boolean) { this.names = compress ? new Map() : null; }
  room(n: number): void { if (this.p + n > this.buf.length) fail('response too long'); }
  u16(v: number): void { this.bytes(Buffer.from([(v >>> 8) & 255, v & 255])); }
  u32(v: number): void { this.u16(v >>> 16); this.u16(v); }
  bytes(b: Buffer): void { this.room(b.length); b.copy(this.buf, this.p); this.p += b.length; }
  name(text: string): void {
    const labels = labelsOf(text);
    for (let i = 0; i < labels.length; i++) {
      const key = JSON.stringify(labels.slice(i).map((l) => l.toString('latin1')));
      const at = this.names?.get(key);
      if (at !== undefined) { this.u16(0xc000 | at); return; }
      if (this.names !== null && this.p < 0x4000) this.names.set(key, this.p);
      const l = labels[i] ?? Buffer.alloc(0);
      this.bytes(Buffer.concat([Buffer.from([l.length]), l]));
    }
    this.bytes(Buffer.from([0]));
  }
}

function writeData(w: Writer, r: ResponseRecord): void {
  const words = new Uint32Array(4);
  switch (r.type) {
    case QTYPE.A:
      if (parseAddressInto(r.data, words, false) !== 4) fail('bad-data');
      w.u32(words[0] ?? 0);
      return;
    case QTYPE.AAAA:
      if (parseAddressInto(r.data, words, false) !== 6) fail('bad-data');
      for (const x of words) w.u32(x);
      return;
    case QTYPE.CNAME: case QTYPE.NS: case QTYPE.PTR:
      w.name(r.data);
      return;
    case QTYPE.MX: // data: the exchange name; preference 10
      w.u16(10);
      w.name(r.data);
      return;
    case QTYPE.TXT: {
      const b = Buffer.from(r.data, 'latin1');
      let i = 0;
      do {
        const chunk = b.subarray(i, i + 255);
        w.bytes(Buffer.concat([Buffer.from([chunk.length]), chunk]));
        i += 255;
      } while (i < b.length);
      return;
    }
    case QTYPE.SOA: {
      const f = r.data.split(' ');
      if (f.length !== 7) fail('bad-data');
      w.name(f[0] ?? ''); w.name(f[1] ?? '');
      for (const x of f.slice(2)) {
        const v = Number(x);
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail('bad-data');
        w.u32(v);
      }
      return;
    }
    default:
      w.bytes(Buffer.from(r.data, 'latin1'));
  }
}

/** Encodes a response (QR=1, RD=1, RA=1) with the given sections. Returns a fresh Buffer. */
export function encodeResponse(opts: ResponseOptions): Buffer {
  const w = new Writer(opts.compress === true);
  const an = opts.answers ?? [], ns = opts.authority ?? [], ar = opts.additional ?? [];
  w.u16(opts.id);
  w.u16(0x8180 | (opts.aa === true ? 0x0400 : 0) | (opts.tc === true ? 0x0200 : 0) | ((opts.rcode ?? 0) & 0xf));
  w.u16(1); w.u16(an.length); w.u16(ns.length); w.u16(ar.length);
  w.name(opts.question.name);
  w.u16(opts.question.qtype);
  w.u16(opts.question.qclass ?? CLASS_IN);
  for (const r of [...an, ...ns, ...ar]) {
    w.name(r.name);
    w.u16(r.type); w.u16(CLASS_IN); w.u32(r.ttl);
    const lenAt = w.p;
    w.u16(0);
    writeData(w, r);
    w.buf.writeUInt16BE(w.p - lenAt - 2, lenAt);
  }
  return Buffer.from(w.buf.subarray(0, w.p));
}
