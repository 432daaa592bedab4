/*
 * server/host-counts.ts (workers_accept: shared): the primary's sums of its workers' reports.
 * What each worker is told: the others' total, and the clients full on the host when that set changed;
 * a worker that exits is dropped whole; a reload's new limit recomputes the full set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostCounts } from '../../src/server/host-counts.js';

test('the others\' total per worker, told once per change', () => {
  const h = new HostCounts(3, 0);
  h.report(0, 5, undefined);
  h.report(1, 2, undefined);
  assert.equal(h.total, 7);
  assert.deepEqual(h.message(0), { t: 'host', o: 2, full: [] }, 'first message carries the (empty) full set');
  assert.deepEqual(h.message(1), { t: 'host', o: 5, full: [] });
  assert.deepEqual(h.message(2), { t: 'host', o: 7, full: [] });
  assert.equal(h.message(0), null, 'nothing new for worker 0');
  h.report(1, 4, undefined);
  assert.deepEqual(h.message(0), { t: 'host', o: 4 });
  assert.equal(h.message(1), null, 'its own count moved, not the others\'');
  assert.deepEqual(h.message(2), { t: 'host', o: 9 });
  h.report(0, 1, undefined);
  assert.equal(h.total, 5);
  assert.equal(h.open(0), 1);
});

test('a client is full when its counts over the workers reach limits.max_per_client, and stops being full below it', () => {
  const h = new HostCounts(2, 3);
  h.report(0, 2, [['192.0.2.1', 2]]);
  h.report(1, 0, []);
  assert.deepEqual(h.message(1), { t: 'host', o: 2, full: [] });
  h.report(1, 1, [['192.0.2.1', 1]]);
  assert.deepEqual([...h.full()], [['192.0.2.1', 3]]);
  assert.deepEqual(h.message(1), { t: 'host', o: 2, full: [['192.0.2.1', 3]] });
  assert.deepEqual(h.message(0), { t: 'host', o: 1, full: [['192.0.2.1', 3]] });
  // More of it: still full, its count moves, the set does not: the others' count is all that is told.
  h.report(0, 3, [['192.0.2.1', 3]]);
  assert.deepEqual([...h.full()], [['192.0.2.1', 4]]);
  assert.deepEqual(h.message(1), { t: 'host', o: 3 });
  h.report(0, 1, [['192.0.2.1', 1]]);
  assert.deepEqual([...h.full()], [], '1 + 1 is under 3');
  assert.deepEqual(h.message(1), { t: 'host', o: 1, full: [] });
  // A client counted in one worker only is summed too; zero everywhere forgets it.
  h.report(1, 0, [['192.0.2.1', 0]]);
  h.report(0, 0, [['192.0.2.1', 0], ['198.51.100.7', 0]]);
  assert.equal(h.total, 0);
  h.report(0, 3, [['198.51.100.7', 3]]);
  assert.deepEqual([...h.full()], [['198.51.100.7', 3]]);
});

test('a worker that exits is dropped whole; its next incarnation is told everything', () => {
  const h = new HostCounts(2, 2);
  h.report(0, 3, [['192.0.2.1', 1], ['192.0.2.2', 2]]);
  h.report(1, 4, [['192.0.2.1', 1]]);
  assert.deepEqual([...h.full()].sort(), [['192.0.2.1', 2], ['192.0.2.2', 2]]);
  h.message(0);
  h.message(1);
  h.drop(0);
  assert.equal(h.total, 4);
  assert.equal(h.open(0), 0);
  assert.deepEqual([...h.full()], [], 'the dead worker\'s connections were cut');
  assert.deepEqual(h.message(1), { t: 'host', o: 0, full: [] });
  assert.deepEqual(h.message(0), { t: 'host', o: 4, full: [] }, 'the new worker 0 gets the whole state');
});

test('a new limit (reload) recomputes the full set; 0 means none', () => {
  const h = new HostCounts(2, 5);
  h.report(0, 2, [['192.0.2.1', 2]]);
  h.report(1, 1, [['192.0.2.1', 1]]);
  h.message(0);
  assert.deepEqual([...h.full()], []);
  h.setMax(3);
  assert.deepEqual([...h.full()], [['192.0.2.1', 3]]);
  assert.deepEqual(h.message(0), { t: 'host', o: 1, full: [['192.0.2.1', 3]] });
  h.setMax(0);
  assert.deepEqual([...h.full()], []);
  h.report(0, 9, [['192.0.2.1', 9]]);
  assert.deepEqual([...h.full()], [], 'no limit, never full');
  assert.deepEqual(h.message(0), { t: 'host', o: 1, full: [] });
});
