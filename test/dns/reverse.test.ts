/*
 * test/dns/reverse.test.ts - reverseName: a table, then fast-check against a naive reference
 * built on ip-address (expand, strip colons, reverse the nibbles).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Address6 } from 'ip-address';
import { reverseName } from '../../src/dns/reverse.js';

test('reverseName table', () => {
  const cases: Array<{ addr: string; zone: string; want: string | null }> = [
    { addr: '1.2.3.4', zone: 'zen.example', want: '4.3.2.1.zen.example' },
    { addr: '127.0.0.2', zone: 'ZEN.Example.', want: '2.0.0.127.zen.example' },
    { addr: '255.0.10.100', zone: 'bl', want: '100.10.0.255.bl' },
    { addr: '0.0.0.0', zone: 'bl', want: '0.0.0.0.bl' },
    { addr: '::ffff:1.2.3.4', zone: 'zen.example', want: '4.3.2.1.zen.example' },
    { addr: '::FFFF:0102:0304', zone: 'zen.example', want: '4.3.2.1.zen.example' },
    { addr: '2001:db8::1', zone: 'v6.example', want: '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.example' },
    { addr: '2001:DB8:1234:5678:9ABC:DEF0:1:2', zone: 'v6.example', want: '2.0.0.0.1.0.0.0.0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.8.b.d.0.1.0.0.2.v6.example' },
    { addr: '::', zone: 'x', want: `${'0.'.repeat(32)}x` },
    { addr: '::1.2.3.4', zone: 'x', want: `4.0.3.0.2.0.1.0.${'0.'.repeat(24)}x` },
    { addr: '1.2.3.4', zone: '', want: '4.3.2.1' },
    { addr: '1.2.3.4', zone: '.', want: '4.3.2.1' },
    { addr: '', zone: 'x', want: null },
    { addr: '1.2.3', zone: 'x', want: null },
    { addr: '1.2.3.256', zone: 'x', want: null },
    { addr: '01.2.3.4', zone: 'x', want: null },
    { addr: '1::2::3', zone: 'x', want: null },
    { addr: 'fe80::1%eth0', zone: 'x', want: null },
    { addr: 'zen.example', zone: 'x', want: null },
  ];
  for (const c of cases) assert.equal(reverseName(c.addr, c.zone), c.want, `${c.addr} + ${c.zone}`);
});

/** Naive reference: IPv4 by split/reverse; IPv6 by full expansion, v4-mapped treated as IPv4. */
function naive(addr: string, zone: string): string {
  const z = zone.toLowerCase().replace(/\.$/, '');
  const tail = z === '' ? '' : `.${z}`;
  if (!addr.includes(':')) return addr.split('.').reverse().join('.') + tail;
  const hex = new Address6(addr).canonicalForm().replace(/:/g, '');
  if (hex.startsWith('00000000000000000000ffff')) {
    const v4 = [0, 2, 4, 6].map((i) => parseInt(hex.slice(24 + i, 26 + i), 16));
    return v4.reverse().join('.') + tail;
  }
  return hex.split('').reverse().join('.') + tail;
}

test('property: reverseName agrees with a naive reference on random addresses', () => {
  const addr = fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    fc.ipV6().map((s) => s.toUpperCase()),
    fc.ipV4().map((s) => `::ffff:${s}`),
  );
  const zone = fc.oneof(fc.constantFrom('zen.example', 'Bl.Example.', 'x', ''), fc.domain());
  fc.assert(fc.property(addr, zone, (a, z) => {
    assert.equal(reverseName(a, z), naive(a, z));
  }), { numRuns: 5000 });
});

test('property: reversed IPv6 names have 32 one-nibble labels before the zone', () => {
  fc.assert(fc.property(fc.ipV6(), (a) => {
    const r = reverseName(a, 'z');
    assert.ok(r !== null);
    const labels = r.split('.');
    if (labels.length === 5) return; // v4-mapped
    assert.equal(labels.length, 33);
    assert.ok(labels.slice(0, 32).every((l) => /^[0-9a-f]$/.test(l)));
  }), { numRuns: 2000 });
});
