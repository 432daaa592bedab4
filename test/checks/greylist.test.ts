import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greylistDecide, greylistApplies, type GreylistOptions } from '../../src/checks/greylist.js';
import { networkOf } from '../../src/net/cidr.js';

const O: GreylistOptions = { minDelayMs: 300_000, maxDelayMs: 86_400_000, ttlMs: 30 * 86_400_000 };
const T = 1_800_000_000_000;

test('greylist decisions over a network\'s life: new, early, retry in the window, passed, expired', () => {
  const rows: Array<{ label: string; state: number; now: number; verdict: string; reason: string; next: number }> = [
    { label: 'unknown network', state: 0, now: T, verdict: 'defer', reason: 'new', next: -T },
    { label: 'retry after 1 min', state: -T, now: T + 60_000, verdict: 'defer', reason: 'early', next: -T },
    { label: 'retry exactly at min_delay', state: -T, now: T + 300_000, verdict: 'pass', reason: 'retry', next: T + 300_000 + O.ttlMs },
    { label: 'retry after 2 h', state: -T, now: T + 7_200_000, verdict: 'pass', reason: 'retry', next: T + 7_200_000 + O.ttlMs },
    { label: 'retry after max_delay', state: -T, now: T + 86_400_001, verdict: 'defer', reason: 'expired', next: -(T + 86_400_001) },
    { label: 'passed, within ttl', state: T + 1000, now: T, verdict: 'pass', reason: 'passed', next: T + 1000 },
    { label: 'passed, ttl over', state: T, now: T + 1, verdict: 'defer', reason: 'new', next: -(T + 1) },
  ];
  for (const r of rows) {
    const d = greylistDecide(r.state, r.now, O);
    assert.deepEqual([d.verdict, d.reason, d.state], [r.verdict, r.reason, r.next], r.label);
  }
  const early = greylistDecide(-T, T + 60_000, O);
  assert.equal(early.reason === 'early' ? early.waitMs : -1, 240_000);
});

test('greylist policy: all, or suspicious from a DNSBL score', () => {
  assert.equal(greylistApplies('all', 0, 2), true);
  assert.equal(greylistApplies('suspicious', 1, 2), false);
  assert.equal(greylistApplies('suspicious', 2, 2), true);
});

test('networkOf: /24 and /64 by default, v4-mapped as IPv4, invalid is null', () => {
  const rows: Array<[string, number, number, string | null]> = [
    ['192.0.2.77', 24, 64, '192.0.2.0/24'],
    ['192.0.2.77', 16, 64, '192.0.0.0/16'],
    ['192.0.2.77', 32, 64, '192.0.2.77/32'],
    ['::ffff:192.0.2.77', 24, 64, '192.0.2.0/24'],
    ['2001:db8:1:2:3:4:5:6', 24, 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:3:4:5:6', 24, 48, '2001:db8:1::/48'],
    ['2001:db8:1:2:3:4:5:6', 24, 56, '2001:db8:1::/56'],
    ['2001:db8:1:ff02::1', 24, 56, '2001:db8:1:ff00::/56'],
    ['not an address', 24, 64, null],
  ];
  for (const [addr, v4, v6, want] of rows) assert.equal(networkOf(addr, v4, v6), want, `${addr} /${v4} /${v6}`);
});

test('greylistDecide at the exact edges: a pass ending now has ended; a retry at exactly max_delay still passes', () => {
  const o = { minDelayMs: 300_000, maxDelayMs: 3_600_000, ttlMs: 1000 };
  assert.deepEqual(greylistDecide(5000, 5000, o), { verdict: 'defer', state: -5000, reason: 'new' });
  assert.deepEqual(greylistDecide(-1000, 1000 + 3_600_000, o), { verdict: 'pass', state: 1000 + 3_600_000 + 1000, reason: 'retry', delayMs: 3_600_000 });
  assert.equal(greylistDecide(-1000, 1001 + 3_600_000, o).reason, 'expired');
});
