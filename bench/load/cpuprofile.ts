/*
 * bench/load/cpuprofile.ts - what a V8 CPU profile spent its time on: the
 * evidence behind "what limits it" in the report.
 *
 * Exports: summarize(profile, top).
 * Usage: node dist/bench/load/cpuprofile.js FILE.cpuprofile [TOP]
 * Get a profile of the screener under load with
 *   npm run bench:load -- --scenario S --keep --server-node-args=--cpu-prof
 * (the profile is written into the kept temp dir when the screener exits).
 * Prints the share of sampled time by self time per function (with its
 * file:line) and the idle share ("(idle)"), busy time only in the shares.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface Summary {
  wallMs: number;
  idleMs: number;
  busyMs: number;
  top: Array<{ fn: string; ms: number; pctBusy: number }>;
}

export function summarize(p: Profile, top = 15): Summary {
  const byId = new Map<number, Node>();
  for (const n of p.nodes) byId.set(n.id, n);
  const self = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000; // the delta after a sample is the time it stands for
    const n = byId.get(p.samples[i] as number);
    if (n === undefined) continue;
    total += dt;
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const key = cf.url === '' ? cf.functionName || '(anonymous)' : `${cf.functionName || '(anonymous)'} ${basename(cf.url)}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const busy = total - idle;
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([fn, ms]) => ({ fn, ms: Math.round(ms), pctBusy: busy > 0 ? Math.round((1000 * ms) / busy) / 10 : 0 }));
  return { wallMs: Math.round(total), idleMs: Math.round(idle), busyMs: Math.round(busy), top: rows };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/load/cpuprofile.js FILE.cpuprofile [TOP]\n');
    process.exit(1);
  }
  const s = summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 15));
  process.stdout.write(`wall ${s.wallMs} ms, idle ${s.idleMs} ms, busy ${s.busyMs} ms\n`);
  for (const r of s.top) process.stdout.write(`${String(r.pctBusy).padStart(5)} %  ${String(r.ms).padStart(7)} ms  ${r.fn}\n`);
}
