/*
 * test/dns/quick-reply.property.test.ts - quickReply, the resolver's hot-path reader of a reply,
 * against the full path it stands in for (decodeMessage, the QR bit, questionMatches, summarize).
 * Whatever the bytes: when quickReply decides, the full path decides the same (the same summary,
 * or the same malformed packet); when it does not (null), the full path decides alone. Hand-made
 * cases pin which shapes it takes: a DNSBL's A and TXT answers and its NXDOMAIN with an SOA, also
 * with a 0x20-cased question, and which it leaves to the full path (CNAMEs, owners written out,
 * other questions, other types, queries).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonical, decodeMessage, encodeQuery, questionMatches, quickReply, summarize, type ReplySummary } from '../../src/dns/packet.js';
import { encodeResponse, type ResponseRecord } from '../helpers/dns-encode.js';
import { mutate, packetMutation } from '../helpers/packet-mutation.js';
import { ScreenError } from '../../src/util/errors.js';

type Outcome = { kind: 'malformed'; reason: string } | { kind: 'not-ours' } | { kind: 'summary'; summary: ReplySummary };

/** What the resolver made of buf as the reply to `query` before quickReply existed. */
function fullPath(buf: Buffer, qname: string, qtype: number): Outcome {
  let msg;
  try {
    msg = decodeMessage(buf);
  } catch (e) {
    assert.ok(e instanceof ScreenError && e.code === 'SCR_ERR_DNS_PACKET', String(e));
    return { kind: 'malformed', reason: String(e.details.reason) };
  }
  if (!msg.qr || !questionMatches(msg, qname, qtype)) return { kind: 'not-ours' };
  return { kind: 'summary', summary: summarize(msg, qname, qtype) };
}

/** quickReply's outcome; null when it leaves the packet to the full path. */
function quickPath(buf: Buffer, query: Buffer): Outcome | null {
  let r;
  try {
    r = quickReply(buf, query);
  } catch (e) {
    assert.ok(e instanceof ScreenError && e.code === 'SCR_ERR_DNS_PACKET', String(e));
    return { kind: 'malformed', reason: String(e.details.reason) };
  }
  return r === null ? null : { kind: 'summary', summary: { ...r, records: [...r.records] } };
}

function plain(o: Outcome): unknown {
  // Malformed: which check fires first may differ (the full path reads the owner name first); that one does is what counts.
  if (o.kind === 'malformed') return 'malformed';
  if (o.kind === 'not-ours') return 'not-ours';
  return { ...o.summary, records: [...o.summary.records] };
}

const ZONE = 'zen.example';
const reversed = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => `${o.join('.')}.${ZONE}`);
const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,9}$/);
const other = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
/** 0x20 case: servers may echo the question with its letters' case changed. */
const recase = (s: string, bits: number[]): string => [...s].map((c, i) => ((bits[i % bits.length] ?? 0) & 1 ? c.toUpperCase() : c)).join('');
const u32 = fc.nat(0xffffffff);
const v4 = fc.oneof(fc.nat(255).map((d) => `127.0.0.${d}`), fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.')));

function recordOf(owner: fc.Arbitrary<string>): fc.Arbitrary<ResponseRecord> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ name: owner, type: fc.constant(1), ttl: u32, data: v4 }) },
    { weight: 2, arbitrary: fc.record({ name: owner, type: fc.constant(16), ttl: u32, data: fc.string({ unit: 'binary-ascii', maxLength: 300 }) }) },
    fc.record({ name: owner, type: fc.constant(28), ttl: u32, data: fc.ipV6().filter((a) => !a.includes('.')) }),
    fc.record({ name: owner, type: fc.constantFrom(5, 2, 12, 15), ttl: u32, data: other }),
    fc.record({ name: owner, type: fc.constant(6), ttl: u32, data: fc.tuple(other, other, u32, u32, u32, u32, u32).map(([m, r, ...n]) => `${m} ${r} ${n.join(' ')}`) }),
    fc.record({ name: owner, type: fc.constantFrom(33, 99), ttl: u32, data: fc.string({ unit: 'binary-ascii', maxLength: 20 }) }),
  );
}


