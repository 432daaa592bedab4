/*
 * scripts/mutate.ts - mutation testing of the code that decides who gets in:
 * `npm run mutate [-- GROUP|FILE ...]` (node dist/scripts/mutate.js).
 *
 * Exports: GROUPS (the table below); otherwise a program.
 * node:test has no StrykerJS runner, so each group is one Stryker run with
 * the command runner: the TS sources are mutated (all mutants at once,
 * switched by __STRYKER_ACTIVE_MUTANT__), built once with tsc in the
 * sandbox, and each mutant runs only the unit tests of its module, in one
 * process that stops at the first failure (scripts/mutant-tests.ts). Groups
 * run one after the other with concurrency 1 (a shared 2-core machine).
 * Then one table over every file, each from the newest report that measured
 * it (a group's run, or a run of one file; `--summary`: the table only): per file, killed / timeout / survived / no coverage /
 * listed equivalent, the raw score and the score with the mutants listed in
 * test/mutation-equivalents.md left out (each line there: `- ``KEY`` why`, KEY
 * as the survivors list prints it: `file Mutator -> "replacement" @ "the
 * mutated source line, trimmed"`, with ` #2`, ` #3` for a repeat of the same
 * key in a file; no line number, so code moving up or down keeps its keys).
 * Survivors not listed go to reports/mutation/survivors.txt;
 * the table to docs/mutation-score.md (a full run only; committed), each group's
 * results to reports/mutation/GROUP.json. Exit 1 when a survivor is unlisted.
 *   GROUP ...  only these groups (names below); FILE: the groups mutating it, that file only
 *   --list     print the groups and exit
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Group {
  readonly name: string;
  readonly mutate: readonly string[];
  /** Compiled test files (dist/test/...) that each mutant of this group runs. */
  readonly tests: readonly string[];
}

const T = (...f: string[]): string[] => f.map((x) => `dist/test/${x}.test.js`);

export const GROUPS: readonly Group[] = [
  {
    name: 'verdict',
    mutate: ['src/session/verdict.ts', 'src/session/conclude.ts', 'src/session/test-state.ts', 'src/session/machine.ts', 'src/session/deep.ts'],
    tests: T('session/verdict', 'session/verdict-table', 'session/conclude', 'shadow/verdict-shadow', 'session/machine', 'session/machine-paths', 'session/policy', 'session/shared-tier', 'session/fd-accounting'),
  },
  { name: 'access', mutate: ['src/checks/access.ts'], tests: T('checks/access') },
  { name: 'dnsbl', mutate: ['src/checks/dnsbl.ts', 'src/checks/dnsbl-site.ts'], tests: T('checks/dnsbl', 'checks/dnsbl-health') },
  { name: 'greylist', mutate: ['src/checks/greylist.ts', 'src/checks/pregreet.ts', 'src/checks/check.ts', 'src/checks/tests.ts'], tests: T('checks/greylist', 'checks/pregreet', 'session/verdict', 'session/verdict-table') },
  { name: 'deep', mutate: ['src/checks/deep.ts', 'src/checks/pipelining.ts', 'src/checks/bare-newline.ts', 'src/checks/non-smtp.ts'], tests: T('checks/non-smtp', 'checks/deep-parser') },
  { name: 'cache', mutate: ['src/cache/store.ts', 'src/cache/memory.ts'], tests: T('cache/store', 'cache/memory', 'session/verdict') },
  { name: 'cidr', mutate: ['src/net/cidr.ts'], tests: T('net/cidr') },
  { name: 'proxy', mutate: ['src/net/proxy-protocol.ts'], tests: T('net/proxy-protocol') },
  { name: 'smtp', mutate: ['src/smtp/line-reader.ts', 'src/smtp/dummy-engine.ts'], tests: T('smtp/line-reader', 'smtp/dummy-engine') },
];

interface Result {
  id: string;
  fileName: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}

const OUT = 'reports/mutation';
/** The test command of a mutant: its group's test files in one process, stopping at the first failure. */
const RUNNER = './dist/scripts/mutant-tests.js';
const EQUIV = 'test/mutation-equivalents.md';

/** The listed equivalents: lines `- ``src/x.ts Mutator -> "r" @ "line"`` why`. */
export function equivalents(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^- ``(.+?)``(?: |$)/gm)) out.add(m[1] as string);
  return out;
}

