/*
 * bench/micro/run.ts - runs every bench/micro/*.bench.js with tinybench.
 *
 * Each *.bench.ts exports `default function (bench: Bench): void | Promise<void>`
 * that adds its tasks. `npm run bench -- NAME` runs only files whose name contains NAME.
 * Prints ops/s, mean and p99 per task; `--json FILE` also writes the table as JSON.
 */
import { Bench } from 'tinybench';
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
const filters = args.filter((a, i) => !a.startsWith('--') && (jsonAt < 0 || i !== jsonAt + 1));

const files = readdirSync(here).filter((f) => f.endsWith('.bench.js'))
  .filter((f) => filters.length === 0 || filters.some((n) => f.includes(n))).sort();

const rows: Array<Record<string, string | number>> = [];
for (const f of files) {
  const bench = new Bench({ time: 500, warmupTime: 100 });
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: (b: Bench) => void | Promise<void> };
  await mod.default(bench);
  await bench.run();
  for (const t of bench.tasks) {
    const r = t.result as unknown as { throughput?: { mean: number }; latency?: { mean: number; p99: number } } | undefined;
    if (!r || !r.latency || !r.throughput) continue;
    rows.push({
      file: f.replace('.bench.js', ''),
      task: t.name,
      'ops/s': Math.round(r.throughput.mean),
      'mean µs': +(r.latency.mean * 1000).toFixed(3),
      'p99 µs': +(r.latency.p99 * 1000).toFixed(3),
    });
  }
}
console.table(rows);
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ node: process.version, date: new Date().toISOString(), rows }, null, 2));
