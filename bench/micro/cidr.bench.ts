/*
 * bench/micro/cidr.bench.ts - CidrMatcher.match over 100,000 random IPv4 prefixes plus 10,000
 * IPv6 prefixes (first-match trie walk), parseAddress, normalizeAddress.
 */
import type { Bench } from 'tinybench';
import { CidrMatcher, normalizeAddress, parseAddress } from '../../src/net/cidr.js';

let seed = 0x9e3779b9;
function rand(): number {
  seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
  return seed >>> 0;
}
const dotted = (a: number): string => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
const hex16 = (): string => (rand() & 0xffff).toString(16);

export default function (bench: Bench): void {
  const m = new CidrMatcher<number>();
  const nets: Array<{ net: number; mask: number }> = [];
  for (let i = 0; i < 100_000; i++) {
    const len = 8 + (rand() % 25);
    const mask = (0xffffffff << (32 - len)) >>> 0;
    const net = (rand() & mask) >>> 0;
    m.add(`${dotted(net)}/${len}`, i);
    nets.push({ net, mask });
  }
  for (let i = 0; i < 10_000; i++) m.add(`2001:db8:${hex16()}:${hex16()}::/64`, 100_000 + i);

  // Probes: half inside a known prefix, half random; some IPv6 and v4-mapped.
  const v4: string[] = [];
  for (let i = 0; i < 1024; i++) {
    const n = nets[rand() % nets.length];
    v4.push(dotted(i % 2 === 0 && n ? ((n.net | (rand() & ~n.mask)) >>> 0) : rand()));
  }
  const v6: string[] = [];
  for (let i = 0; i < 1024; i++) v6.push(`2001:db8:${hex16()}:${hex16()}:${hex16()}::${hex16()}`);
  const mapped = v4.map((a) => `::ffff:${a}`);
  const parsedV4 = v4.map((a) => parseAddress(a));

  let i = 0;
  let sink = 0;
  bench.add('cidr match ipv4 string (100k v4 + 10k v6 prefixes)', () => {
    sink += m.matchIndex(v4[i++ & 1023] ?? '');
  });
  bench.add('cidr match ipv4 parsed', () => {
    const p = parsedV4[i++ & 1023];
    if (p) sink += m.matchIndex(p);
  });
  bench.add('cidr match v4-mapped string', () => {
    sink += m.matchIndex(mapped[i++ & 1023] ?? '');
  });
  bench.add('cidr match ipv6 string', () => {
    sink += m.matchIndex(v6[i++ & 1023] ?? '');
  });
  bench.add('parseAddress ipv4', () => {
    sink += parseAddress(v4[i++ & 1023] ?? '')?.w0 ?? 0;
  });
  bench.add('parseAddress ipv6', () => {
    sink += parseAddress(v6[i++ & 1023] ?? '')?.w3 ?? 0;
  });
  bench.add('normalizeAddress v4-mapped', () => {
    sink += normalizeAddress(mapped[i++ & 1023] ?? '')?.length ?? 0;
  });
  bench.add('normalizeAddress ipv6', () => {
    sink += normalizeAddress(v6[i++ & 1023] ?? '')?.length ?? 0;
  });
  // Keep the sink observable so the JIT cannot drop the work.
  bench.addEventListener('complete', () => { if (sink === 0.5) console.log(sink); });
}
