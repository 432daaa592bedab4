/*
 * test/net/cidr.test.ts - parseAddress, normalizeAddress, parseCidr, CidrMatcher.
 * Tables first, then fast-check properties against Node's net.isIP and ip-address, then a
 * 10,000-prefix load: the slow tests last, so that under mutation testing a mutant a table
 * catches is caught in about a second. Lookup speed is measured in bench/micro/cidr.bench.ts
 * (100,000 prefixes), not here: a timing bound cannot hold in a mutation run, where every
 * expression of the trie walk goes through Stryker's mutant switch (100,000 lookups took 17 s
 * there against 2 s allowed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { Address6 } from 'ip-address';
import { CidrMatcher, formatCidr, networkOf, normalizeAddress, parseAddress, parseCidr, type Cidr } from '../../src/net/cidr.js';
import { ScreenError } from '../../src/util/errors.js';

test('parseAddress / normalizeAddress table', () => {
  const cases: Array<{ input: string; family: 4 | 6 | null; canonical: string | null }> = [
    { input: '1.2.3.4', family: 4, canonical: '1.2.3.4' },
    { input: '0.0.0.0', family: 4, canonical: '0.0.0.0' },
    { input: '255.255.255.255', family: 4, canonical: '255.255.255.255' },
    { input: '::ffff:1.2.3.4', family: 4, canonical: '1.2.3.4' },
    { input: '::FFFF:0102:0304', family: 4, canonical: '1.2.3.4' },
    { input: '::1', family: 6, canonical: '::1' },
    { input: '::', family: 6, canonical: '::' },
    { input: '2001:DB8:0:0:1:0:0:1', family: 6, canonical: '2001:db8::1:0:0:1' },
    { input: '2001:0db8:0000:0000:0000:0000:0000:0001', family: 6, canonical: '2001:db8::1' },
    { input: '1:0:1:1:1:1:1:1', family: 6, canonical: '1:0:1:1:1:1:1:1' },
    { input: '1:2:3:4:5:6:7::', family: 6, canonical: '1:2:3:4:5:6:7:0' },
    { input: '::1.2.3.4', family: 6, canonical: '::102:304' },
    { input: 'fe80::1:2', family: 6, canonical: 'fe80::1:2' },
    { input: '', family: null, canonical: null },
    { input: '1.2.3', family: null, canonical: null },
    { input: '1.2.3.4.5', family: null, canonical: null },
    { input: '01.2.3.4', family: null, canonical: null },
    { input: '256.1.1.1', family: null, canonical: null },
    { input: '1.2.3.4 ', family: null, canonical: null },
    { input: '1::2::3', family: null, canonical: null },
    { input: '1:2:3:4:5:6:7:8:9', family: null, canonical: null },
    { input: '1::2:3:4:5:6:7:8', family: null, canonical: null },
    { input: '12345::', family: null, canonical: null },
    { input: ':1', family: null, canonical: null },
    { input: '1:', family: null, canonical: null },
    { input: ':::', family: null, canonical: null },
    { input: 'fe80::1%eth0', family: null, canonical: null },
    { input: 'g::1', family: null, canonical: null },
  ];
  for (const c of cases) {
    const p = parseAddress(c.input);
    assert.equal(p === null ? null : p.family, c.family, `family of ${JSON.stringify(c.input)}`);
    assert.equal(normalizeAddress(c.input), c.canonical, `canonical of ${JSON.stringify(c.input)}`);
  }
});

test('parseCidr table', () => {
  const cases: Array<{ input: string; family: 4 | 6; prefix: number; canonical: string }> = [
    { input: '1.2.3.0/24', family: 4, prefix: 24, canonical: '1.2.3.0/24' },
    { input: '1.2.3.4', family: 4, prefix: 32, canonical: '1.2.3.4/32' },
    { input: '0.0.0.0/0', family: 4, prefix: 0, canonical: '0.0.0.0/0' },
    { input: '2001:db8::/32', family: 6, prefix: 32, canonical: '2001:db8::/32' },
    { input: '::1', family: 6, prefix: 128, canonical: '::1/128' },
    { input: '::/0', family: 6, prefix: 0, canonical: '::/0' },
    { input: '::ffff:10.0.0.0/104', family: 4, prefix: 8, canonical: '10.0.0.0/8' },
    { input: '  10.0.0.0/8 ', family: 4, prefix: 8, canonical: '10.0.0.0/8' },
  ];
  for (const c of cases) {
    const cidr = parseCidr(c.input);
    assert.equal(cidr.family, c.family, c.input);
    assert.equal(cidr.prefix, c.prefix, c.input);
    assert.equal(formatCidr(cidr), c.canonical, c.input);
  }
});

test('parseCidr rejects bad text with SCR_ERR_CIDR naming the value', () => {
  const cases: Array<{ input: string; suggest?: string }> = [
    { input: '1.2.3.4/24', suggest: '1.2.3.0/24' },
    { input: '2001:db8::1/32', suggest: '2001:db8::/32' },
    { input: '1.2.3.0/33' },
    { input: '::/129' },
    { input: '1.2.3.0/' },
    { input: '1.2.3.0/x' },
    { input: '1.2.3.0/-1' },
    { input: 'example.com' },
    { input: '' },
    { input: '1.2.3.0/24/8' },
  ];
  for (const c of cases) {
    assert.throws(() => parseCidr(c.input), (err: unknown) => {
      assert.ok(err instanceof ScreenError);
      assert.equal(err.code, 'SCR_ERR_CIDR');
      assert.equal(err.details['value'], c.input.trim());
      if (c.suggest !== undefined) assert.equal(err.details['suggest'], c.suggest);
      return true;
    }, c.input);
  }
});

test('CidrMatcher: first match wins, not longest prefix', () => {
  const m = CidrMatcher.fromList<string>([
    ['10.0.0.0/8', 'wide'],
    ['10.1.0.0/16', 'narrow-later'],
    ['2001:db8::/32', 'v6'],
    ['2001:db8:1::/48', 'v6-narrow-later'],
    ['192.168.1.1', 'host'],
    ['::/0', 'v6-any'],
  ]);
  const cases: Array<{ addr: string; want: string | undefined }> = [
    { addr: '10.1.2.3', want: 'wide' },
    { addr: '10.255.0.1', want: 'wide' },
    { addr: '::ffff:10.1.2.3', want: 'wide' },
    { addr: '11.0.0.1', want: undefined },
    { addr: '192.168.1.1', want: 'host' },
    { addr: '192.168.1.2', want: undefined },
    { addr: '2001:db8:1::5', want: 'v6' },
    { addr: '2001:db9::1', want: 'v6-any' },
    { addr: 'not an address', want: undefined },
  ];
  for (const c of cases) assert.equal(m.match(c.addr), c.want, c.addr);
  assert.equal(m.size, 6);
  const parsed = parseAddress('10.9.9.9');
  assert.ok(parsed);
  assert.equal(m.match(parsed), 'wide');
  // A later, narrower entry wins only where no earlier entry contains the address.
  const n = CidrMatcher.fromList<number>([['10.1.0.0/16', 1], ['10.0.0.0/8', 2]]);
  assert.equal(n.match('10.1.0.1'), 1);
  assert.equal(n.match('10.2.0.1'), 2);
});

test('the worst survivors of a mutation run: ::ffff:0:0/96 is every IPv4 client; an empty octet is no address', () => {
  // An access list entry for "all mapped IPv4" must match plain IPv4 clients (the kernel hands us either form).
  const m = new CidrMatcher<string>();
  m.add('::ffff:0:0/96', 'v4');
  assert.equal(formatCidr(parseCidr('::ffff:0:0/96')), '0.0.0.0/0');
  for (const a of ['192.0.2.1', '0.0.0.0', '255.255.255.255', '::ffff:198.51.100.7']) assert.equal(m.match(a), 'v4', a);
  assert.equal(m.match('2001:db8::1'), undefined);
  for (const bad of ['1..2.3', '1.2.3.', '.1.2.3', '1.2..3', '1.2.3..4']) assert.equal(parseAddress(bad), null, bad);
});

test('networkOf: the client\'s network as canonical CIDR text (greylisting keys), v4-mapped as IPv4, any prefix length', () => {
  const rows: Array<[string, number, number, string | null]> = [
    ['192.0.2.77', 24, 64, '192.0.2.0/24'],
    ['192.0.2.77', 32, 64, '192.0.2.77/32'],
    ['192.0.2.77', 0, 64, '0.0.0.0/0'],
    ['255.255.255.255', 1, 64, '128.0.0.0/1'],
    ['::ffff:192.0.2.77', 16, 64, '192.0.0.0/16'],
    ['2001:db8:1:2:3:4:5:6', 24, 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:3:4:5:6', 24, 128, '2001:db8:1:2:3:4:5:6/128'],
    ['2001:db8:1:2:3:4:5:6', 24, 0, '::/0'],
    ['2001:db8:1:ff02::1', 24, 56, '2001:db8:1:ff00::/56'],
    ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 24, 97, '2001:db8:ffff:ffff:ffff:ffff:8000:0/97'],
    ['not an address', 24, 64, null],
  ];
  for (const [addr, v4, v6, want] of rows) assert.equal(networkOf(addr, v4, v6), want, `${addr} /${v4} /${v6}`);
});

test('IPv6 text edge cases: an IPv4 tail after six groups, mapped only with all-zero upper words; RFC 5952 zero runs', () => {
  const rows: Array<[string, 4 | 6 | null, string | null]> = [
    ['0:0:0:0:0:ffff:1.2.3.4', 4, '1.2.3.4'],
    ['1:2:3:4:5:6:1.2.3.4', 6, '1:2:3:4:5:6:102:304'],
    ['1:2:3:4:5:6:7:1.2.3.4', null, null],
    ['0:0:1::ffff:1.2.3.4', 6, '::1:0:0:ffff:102:304'],
    ['1::ffff:0:0', 6, '1::ffff:0:0'],
    ['1:0:0:1:0:0:1:1', 6, '1::1:0:0:1:1'],
    ['1:0:0:1:0:0:0:1', 6, '1:0:0:1::1'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255', 6, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['::ffff:0.0.0.0', 4, '0.0.0.0'],
    ['::0.0.0.0', 6, '::'],
  ];
  for (const [input, family, canonical] of rows) {
    assert.equal(parseAddress(input)?.family ?? null, family, input);
    assert.equal(normalizeAddress(input), canonical, input);
  }
});

test('parseCidr: the messages name the input and say what is wrong; ::ffff: is a mapped IPv4 prefix from /96 on', () => {
  const msg = (text: string): string => {
    try {
      parseCidr(text);
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  assert.equal(msg(' example.com/8 '), 'bad CIDR "example.com/8": "example.com" is not an IPv4 or IPv6 address');
  assert.equal(msg('1.2.3.0/33'), 'bad CIDR "1.2.3.0/33": prefix length "33" is not a number from 0 to 32');
  assert.equal(msg('::/1234'), 'bad CIDR "::/1234": prefix length "1234" is not a number from 0 to 128');
  assert.equal(msg('1.2.3.0/-1'), 'bad CIDR "1.2.3.0/-1": prefix length "-1" is not a number from 0 to 32');
  assert.equal(msg('1.2.3.0/24x'), 'bad CIDR "1.2.3.0/24x": prefix length "24x" is not a number from 0 to 32');
  assert.equal(msg('/8'), 'bad CIDR "/8": "" is not an IPv4 or IPv6 address');
  assert.equal(msg('1.2.3.4/24'), 'bad CIDR "1.2.3.4/24": non-null host address bits; did you mean "1.2.3.0/24"?');
  assert.equal(formatCidr(parseCidr('1.2.3.0/024')), '1.2.3.0/24', 'leading zeros in the length are a number');
  // Shorter than /96, ::ffff: is no mapped IPv4 prefix but an IPv6 one, and its last ffff bit is a host bit.
  assert.equal(msg('::ffff:0:0/95'), 'bad CIDR "::ffff:0:0/95": non-null host address bits; did you mean "::fffe:0:0/95"?');
  for (const [text, family, canonical] of [
    ['::ffff:0:0/96', 4, '0.0.0.0/0'],
    ['1::ffff:0:0/96', 6, '1::ffff:0:0/96'],
    ['0:0:1::ffff:0:0/96', 6, '::1:0:0:ffff:0:0/96'],
    ['::1:ffff:0:0/96', 6, '::1:ffff:0:0/96'],
  ] as const) {
    const c = parseCidr(text);
    assert.deepEqual([c.family, formatCidr(c), c.text], [family, canonical, text], text);
  }
  // The mapped IPv4 prefix matches IPv4 clients; the /95 (IPv6) does not.
  assert.equal(CidrMatcher.fromList([['::ffff:192.0.2.0/120', 'x']]).match('192.0.2.9'), 'x');
  assert.equal(CidrMatcher.fromList([['::fffe:0:0/95', 'x']]).match('192.0.2.9'), undefined);
  assert.equal(CidrMatcher.fromList([['::fffe:0:0/95', 'x']]).match('::ffff:0:1'), undefined, 'mapped: an IPv4 client');
});

test('CidrMatcher: host routes of both families, IPv6 by parsed address, the same prefix twice (the first value wins)', () => {
  const m = CidrMatcher.fromList<string>([
    ['192.0.2.1/32', 'v4 host'],
    ['2001:db8::1/128', 'v6 host'],
    ['192.0.2.1/32', 'v4 host again'],
    ['2001:db8::/127', 'v6 pair'],
  ]);
  assert.equal(m.match('192.0.2.1'), 'v4 host');
  assert.equal(m.match('192.0.2.0'), undefined);
  assert.equal(m.match('2001:db8::1'), 'v6 host');
  assert.equal(m.match('2001:db8::'), 'v6 pair');
  assert.equal(m.match(parseAddress('2001:db8::1')!), 'v6 host');
  assert.equal(m.match(parseAddress('2001:db8::2')!), undefined);
  assert.equal(m.matchIndex('2001:db8::'), 3);
  assert.equal(m.matchIndex('2001:db8::2'), -1);
  assert.equal(m.matchIndex('nonsense'), -1);
  assert.equal(m.matchIndex(parseAddress('192.0.2.1')!), 0);
  assert.equal(m.nodeCount, 33 + 129, 'one node per bit of the longest prefix of each family, plus the root');
});

/* Random addresses as text, in the forms Node and configs produce plus mutations. */
const v6Text = fc.oneof(fc.ipV6(), fc.ipV6().map((s) => s.toUpperCase()));
const addrText = fc.oneof(
  fc.ipV4(),
  v6Text,
  fc.ipV4().map((s) => `::ffff:${s}`),
  fc.ipV4Extended(),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.x '.split('')), maxLength: 46 }),
  // Structured near-misses: 1..10 groups of 0..5 hex digits, maybe one "::", maybe an IPv4 tail.
  fc.tuple(
    fc.array(fc.string({ unit: fc.constantFrom(...'0f9aF'.split('')), maxLength: 5 }), { minLength: 1, maxLength: 10 }),
    fc.integer({ min: -1, max: 10 }),
    fc.option(fc.ipV4(), { nil: undefined }),
  ).map(([g, gap, v4]) => {
    const parts = v4 === undefined ? g : [...g, v4];
    return gap < 0 || gap > parts.length ? parts.join(':') : `${parts.slice(0, gap).join(':')}::${parts.slice(gap).join(':')}`;
  }),
  fc.tuple(fc.ipV6(), fc.nat(60), fc.constantFrom(':', '.', '', '0', '::', 'f')).map(([s, at, ins]) => s.slice(0, at) + ins + s.slice(at)),
);

