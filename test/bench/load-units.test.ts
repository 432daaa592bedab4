/*
 * test/bench/load-units.test.ts - the pure parts of the load generator:
 * source addresses, percentiles, option parsing, the soak's plateau test and
 * its incremental reading of the screener's --trace-gc lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sourceAddress } from '../../bench/load/protocol.js';
import { percentiles } from '../../bench/load/proc.js';
import { parseOptions } from '../../bench/load/options.js';
import { interleave } from '../../bench/load/worker.js';
import { lineChart } from '../../bench/load/report.js';
import { heapFollower, plateau } from '../../bench/load/soak.js';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

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

test('parseOptions: the soak is asked for by name, 30 minutes and 10 s samples by default, 100/s', () => {
  assert.ok(!parseOptions(['--scenario', 'all']).scenarios.includes('soak'));
  const s = parseOptions(['--scenario', 'soak']);
  assert.deepEqual(s.scenarios, ['soak']);
  assert.equal(s.soakMs, 30 * 60_000);
  assert.equal(s.sampleMs, 10_000);
  assert.equal(s.rate, 100);
  assert.equal(parseOptions(['--scenario', 'mix']).rate, 1000);
  const t = parseOptions(['--scenario', 'soak', '--soak-for', '20s', '--sample-every', '2s', '--rate', '20']);
  assert.equal(t.soakMs, 20_000);
  assert.equal(t.sampleMs, 2000);
  assert.equal(t.rate, 20);
  assert.throws(() => parseOptions(['--soak-for', '7h']), /--soak-for/);
  assert.throws(() => parseOptions(['--soak-for', 'long']), /--soak-for/);
  assert.throws(() => parseOptions(['--sample-every', '100ms']), /--sample-every/);
});

test('plateau: the last quarter against the quarter before it', () => {
  assert.equal(plateau([1, 2, 3]), null, 'too short to say');
  assert.deepEqual(plateau([10, 20, 30, 40, 50, 50, 50, 50]), { plateau: true, growth: 0 });
  const rising = plateau([10, 20, 30, 40, 50, 60, 70, 80]);
  assert.equal(rising?.plateau, false);
  assert.equal(rising?.growth, 0.3636); // mean of [70, 80] over mean of [50, 60]: 75 / 55 - 1
  assert.equal(plateau([100, 100, 100, 100, 100, 100, 100, 104])?.plateau, true, '2 % under the 5 % tolerance');
  assert.equal(plateau([100, 100, 100, 100, 100, 100, 100, 104], 0.01)?.plateau, false);
});

test('heapFollower: reads only what the log gained, keeps the last GC and the last full GC', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'heap-follow-'));
  try {
    const file = join(dir, 'screener.log');
    writeFileSync(file, '{"level":40,"msg":"x"}\n[123:0x5f00]   100 ms: Scavenge 4.1 (5.0) -> 3.2 (6.0) MB, 0.5 / 0.0 ms  (average mu = 1.000) allocation failure;\n');
    const read = heapFollower(file);
    assert.deepEqual(read(), { heap: 3.2, full: null });
    // A line written in two pieces is taken once it is whole.
    appendFileSync(file, '[123:0x5f00]   900 ms: Mark-Compact 30.5 (40.0) -> 21.7 (39.0) MB, 5.0 / 0.0 ms');
    assert.deepEqual(read(), { heap: 3.2, full: null });
    appendFileSync(file, '  (average mu = 0.9) finalize;\n[123:0x5f00]   950 ms: Scavenge 25.0 (39.0) -> 22.4 (39.0) MB, 0.4 / 0.0 ms  task;\n');
    assert.deepEqual(read(), { heap: 22.4, full: 21.7 });
    assert.deepEqual(heapFollower(join(dir, 'gone.log'))(), { heap: null, full: null });
    assert.deepEqual(heapFollower(null)(), { heap: null, full: null });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
