/*
 * bench/load/soak.ts - the soak: the mix scenario (idle, pregreet, listed,
 * slowloris, legit; bench/load/mix.ts) run round after round against one
 * screener for --soak-for (default 30 min), the server's open descriptors,
 * RSS and V8 heap sampled every --sample-every (default 10 s).
 *
 * Exports: soak(env), SoakSample, heapFollower(logFile), plateau(values).
 * Each round opens --count connections (default 2000) at --rate (default 100/s
 * for the soak), lets the slowloris zombies run into the command time limit,
 * closes the idle ones and waits for the server to give their descriptors
 * back; rounds stop when the next one would not end before the soak's end
 * (and at most MAX_ROUNDS). Source addresses advance by --count each round
 * and come back exactly every ADDRESS_WINDOW / count rounds (the listed row
 * stays inside 127.30.200.1.., the /16 served by the bench rbldnsd): after
 * that no new client is seen, so the screener's cache and the resolver's
 * cache stop growing, and memory that still climbs is a leak, not the caches
 * filling (a first run whose addresses drifted instead kept adding clients,
 * and its heap grew with them).
 * The heap is read from the screener's --trace-gc lines (heap used after the
 * last GC, and after the last full GC): no code in the screener for it.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Fleet, log, measure } from './fleet.js';
import { dnsblConfig, startBenchRbldnsd } from './listed.js';
import { MIX } from './mix.js';
import { countFds, cpuPct, percentiles, round, sampleProc, type ProcSample } from './proc.js';
import { sleep } from './server.js';
import { commonNotes, settle, targetFor, workersFor, type Env, type Figure, type ScenarioResult } from './scenarios.js';
import type { Rbldnsd } from '../../test/helpers/rbldnsd.js';

/** Addresses each plan row may use before wrapping: 127.30.200.1 .. 127.30.255.254 for the listed row. */
export const ADDRESS_WINDOW = 56 * 254;
/** A hard cap on rounds, whatever the duration. */
export const MAX_ROUNDS = 10_000;

export interface SoakSample {
  t_s: number;
  fds: number;
  rss_kb: number;
  /** Heap used after the last GC before the sample, MB (null before the first GC line). */
  heap_mb: number | null;
  /** Heap used after the last full (mark-compact) GC, MB. */
  heap_full_gc_mb: number | null;
  cpu_pct: number;
  round: number;
}

// "[pid:0x...]   1561 ms: Mark-Compact 83.8 (107.7) -> 51.4 (106.0) MB, ..." (same shape as server.ts gcEvents)
const GC_LINE = /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact|Mark-Compact \(reduce\))[^\d(]*[\d.]+ \([\d.]+\) -> ([\d.]+) \(/;

/**
 * heapFollower - reads the screener's log from where it stopped last time
 * (the log grows for 30 minutes: re-reading it whole each 10 s would cost
 * more than the sample) and returns the heap after the latest GC and full GC.
 */
export function heapFollower(logFile: string | null): () => { heap: number | null; full: number | null } {
  let offset = 0;
  let rest = '';
  let heap: number | null = null;
  let full: number | null = null;
  const buf = Buffer.alloc(1 << 16);
  return () => {
    if (logFile === null) return { heap, full };
    let fd: number;
    try {
      fd = openSync(logFile, 'r');
    } catch {
      return { heap, full };
    }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        offset += n;
        const lines = (rest + buf.toString('latin1', 0, n)).split('\n');
        rest = lines.pop() as string;
        for (const line of lines) {
          if (line[0] !== '[') continue;
          const m = GC_LINE.exec(line);
          if (m === null) continue;
          heap = Number(m[2]);
          if ((m[1] as string).startsWith('Mark-')) full = heap;
        }
      }
    } finally {
      closeSync(fd);
    }
    return { heap, full };
  };
}

/**
 * plateau - does a series level off? Compares the mean of its last quarter
 * with the mean of the quarter before it: growth under `tolerance` (share)
 * counts as a plateau. Fewer than 8 values: null (too short to say).
 */
export function plateau(values: readonly number[], tolerance = 0.05): { plateau: boolean; growth: number } | null {
  if (values.length < 8) return null;
  const q = Math.floor(values.length / 4);
  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const last = mean(values.slice(values.length - q));
  const prev = mean(values.slice(values.length - 2 * q, values.length - q));
  const growth = prev === 0 ? 0 : (last - prev) / prev;
  return { plateau: growth <= tolerance, growth: round(growth, 4) };
}

interface RoundRow {
  round: number;
  started_s: number;
  connections: number;
  wrong: number;
  errors: number;
  peak_fds: number;
  settled_fds: number;
  settled_rss_kb: number;
  settled: boolean;
}

