/*
 * bench/micro/dns.bench.ts - the DNSBL hot path of dns/: encodeQuery into a reused buffer,
 * decodeMessage of a typical listed answer (two A records, compressed) and of an NXDOMAIN with
 * its SOA (plus answersFor / negativeTtl on them), reverseName for IPv4 and IPv6 clients.
 */
import type { Bench } from 'tinybench';
import { answersFor, decodeMessage, encodeQuery, negativeTtl } from '../../src/dns/packet.js';
import { encodeResponse } from '../../test/helpers/dns-encode.js';
import { reverseName } from '../../src/dns/reverse.js';

let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return seed >>> 0;
}
const dotted = (a: number): string => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
const hex16 = (): string => (rand() & 0xffff).toString(16);

export default function (bench: Bench): void {
  const v4: string[] = [];
  const v6: string[] = [];
  for (let i = 0; i < 1024; i++) {
    v4.push(dotted(rand()));
    v6.push(`2001:db8:${hex16()}:${hex16()}:${hex16()}::${hex16()}`);
  }
  const qnames = v4.map((a) => reverseName(a, 'zen.example') ?? 'x');
  const listed = encodeResponse({
    id: 0x1234, compress: true, question: { name: '2.0.0.127.zen.example', qtype: 1 },
    answers: [
      { name: '2.0.0.127.zen.example', type: 1, ttl: 300, data: '127.0.0.2' },
      { name: '2.0.0.127.zen.example', type: 1, ttl: 300, data: '127.0.0.4' },
    ],
  });
  const nx = encodeResponse({
    id: 0x1234, rcode: 3, compress: true, question: { name: '9.9.9.9.zen.example', qtype: 1 },
    authority: [{ name: 'zen.example', type: 6, ttl: 900, data: 'ns.zen.example hostmaster.zen.example 2024010101 3600 600 86400 60' }],
  });
  const out = Buffer.alloc(512);

  let i = 0;
  let sink = 0;
  bench.add(`encodeQuery A into a reused buffer (${qnames[0]?.length ?? 0}-char name)`, () => {
    sink += encodeQuery(i & 0xffff, qnames[i++ & 1023] ?? 'x', 1, out).length;
  });
  bench.add(`decodeMessage listed: 2 A, compressed (${listed.length} octets) + answersFor`, () => {
    const r = answersFor(decodeMessage(listed), '2.0.0.127.zen.example', 1);
    sink += 'records' in r ? r.records.length : 0;
  });
  bench.add(`decodeMessage NXDOMAIN + SOA (${nx.length} octets) + negativeTtl`, () => {
    sink += negativeTtl(decodeMessage(nx)) ?? 0;
  });
  bench.add('reverseName ipv4', () => {
    sink += reverseName(v4[i++ & 1023] ?? '', 'zen.example')?.length ?? 0;
  });
  bench.add('reverseName ipv6', () => {
    sink += reverseName(v6[i++ & 1023] ?? '', 'zen.example')?.length ?? 0;
  });
  // Keep the sink observable so the JIT cannot drop the work.
  bench.addEventListener('complete', () => { if (sink === 0.5) console.log(sink); });
}
