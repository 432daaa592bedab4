/*
 * bench/load/scenarios.ts - the three zombie scenarios, each bounded in count
 * and time and stopping by itself.
 *
 * Exports: idle(env), pregreet(env), legit(env), Env, ScenarioResult, and the
 *   helpers the other scenarios share (targetFor, settle, measures, notes);
 *   bench/load/run.ts dispatches by name.
 *   idle      N silent zombies held in the pregreet phase (greet wait longer
 *             than the run): how many the server holds, RSS per connection,
 *             CPU while holding.
 *   pregreet  N zombies that talk first, paced (rate, pending cap), played to
 *             the end: screened connections per second, server CPU per connection.
 *   legit     Z zombies held (talked first, then silent in the dummy engine:
 *             with a 1 s greet wait a silent zombie would pass and be spliced,
 *             costing 2-3 fds), then M clients timed new (pay the greet wait)
 *             and cached (PASS OLD), each cached one paired with the same
 *             dialogue straight to the sink: the added latency.
 * Figures are numbers (null where the server's PID is unknown); every
 * scenario lists in `notes` what bounded its figures.
 */
import { Fleet, Sampler, log, measure, type Measure, type Opened } from './fleet.js';
import { cpuPct, percentiles, round, type Percentiles, type ProcSample } from './proc.js';
import { gcEvents, logStats, sleep, startScreener, startSinkProcess, type SinkProcess, type Target } from './server.js';
import type { Options, Scenario } from './options.js';
import type { HostPort } from './protocol.js';
import { startFloor } from './floor.js';
import { startRedis } from '../../test/helpers/redis.js';

export interface Env {
  opts: Options;
  /** This file's path (workers are forks of it). */
  self: string;
  /** Run against the floor (floor.ts) instead of the screener. */
  floor?: boolean;
}

export type Figure = number | null | Percentiles | Record<string, number>;

export interface ScenarioResult {
  scenario: Scenario;
  settings: Record<string, unknown>;
  figures: Record<string, Figure>;
  notes: string[];
  timeline: Array<{ t_s: number; cpu_pct: number; rss_kb: number; fds: number }>;
  /** The same scenario against the floor server, and figure / floor figure. */
  floor?: ScenarioResult;
  ratios?: Record<string, number | null>;
  /** Extra series for the report (legit: latency against zombies held). */
  series?: Record<string, Array<Record<string, number | null>>>;
}

/** Descriptors a Node server process holds before any client (stdio, epoll, listeners, ...). */
export const FD_LIMIT = 20_000;

export function kbDelta(a: ProcSample | null, b: ProcSample | null, key: 'rssKb' | 'rssAnonKb'): number | null {
  return a === null || b === null ? null : b[key] - a[key];
}

export function perConnBytes(deltaKb: number | null, n: number): number | null {
  return deltaKb === null || n <= 0 ? null : Math.round((deltaKb * 1024) / n);
}

export function cpuBetween(a: ProcSample | null, b: ProcSample | null): number | null {
  return a === null || b === null ? null : round(cpuPct(a, b), 1);
}

export function cpuMsBetween(a: ProcSample | null, b: ProcSample | null): number | null {
  return a === null || b === null ? null : Math.round(b.cpuMs - a.cpuMs);
}

/**
 * heapAt - heap used (MB) after the last GC before `at` (full GCs only when `full`),
 * from the screener's --trace-gc lines; null without them.
 */
export function heapAt(t: Target, at: number, since: number, full: boolean): number | null {
  let v: number | null = null;
  for (const e of gcEvents(t)) {
    if (e.at > at) break;
    if (e.at >= since && (e.full || !full)) v = e.afterMb;
  }
  return v;
}

export function workersFor(opts: Options, n: number): number {
  return Math.max(opts.minWorkers, Math.ceil(n / opts.perWorker));
}

