/*
 * scripts/fuzz.ts - the long fuzz run: `npm run fuzz -- [options]`
 * (node dist/scripts/fuzz.js), outside the normal test run.
 *
 * Exports: nothing; a program. For each target of test/fuzz/targets.ts, one
 * after the other: --cases generated inputs (default 1,000,000, or
 * FUZZ_CASES), timing each case, then the linear-time check of its worst-case
 * shapes (input 10 times longer must take at most 20 times as long).
 *   --cases N        cases per target (env FUZZ_CASES; default 1000000)
 *   --only a,b       these targets only (names as in the report)
 *   --seed S         fast-check seed (default: from the clock, printed)
 *   --results FILE   JSON results merged by target (default bench/results/fuzz.json);
 *                    the Markdown summary is written next to it (fuzz.md)
 *   --no-linear      skip the linear-time checks
 * Exit 1 when a property failed or a shape grew faster than 20x for 10x input.
 * A run of one target (--only) updates its row and keeps the others'.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { TARGETS } from '../test/fuzz/targets.js';
import { linearCheck, runTarget, type LinearResult, type RunStats } from '../test/fuzz/harness.js';

/** 10 times the input may take at most this many times as long. */
const MAX_RATIO = 20;

interface Row extends RunStats {
  finished: string;
  node: string;
  linear: LinearResult[];
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(3)} ms`;
}

function markdown(rows: Row[], machine: string): string {
  const md = [
    '# Fuzzing the network parsers',
    '',
    'Written by `scripts/fuzz.ts` (`npm run fuzz`; targets in `test/fuzz/`) from `fuzz.json`. Each target ran alone, one after the other,',
    'under `nice -n 10` on a 2-core machine shared with other work: wall times and the slowest case include that contention.',
    `Machine: ${machine}.`,
    '',
    '"slowest" is the slowest single case as it ran (a GC pause or a preemption lands in some case); "re-timed" is that same input run',
    'again, min of 5: what the input itself costs. The linear-time check times each worst-case shape at n and 10 n (batches of',
    `at least 10 ms, small and large interleaved, min of 7 each; the best of up to 3 attempts): the ratio is about 10 when linear,`,
    `about 100 when quadratic, and must stay under ${MAX_RATIO}.`,
    '',
    '| target | cases | failures | slowest case | re-timed | wall time | seed | finished |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    md.push(`| ${r.name} | ${r.cases.toLocaleString('en-US')} | ${r.failures} | ${fmtMs(r.slowestMs)} | ${fmtMs(r.slowestRetimedMs)} | ${fmtMs(r.wallMs)} | ${r.seed} | ${r.finished} |`);
  }
  md.push('', '## Linear time', '', '| target | shape | n | time at n | time at 10 n | ratio |', '|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    for (const l of r.linear) md.push(`| ${r.name} | ${l.shape} | ${l.n.toLocaleString('en-US')} | ${fmtMs(l.smallMs)} | ${fmtMs(l.largeMs)} | ${l.ratio.toFixed(1)} |`);
  }
  md.push('', '## What each target drives', '');
  for (const t of TARGETS) md.push(`- **${t.name}**: ${t.what}`);
  md.push('', '## Slowest inputs', '');
  for (const r of rows) md.push(`- **${r.name}** (${fmtMs(r.slowestMs)}): \`${r.slowestInput.replace(/`/g, "'").slice(0, 300)}\``);
  const failed = rows.filter((r) => r.failures > 0);
  if (failed.length > 0) {
    md.push('', '## Failures', '');
    for (const r of failed) md.push(`- **${r.name}**: \`${(r.counterexample ?? '').replace(/`/g, "'")}\``, '', '```', r.error ?? '', '```', '');
  }
  return `${md.join('\n')}\n`;
}

function main(): number {
  const { values: v } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      cases: { type: 'string' }, only: { type: 'string' }, seed: { type: 'string' },
      results: { type: 'string' }, 'no-linear': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help === true) {
    process.stdout.write('usage: npm run fuzz -- [--cases N] [--only a,b] [--seed S] [--results FILE] [--no-linear]\n');
    return 0;
  }
  const casesText = v.cases ?? process.env['FUZZ_CASES'] ?? '1000000';
  const cases = Number(casesText);
  if (!Number.isSafeInteger(cases) || cases < 1) throw new Error(`--cases / FUZZ_CASES: want a positive integer, got "${casesText}"`);
  const names = TARGETS.map((t) => t.name);
  const only = v.only === undefined ? names : v.only.split(',');
  const unknown = only.filter((n) => !names.includes(n));
  if (unknown.length > 0) throw new Error(`--only: unknown target ${unknown.join(', ')}; want ${names.join(', ')}`);
  const seed = v.seed === undefined ? Date.now() % 2 ** 31 : Number(v.seed);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed: want an integer, got "${v.seed}"`);
  const file = v.results ?? 'bench/results/fuzz.json';
  const prev: Row[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[] }).rows : [];
  const rows = new Map(prev.map((r) => [r.name, r]));
  let bad = 0;
  for (const t of TARGETS) {
    if (!only.includes(t.name)) continue;
    process.stderr.write(`[fuzz] ${t.name}: ${cases.toLocaleString('en-US')} cases, seed ${seed}\n`);
    const st = runTarget(t, cases, seed, (done) => process.stderr.write(`[fuzz] ${t.name}: ${done.toLocaleString('en-US')} cases\n`));
    // Best of up to 3 attempts: on a shared machine one attempt can be stretched by neighbours;
    // a quadratic shape gives about 100 in every attempt.
    const linear = v['no-linear'] === true ? [] : t.linear.map((s) => {
      let best = linearCheck(s);
      for (let i = 1; i < 3 && best.ratio >= MAX_RATIO; i++) {
        const again = linearCheck(s);
        if (again.ratio < best.ratio) best = again;
      }
      return best;
    });
    const row: Row = { ...st, finished: new Date().toISOString(), node: process.version, linear };
    rows.set(t.name, row);
    const slow = linear.filter((l) => l.ratio > MAX_RATIO);
    if (st.failures > 0 || slow.length > 0) bad++;
    process.stdout.write(`${t.name}: ${st.cases.toLocaleString('en-US')} cases, ${st.failures} failures, slowest ${fmtMs(st.slowestMs)} (re-timed ${fmtMs(st.slowestRetimedMs)}), wall ${fmtMs(st.wallMs)}\n`);
    for (const l of linear) process.stdout.write(`  linear: ${l.shape}: n ${l.n} ${fmtMs(l.smallMs)} -> 10n ${fmtMs(l.largeMs)}: x${l.ratio.toFixed(1)}${l.ratio > MAX_RATIO ? '  TOO SLOW' : ''}\n`);
    if (st.failures > 0) process.stdout.write(`  FAILED on ${st.counterexample}\n${st.error}\n`);
    // Written after each target: a long run that is stopped keeps what it finished.
    const ordered = names.map((n) => rows.get(n)).filter((r): r is Row => r !== undefined);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify({ tool: 'smtpscreen scripts/fuzz.ts', rows: ordered }, null, 2)}\n`);
    const cpu = os.cpus();
    writeFileSync(join(dirname(file), 'fuzz.md'), markdown(ordered, `${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, node ${process.version}`));
  }
  return bad === 0 ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  process.stderr.write(`fuzz: ${(e as Error).message}\n`);
  process.exitCode = 2;
}
