/*
 * bench/load/dns-resolver.ts - our Resolver against Node's c-ares (dns.promises.Resolver), side
 * by side in one process, against a local rbldnsd serving an ip4set DNSBL zone.
 *
 * Usage: node dist/bench/load/dns-resolver.js [--count N] [--inflight N] [--runs N]
 *          [--sockets N] [--max-outstanding N] [--cache-max N] [--only ours|c-ares] [--skip-micro] [--out FILE]
 *
 * Starts rbldnsd itself (`rbldnsd -n ...` in the background, PID known) on a free loopback port,
 * from a zone written to a temporary directory: 127.0.0.2, 256 /24s (10.0.x.0/24) and 15 /16s.
 * Each run issues `count` A lookups of distinct names, half listed and half not, keeping
 * `inflight` lookups outstanding (one new lookup per completion), through a fresh client (empty
 * caches). Runs alternate the order of the two clients; figures are medians over `runs`.
 * Reported per client: lookups/s, latency p50/p99 (ms, from lookup() to its result), errors by
 * code, wrong answers (listed said unlisted or back), peak lookups in flight, and the CPU used by
 * this process and by rbldnsd during the run, and the garbage collector's part in the tail
 * (pauses seen by a PerformanceObserver; the share of the lookups at or over the p99 whose flight
 * overlapped a pause, against the share of all). JSON goes to bench/results/dns-resolver.json.
 * Profile with: node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/load/dns-resolver.js --only ours
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RESOLVER_DEFAULTS, Resolver, type ResolverStats } from '../../src/dns/resolver.js';
import { encodeQuery } from '../../src/dns/packet.js';
import { cpuPct, machineInfo, median, percentiles, round, sampleProc, type Percentiles, type ProcSample } from './proc.js';

type Outcome = 'listed' | 'unlisted' | string;
type Client = 'ours' | 'c-ares';

interface RunResult {
  client: Client;
  run: number;
  count: number;
  inflight: number;
  elapsedMs: number;
  lookupsPerSec: number;
  latencyMs: Percentiles;
  peakInFlight: number;
  listed: number;
  unlisted: number;
  wrong: number;
  errors: Record<string, number>;
  cpuSelfPct: number;
  cpuRbldnsdPct: number;
  resolverStats?: ResolverStats;
  gc: GcShare;
}

const ZONE = 'dnsbl.test';

interface Tune {
  sockets: number;
  maxOutstanding: number;
  /** The resolver's answer cache (--cache-max; default the resolver's): c-ares keeps none. */
  cacheMax?: number;
}

function nsPer(n: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return round(Number(process.hrtime.bigint() - t0) / n, 1);
}

/**
 * The costs behind the resolver's design choices, measured in this process:
 * - timers: setTimeout + clearTimeout per try (the alternative) against the resolver's sweep,
 *   timed per query in flight per tick with 10,000 lookups waiting on a silent socket;
 * - ID table: Map<number, Query> get/set/delete against a 65,536-slot array.
 */