export async function soak(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const n = o.count ?? 2000;
  if (n > ADDRESS_WINDOW) throw new Error(`soak: --count ${n} is too large for the address window (${ADDRESS_WINDOW} at most)`);
  // Whole rounds of addresses: round k + cycle uses exactly round k's addresses.
  const cycle = Math.floor(ADDRESS_WINDOW / n);
  const waitMs = o.greetWaitMs ?? 1000;
  const t0 = Date.now();
  const end = t0 + o.soakMs;
  let rbl: Rbldnsd | null = null;
  let t: Awaited<ReturnType<typeof targetFor>> | null = null;
  let fleet: Fleet | null = null;
  let sampler: NodeJS.Timeout | null = null;
  try {
    if (o.target === null) rbl = await startBenchRbldnsd();
    t = await targetFor(env, waitMs, 'enforce', o.commandTimeMs, null, rbl === null ? {} : dnsblConfig(rbl, o.action));
    const tt = t;
    fleet = new Fleet(env.self, workersFor(o, n), end + 60_000);
    const f = fleet;
    await sleep(1500);
    const before = measure(tt.pid, tt.listen);
    const heapNow = heapFollower(tt.logFile);
    const samples: SoakSample[] = [];
    let roundNo = 0;
    let last: ProcSample | null = tt.pid === null ? null : sampleProc(tt.pid);
    const take = (): void => {
      if (tt.pid === null) return;
      const s = sampleProc(tt.pid);
      if (s === null) return;
      const h = heapNow();
      samples.push({
        t_s: round((s.at - t0) / 1000, 1), fds: countFds(tt.pid), rss_kb: s.rssKb, heap_mb: h.heap, heap_full_gc_mb: h.full,
        cpu_pct: last === null ? 0 : round(cpuPct(last, s), 1), round: roundNo,
      });
      last = s;
    };
    take();
    sampler = setInterval(take, o.sampleMs);
    const rounds: RoundRow[] = [];
    // A round: opening at the rate, the slowloris cut (command time + margin), closing, settling.
    const openMs = Math.ceil((n / Math.max(1, o.rate || 1000)) * 1000);
    const roundMs = openMs + o.commandTimeMs + waitMs + 10_000;
    log(`soak: ${Math.round(o.soakMs / 1000)} s of mix rounds (${n} connections at ${o.rate || 'unpaced'}/s each, ~${Math.round(roundMs / 1000)} s per round at most), samples every ${o.sampleMs} ms`);
    let wrong = 0;
    let errors = 0;
    let connections = 0;
    let prevWrong = 0;
    let prevErrors = 0;
    let prevStarted = 0;
    let prevCut = 0;
    let prevSlowAccepted = 0;
    /** Per label over the whole soak (the workers' counts are cumulative): which kind was sorted wrong, or failed. */
    let byLabel: Record<string, { wrong: number; errors: number }> = {};
    while (roundNo < MAX_ROUNDS && (roundNo === 0 || Date.now() + roundMs / 2 < end)) {
      roundNo++;
      const startedAt = Date.now();
      const roundEnd = Math.min(end, startedAt + roundMs);
      // Each row numbers its own addresses from `first`; every `cycle` rounds they come back.
      const first = ((roundNo - 1) % cycle) * n;
      const opened = await f.open('idle', tt.listen, n, first, o.addrBase, o.pending, o.rate, Math.max(startedAt + 1000, roundEnd - o.commandTimeMs - 3000), [...MIX], o.dribbleMs);
      const peakFds = tt.pid === null ? -1 : countFds(tt.pid);
      // Worker counts are cumulative over the soak: this round's slowloris are the difference.
      const slow = (opened.byLabel['slowloris']?.counts.accepted ?? 0) - prevSlowAccepted;
      const cutUntil = Math.min(roundEnd, Date.now() + o.commandTimeMs + 3000);
      while (Date.now() < cutUntil && f.progress.reduce((a, c) => a + c.cut, 0) < prevCut + slow) await sleep(250);
      const gen = await f.closeAll(15_000);
      const settled = await settle(tt, before.fds + 2, 15_000);
      const after = measure(tt.pid, tt.listen);
      // Counts from the workers are cumulative: this round is the difference.
      let w = 0;
      let e = 0;
      byLabel = {};
      for (const entry of MIX) {
        const c = gen.byLabel[entry.label]?.counts;
        if (c === undefined) continue;
        const lw = entry.label === 'legit' ? c.screened : entry.kind === 'screen' || entry.kind === 'polite' ? c.passed : 0;
        byLabel[entry.label] = { wrong: lw, errors: c.failed + c.refused };
        w += lw;
        e += c.failed + c.refused;
      }
      const started = gen.counts.started;
      rounds.push({
        round: roundNo, started_s: round((startedAt - t0) / 1000, 1), connections: started - prevStarted,
        wrong: w - prevWrong, errors: e - prevErrors, peak_fds: peakFds, settled_fds: after.fds,
        settled_rss_kb: after.sample?.rssKb ?? -1, settled,
      });
      wrong = w;
      errors = e;
      connections = started;
      prevWrong = w;
      prevErrors = e;
      prevStarted = started;
      prevCut = gen.counts.cut;
      prevSlowAccepted = gen.byLabel['slowloris']?.counts.accepted ?? 0;
      const r = rounds[rounds.length - 1] as RoundRow;
      log(`soak: round ${roundNo}: ${r.connections} connections, wrong ${r.wrong}, errors ${r.errors}; fds peak ${peakFds}, settled ${after.fds}; RSS ${after.sample?.rssKb ?? '?'} kB`);
      if (Date.now() >= end) break;
    }
    clearInterval(sampler);
    sampler = null;
    take();
    const figures: Record<string, Figure> = {
      soak_s: round((Date.now() - t0) / 1000, 1),
      rounds: rounds.length,
      connections,
      wrong,
      errors,
      samples: samples.length,
      sample_every_s: round(o.sampleMs / 1000, 1),
      wrong_by_kind: Object.fromEntries(Object.entries(byLabel).map(([k, v]) => [k, v.wrong])),
      errors_by_kind: Object.fromEntries(Object.entries(byLabel).map(([k, v]) => [k, v.errors])),
    };
    const firstS = samples[0];
    const lastS = samples[samples.length - 1];
    const settledFds = rounds.map((r) => r.settled_fds);
    const settledRss = rounds.map((r) => r.settled_rss_kb);
    const heaps = samples.map((s) => s.heap_full_gc_mb).filter((x): x is number => x !== null);
    Object.assign(figures, {
      fds_start: firstS?.fds ?? null, fds_end: lastS?.fds ?? null, fds_max: Math.max(...samples.map((s) => s.fds)),
      rss_kb_start: firstS?.rss_kb ?? null, rss_kb_end: lastS?.rss_kb ?? null, rss_kb_max: Math.max(...samples.map((s) => s.rss_kb)),
      heap_mb_start: samples.find((s) => s.heap_mb !== null)?.heap_mb ?? null, heap_mb_end: lastS?.heap_mb ?? null,
      heap_full_gc_mb_first: heaps[0] ?? null, heap_full_gc_mb_last: heaps[heaps.length - 1] ?? null,
      settled_fds_first_round: settledFds[0] ?? null, settled_fds_last_round: settledFds[settledFds.length - 1] ?? null,
      settled_rss_kb_first_round: settledRss[0] ?? null, settled_rss_kb_last_round: settledRss[settledRss.length - 1] ?? null,
      address_cycle_rounds: cycle,
      round_peak_fds: percentiles(rounds.map((r) => r.peak_fds)),
    });
    const pl = {
      settled_fds: plateau(settledFds, 0.01),
      settled_rss: plateau(settledRss),
      heap_full_gc: plateau(heaps),
    };
    figures['plateau'] = Object.fromEntries(Object.entries(pl).filter(([, v]) => v !== null).map(([k, v]) => [k, v?.plateau === true ? 1 : 0]));
    figures['growth_last_quarter'] = Object.fromEntries(Object.entries(pl).filter(([, v]) => v !== null).map(([k, v]) => [k, v?.growth ?? 0]));
    const notes = commonNotes(env, tt, null);
    notes.push(`each round: ${n} connections of the mix (${MIX.map((x) => `${x.weight} ${x.label}`).join(', ')} of every 10), then the slowloris cut, then the idle ones closed and the server's descriptors settled`);
    notes.push(`source addresses advance by ${n} a round and come back every ${cycle} rounds: from round ${cycle + 1} on every client is known to the screener's cache (legit: PASS OLD) and the caches stop growing`);
    notes.push('heap: used after the last GC before each sample (heap_mb) and after the last full GC (heap_full_gc_mb), from the screener\'s --trace-gc lines');
    notes.push('plateau: mean of the last quarter of a series against the quarter before it (settled fds within 1 %, RSS and heap within 5 %); 1 = plateau');
    notes.push('errors: connections that failed or were turned away with a 4xx, including connects still pending when a round ran out of time (closed by the generator); wrong: a bot that passed or a legit client refused');
    if (rounds.some((r) => !r.settled)) notes.push(`${rounds.filter((r) => !r.settled).length} rounds ended with the server still holding sockets 15 s after the close`);
    return {
      scenario: 'soak',
      settings: {
        soak_ms: o.soakMs, sample_ms: o.sampleMs, connections_per_round: n, rate: o.rate, greet_wait_ms: waitMs,
        command_time_limit_ms: o.commandTimeMs, dribble_ms: o.dribbleMs, dnsbl_action: o.action, workers: f.workers.length,
      },
      figures,
      notes,
      timeline: samples.map((s) => ({ t_s: s.t_s, cpu_pct: s.cpu_pct, rss_kb: s.rss_kb, fds: s.fds })),
      series: { samples: samples as unknown as Array<Record<string, number | null>>, rounds: rounds as unknown as Array<Record<string, number | null>> },
    };
  } finally {
    if (sampler !== null) clearInterval(sampler);
    await fleet?.stop();
    await t?.stop();
    await rbl?.stop();
  }
}