export async function targetFor(env: Env, greetWaitMs: number, action: 'enforce' | 'drop', holdMs: number,
  backend: HostPort | null, extra: Record<string, Record<string, unknown>> = {}): Promise<Target> {
  const o = env.opts;
  if (o.target !== null) {
    return { listen: o.target, pid: o.targetPid, backend: 'external', logFile: null, spawnedAt: 0, stop: () => Promise.resolve() };
  }
  if (env.floor === true) {
    const f = await startFloor(env.self, {
      role: 'floor', mode: backend === null ? 'hold' : 'splice', greetWaitMs, backend,
    }, Date.now() + o.durationMs + 90_000);
    log(`floor pid ${f.pid} on ${f.listen.host}:${f.listen.port} (${backend === null ? `hold, greet wait ${greetWaitMs} ms` : 'splice'})`);
    return { listen: f.listen, pid: f.pid, backend: backend === null ? 'none' : `${backend.host}:${backend.port}`, logFile: null, spawnedAt: Date.now(), stop: f.stop };
  }
  // More than one worker needs the shared store (config/refusals.ts): a private redis-server, stopped with the screener.
  const redis = o.screenerWorkers > 1 ? await startRedis() : null;
  const t = await startScreener({
    greetWaitMs, action, maxConnections: o.maxConnections, commandTimeMs: holdMs, logLevel: o.logLevel,
    backend, nodeArgs: o.serverNodeArgs, traceGc: o.traceGc, keepFiles: o.keep,
    extra: redis === null ? extra : { ...extra, cache: { ...extra['cache'], store: 'redis', redis: { url: redis.url, prefix: 'load:' } } },
    ...(o.screenerWorkers > 1 ? { workers: o.screenerWorkers } : {}),
    ...(o.screenerWorkers > 1 && o.screenerAccept !== null ? { workersAccept: o.screenerAccept } : {}),
  });
  log(`screener pid ${t.pid} on ${t.listen.host}:${t.listen.port}, backend ${t.backend}, greet wait ${greetWaitMs} ms, log ${o.logLevel}` +
    `${redis === null ? '' : `, ${o.screenerWorkers} workers on redis ${redis.url}`}`);
  if (redis === null) return t;
  return { ...t, stop: async () => { await t.stop(); await redis.stop(); } };
}

/** settle - wait until the server holds at most `fds` descriptors again (bounded). */
export async function settle(t: Target, fds: number, ms: number): Promise<boolean> {
  if (t.pid === null) return true;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (measure(t.pid, t.listen).fds <= fds) return true;
    await sleep(200);
  }
  return false;
}

export function serverFigures(prefix: string, m: Measure): Record<string, Figure> {
  return {
    [`${prefix}_rss_kb`]: m.sample?.rssKb ?? null,
    [`${prefix}_rss_anon_kb`]: m.sample?.rssAnonKb ?? null,
    [`${prefix}_fds`]: m.fds >= 0 ? m.fds : null,
  };
}

export function commonNotes(env: Env, t: Target, opened: Opened | null): string[] {
  const o = env.opts;
  const notes: string[] = [];
  if (t.pid === null) notes.push('server figures are null: external target without --target-pid');
  else if (o.target === null) {
    notes.push(`screener log.level ${o.logLevel}${o.logLevel === 'warn' ? ': per-connection events (info) are not written, so logging costs nothing here' : ': every event is written to a file'}`);
  }
  notes.push('2 shared cores: the generator workers and the server compete for them');
  if (opened !== null) {
    if (opened.stoppedBy !== 'done') notes.push(`opening stopped by ${opened.stoppedBy} (--duration bounds it)`);
    if (Object.keys(opened.errors).length > 0) notes.push(`client socket errors: ${JSON.stringify(opened.errors)}`);
    if (opened.counts.refused > 0) notes.push(`${opened.counts.refused} refused by the server (4xx before being held: 421 over limits.max_connections=${o.maxConnections})`);
  }
  return notes;
}

