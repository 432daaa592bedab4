/*
 * test/fuzz/targets-dns.ts - fuzz target for the DNS packet decoder.
 *
 * Exports: dnsTarget.
 * Inputs: responses written by encodeResponse (test/helpers/dns-encode.ts; random names, A, AAAA, CNAME,
 * NS, PTR, TXT, SOA and unknown types, compressed or not), their mutations
 * (bytes, counts, compression pointers), headers with random counts over
 * random bytes, and pointer ladders. Properties: decodeMessage throws only
 * SCR_ERR_DNS_PACKET; a decoded message has no more entries than its counts
 * say, lower-case printable names of at most 4 x 254 characters, and
 * questionMatches / answersFor / negativeTtl run on it without throwing; an
 * unmutated response decodes to the records it was written from.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { answersFor, decodeMessage, negativeTtl, questionMatches } from '../../src/dns/packet.js';
import { encodeResponse, type ResponseRecord } from '../helpers/dns-encode.js';
import { mutated, only, showBytes, type FuzzTarget } from './harness.js';

const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,14}$/);
const name = fc.array(label, { minLength: 0, maxLength: 5 }).map((ls) => ls.join('.'));
const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const u32 = fc.nat(0xffffffff);

const record: fc.Arbitrary<ResponseRecord> = fc.oneof(
  fc.record({ name, type: fc.constant(1), ttl: u32, data: v4 }),
  fc.record({ name, type: fc.constant(28), ttl: u32, data: fc.ipV6().filter((a) => !a.includes('.')) }),
  fc.record({ name, type: fc.constantFrom(5, 2, 12, 15), ttl: u32, data: name }), // 15: MX, the exchange name
  fc.record({ name, type: fc.constant(16), ttl: u32, data: fc.string({ unit: 'binary-ascii', maxLength: 300 }) }),
  fc.record({ name, type: fc.constant(6), ttl: u32, data: fc.tuple(name, name, u32, u32, u32, u32, u32).map(([m, r, ...n]) => `${m || '.'} ${r || '.'} ${n.join(' ')}`) }),
  fc.record({ name, type: fc.constantFrom(33, 99), ttl: u32, data: fc.string({ unit: 'binary-ascii', maxLength: 20 }) }),
);

interface Written {
  buf: Buffer;
  qname: string;
  answers: ResponseRecord[];
  authority: ResponseRecord[];
}

const written: fc.Arbitrary<Written> = fc.record({
  id: fc.nat(0xffff), qname: name, qtype: fc.constantFrom(1, 16, 28, 12),
  answers: fc.array(record, { maxLength: 6 }), authority: fc.array(record, { maxLength: 3 }), additional: fc.array(record, { maxLength: 2 }),
  compress: fc.boolean(), rcode: fc.nat(15),
}).map((o) => ({
  buf: encodeResponse({ id: o.id, question: { name: o.qname, qtype: o.qtype }, answers: o.answers, authority: o.authority, additional: o.additional, compress: o.compress, rcode: o.rcode }),
  qname: o.qname, answers: o.answers, authority: o.authority,
}));

/** A header with counts over random bytes: the counts are believed only as far as the packet goes. */
const headed = fc.tuple(fc.array(fc.nat(4), { minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 300 })).map(([counts, body]) => {
  const h = Buffer.alloc(12);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return Buffer.concat([h, Buffer.from(body)]);
});

