/*
 * test/bench/load-units.test.ts - the pure parts of the load generator:
 * source addresses, percentiles, option parsing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sourceAddress } from '../../bench/load/protocol.js';
import { percentiles } from '../../bench/load/proc.js';
import { parseOptions } from '../../bench/load/options.js';
import { interleave } from '../../bench/load/worker.js';
import { lineChart } from '../../bench/load/report.js';

test('sourceAddress: 254 clients per /24, never .0 or .255', () => {
  const table: ReadonlyArray<{ base: [number, number]; i: number; want: string }> = [
    { base: [10, 0], i: 0, want: '127.10.0.1' },
    { base: [10, 0], i: 253, want: '127.10.0.254' },
    { base: [10, 0], i: 254, want: '127.10.1.1' },
    { base: [10, 0], i: 254 * 256, want: '127.11.0.1' },
    { base: [110, 0], i: 199, want: '127.110.0.200' },
    { base: [10, 255], i: 254, want: '127.11.0.1' },
  ];
  for (const { base, i, want } of table) assert.equal(sourceAddress(base, i), want, `${base.join('.')} #${i}`);
  assert.throws(() => sourceAddress([255, 255], 254), RangeError);
});

test('percentiles: nearest rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  const p = percentiles(xs);
  assert.deepEqual({ n: p.n, min: p.min, p50: p.p50, p90: p.p90, p99: p.p99, max: p.max, mean: p.mean },
    { n: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
  assert.equal(percentiles([]).n, 0);
  assert.equal(percentiles([7]).p99, 7);
});

test('parseOptions: defaults per scenario and "all"', () => {
  const d = parseOptions([]);
  assert.deepEqual(d.scenarios, ['idle']);
  assert.equal(d.count, null);
  assert.equal(d.pending, 500);
  assert.equal(d.perWorker, 9000);
  assert.equal(d.logLevel, 'warn');
  assert.deepEqual(parseOptions(['--scenario', 'all']).scenarios, ['idle', 'pregreet', 'legit', 'listed', 'slowloris', 'throughput', 'mix', 'deep']);
  assert.deepEqual(parseOptions(['--scenario', 'listed,mix']).scenarios, ['listed', 'mix']);
  const t = parseOptions(['--size', '50M', '--sink', 'smtp', '--no-floor', '--command-time', '5s']);
  assert.equal(t.sizeBytes, 50 * 1048576);
  assert.equal(t.sink, 'smtp');
  assert.equal(t.floor, false);
  assert.equal(t.commandTimeMs, 5000);
  assert.equal(d.sink, 'raw');
  assert.equal(d.floor, true);
  const o = parseOptions(['--greet-wait', '300ms', '--target', '127.0.0.1:2525', '--server-node-args=--cpu-prof --trace-gc']);
  assert.equal(o.greetWaitMs, 300);
  assert.deepEqual(o.target, { host: '127.0.0.1', port: 2525 });
  assert.deepEqual(o.serverNodeArgs, ['--cpu-prof', '--trace-gc']);
  assert.throws(() => parseOptions(['--action', 'maybe']), /--action/);
});

test('interleave: smooth weighted round robin spreads every kind over the cycle', () => {
  const table: ReadonlyArray<{ weights: number[]; want: number[] }> = [
    { weights: [1], want: [0] },
    { weights: [1, 1], want: [0, 1] },
    { weights: [2, 3], want: [1, 0, 1, 0, 1] },
    { weights: [50, 50], want: Array.from({ length: 100 }, (_, i) => i % 2) },
    { weights: [0, 2], want: [1, 1] },
  ];
  for (const { weights, want } of table) assert.deepEqual(interleave(weights), want, weights.join(','));
  const mix = interleave([2, 3, 2, 1, 2]);
  assert.equal(mix.length, 10);
  for (const [k, w] of [2, 3, 2, 1, 2].entries()) assert.equal(mix.filter((x) => x === k).length, w, `kind ${k}`);
});

test('lineChart: one polyline per series, escaped labels', () => {
  const svg = lineChart({
    title: 'a < b', xLabel: 'x', yLabel: 'y',
    series: [{ name: 's1', points: [[0, 1], [10, 2]] }, { name: 's2', points: [[5, 3]], dashed: true }],
  });
  assert.ok(svg.startsWith('<svg'));
  assert.equal(svg.match(/<polyline/g)?.length, 2);
  assert.ok(svg.includes('a &lt; b'));
});
