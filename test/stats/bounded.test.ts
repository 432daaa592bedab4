/*
 * stats/bounded.ts: the tables stay within their caps whatever the input,
 * say when they had to forget, and keep a heavy hitter's count; the
 * aggregator's tables do the same on a log of 30,000 distinct clients.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Aggregator } from '../../src/stats/aggregate.js';
import { Evicting, Histogram, TopCounter } from '../../src/stats/bounded.js';
import { parseJsonLine } from '../../src/stats/parse-json.js';
import { newRec } from '../../src/stats/record.js';

test('TopCounter: at most cap keys; exact until it prunes, then approximate; a heavy key survives with its full count', () => {
  const t = new TopCounter(100);
  t.add('heavy', 2); // ahead of the keys seen once when the first prune comes: never dropped
  for (let i = 0; i < 99; i++) t.add(`k${i}`);
  assert.equal(t.approximate, false);
  for (let i = 0; i < 5000; i++) {
    t.add('heavy');
    t.add(`once${i}`);
    assert.ok(t.size <= 100);
  }
  assert.equal(t.approximate, true);
  assert.equal(t.get('heavy'), 5002);
  assert.equal(t.total, 2 + 99 + 10_000);
  assert.deepEqual(t.top(1), [['heavy', 5002, undefined]]);
  // A key dropped while it ties with the rest restarts from 0: its count is a lower bound.
  const u = new TopCounter(4);
  for (const k of ['a', 'b', 'c', 'd', 'e', 'd']) u.add(k);
  assert.ok(u.get('d') <= 2 && u.get('a') + u.get('b') + u.get('c') + u.get('d') + u.get('e') <= 6);
});

test('Evicting: the oldest entries go past the cap, each reported once', () => {
  const e = new Evicting<number>(3);
  const gone: string[] = [];
  e.onEvict = (k) => gone.push(k);
  for (const k of ['a', 'b', 'c', 'a', 'd', 'e']) e.set(k, 1);
  assert.deepEqual([...e.map.keys()], ['c', 'd', 'e']);
  assert.deepEqual(gone, ['a', 'b']);
  assert.equal(e.evicted, 2);
});

test('Histogram: buckets, quantiles as bucket bounds, values out of range ignored', () => {
  const h = new Histogram([10, 100]);
  for (const v of [1, 5, 50, 500, -1, NaN, Infinity]) h.add(v);
  assert.deepEqual(h.toJSON(), { count: 4, mean: 139, max: 500, p50: 10, p90: 500,
    buckets: [{ le: 10, count: 2 }, { le: 100, count: 1 }, { le: '+Inf', count: 1 }] });
});

test('Aggregator: 30,000 distinct rejected clients stay within the caps; the top network is exact', () => {
  const agg = new Aggregator();
  const rec = newRec();
  const line = (o: Record<string, unknown>): void => {
    const l = JSON.stringify({ time: 1_796_000_000_000, ...o });
    agg.line(parseJsonLine(l, rec), rec, l, 'json');
  };
  for (let i = 0; i < 30_000; i++) {
    const client = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    line({ event: 'CONNECT', client, port: i });
    line({ event: 'NOQUEUE', client, port: i, reply: '550 5.7.1 no', reason: 'dnsbl' });
    if (i % 3 === 0) line({ event: 'NOQUEUE', client: '192.0.2.1', port: i, reply: '550 5.7.1 no', reason: 'dnsbl' });
  }
  const s = agg.summary(5);
  assert.ok(agg.rejectClients.size <= 10_000 && agg.networks.size <= 10_000);
  assert.ok(agg.conns.map.size <= 100_000);
  assert.equal(s.rejects.approximate, true);
  assert.deepEqual(s.rejects.top_clients, { '192.0.2.1': 10_000, ...Object.fromEntries(Object.entries(s.rejects.top_clients).slice(1)) });
  assert.equal(Object.keys(s.rejects.top_clients).length, 5);
  assert.equal(s.rejects.lines, 40_000, 'totals stay exact');
  assert.equal(s.verdicts.rejected, 40_000);
});