async function microCosts(): Promise<Record<string, number>> {
  const N = 10000;
  const qs = Array.from({ length: N }, (_, i) => ({ id: i, timer: null as NodeJS.Timeout | null, hit: 0 }));
  const onTimeout = (q: { hit: number }): void => {
    q.hit++;
  };
  let setClear = 0;
  for (let k = 0; k < 5; k++) {
    setClear = nsPer(N * 20, () => {
      for (let r = 0; r < 20; r++) {
        for (const q of qs) q.timer = setTimeout(onTimeout, 1000, q);
        for (const q of qs) clearTimeout(q.timer ?? undefined);
      }
    });
  }
  // A bound UDP socket that never answers: 10,000 lookups stay in flight.
  const sink = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', () => resolve()));
  sink.setRecvBufferSize(1 << 20);
  const r = new Resolver({ servers: [{ host: '127.0.0.1', port: sink.address().port }], timeoutMs: 60000, deadlineMs: 60000, maxOutstanding: N, minOutstanding: N });
  const pending: Array<Promise<unknown>> = [];
  for (let i = 0; i < N; i++) pending.push(r.lookup(nameOf(addressOf(i)), 'A'));
  let sweep = 0;
  for (let k = 0; k < 5; k++) sweep = nsPer(N * 100, () => { for (let t = 0; t < 100; t++) r.sweep(); });
  await r.close();
  await Promise.all(pending);
  sink.close();
  const m = new Map<number, object>();
  const arr: Array<object | undefined> = new Array<object | undefined>(65536);
  const ids = new Uint16Array(N);
  for (let i = 0; i < N; i++) ids[i] = (i * 40503) & 0xffff;
  let mapNs = 0, arrNs = 0, x = 0;
  for (let k = 0; k < 5; k++) {
    mapNs = nsPer(N * 50, () => {
      for (let t = 0; t < 50; t++) {
        for (let i = 0; i < N; i++) m.set(ids[i] as number, qs[i] as object);
        for (let i = 0; i < N; i++) if (m.get(ids[i] as number) !== undefined) x++;
        for (let i = 0; i < N; i++) m.delete(ids[i] as number);
      }
    });
    arrNs = nsPer(N * 50, () => {
      for (let t = 0; t < 50; t++) {
        for (let i = 0; i < N; i++) arr[ids[i] as number] = qs[i];
        for (let i = 0; i < N; i++) if (arr[ids[i] as number] !== undefined) x++;
        for (let i = 0; i < N; i++) arr[ids[i] as number] = undefined;
      }
    });
  }
  if (x < 0) process.stdout.write('');
  return {
    setTimeoutClearNsPerTry: setClear,
    sweepNsPerQueryPerTick: sweep,
    sweepMsPerTickAt10k: round((sweep * N) / 1e6, 3),
    idMapNsPerQuery: mapNs,
    idArrayNsPerQuery: arrNs,
  };
}

/** i-th test address: even i listed (127.0.0.2 listing aside), odd i not. */
function addressOf(i: number): string {
  const j = i >> 1;
  const second = 2 * (j >> 16) + (i & 1);
  return `10.${second}.${(j >> 8) & 255}.${j & 255}`;
}

function nameOf(addr: string): string {
  return `${addr.split('.').reverse().join('.')}.${ZONE}`;
}