/** The question as the server echoes it (0x20-cased, or another name), and the answers owned by it. */
const asked = (qname: string): fc.Arbitrary<string> => fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.nat(1), { minLength: 1, maxLength: 8 }).map((bits) => recase(qname, bits)) },
  { weight: 1, arbitrary: reversed },
);

const exchange = reversed.chain((qname) => asked(qname).chain((echo) => fc.record({
  qname: fc.constant(qname),
  qtype: fc.constantFrom(1, 1, 16, 28),
  asked: fc.constant(echo),
  askedOther: fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(1, 16, 28) }),
  rcode: fc.constantFrom(0, 0, 3, 3, 2, 5, 1, 9),
  tc: fc.boolean(),
  compress: fc.constantFrom(true, true, true, false),
  answers: fc.array(fc.oneof(
    { weight: 4, arbitrary: fc.record({ name: fc.constant(echo), type: fc.constantFrom(1, 16), ttl: u32, data: v4 }) },
    recordOf(fc.oneof({ weight: 8, arbitrary: fc.constant(echo) }, { weight: 1, arbitrary: fc.constant(qname) }, { weight: 1, arbitrary: other })),
  ), { maxLength: 4 }),
  authority: fc.array(recordOf(fc.oneof(fc.constant(ZONE), other)), { maxLength: 2 }),
  additional: fc.array(recordOf(other), { maxLength: 2 }),
  mutations: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(packetMutation(8), { minLength: 1, maxLength: 3 }) }),
})));

test('property: when quickReply decides, it decides what the full decode decides', () => {
  let decided = 0, runs = 0;
  fc.assert(fc.property(exchange, (x) => {
    runs++;
    const query = encodeQuery(0x1234, canonical(x.qname), x.qtype);
    const b = mutate(encodeResponse({
      id: 0x1234, rcode: x.rcode, tc: x.tc, compress: x.compress, question: { name: x.asked, qtype: x.askedOther ?? x.qtype },
      answers: x.answers, authority: x.authority, additional: x.additional,
    }), x.mutations);
    if (b.length < 12) return; // the pool drops these before either path
    const quick = quickPath(b, query);
    if (quick === null) return;
    decided++;
    assert.deepEqual(plain(quick), plain(fullPath(b, x.qname, x.qtype)));
  }), { numRuns: 4000 });
  // Not vacuous: most unmutated A/TXT exchanges with compressed owners are the common shape.
  assert.ok(decided > runs / 5, `quickReply decided ${decided} of ${runs}`);
});

function rbldnsdA(qname: string, asked: string, records: string[], compress = true): Buffer {
  return encodeResponse({ id: 7, compress, question: { name: asked, qtype: 1 }, answers: records.map((data) => ({ name: asked, type: 1, ttl: 2100, data })) });
}