export async function idle(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const n = o.count ?? 19_000;
  const t0 = Date.now();
  const end = t0 + o.durationMs;
  const waitMs = o.idleWaitMs ?? Math.max(300_000, o.durationMs + 60_000);
  const t = await targetFor(env, waitMs, 'enforce', waitMs, null);
  const fleet = new Fleet(env.self, workersFor(o, n), end + 30_000);
  const sampler = new Sampler(t.pid, 250);
  try {
    await sleep(300);
    const before = measure(t.pid, t.listen);
    sampler.start();
    const rampEnd = Math.max(Date.now() + 5000, end - o.holdMs - 5000);
    log(`idle: opening ${n} silent zombies over ${fleet.workers.length} workers, pending cap ${o.pending}`);
    const opened = await fleet.open('idle', t.listen, n, 0, o.addrBase, o.pending, 0, rampEnd);
    const rampMs = Math.max(1, opened.lastAt - opened.firstAt);
    await sleep(1000); // let the last accepts and teasers land
    const held = measure(t.pid, t.listen);
    const heldAt = Date.now();
    log(`idle: ${opened.counts.held} held (client side), server fds ${held.fds}, established ${held.established}; holding ${o.holdMs} ms`);
    await sleep(Math.max(0, Math.min(o.holdMs, end - Date.now() - 3000)));
    const heldEnd = measure(t.pid, t.listen);
    const heldEndAt = Date.now();
    const gen = await fleet.closeAll(15_000);
    const settled = await settle(t, before.fds + 2, 20_000);
    const after = measure(t.pid, t.listen);
    sampler.stop();
    const serverHeld = held.fds >= 0 && before.fds >= 0 ? held.fds - before.fds : null;
    const nHeld = serverHeld ?? opened.counts.held;
    const heapBefore = heapAt(t, opened.firstAt, 0, false);
    const heapHeld = heapAt(t, heldEndAt, heldAt, true);
    const notes = commonNotes(env, t, opened);
    if (t.pid !== null && before.fds + n >= FD_LIMIT - 50) {
      notes.push(`fd limit: the server had ${before.fds} fds before any client; ${n} zombies bring it to ${before.fds + n} of its hard limit ${FD_LIMIT}`);
    }
    if (opened.counts.failed > 0) notes.push(`${opened.counts.failed} zombies never saw a byte from the server (not accepted: see errors, accept queue, fd limit)`);
    if (serverHeld !== null && held.established > serverHeld) {
      notes.push(`${held.established - serverHeld} connections established but not accepted (in the listen backlog) at the count`);
    }
    notes.push('RSS is the whole process (V8 heap, libuv, buffers); per connection = (RSS - RSS before) / sockets held; kernel socket buffers are not in RSS');
    notes.push('rss_ramp is 1 s after the last accept: it still holds the V8 heap grown by the ramp\'s garbage; V8\'s memory reducer gives it back ~15 s later, so rss_held (end of --hold) is the settled cost');
    if (heapHeld === null && o.traceGc && o.target === null) notes.push('no full GC during the hold: heap_held is unknown (hold longer)');
    notes.push('heap figures: heap used after the last GC before the ramp and after the last full GC in the hold, from the screener\'s --trace-gc');
    notes.push('ramp rate is bounded by the pending cap and the server accepting (one event loop)');
    if (!settled) notes.push('the server had not released every socket 20 s after the zombies closed');
    return {
      scenario: 'idle',
      settings: { zombies: n, greet_wait_ms: o.target === null ? waitMs : null, pending_cap: o.pending, workers: fleet.workers.length, hold_ms: o.holdMs },
      figures: {
        zombies_requested: n,
        zombies_held_client: opened.counts.held,
        server_sockets_held: serverHeld,
        server_established: held.established,
        refused: opened.counts.refused,
        failed: opened.counts.failed,
        lost_while_held: gen.lost,
        ramp_s: round(rampMs / 1000, 2),
        ramp_conn_per_s: Math.round((opened.counts.accepted / rampMs) * 1000),
        ...serverFigures('before', before),
        ...serverFigures('ramp', held),
        ...serverFigures('held', heldEnd),
        rss_per_conn_bytes: perConnBytes(kbDelta(before.sample, heldEnd.sample, 'rssKb'), nHeld),
        rss_anon_per_conn_bytes: perConnBytes(kbDelta(before.sample, heldEnd.sample, 'rssAnonKb'), nHeld),
        rss_ramp_per_conn_bytes: perConnBytes(kbDelta(before.sample, held.sample, 'rssKb'), nHeld),
        heap_before_mb: heapBefore,
        heap_held_mb: heapHeld,
        heap_per_conn_bytes: heapBefore === null || heapHeld === null || nHeld <= 0
          ? null : Math.round(((heapHeld - heapBefore) * 1048576) / nHeld),
        server_cpu_pct_holding: cpuBetween(held.sample, heldEnd.sample),
        server_cpu_ms_ramp: cpuMsBetween(before.sample, held.sample),
        server_cpu_us_per_accept: before.sample !== null && held.sample !== null && opened.counts.accepted > 0
          ? Math.round(((held.sample.cpuMs - before.sample.cpuMs) * 1000) / opened.counts.accepted) : null,
        server_peak_rss_kb: t.pid === null ? null : sampler.peakRss(),
        ...serverFigures('after_release', after),
        generator_cpu_ms: Math.round(gen.cpuMs),
        generator_rss_kb: gen.rssKb,
        log_lines: logStats(t.logFile).lines,
      },
      notes,
      timeline: sampler.points,
    };
  } finally {
    sampler.stop();
    await fleet.stop();
    await t.stop();
  }
}

