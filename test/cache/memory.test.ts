/*
 * MemoryStore: bounded in entries (least recently used out first), and nothing preallocated
 * for that bound at start (a 1,000,000-entry store costs nothing until it is used).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../src/cache/memory.js';
import { withPasses } from '../../src/cache/store.js';
import { TestIndex } from '../../src/checks/tests.js';

const rec = (until: number) => withPasses(null, [[TestIndex.pregreet, until]]);

test('MemoryStore: at most maxEntries records; the least recently used goes first', () => {
  const m = new MemoryStore(3);
  m.set('a', rec(1));
  m.set('b', rec(2));
  m.set('c', rec(3));
  assert.ok(m.get('a') !== undefined); // a is now the most recently used
  m.set('d', rec(4));
  assert.equal(m.size, 3);
  assert.equal(m.get('b'), undefined, 'b was the least recently used');
  assert.deepEqual(['a', 'c', 'd'].map((k) => m.get(k)?.[TestIndex.pregreet]), [1, 3, 4]);
  for (let i = 0; i < 100; i++) m.set(`x${i}`, rec(i));
  assert.equal(m.size, 3, 'still 3 after 100 more');
  m.set('x99', rec(7));
  assert.equal(m.size, 3, 'an update is not a new entry');
});

test('MemoryStore(1,000,000): nothing preallocated at construction (lru-cache with `max` allocated ~15 MB)', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const m = new MemoryStore(1_000_000);
  const after = process.memoryUsage();
  const grew = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  assert.ok(grew < 1_000_000, `construction grew the heap by ${grew} bytes`);
  m.set('a', rec(1));
  assert.equal(m.size, 1);
});

test('MemoryStore.observe: greylisting per network under "net:<CIDR>", the state kept in the greylist row', () => {
  const m = new MemoryStore(10);
  const o = { minDelayMs: 300_000, maxDelayMs: 3_600_000, ttlMs: 86_400_000 };
  const T = 1_800_000_000_000;
  assert.deepEqual(m.observe('192.0.2.0/24', T, o), { verdict: 'defer', state: -T, reason: 'new' });
  assert.equal(m.get('net:192.0.2.0/24')?.[TestIndex.greylist], -T, 'first seen, stored negative');
  assert.equal(m.get('192.0.2.0/24'), undefined, 'not under the bare network text');
  assert.deepEqual(m.observe('192.0.2.0/24', T + 60_000, o), { verdict: 'defer', state: -T, reason: 'early', waitMs: 240_000 });
  assert.equal(m.get('net:192.0.2.0/24')?.[TestIndex.greylist], -T, 'an early retry keeps the first-seen time');
  assert.deepEqual(m.observe('192.0.2.0/24', T + 300_000, o), { verdict: 'pass', state: T + 300_000 + 86_400_000, reason: 'retry', delayMs: 300_000 });
  assert.equal(m.get('net:192.0.2.0/24')?.[TestIndex.greylist], T + 300_000 + 86_400_000, 'passed until');
  assert.deepEqual(m.observe('192.0.2.0/24', T + 400_000, o), { verdict: 'pass', state: T + 300_000 + 86_400_000, reason: 'passed', delayMs: 0 });
  // Other networks are independent; the rest of a record stored under the key is kept.
  assert.equal(m.observe('198.51.100.0/24', T + 400_000, o).reason, 'new');
  m.set('net:203.0.113.0/24', rec(T + 5));
  m.observe('203.0.113.0/24', T, o);
  const r = m.get('net:203.0.113.0/24');
  assert.equal(r?.[TestIndex.greylist], -T);
  assert.equal(r?.[TestIndex.pregreet], T + 5, 'the other rows are kept');
  assert.equal(m.size, 3);
});

test('MemoryStore: delete, entries, and a bound below 1 still keeps one entry', () => {
  const m = new MemoryStore(5);
  m.set('a', rec(1));
  m.set('b', rec(2));
  assert.deepEqual([...m.entries()].map(([k, v]) => [k, v[TestIndex.pregreet]]).sort(), [['a', 1], ['b', 2]]);
  m.delete('a');
  assert.equal(m.get('a'), undefined);
  assert.equal(m.size, 1);
  const z = new MemoryStore(0);
  z.set('x', rec(1));
  assert.equal(z.get('x')?.[TestIndex.pregreet], 1);
  z.set('y', rec(2));
  assert.equal(z.size, 1);
  assert.equal(z.get('x'), undefined);
});
