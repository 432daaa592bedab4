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