/**
 * mutantKeys - the key of each mutant of one file (same order): the file, the
 * mutator, the replacement and the mutated line's text, trimmed; a repeat of
 * the same key in the file (counted in source order) gets ` #2`, ` #3`.
 */
export function mutantKeys(file: string, source: string, mutants: readonly ReportMutant[]): string[] {
  const lines = source.split('\n');
  const order = mutants.map((m, i) => i).sort((a, b) => {
    const x = (mutants[a] as ReportMutant).location.start;
    const y = (mutants[b] as ReportMutant).location.start;
    return x.line - y.line || x.column - y.column;
  });
  const seen = new Map<string, number>();
  const keys: string[] = new Array<string>(mutants.length);
  for (const i of order) {
    const m = mutants[i] as ReportMutant;
    const text = (lines[m.location.start.line - 1] ?? '').trim();
    const base = `${file} ${m.mutatorName} -> ${JSON.stringify(m.replacement ?? '')} @ ${JSON.stringify(text)}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    keys[i] = n === 1 ? base : `${base} #${n}`;
  }
  return keys;
}

async function runGroup(g: Group, only: readonly string[] | null): Promise<Result[]> {
  const { Stryker } = await import('@stryker-mutator/core');
  const mutate = only === null ? [...g.mutate] : [...only];
  const stryker = new Stryker({
    mutate,
    testRunner: 'command',
    commandRunner: { command: `node --test-reporter=${RUNNER} ${RUNNER} ${g.tests.filter((t) => existsSync(t.replace(/^dist\//, '').replace(/\.js$/, '.ts'))).join(' ')}` },
    buildCommand: `node ${join(process.cwd(), 'node_modules/typescript/bin/tsc')} -p tsconfig.mutate.json`,
    coverageAnalysis: 'off',
    concurrency: 1,
    timeoutMS: 10_000,
    ignorePatterns: ['dist', 'reports', 'bench/results', '.stryker-tmp'],
    tempDirName: '.stryker-tmp',
    cleanTempDir: true,
    reporters: ['json', 'progress-append-only'],
    jsonReporter: { fileName: join(OUT, `${g.name}${only === null ? '' : `--${only.map((f) => basename(f, '.ts')).join('-')}`}.json`) },
    logLevel: 'warn' as never,
    // Each group is one run of its own: no run leaves a report for another to read.
    incremental: false,
  });
  const results = (await stryker.runMutationTest()) as unknown as Result[];
  return results;
}

interface Row { file: string; killed: number; timeout: number; survived: number; noCov: number; errors: number; equiv: number }