function zoneText(): string {
  const lines = [
    `$SOA 300 ns.${ZONE} hostmaster.${ZONE} 1 3600 600 86400 300`,
    ':127.0.0.2:Listed, see http://dnsbl.test/lookup?$',
    '127.0.0.2',
  ];
  for (let x = 0; x < 256; x++) lines.push(`10.0.${x}.0/24`);
  for (let k = 1; k <= 15; k++) lines.push(`10.${2 * k}.0.0/16`);
  return `${lines.join('\n')}\n`;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** One A query for 2.0.0.127.<zone>; true when anything answers within ms. */
async function probe(port: number, ms: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      s.on('message', () => {
        clearTimeout(t);
        resolve(true);
      });
      s.on('error', () => {});
      s.send(encodeQuery(4242, `2.0.0.127.${ZONE}`, 1), port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

interface Rbldnsd {
  proc: ChildProcess;
  pid: number;
  port: number;
  dir: string;
  stderr: string[];
}

async function startRbldnsd(): Promise<Rbldnsd> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rbldnsd-bench-'));
  chmodSync(dir, 0o755); // rbldnsd drops to user rbldns and must read the zone
  mkdirSync(path.join(dir, 'z'));
  chmodSync(path.join(dir, 'z'), 0o755);
  writeFileSync(path.join(dir, 'z', 'zone.file'), zoneText(), { mode: 0o644 });
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    const stderr: string[] = [];
    const proc = spawn('rbldnsd', ['-n', '-q', '-u', 'rbldns', '-b', `127.0.0.1/${port}`, '-w', path.join(dir, 'z'), '-t', '300', '-c', '10', `${ZONE}:ip4set:zone.file`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.once('error', () => {});
    for (let i = 0; i < 50 && proc.exitCode === null; i++) {
      if (await probe(port, 100)) return { proc, pid: proc.pid ?? -1, port, dir, stderr };
    }
    if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, 'SIGTERM');
    await exited;
    process.stderr.write(`rbldnsd did not start on ${port}: ${stderr.join('')}\n`);
  }
  throw new Error('rbldnsd: could not start (is the Debian package rbldnsd installed?)');
}

async function stopRbldnsd(r: Rbldnsd): Promise<void> {
  if (r.proc.exitCode === null && r.proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => r.proc.once('exit', () => resolve()));
    process.kill(r.pid, 'SIGTERM');
    await exited;
  }
  rmSync(r.dir, { recursive: true, force: true });
}

/**
 * The tail and the collector: GC pauses during the run (count, total and longest pause, by
 * kind: 1 scavenge, 2 minor mark-compact, 4 mark-compact, 8 incremental marking, 16 weak
 * callbacks) and the share of the lookups at or over the run's p99 whose flight overlapped a
 * pause, against the share of all lookups that did.
 */
interface GcShare {
  pauses: number;
  pauseMs: number;
  longestMs: number;
  scavenges: number;
  markCompacts: number;
  tailOverlappingPct: number;
  allOverlappingPct: number;
}

function gcShare(gcs: Array<{ start: number; end: number; kind: number }>, began: Float64Array, lat: Float64Array, p99: number): GcShare {
  gcs.sort((a, b) => a.start - b.start);
  const overlaps = (i: number): boolean => {
    const s = began[i] as number, e = s + (lat[i] as number);
    // Binary search for the first pause ending after s.
    let lo = 0, hi = gcs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((gcs[mid] as { end: number }).end <= s) lo = mid + 1;
      else hi = mid;
    }
    return lo < gcs.length && (gcs[lo] as { start: number }).start < e;
  };
  let tail = 0, tailHit = 0, allHit = 0;
  for (let i = 0; i < lat.length; i++) {
    const hit = overlaps(i);
    if (hit) allHit++;
    if ((lat[i] as number) >= p99) {
      tail++;
      if (hit) tailHit++;
    }
  }
  let pauseMs = 0, longestMs = 0;
  for (const g of gcs) {
    pauseMs += g.end - g.start;
    longestMs = Math.max(longestMs, g.end - g.start);
  }
  return {
    pauses: gcs.length,
    pauseMs: round(pauseMs, 1),
    longestMs: round(longestMs, 2),
    scavenges: gcs.filter((g) => g.kind === 1).length,
    markCompacts: gcs.filter((g) => g.kind === 4).length,
    tailOverlappingPct: tail === 0 ? 0 : round((100 * tailHit) / tail, 1),
    allOverlappingPct: lat.length === 0 ? 0 : round((100 * allHit) / lat.length, 1),
  };
}

/** Keeps `inflight` lookups outstanding until `count` are done. */
function drive(lookup: (name: string) => Promise<Outcome>, names: string[], inflight: number): Promise<{ elapsedMs: number; lat: Float64Array; began: Float64Array; outcomes: Outcome[]; peak: number }> {
  return new Promise((resolve) => {
    const n = names.length;
    const lat = new Float64Array(n);
    const began = new Float64Array(n);
    const outcomes: Outcome[] = new Array<Outcome>(n);
    let next = 0, done = 0, active = 0, peak = 0;
    const t0 = performance.now();
    const launch = (): void => {
      while (active < inflight && next < n) {
        const i = next++;
        active++;
        if (active > peak) peak = active;
        const start = performance.now();
        began[i] = start;
        void lookup(names[i] as string).then((o) => {
          lat[i] = performance.now() - start;
          outcomes[i] = o;
          active--;
          if (++done === n) resolve({ elapsedMs: performance.now() - t0, lat, began, outcomes, peak });
          else launch();
        });
      }
    };
    launch();
  });
}