export async function pregreet(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const n = o.count ?? 5000;
  const waitMs = o.greetWaitMs ?? 1000;
  const end = Date.now() + o.durationMs;
  const t = await targetFor(env, waitMs, o.action, 300_000, null);
  const fleet = new Fleet(env.self, workersFor(o, n), end + 30_000);
  const sampler = new Sampler(t.pid);
  try {
    await sleep(300);
    const before = measure(t.pid, t.listen);
    sampler.start();
    log(`pregreet: ${n} zombies that talk first, ${o.rate || 'unpaced'}/s, pending cap ${o.pending}, action ${o.action}, wait ${waitMs} ms`);
    const opened = await fleet.open('screen', t.listen, n, 0, o.addrBase, o.pending, o.rate, end - 2000);
    const settled = await settle(t, before.fds + 2, 10_000);
    const after = measure(t.pid, t.listen);
    sampler.stop();
    const c = opened.counts;
    const spanMs = Math.max(1, opened.lastAt - opened.firstAt);
    const cpuMs = cpuMsBetween(before.sample, after.sample);
    const verdictMs = opened.lastVerdictAt - opened.firstVerdictAt;
    const rate = verdictMs > 0 && c.screened > 1 ? ((c.screened - 1) / verdictMs) * 1000 : 0;
    const notes = commonNotes(env, t, opened);
    notes.push('screened_per_s counts verdicts between the first and the last one; span_s also holds the first greet wait');
    if (o.action === 'enforce') {
      notes.push(`each bot is held for the greet wait (${waitMs} ms) before its 220 and the 550 at RCPT, so about rate x ${waitMs / 1000} s bots are in flight at once`);
    }
    if (opened.capWaitMs > spanMs * 0.2) notes.push(`the pending cap (${o.pending} connects not yet greeted) was reached ${Math.round(opened.capWaitMs)} ms of ${spanMs} ms: the server accepted slower than the generator connected`);
    else notes.push(`the pending cap was reached for ${Math.round(opened.capWaitMs)} ms: ${o.rate > 0 ? `the pace (--rate ${o.rate}) set the rate, not the server` : 'unpaced, yet the server kept up'}`);
    if (sampler.peakCpu() > 90) notes.push(`server CPU peaked at ${sampler.peakCpu()} % of a core: CPU-bound`);
    if (c.passed > 0) notes.push(`${c.passed} bots had their RCPT accepted: not screened`);
    if (!settled) notes.push('the server still held sockets 10 s after the last bot');
    return {
      scenario: 'pregreet',
      settings: { zombies: n, greet_wait_ms: o.target === null ? waitMs : null, action: o.action, rate: o.rate, pending_cap: o.pending, workers: fleet.workers.length },
      figures: {
        zombies_requested: n,
        started: c.started,
        screened: c.screened,
        refused: c.refused,
        failed: c.failed,
        passed: c.passed,
        span_s: round(spanMs / 1000, 2),
        screened_per_s: round(rate, 1),
        screened_per_s_overall: round((c.screened / spanMs) * 1000, 1),
        verdict_latency_ms: percentiles(opened.latencies),
        server_cpu_ms: cpuMs,
        server_cpu_ms_per_conn: cpuMs === null || c.started === 0 ? null : round(cpuMs / c.started, 3),
        server_cpu_pct_avg: cpuBetween(before.sample, after.sample),
        server_cpu_pct_peak: t.pid === null ? null : sampler.peakCpu(),
        ...serverFigures('before', before),
        server_peak_rss_kb: t.pid === null ? null : sampler.peakRss(),
        ...serverFigures('after', after),
        generator_cpu_ms: Math.round(opened.cpuMs),
        log_lines: logStats(t.logFile).lines,
      },
      notes,
      timeline: sampler.points,
    };
  } finally {
    sampler.stop();
    await fleet.stop();
    await t.stop();
  }
}

