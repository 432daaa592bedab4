/*
 * bench/stats/throughput.ts - `smtpscreen stats` over a large generated log: lines/s and peak RSS.
 *
 *   npm run bench:stats -- [--lines N] [--format json|postscreen] [--clients N] [--keep FILE]
 * Writes a synthetic day (bench/stats/gen.ts; default 1,000,000 lines,
 * 200,000 client addresses) to a temp file, then runs the built CLI
 * (`node dist/src/cli.js stats --json FILE`) as a child three times and
 * prints the median wall time, lines/s, the median CPU time (user + system)
 * with lines per CPU-second (the figure that holds on a busy machine), and
 * the peak RSS: the child reports its own process.resourceUsage() at exit
 * through a tiny --require'd reporter.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDay } from './gen.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? def) : def;
};
const lines = Number(opt('lines', '1000000'));
const format = opt('format', 'json') as 'json' | 'postscreen';
const clients = Number(opt('clients', '200000'));
const keep = opt('keep', '');

const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-bench-'));
const file = keep !== '' ? keep : path.join(dir, `day.${format === 'json' ? 'ndjson' : 'log'}`);
const written = await writeDay(file, lines, { format, clients });
const reporter = path.join(dir, 'rss.cjs');
// Peak RSS of the stats process itself, printed to stderr at exit.
writeFileSync(reporter, "process.on('exit',()=>{const u=process.resourceUsage();process.stderr.write('MAXRSS '+u.maxRSS+' CPU '+(u.userCPUTime+u.systemCPUTime)+'\\n')});\n");
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const runs: Array<{ ms: number; rssKiB: number; cpuMs: number }> = [];
for (let i = 0; i < 3; i++) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--require', reporter, cli, 'stats', '--json', file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`stats exited ${r.status}: ${r.stderr}`);
  const s = JSON.parse(r.stdout) as { input: { lines: number; malformed: number } };
  if (s.input.lines !== written || s.input.malformed !== 0) throw new Error(`counted ${s.input.lines} lines, ${s.input.malformed} malformed`);
  runs.push({ ms, rssKiB: Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1]), cpuMs: Number(/CPU (\d+)/.exec(r.stderr)?.[1]) / 1000 });
}
runs.sort((a, b) => a.ms - b.ms);
const mid = runs[1] as { ms: number; rssKiB: number; cpuMs: number };
const cpu = runs.map((r) => r.cpuMs).sort((a, b) => a - b)[1] as number;
const mb = statSync(file).size / 1e6;
console.log(JSON.stringify({ format, lines: written, clients, file_mb: Math.round(mb), median_s: +(mid.ms / 1000).toFixed(2),
  lines_per_s: Math.round(written / (mid.ms / 1000)), median_cpu_s: +(cpu / 1000).toFixed(2), lines_per_cpu_s: Math.round(written / (cpu / 1000)), mb_per_s: +(mb / (mid.ms / 1000)).toFixed(1),
  peak_rss_mb: Math.round(Math.max(...runs.map((r) => r.rssKiB)) / 1024), runs_s: runs.map((r) => +(r.ms / 1000).toFixed(2)) }));
if (keep === '') rmSync(dir, { recursive: true, force: true });
