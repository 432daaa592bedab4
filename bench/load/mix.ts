/*
 * bench/load/mix.ts - the mix scenario: a botnet-like mix at a target
 * connection rate, all tests on (pregreet enforce, DNSBL --action, the dummy
 * engine's command time limit --command-time).
 *
 * Exports: mix(env), MIX.
 * Every 10 connections (weighted round robin, each kind from its own source
 * addresses): 2 idle (silent: they pass the greet wait and are handed to the
 * built-in sink, where they sit), 3 pregreet (talk first, refused at RCPT),
 * 2 listed (polite, 127.30.x.y, refused by DNSBL), 1 slowloris (cut by the
 * command time limit), 2 legit (polite, unlisted: passed and handed off).
 * Figures per kind: verdicts, their latency from connect, errors; overall the
 * connection rate reached, server CPU and peak RSS. Bounded by --count and
 * --duration; idle and slow zombies are closed at the end.
 */
import { Fleet, Sampler, log, measure } from './fleet.js';
import { dnsblConfig, LISTED_BASE, startBenchRbldnsd, UNLISTED_BASE } from './listed.js';
import { percentiles, round } from './proc.js';
import type { PlanEntry } from './protocol.js';
import { sleep } from './server.js';
import { commonNotes, cpuBetween, cpuMsBetween, serverFigures, settle, targetFor, workersFor, type Env, type Figure, type ScenarioResult } from './scenarios.js';
import type { Rbldnsd } from '../../test/helpers/rbldnsd.js';

export const MIX: readonly PlanEntry[] = [
  { label: 'idle', kind: 'idle', base: [10, 0], weight: 2 },
  { label: 'pregreet', kind: 'screen', base: [20, 0], weight: 3 },
  { label: 'listed', kind: 'polite', base: [LISTED_BASE[0], 200], weight: 2 },
  { label: 'slowloris', kind: 'slow', base: [50, 0], weight: 1 },
  { label: 'legit', kind: 'polite', base: [UNLISTED_BASE[0], 200], weight: 2 },
];

export async function mix(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const n = o.count ?? 10_000;
  const waitMs = o.greetWaitMs ?? 1000;
  const end = Date.now() + o.durationMs;
  let rbl: Rbldnsd | null = null;
  let t: Awaited<ReturnType<typeof targetFor>> | null = null;
  let fleet: Fleet | null = null;
  let sampler: Sampler | null = null;
  try {
    if (o.target === null) rbl = await startBenchRbldnsd();
    t = await targetFor(env, waitMs, 'enforce', o.commandTimeMs, null, rbl === null ? {} : dnsblConfig(rbl, o.action));
    const tt = t;
    fleet = new Fleet(env.self, workersFor(o, n), end + 30_000);
    const s = new Sampler(tt.pid);
    sampler = s;
    await sleep(1500);
    const before = measure(tt.pid, tt.listen);
    s.start();
    log(`mix: ${n} connections at ${o.rate || 'unpaced'}/s: ${MIX.map((e) => `${e.weight} ${e.label}`).join(', ')} of every 10`);
    const opened = await fleet.open('idle', tt.listen, n, 0, o.addrBase, o.pending, o.rate, end - o.commandTimeMs - 8000, [...MIX], o.dribbleMs);
    const peak = measure(tt.pid, tt.listen);
    // Let the slow ones run into the command time limit (bounded), then close the idle ones.
    const until = Math.min(end - 5000, Date.now() + o.commandTimeMs + 5000);
    while (Date.now() < until && fleet.progress.reduce((a, c) => a + c.cut, 0) < (opened.byLabel['slowloris']?.counts.accepted ?? 0)) await sleep(250);
    const gen = await fleet.closeAll(15_000);
    const settled = await settle(tt, before.fds + 2, 15_000);
    const after = measure(tt.pid, tt.listen);
    s.stop();
    const spanMs = Math.max(1, opened.lastAt - opened.firstAt);
    const figures: Record<string, Figure> = {
      connections: opened.counts.started,
      accepted: opened.counts.accepted,
      conn_per_s: round((opened.counts.accepted / spanMs) * 1000, 1),
      span_s: round(spanMs / 1000, 2),
    };
    for (const e of MIX) {
      const st = gen.byLabel[e.label];
      const c = st?.counts;
      figures[`${e.label}_started`] = c?.started ?? 0;
      figures[`${e.label}_ok`] = e.kind === 'idle' ? (opened.byLabel[e.label]?.counts.held ?? 0)
        : e.kind === 'slow' ? (c?.cut ?? 0)
          : e.label === 'legit' ? (c?.passed ?? 0) : (c?.screened ?? 0);
      figures[`${e.label}_wrong`] = e.label === 'legit' ? (c?.screened ?? 0) : e.kind === 'screen' || e.kind === 'polite' ? (c?.passed ?? 0) : 0;
      figures[`${e.label}_errors`] = (c?.failed ?? 0) + (c?.refused ?? 0);
      if (e.kind !== 'idle') figures[`${e.label}_ms`] = percentiles(st?.latencies ?? []);
    }
    const cpuMs = cpuMsBetween(before.sample, peak.sample);
    figures['server_cpu_ms_per_conn'] = cpuMs === null || opened.counts.started === 0 ? null : round(cpuMs / opened.counts.started, 3);
    figures['server_cpu_pct_avg'] = cpuBetween(before.sample, peak.sample);
    figures['server_cpu_pct_peak'] = tt.pid === null ? null : s.peakCpu();
    Object.assign(figures, serverFigures('before', before), serverFigures('peak', peak), serverFigures('after', after));
    figures['server_peak_rss_kb'] = tt.pid === null ? null : s.peakRss();
    const notes = commonNotes(env, tt, opened);
    notes.push('_ok: idle held, pregreet and listed refused (5xx), slowloris cut by the 421, legit passed (RCPT accepted by the sink behind the splice); _wrong: a bot that passed or a legit client refused');
    notes.push('_ms: connect to the verdict (to the 421 for slowloris): the greet wait, plus the command time limit for slowloris');
    notes.push(`idle zombies pass the greet wait and are spliced to the built-in sink: each then holds 3 descriptors in the screener process (client, backend, sink side) until the end`);
    if (!settled) notes.push('the server still held sockets 15 s after the end');
    return {
      scenario: 'mix',
      settings: {
        connections: n, rate: o.rate, pending_cap: o.pending, greet_wait_ms: o.target === null ? waitMs : null,
        command_time_limit_ms: o.commandTimeMs, dribble_ms: o.dribbleMs, dnsbl_action: o.action,
        mix: Object.fromEntries(MIX.map((e) => [e.label, e.weight])), workers: fleet.workers.length,
      },
      figures,
      notes,
      timeline: s.points,
    };
  } finally {
    sampler?.stop();
    await fleet?.stop();
    await t?.stop();
    await rbl?.stop();
  }
}