/** Names made of labels and pointers anywhere (loops, forward and self pointers). */
const pointers = fc.array(fc.oneof(fc.tuple(fc.constant(0xc0), fc.nat(80)), fc.tuple(fc.nat(5), fc.constant(0x61)), fc.tuple(fc.constant(0), fc.constant(1))), { minLength: 1, maxLength: 40 })
  .map((parts) => {
    const h = Buffer.from([0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
    return Buffer.concat([h, Buffer.from(parts.flatMap(([a, b]) => (a === 0xc0 ? [0xc0, b] : [a, ...Array<number>(a).fill(b)])))]);
  });

const DICT = [Buffer.from([0xc0, 0x0c]), Buffer.from([0xc0, 0x00]), Buffer.from([0x3f]), Buffer.from([0x40]), Buffer.from([0xff, 0xff]), Buffer.from([0, 1, 0, 1]), Buffer.from([0, 0]), Buffer.from([0x80])];

interface DnsCase {
  buf: Buffer;
  sent: Written | null;
}

function canonicalData(r: ResponseRecord): string {
  switch (r.type) {
    case 5: case 2: case 12: case 15: return r.data;
    case 6: return r.data;
    case 1: case 16: return r.data;
    case 28: return r.data; // compared after normalising below
    default: return '';
  }
}

export const dnsTarget: FuzzTarget<DnsCase> = {
  name: 'dns',
  what: 'dns/packet.ts decodeMessage; questionMatches, answersFor, negativeTtl on what it returns',
  arb: fc.oneof(
    { weight: 2, arbitrary: written.map((w) => ({ buf: w.buf, sent: w })) },
    { weight: 4, arbitrary: mutated(written.map((w) => w.buf), DICT).map((buf) => ({ buf, sent: null })) },
    { weight: 2, arbitrary: headed.map((buf) => ({ buf, sent: null })) },
    { weight: 1, arbitrary: pointers.map((buf) => ({ buf, sent: null })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ buf: Buffer.from(b), sent: null })) },
  ),
  check({ buf, sent }) {
    const r = only('SCR_ERR_DNS_PACKET', () => decodeMessage(buf));
    if (sent !== null) assert.ok(r.ok, `an encoded response decodes: ${r.ok ? '' : r.error.message}`);
    if (!r.ok) {
      assert.equal(typeof r.error.details['reason'], 'string');
      return;
    }
    const m = r.value;
    assert.ok(m.questions.length <= buf.readUInt16BE(4) && m.answers.length <= buf.readUInt16BE(6) && m.authority.length <= buf.readUInt16BE(8));
    for (const n of [...m.questions.map((q) => q.name), ...m.answers.map((a) => a.name), ...m.authority.map((a) => a.name)]) {
      assert.ok(n.length <= 4 * 254, 'name length');
      assert.match(n, /^[\x21-\x40\x5b-\x7e]*$/, 'lower-case printable name');
    }
    for (const a of m.answers) assert.ok(Number.isInteger(a.ttl) && a.ttl >= 0 && a.ttl <= 0x7fffffff);
    const q = m.questions[0];
    if (q !== undefined) {
      assert.equal(questionMatches(m, q.name, q.qtype), m.questions.length === 1 && q.qclass === 1);
      answersFor(m, q.name, q.qtype);
      answersFor(m, q.name, 5, 2);
    }
    const neg = negativeTtl(m);
    assert.ok(neg === null || (Number.isInteger(neg) && neg >= 0));
    if (sent === null) return;
    assert.equal(m.questions[0]?.name, sent.qname);
    const norm = (x: ResponseRecord): [string, number, number, string] => [x.name, x.type, x.ttl > 0x7fffffff ? 0 : x.ttl, x.type === 28 ? new URL(`http://[${x.data}]/`).hostname.slice(1, -1) : canonicalData(x)];
    assert.deepEqual(m.answers.map((x) => norm(x)), sent.answers.map((x) => norm(x)), 'answers as written');
    assert.deepEqual(m.authority.map((x) => norm(x)), sent.authority.map((x) => norm(x)), 'authority as written');
  },
  show: (c) => `${c.sent === null ? 'mutated/random' : 'as written'}: ${showBytes(c.buf, 200)}`,
  linear: [
    {
      shape: 'n records whose owners are 16-hop pointer ladders (the most work per octet)',
      n: 300,
      make: (n) => {
        // A ladder of 16 questions: name 0 is one 63-octet label, name k one label and a pointer
        // to name k-1, so a pointer to the top costs 16 jumps (the limit); each answer's owner is that pointer.
        const parts: number[] = [0, 1, 0x81, 0x80, 0, 16, 0, 0, 0, 0, 0, 0];
        let prev = 12;
        parts.push(0x3f, ...Array<number>(63).fill(0x61), 0, 0, 1, 0, 1);
        for (let k = 1; k <= 15; k++) {
          const at = parts.length;
          parts.push(0x01, 0x62, 0xc0 | (prev >> 8), prev & 255, 0, 1, 0, 1);
          prev = at;
        }
        const rec = [0xc0 | (prev >> 8), prev & 255, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];
        const buf = Buffer.from([...parts, ...Array.from({ length: n }, () => rec).flat()]);
        buf.writeUInt16BE(n, 6);
        return () => { decodeMessage(buf); };
      },
    },
    {
      shape: 'one TXT record of n character-strings',
      n: 6000,
      make: (n) => {
        const rd = Buffer.alloc(n, 0);
        const head = Buffer.from([0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 16, 0, 1, 0, 0, 0, 60, (n >> 8) & 255, n & 255]);
        const buf = Buffer.concat([head, rd]);
        return () => { decodeMessage(buf); };
      },
    },
  ],
};