function table(rows: Row[]): string {
  const pct = (a: number, b: number): string => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)} %`);
  const lines = ['| file | mutants | killed | timeout | survived | no cov. | listed equiv. | score | score w/o equiv. |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|'];
  const sum: Row = { file: '**all**', killed: 0, timeout: 0, survived: 0, noCov: 0, errors: 0, equiv: 0 };
  for (const r of [...rows, sum]) {
    if (r !== sum) for (const k of ['killed', 'timeout', 'survived', 'noCov', 'errors', 'equiv'] as const) sum[k] += r[k];
    const detected = r.killed + r.timeout;
    const valid = detected + r.survived + r.noCov;
    lines.push(`| ${r.file} | ${valid} | ${r.killed} | ${r.timeout} | ${r.survived} | ${r.noCov} | ${r.equiv} | ${pct(detected, valid)} | ${pct(detected, valid - r.equiv)} |`);
  }
  return lines.join('\n');
}

export interface ReportMutant {
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}

/** Per file, the source and mutants of the newest report that has it (reports/mutation/*.json: each group's last run). */
function latestReports(): Map<string, { at: number; source: string; mutants: ReportMutant[] }> {
  const out = new Map<string, { at: number; source: string; mutants: ReportMutant[] }>();
  if (!existsSync(OUT)) return out;
  for (const name of readdirSync(OUT).filter((n) => n.endsWith('.json'))) {
    const path = join(OUT, name);
    const at = statSync(path).mtimeMs;
    const rep = JSON.parse(readFileSync(path, 'utf8')) as { files: Record<string, { source: string; mutants: ReportMutant[] }>; config?: { mutate?: string[] } };
    // A file the run mutated that Stryker found nothing to mutate in (src/checks/tests.ts: constants
    // only) is absent from its report: measured, with no mutant, not "not measured yet".
    const files: Array<[string, { source: string; mutants: ReportMutant[] }]> = Object.entries(rep.files);
    for (const m of rep.config?.mutate ?? []) if (!files.some(([f]) => f.endsWith(m))) files.push([m, { source: '', mutants: [] }]);
    for (const [file, f] of files) {
      const key = file.replace(/^.*?(src\/)/, '$1');
      const had = out.get(key);
      if (had === undefined || had.at < at) out.set(key, { at, source: f.source, mutants: f.mutants });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const g of GROUPS) console.log(`${g.name}: ${g.mutate.join(' ')}\n    tests: ${g.tests.join(' ')}`);
    return;
  }
  const files = args.filter((a) => a.endsWith('.ts'));
  const names = args.filter((a) => !a.endsWith('.ts') && a !== '--summary');
  for (const n of names) if (!GROUPS.some((g) => g.name === n)) throw new Error(`mutate: no group "${n}" (groups: ${GROUPS.map((g) => g.name).join(', ')})`);
  for (const f of files) if (!GROUPS.some((g) => g.mutate.includes(f))) throw new Error(`mutate: no group mutates "${f}" (see --list)`);
  const groups = args.includes('--summary') ? [] : GROUPS.filter((g) => (args.length === 0) || names.includes(g.name) || g.mutate.some((f) => files.includes(f)));
  mkdirSync(OUT, { recursive: true });
  const started = Date.now();
  for (const g of groups) {
    const t0 = Date.now();
    const only = files.length > 0 ? files.filter((f) => g.mutate.includes(f)) : null;
    const results = await runGroup(g, only);
    console.log(`mutate: group ${g.name}${only === null ? '' : ` (${only.join(' ')})`}: ${results.length} mutants in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  // The table: every file of the groups, from the newest report that measured it.
  const eq = equivalents(existsSync(EQUIV) ? readFileSync(EQUIV, 'utf8') : '');
  const reports = latestReports();
  const rows: Row[] = [];
  const survivors: string[] = [];
  const seenEquiv = new Set<string>();
  const missing: string[] = [];
  for (const file of GROUPS.flatMap((g) => g.mutate)) {
    const rep = reports.get(file);
    if (rep === undefined) {
      missing.push(file);
      continue;
    }
    const row: Row = { file, killed: 0, timeout: 0, survived: 0, noCov: 0, errors: 0, equiv: 0 };
    const keys = mutantKeys(file, rep.source, rep.mutants);
    for (const [i, m] of rep.mutants.entries()) {
      const key = keys[i] as string;
      const where = `${m.location.start.line}:${m.location.start.column}`;
      switch (m.status) {
        case 'Killed': row.killed++; break;
        case 'Timeout': row.timeout++; break;
        case 'NoCoverage':
        case 'Survived':
          if (m.status === 'Survived') row.survived++; else row.noCov++;
          if (eq.has(key)) {
            row.equiv++;
            seenEquiv.add(key);
          } else survivors.push(`- \`\`${key}\`\` (${where})`);
          break;
        default: row.errors++;
      }
    }
    rows.push(row);
  }
  const stale = missing.length === 0 ? [...eq].filter((k) => !seenEquiv.has(k)) : [];
  const out = [
    `Mutation score (${new Date().toISOString().slice(0, 16)}Z${groups.length > 0 ? `, this run ${((Date.now() - started) / 60000).toFixed(1)} min: ${groups.map((g) => g.name).join(', ')}` : ''})`,
    '',
    table(rows),
    '',
    ...(missing.length > 0 ? [`Not measured yet: ${missing.join(', ')}`, ''] : []),
    `Survivors not listed in ${EQUIV}: ${survivors.length}`,
    ...(stale.length > 0 ? [`Listed equivalents no mutant matched (the code moved?): ${stale.length}`, ...stale.map((s) => `  ${s}`)] : []),
  ].join('\n');
  console.log(`\n${out}`);
  writeFileSync(join(OUT, 'summary.md'), `${out}\n`);
  writeFileSync(join(OUT, 'survivors.txt'), survivors.map((s) => `${s}\n`).join(''));
  if (survivors.length > 0) {
    console.log(`\n${survivors.join('\n')}`);
    process.exitCode = 1;
  }
}

// Run as a program only (tests import the key functions).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