test('quickReply takes the DNSBL shapes: A, TXT, NXDOMAIN with SOA, 0x20 case; the records are new arrays, the strings of 127.0.0.x are shared', () => {
  const q = '2.0.0.127.zen.example';
  const query = encodeQuery(7, q, 1);
  const a = quickReply(rbldnsdA(q, q, ['127.0.0.2', '127.0.0.10']), query);
  assert.ok(a !== null);
  assert.deepEqual({ ...a, records: [...a.records] }, { rcode: 0, tc: false, records: ['127.0.0.2', '127.0.0.10'], cnameLoop: false, ttl: 2100, negTtl: -1 });
  const first = a.records;
  const b = quickReply(rbldnsdA(q, '2.0.0.127.ZEN.Example', ['127.0.0.2']), query);
  assert.ok(b !== null, 'a 0x20-cased question is ours');
  assert.deepEqual([...b.records], ['127.0.0.2']);
  assert.notEqual(b.records, first, 'each reply gets its own records array (the cache keeps it)');

  const txtQuery = encodeQuery(7, q, 16);
  const t = quickReply(encodeResponse({ id: 7, compress: true, question: { name: q, qtype: 16 }, answers: [{ name: q, type: 16, ttl: 60, data: 'listed: see https://zen.example/' }] }), txtQuery);
  assert.deepEqual(t && [...t.records], ['listed: see https://zen.example/']);

  const nx = quickReply(encodeResponse({ id: 7, rcode: 3, compress: true, question: { name: q, qtype: 1 }, authority: [{ name: ZONE, type: 6, ttl: 900, data: 'ns.zen.example hostmaster.zen.example 1 2 3 4 300' }] }), query);
  assert.ok(nx !== null);
  assert.deepEqual({ rcode: nx.rcode, records: nx.records.length, negTtl: nx.negTtl, ttl: nx.ttl }, { rcode: 3, records: 0, negTtl: 300, ttl: 0 }, 'min(SOA TTL 900, MINIMUM 300)');
  const nxNoSoa = quickReply(encodeResponse({ id: 7, rcode: 3, question: { name: q, qtype: 1 } }), query);
  assert.equal(nxNoSoa?.negTtl, -1);
  const truncated = quickReply(encodeResponse({ id: 7, tc: true, question: { name: q, qtype: 1 } }), query);
  assert.equal(truncated?.tc, true);
});

test('quickReply leaves to the full decode: CNAMEs, owners written out, another question, another type, a query', () => {
  const q = '2.0.0.127.zen.example';
  const query = encodeQuery(7, q, 1);
  const cases: Array<[string, Buffer, Buffer]> = [
    ['a CNAME chain', encodeResponse({ id: 7, compress: true, question: { name: q, qtype: 1 }, answers: [{ name: q, type: 5, ttl: 5, data: `x.${ZONE}` }, { name: `x.${ZONE}`, type: 1, ttl: 5, data: '127.0.0.2' }] }), query],
    ['an owner written out, not a pointer', rbldnsdA(q, q, ['127.0.0.2'], false), query],
    ['another name asked', rbldnsdA('3.0.0.127.zen.example', '3.0.0.127.zen.example', ['127.0.0.2']), query],
    ['the question type differs', encodeResponse({ id: 7, question: { name: q, qtype: 16 } }), query],
    ['an AAAA lookup', encodeResponse({ id: 7, question: { name: q, qtype: 28 } }), encodeQuery(7, q, 28)],
    ['a query (QR clear)', encodeQuery(7, q, 1), query],
    ['two questions', (() => { const b = rbldnsdA(q, q, ['127.0.0.2']); b.writeUInt16BE(2, 4); return b; })(), query],
    ['shorter than our question', Buffer.from(query.subarray(0, 20)), query],
  ];
  for (const [why, buf, qy] of cases) assert.equal(quickReply(buf, qy), null, why);
});

test('quickReply throws what decodeMessage throws for a bad record after the answers (additional, authority)', () => {
  const q = '2.0.0.127.zen.example';
  const query = encodeQuery(7, q, 1);
  const good = rbldnsdA(q, q, ['127.0.0.2']);
  // One more additional record whose RDLENGTH runs past the end.
  const bad = Buffer.concat([good, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 9, 1, 2, 3])]);
  bad.writeUInt16BE(1, 10);
  assert.throws(() => decodeMessage(bad), /truncated record/);
  assert.throws(() => quickReply(bad, query), /truncated record/);
  // An SOA in authority with a short fixed part.
  const soa = encodeResponse({ id: 7, rcode: 3, compress: true, question: { name: q, qtype: 1 }, authority: [{ name: ZONE, type: 6, ttl: 9, data: 'a b 1 2 3 4 5' }] });
  // The packet ends inside the SOA's RDATA.
  const cut = Buffer.from(soa.subarray(0, soa.length - 3));
  assert.throws(() => decodeMessage(cut), /truncated record/);
  assert.throws(() => quickReply(cut, query), /truncated record/);
});