test('property: parseAddress agrees with net.isIP, normalizeAddress with ip-address', () => {
  fc.assert(fc.property(addrText, (s) => {
    const p = parseAddress(s);
    const node = isIP(s);
    assert.equal(p !== null, node !== 0, `validity of ${JSON.stringify(s)}`);
    if (p === null) return;
    const canonical = normalizeAddress(s);
    if (node === 4) {
      assert.equal(p.family, 4);
      assert.equal(canonical, s);
    } else {
      const a6 = new Address6(s);
      const big = a6.bigInt();
      const mapped = big >> 32n === 0xffffn;
      if (mapped) {
        const v = Number(big & 0xffffffffn);
        assert.equal(canonical, `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`);
      } else {
        assert.equal(canonical, a6.correctForm());
      }
      assert.equal(p.family, mapped ? 4 : 6);
    }
    // The canonical form parses to the same address.
    assert.deepEqual(parseAddress(canonical ?? ''), p);
  }), { numRuns: 5000 });
});

/** Reference: does cidr contain the (valid) address text? */
function naiveContains(c: Cidr, addr: string): boolean {
  const p = parseAddress(addr);
  if (p === null || p.family !== c.family) return false;
  const a = [p.w0, p.w1, p.w2, p.w3];
  const n = [c.w0, c.w1, c.w2, c.w3];
  for (let k = 0; k < 4; k++) {
    const bits = Math.max(0, Math.min(32, c.prefix - 32 * k));
    const mask = bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if ((((a[k] ?? 0) & mask) >>> 0) !== (n[k] ?? 0)) return false;
  }
  return true;
}