function minus(a: Percentiles, b: Percentiles): Record<string, number> {
  return { p50: round(a.p50 - b.p50, 3), p90: round(a.p90 - b.p90, 3), p99: round(a.p99 - b.p99, 3), max: round(a.max - b.max, 3) };
}

export async function legit(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const z = o.count ?? 18_000;
  const m = o.clients;
  const waitMs = o.greetWaitMs ?? 1000;
  const end = Date.now() + o.durationMs;
  const holdMs = Math.max(300_000, o.durationMs + 60_000);
  let sink: SinkProcess | null = null;
  if (o.target === null) sink = await startSinkProcess(env.self, end + 30_000);
  const direct = o.target === null ? (sink as SinkProcess).listen : o.direct;
  let t: Target | null = null;
  let fleet: Fleet | null = null;
  let sampler: Sampler | null = null;
  try {
    t = await targetFor(env, waitMs, 'enforce', holdMs, o.backend === 'process' ? direct : null);
    const tt = t;
    const zw = workersFor(o, z);
    fleet = new Fleet(env.self, zw + 1, end + 30_000); // the last worker only times clients
    const timer = zw;
    const s2 = new Sampler(tt.pid);
    sampler = s2;
    await sleep(300);
    const before = measure(tt.pid, tt.listen);
    s2.start();
    // Steps: the same few cached clients timed at 0, 1/K, ... (K-1)/K of the zombies, for the chart.
    const series: Array<Record<string, number>> = [];
    let openedSoFar = 0;
    if (o.steps > 1) {
      const stepBase: [number, number] = [o.addrBase[0] + 100, 200];
      const sm = Math.min(m, 50);
      const stepCmd = { cmd: 'time' as const, target: tt.listen, first: 0, count: sm, base: stepBase, timeoutMs: waitMs + 15_000 };
      await fleet.time(timer, { ...stepCmd, phase: 'new', direct: null, concurrency: sm, warmup: 0, deadline: Date.now() + 20_000 });
      for (let k = 0; k < o.steps; k++) {
        const want = Math.round((z * k) / o.steps);
        if (want > openedSoFar) {
          await fleet.open('hold', tt.listen, want - openedSoFar, openedSoFar, o.addrBase, o.pending, 0, Date.now() + (end - Date.now()) / 3);
          openedSoFar = want;
          await sleep(500);
        }
        const at = measure(tt.pid, tt.listen);
        const r = await fleet.time(timer, { ...stepCmd, phase: 'paired', direct, concurrency: 1, warmup: 5, deadline: Date.now() + 30_000 });
        const pc = percentiles(r?.screened ?? []);
        const pd = percentiles(r?.direct ?? []);
        const pa = percentiles(r?.diffs ?? []);
        series.push({ zombies: at.fds >= 0 && before.fds >= 0 ? at.fds - before.fds : want, cached_p50: pc.p50, cached_p90: pc.p90, cached_p99: pc.p99, direct_p99: pd.p99, added_p50: pa.p50, added_p99: pa.p99, n: pc.n });
        log(`legit: step ${k + 1}/${o.steps}: ${want} zombies, cached p50 ${pc.p50} p99 ${pc.p99} ms, added p99 ${pa.p99} ms (n=${pc.n})`);
      }
    }
    log(`legit: holding ${z} zombies (talk first, then silent in the dummy engine) over ${zw} workers`);
    const opened = await fleet.open('hold', tt.listen, z - openedSoFar, openedSoFar, o.addrBase, o.pending, 0, Date.now() + (end - Date.now()) / 2);
    await sleep(500);
    const held = measure(tt.pid, tt.listen);
    log(`legit: ${opened.counts.held} zombies held, server fds ${held.fds}; timing ${m} new clients`);
    const base: [number, number] = [o.addrBase[0] + 100, 0];
    const budget = (): number => Math.max(Date.now() + 5000, end - 3000);
    const timeoutMs = waitMs + 15_000;
    const fresh = await fleet.time(timer, {
      cmd: 'time', phase: 'new', target: tt.listen, direct: null, first: 0, count: m, base,
      concurrency: Math.min(m, 100), warmup: 0, timeoutMs, deadline: Date.now() + (budget() - Date.now()) / 2,
    });
    log(`legit: timing ${m} cached clients, each paired with a direct one${direct === null ? ' (no direct target)' : ''}`);
    const cpuA = measure(tt.pid, tt.listen).sample;
    const paired = await fleet.time(timer, {
      cmd: 'time', phase: 'paired', target: tt.listen, direct, first: 0, count: m, base,
      concurrency: o.concurrency, warmup: Math.min(20, m), timeoutMs, deadline: budget(),
    });
    const after = measure(tt.pid, tt.listen);
    const gen = await fleet.closeAll(15_000);
    s2.stop();
    const pNew = percentiles(fresh?.screened ?? []);
    const pCached = percentiles(paired?.screened ?? []);
    const pDirect = percentiles(paired?.direct ?? []);
    const serverHeld = held.fds >= 0 && before.fds >= 0 ? held.fds - before.fds : null;
    const notes = commonNotes(env, tt, opened);
    notes.push('zombies talk first, then sit silent in the dummy engine (command time limit set past the run): with a 1 s greet wait a silent zombie would pass and be spliced to the backend (2-3 fds each)');
    notes.push(`latency is connect() to the final "220 " line, one client at a time (--concurrency ${o.concurrency}), from a worker that does nothing else; cached and direct alternate first`);
    notes.push('added_ms: percentiles of (screened - direct) for the same client, timed back to back; added_by_percentile_ms: cached pX - direct pX (noisier at p99/max with few clients)');
    notes.push(`new clients: ${Math.min(m, 100)} at a time, so their greet waits end together and their handoffs queue: new_ms minus the greet wait is mostly that burst`);
    notes.push('held RSS here is taken 0.5 s after the zombies are held: the transient after a ramp (see the idle scenario for the settled cost)');
    notes.push(o.backend === 'sink' && o.target === null
      ? 'screened clients reach the built-in sink inside the screener process; direct clients reach the same sink code in its own process'
      : 'screened and direct clients reach the same sink process');
    const failures = { ...(fresh?.failures ?? {}), ...(paired?.failures ?? {}) };
    if (Object.keys(failures).length > 0) notes.push(`client failures: ${JSON.stringify(failures)}`);
    if (fresh === null || paired === null) notes.push('a timing phase did not report within its bound');
    return {
      scenario: 'legit',
      settings: { zombies: z, clients: m, greet_wait_ms: o.target === null ? waitMs : null, concurrency: o.concurrency, backend: o.target === null ? o.backend : 'external', workers: zw },
      figures: {
        zombies_requested: z,
        zombies_held_client: opened.counts.held,
        server_sockets_held: serverHeld,
        ...serverFigures('before', before),
        ...serverFigures('held', held),
        rss_per_conn_bytes: perConnBytes(kbDelta(before.sample, held.sample, 'rssKb'), serverHeld ?? opened.counts.held),
        new_ms: pNew,
        new_over_greet_wait_ms: { p50: round(pNew.p50 - waitMs, 3), p99: round(pNew.p99 - waitMs, 3) },
        cached_ms: pCached,
        direct_ms: pDirect,
        added_ms: percentiles(paired?.diffs ?? []),
        added_by_percentile_ms: minus(pCached, pDirect),
        server_cpu_pct_timing: cpuBetween(cpuA, after.sample),
        server_cpu_pct_peak: tt.pid === null ? null : s2.peakCpu(),
        generator_cpu_ms: Math.round(gen.cpuMs),
        log_lines: logStats(tt.logFile).lines,
      },
      notes,
      timeline: s2.points,
      series: {
        latency: [...series, {
          zombies: serverHeld ?? z, cached_p50: pCached.p50, cached_p90: pCached.p90, cached_p99: pCached.p99, direct_p99: pDirect.p99,
          added_p50: percentiles(paired?.diffs ?? []).p50, added_p99: percentiles(paired?.diffs ?? []).p99, n: pCached.n,
        }],
      },
    };
  } finally {
    sampler?.stop();
    await fleet?.stop();
    await t?.stop();
    await sink?.stop();
  }
}
