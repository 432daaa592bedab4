/*
 * The workers key: a whole number of processes or auto; a bad value names the key; more than one
 * worker with the memory store is refused naming workers and cache.store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { validateConfig } from '../../src/config/validate.js';
import { configError } from '../helpers/config-error.js';
import { networkSlot, workerCount } from '../../src/server/cluster-ipc.js';

const redis = { store: 'redis', redis: { url: 'redis://127.0.0.1:6379' } };

test('workers defaults to 1 and takes a count or auto', () => {
  assert.equal(validateConfig({}).workers, 1);
  assert.equal(validateConfig({ workers: 3, cache: redis }).workers, 3);
  assert.equal(validateConfig({ workers: 'auto', cache: redis }).workers, 'auto');
  assert.equal(workerCount('auto'), Math.min(64, availableParallelism()));
  assert.equal(workerCount(5), 5);
});

test('a bad workers value is an error naming the key and the value', () => {
  for (const [v, want] of [
    [0, /^workers: 0 is below the minimum 1/], [-2, /^workers: -2 is below the minimum 1/], [65, /^workers: 65 is above the maximum 64/],
    ['abc', /^workers: want a whole number of processes \(1\.\.64\) or auto, got "abc"/], [1.5, /^workers: want a whole number/],
    ['2', /^workers: want a whole number/], [true, /^workers: want a whole number/],
  ] as const) {
    const e = configError(() => validateConfig({ workers: v, cache: redis }));
    assert.equal(e.details?.['key'], 'workers', String(v));
    assert.match(e.message, want);
  }
});

test('more than one worker with cache.store memory is refused, naming workers and cache.store', () => {
  const e = configError(() => validateConfig({ workers: 2 }));
  assert.equal(e.details?.['key'], 'workers');
  assert.match(e.message, /^workers: 2 workers need cache\.store: redis/);
  assert.doesNotThrow(() => validateConfig({ workers: 1 }));
  assert.doesNotThrow(() => validateConfig({ workers: 2, cache: redis }));
});

test('networkSlot keeps a /24 (IPv4) or /64 (IPv6) in one slot and spreads networks over the slots', () => {
  assert.equal(networkSlot('192.0.2.1', 4), networkSlot('192.0.2.254', 4));
  assert.equal(networkSlot('2001:db8:1:2::1', 4), networkSlot('2001:db8:1:2:ffff::9', 4));
  assert.equal(networkSlot('::ffff:192.0.2.7', 4), networkSlot('192.0.2.8', 4));
  assert.equal(networkSlot('not an address', 4), 0);
  assert.equal(networkSlot('192.0.2.1', 1), 0);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) { const k = networkSlot(`10.${i >> 8}.${i & 255}.1`, 3); counts[k] = (counts[k] ?? 0) + 1; }
  for (const c of counts) assert.ok(c > 800 && c < 1200, `uneven spread over 3 slots: ${counts.join(', ')}`);
  const v6 = [0, 0];
  for (let i = 0; i < 1000; i++) { const k = networkSlot(`2001:db8:${i.toString(16)}::1`, 2); v6[k] = (v6[k] ?? 0) + 1; }
  for (const c of v6) assert.ok(c > 400 && c < 600, `uneven IPv6 spread: ${v6.join(', ')}`);
});

test('workers_accept is shared or primary; another value is an error naming the key; changing it needs a restart', async () => {
  assert.equal(validateConfig({ workers: 2, cache: redis }).workers_accept, 'shared');
  assert.equal(validateConfig({ workers: 2, workers_accept: 'primary', cache: redis }).workers_accept, 'primary');
  const e = configError(() => validateConfig({ workers: 2, workers_accept: 'kernel', cache: redis }));
  assert.equal(e.details?.['key'], 'workers_accept');
  assert.match(e.message, /^workers_accept: .*kernel/);
  const { RESTART_KEYS } = await import('../../src/server/reload.js');
  assert.ok(RESTART_KEYS.includes('workers_accept'));
});