function maskedCidr(addr: string, len: number): string {
  const p = parseAddress(addr);
  if (p === null) throw new Error(`bad generated address ${addr}`);
  const max = p.family === 4 ? 32 : 128;
  const prefix = Math.min(len, max);
  const words = [p.w0, p.w1, p.w2, p.w3].map((w, k) => {
    const bits = Math.max(0, Math.min(32, prefix - 32 * k));
    return bits === 0 ? 0 : ((w & (bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)))) >>> 0);
  });
  const c: Cidr = { family: p.family, w0: words[0] ?? 0, w1: words[1] ?? 0, w2: words[2] ?? 0, w3: words[3] ?? 0, prefix, text: '' };
  return formatCidr(c);
}

test('property: CidrMatcher agrees with a linear first-match scan', () => {
  // Small address space so prefixes overlap often.
  const octet = fc.constantFrom(0, 1, 10, 128, 255);
  const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
  const v6 = fc.oneof(
    fc.constantFrom('::', '::1', '2001:db8::', '2001:db8::1', '2001:db8:1::1', '2001:db8:8000::', '2001:db9::', 'fe80::1', 'ffff::ffff'),
    fc.ipV6(),
  );
  const addr = fc.oneof(v4, v6);
  const entry = fc.tuple(addr, fc.integer({ min: 0, max: 128 })).map(([a, len]) => maskedCidr(a, len));
  fc.assert(fc.property(fc.array(entry, { maxLength: 40 }), fc.array(addr, { minLength: 1, maxLength: 20 }), (entries, probes) => {
    const cidrs = entries.map((e) => parseCidr(e));
    const m = new CidrMatcher<number>();
    cidrs.forEach((c, i) => m.add(c, i));
    for (const probe of probes) {
      const want = cidrs.findIndex((c) => naiveContains(c, probe));
      assert.equal(m.match(probe), want < 0 ? undefined : want, `${probe} in ${entries.join(',')}`);
    }
  }), { numRuns: 500 });
});

