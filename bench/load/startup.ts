/*
 * bench/load/startup.ts - RSS of a fresh screener process, once it listens.
 *
 *   npm run bench:startup -- [--runs N] [--cli PATH ...] [--out FILE]
 *
 * The screener is started as the other load scenarios start it (bench/load/server.ts:
 * one listener, the built-in sink as backend, everything else at its default: no DNSBL,
 * no admin listener, no policy service, no shared store), and its RSS is read from
 * /proc 1 s after the port listens (what start-up left behind; nothing has connected).
 * --runs N (default 5) fresh processes per build. --cli names a build's dist/src/cli.js
 * (repeatable; default this build's): with two, the runs alternate A B A B ... in one
 * sitting, so both builds see the same machine load. Prints one JSON line per build
 * (median and every run, kB).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CLI, startScreener, sleep } from './server.js';
import { machineInfo, median, sampleProc } from './proc.js';

const { values } = parseArgs({ options: { runs: { type: 'string' }, cli: { type: 'string', multiple: true }, out: { type: 'string' } } });
const runs = Number(values.runs ?? 5);
if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw new Error(`--runs: want 1..50; got "${values.runs}"`);
const clis = values.cli ?? [CLI];
const rss = new Map<string, { rssKb: number[]; anonKb: number[] }>(clis.map((c) => [c, { rssKb: [], anonKb: [] }]));

for (let i = 0; i < runs; i++) {
  for (const cli of clis) {
    const t = await startScreener({
      greetWaitMs: 6000, action: 'enforce', maxConnections: 1000, commandTimeMs: 300_000, logLevel: 'info',
      backend: null, nodeArgs: [], traceGc: false, keepFiles: false, cli,
    });
    try {
      await sleep(1000);
      const s = sampleProc(t.pid as number);
      if (s === null) throw new Error(`${cli}: the screener exited before its RSS was read`);
      rss.get(cli)?.rssKb.push(s.rssKb);
      rss.get(cli)?.anonKb.push(s.rssAnonKb);
    } finally {
      await t.stop();
    }
  }
}
const results = clis.map((cli) => {
  const r = rss.get(cli) ?? { rssKb: [], anonKb: [] };
  return { cli, runs, rss_median_kb: median(r.rssKb), rss_anon_median_kb: median(r.anonKb), rss_kb: r.rssKb, rss_anon_kb: r.anonKb };
});
for (const r of results) console.log(JSON.stringify(r));
if (values.out !== undefined) {
  writeFileSync(values.out, `${JSON.stringify({ bench: 'startup', at: new Date().toISOString(), machine: machineInfo(), results }, null, 2)}\n`);
}