async function oneRun(client: Client, run: number, port: number, rbldnsdPid: number, count: number, inflight: number, tune: Tune): Promise<RunResult> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push(nameOf(addressOf(i)));
  let ours: Resolver | null = null;
  let lookup: (name: string) => Promise<Outcome>;
  if (client === 'ours') {
    const r = new Resolver({ servers: [{ host: '127.0.0.1', port }], ...tune });
    ours = r;
    lookup = (name) => r.lookup(name, 'A').then((res) => (res.status === 'ok' ? 'listed' : res.status === 'error' ? res.error : 'unlisted'));
  } else {
    // Same per-try timeout and tries as ours (1000 ms, 3).
    const r = new dns.promises.Resolver({ timeout: 1000, tries: 3 });
    r.setServers([`127.0.0.1:${port}`]);
    lookup = (name) => r.resolve4(name).then(
      () => 'listed',
      (e: NodeJS.ErrnoException) => (e.code === 'ENOTFOUND' ? 'unlisted' : String(e.code)),
    );
  }
  const a0 = sampleProc(process.pid) as ProcSample;
  const b0 = sampleProc(rbldnsdPid) as ProcSample;
  const gcs: Array<{ start: number; end: number; kind: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration, kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0 });
  });
  obs.observe({ entryTypes: ['gc'] });
  const d = await drive(lookup, names, inflight);
  await new Promise((r) => setImmediate(r)); // the observer's last entries
  obs.disconnect();
  const a1 = sampleProc(process.pid) as ProcSample;
  const b1 = sampleProc(rbldnsdPid) as ProcSample;
  let listed = 0, unlisted = 0, wrong = 0;
  const errors: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const o = d.outcomes[i] as Outcome;
    if (o === 'listed' || o === 'unlisted') {
      if (o === 'listed') listed++;
      else unlisted++;
      if ((o === 'listed') !== (i % 2 === 0)) wrong++;
    } else {
      errors[o] = (errors[o] ?? 0) + 1;
    }
  }
  const latencyMs = percentiles(Array.from(d.lat));
  const res: RunResult = {
    client, run, count, inflight,
    elapsedMs: round(d.elapsedMs, 1),
    lookupsPerSec: Math.round((count * 1000) / d.elapsedMs),
    latencyMs,
    peakInFlight: d.peak,
    listed, unlisted, wrong, errors,
    cpuSelfPct: round(cpuPct(a0, a1), 1),
    cpuRbldnsdPct: round(cpuPct(b0, b1), 1),
    gc: gcShare(gcs, d.began, d.lat, latencyMs.p99),
  };
  if (ours !== null) {
    res.resolverStats = ours.stats();
    await ours.close();
  }
  return res;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '100000' },
      inflight: { type: 'string', default: '10000' },
      runs: { type: 'string', default: '3' },
      sockets: { type: 'string', default: String(RESOLVER_DEFAULTS.sockets) },
      'max-outstanding': { type: 'string', default: String(RESOLVER_DEFAULTS.maxOutstanding) },
      'cache-max': { type: 'string' },
      'skip-micro': { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: 'bench/results/dns-resolver.json' },
    },
  });
  const count = Number(values.count);
  const inflight = Number(values.inflight);
  const runs = Number(values.runs);
  const tune: Tune = {
    sockets: Number(values.sockets), maxOutstanding: Number(values['max-outstanding']),
    ...(values['cache-max'] !== undefined ? { cacheMax: Number(values['cache-max']) } : {}),
  };
  const clients: Client[] = values.only === 'ours' ? ['ours'] : values.only === 'c-ares' ? ['c-ares'] : ['ours', 'c-ares'];
  const micro = values['skip-micro'] ? null : await microCosts();
  if (micro !== null) process.stdout.write(`micro: ${JSON.stringify(micro)}\n`);
  const rb = await startRbldnsd();
  const results: RunResult[] = [];
  try {
    // Warm-up (JIT, rbldnsd's pages): not recorded.
    for (const c of clients) await oneRun(c, 0, rb.port, rb.pid, Math.min(count, 5000), Math.min(inflight, 1000), tune);
    for (let run = 1; run <= runs; run++) {
      const order = run % 2 === 1 ? clients : [...clients].reverse();
      for (const c of order) {
        const r = await oneRun(c, run, rb.port, rb.pid, count, inflight, tune);
        results.push(r);
        const errs = Object.entries(r.errors).map(([k, v]) => `${k}=${v}`).join(',') || 'none';
        process.stdout.write(
          `run ${run} ${c.padEnd(6)} ${String(r.lookupsPerSec).padStart(7)} lookups/s  p50 ${r.latencyMs.p50} ms  p99 ${r.latencyMs.p99} ms  ` +
            `peak ${r.peakInFlight}  errors ${errs}  wrong ${r.wrong}  cpu self ${r.cpuSelfPct}% rbldnsd ${r.cpuRbldnsdPct}%` +
            `${r.resolverStats !== undefined ? `  timeouts ${r.resolverStats.timeouts}` : ''}` +
            `  gc ${r.gc.pauses} pauses ${r.gc.pauseMs} ms (longest ${r.gc.longestMs}, ${r.gc.scavenges} scavenges)` +
            `  p99 tail in a GC ${r.gc.tailOverlappingPct}% (all ${r.gc.allOverlappingPct}%)\n`,
        );
      }
    }
  } finally {
    await stopRbldnsd(rb);
  }
  const summary: Record<string, unknown> = {};
  for (const c of clients) {
    const rs = results.filter((r) => r.client === c);
    summary[c] = {
      lookupsPerSec: median(rs.map((r) => r.lookupsPerSec)),
      p50Ms: median(rs.map((r) => r.latencyMs.p50)),
      p99Ms: median(rs.map((r) => r.latencyMs.p99)),
      errors: median(rs.map((r) => Object.values(r.errors).reduce((a, b) => a + b, 0))),
      wrong: median(rs.map((r) => r.wrong)),
      peakInFlight: median(rs.map((r) => r.peakInFlight)),
      cpuSelfPct: median(rs.map((r) => r.cpuSelfPct)),
      cpuRbldnsdPct: median(rs.map((r) => r.cpuRbldnsdPct)),
      gcPauseMs: median(rs.map((r) => r.gc.pauseMs)),
      gcScavenges: median(rs.map((r) => r.gc.scavenges)),
      tailInGcPct: median(rs.map((r) => r.gc.tailOverlappingPct)),
      allInGcPct: median(rs.map((r) => r.gc.allOverlappingPct)),
    };
  }
  const out = {
    bench: 'dns-resolver',
    at: new Date().toISOString(),
    command: `node dist/bench/load/dns-resolver.js --count ${count} --inflight ${inflight} --runs ${runs} --sockets ${tune.sockets} --max-outstanding ${tune.maxOutstanding}${tune.cacheMax !== undefined ? ` --cache-max ${tune.cacheMax}` : ''}`,
    machine: machineInfo(),
    server: { program: 'rbldnsd', zone: `${ZONE}:ip4set`, entries: '127.0.0.2, 256 x /24, 15 x /16, $SOA' },
    config: { count, inflight, runs, ...tune, ours: 'Resolver: timeout 1000 ms, 3 tries, deadline 5000 ms', cares: 'dns.promises.Resolver { timeout: 1000, tries: 3 }' },
    summary,
    micro,
    runs: results,
  };
  mkdirSync(path.dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`medians: ${JSON.stringify(summary)}\nwrote ${values.out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