test('10,000 random IPv4 prefixes load and match like a linear scan', () => {
  // Big enough that the node array grows many times over (room for 1,024 nodes at first, 85,309 used) and
  // that prefixes nest and overlap; small enough for a mutation run, where the instrumented load
  // and walk are about 100 times slower.
  const N = 10_000;
  let seed = 0x12345678;
  const rand = (): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return seed >>> 0;
  };
  const m = new CidrMatcher<number>();
  const nets: Array<{ net: number; mask: number }> = [];
  let bits = 0;
  for (let i = 0; i < N; i++) {
    const len = 8 + (rand() % 25);
    const mask = (0xffffffff << (32 - len)) >>> 0;
    const net = (rand() & mask) >>> 0;
    const text = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${len}`;
    m.add(text, i);
    nets.push({ net, mask });
    bits += len;
  }
  assert.equal(m.size, N);
  // One node per prefix bit at most (shared heads make it fewer), plus the two roots.
  assert.ok(m.nodeCount > 64 * 1024 && m.nodeCount <= bits + 2, `${m.nodeCount} nodes for ${bits} prefix bits`);
  let inside = 0;
  for (let i = 0; i < 600; i++) {
    // Half the probes fall inside a known prefix, half are random.
    const pick = nets[rand() % nets.length];
    const a = i % 2 === 0 && pick ? ((pick.net | (rand() & ~pick.mask)) >>> 0) : rand();
    const probe = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
    const idx = nets.findIndex((n) => ((a & n.mask) >>> 0) === n.net);
    if (idx >= 0) inside++;
    assert.equal(m.match(probe), idx < 0 ? undefined : idx, probe);
  }
  assert.ok(inside >= 300, `${inside} of 600 probes inside a prefix`);
});
