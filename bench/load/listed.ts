/*
 * bench/load/listed.ts - the listed scenario: new clients whose addresses a
 * local rbldnsd lists, with the DNSBL test on.
 *
 * Exports: listed(env), startBenchRbldnsd(), verdictRate(), label(), DNSBL_SITE, LISTED_BASE, UNLISTED_BASE.
 * The blocklist is test/helpers/rbldnsd.ts serving fixtures/dnsbl/bl.zone as
 * bl.test, plus one network for the bench: 127.30.0.0/16 (answer 127.0.0.2),
 * so that every zombie is a new address (no resolver cache hit). Unlisted
 * clients come from 127.40.0.0/16 (NXDOMAIN). The site is
 * "bl.test=127.0.0.[2..11]*3" with threshold 3, action --action.
 * Zombies are polite: they wait for the greeting (they pass pregreet) and
 * play EHLO/MAIL/RCPT; a 5xx (550 at RCPT under enforce, 521 under drop) is a
 * rejection, an accepted RCPT (the built-in sink behind the splice) a pass.
 * Two runs against one screener:
 *   listed  N listed clients: DNSBL rejections per second.
 *   mixed   N clients, --listed-share % listed, the rest unlisted: new
 *           clients screened (rejected or passed) per second with DNSBL on.
 * Both are verdict rates between the first and the last verdict: each client
 * waits the greet wait (the DNSBL score is read when it ends).
 */
import { Fleet, Sampler, log, measure, type Opened } from './fleet.js';
import { percentiles, round } from './proc.js';
import { sleep } from './server.js';
import type { PlanEntry } from './protocol.js';
import {
  commonNotes, cpuBetween, cpuMsBetween, serverFigures, settle, targetFor, workersFor,
  type Env, type Figure, type ScenarioResult,
} from './scenarios.js';
import { fixtureZone, startRbldnsd, type Rbldnsd } from '../../test/helpers/rbldnsd.js';

export const DNSBL_SITE = 'bl.test=127.0.0.[2..11]*3';
export const LISTED_BASE: readonly [number, number] = [30, 0];
export const UNLISTED_BASE: readonly [number, number] = [40, 0];

/** startBenchRbldnsd - bl.test from the fixture, plus the bench's listed /16. */
export function startBenchRbldnsd(): Promise<Rbldnsd> {
  const file = `${fixtureZone('bl.zone')}
# bench/load/listed.ts: every source address of a listed zombie (127.30.0.0/16).
127.30.0.0/16 :127.0.0.2:Listed by bl.test (bench zombie), see https://bl.test/$
`;
  return startRbldnsd([{ name: 'bl.test', type: 'ip4set', fileName: 'bl.zone', file }], { check: '60' });
}

/** dnsblConfig - the screener's dnsbl and resolver sections for this rbldnsd. */
export function dnsblConfig(r: Rbldnsd, action: 'enforce' | 'drop'): Record<string, Record<string, unknown>> {
  return {
    dnsbl: { sites: [DNSBL_SITE], threshold: 3, action },
    resolver: { servers: [r.address] },
  };
}

/** Verdict rate between the first and the last verdict, /s. */
export function verdictRate(o: Opened, n: number): number {
  const ms = o.lastVerdictAt - o.firstVerdictAt;
  return ms > 0 && n > 1 ? round(((n - 1) / ms) * 1000, 1) : 0;
}

/** The counts and verdict latencies of one plan label. */
export function label(o: Opened, name: string): { screened: number; passed: number; refused: number; failed: number; ms: ReturnType<typeof percentiles> } {
  const st = o.byLabel[name];
  return {
    screened: st?.counts.screened ?? 0,
    passed: st?.counts.passed ?? 0,
    refused: st?.counts.refused ?? 0,
    failed: st?.counts.failed ?? 0,
    ms: percentiles(st?.latencies ?? []),
  };
}

export async function listed(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const n = o.count ?? 5000;
  const waitMs = o.greetWaitMs ?? 1000;
  const end = Date.now() + o.durationMs;
  let rbl: Rbldnsd | null = null;
  let t: Awaited<ReturnType<typeof targetFor>> | null = null;
  let fleet: Fleet | null = null;
  const sampler = { s: null as Sampler | null };
  try {
    if (o.target === null) {
      rbl = await startBenchRbldnsd();
      log(`rbldnsd pid ${rbl.pid} on ${rbl.address}: bl.test lists 127.30.0.0/16`);
    }
    t = await targetFor(env, waitMs, 'enforce', 300_000, null, rbl === null ? {} : dnsblConfig(rbl, o.action));
    const tt = t;
    fleet = new Fleet(env.self, workersFor(o, n), end + 30_000);
    const s = new Sampler(tt.pid);
    sampler.s = s;
    await sleep(1500); // the first site health probe
    const before = measure(tt.pid, tt.listen);
    s.start();
    const half = Date.now() + (end - Date.now()) / 2;
    log(`listed: ${n} listed new clients (127.30.x.y), ${o.rate || 'unpaced'}/s, pending cap ${o.pending}, dnsbl action ${o.action}, greet wait ${waitMs} ms`);
    const planA: PlanEntry[] = [{ label: 'listed', kind: 'polite', base: LISTED_BASE, weight: 1 }];
    const a = await fleet.open('polite', tt.listen, n, 0, LISTED_BASE, o.pending, o.rate, half - 2000, planA);
    await settle(tt, before.fds + 2, 10_000);
    const mid = measure(tt.pid, tt.listen);
    // Mixed: listed ones from 127.30.128.0 up (not yet asked), unlisted from 127.40.0.0 up.
    const wl = Math.max(0, Math.min(100, o.listedShare));
    const planB: PlanEntry[] = [];
    if (wl > 0) planB.push({ label: 'mixed_listed', kind: 'polite', base: [LISTED_BASE[0], 128], weight: wl });
    if (wl < 100) planB.push({ label: 'mixed_unlisted', kind: 'polite', base: UNLISTED_BASE, weight: 100 - wl });
    log(`listed: mixed run, ${n} new clients, ${wl} % listed`);
    const b = await fleet.open('polite', tt.listen, n, 0, LISTED_BASE, o.pending, o.rate, end - 2000, planB);
    const settled = await settle(tt, before.fds + 2, 10_000);
    const after = measure(tt.pid, tt.listen);
    s.stop();
    // Opened counts are cumulative per worker: the mixed run's own are its labels'.
    const la = label(a, 'listed');
    const ml = label(b, 'mixed_listed');
    const mu = label(b, 'mixed_unlisted');
    const mixedVerdicts = ml.screened + ml.passed + mu.screened + mu.passed;
    const notes = commonNotes(env, tt, a);
    for (const e of Object.entries(b.errors)) if (!(e[0] in a.errors)) notes.push(`mixed run client error ${e[0]}: ${e[1]}`);
    notes.push(`each client waits the greet wait (${waitMs} ms): the DNSBL score is read when it ends, so about rate x ${waitMs / 1000} s clients are in flight`);
    notes.push('*_per_s: verdicts between the first and the last verdict (the rate the screener concludes at once the greet waits end); *_per_s_overall: verdicts / (first connect -> last verdict), greet wait included');
    notes.push(`unlisted clients pass and are handed to the backend (${tt.backend}) before their RCPT is accepted: each costs a handoff (a second socket, XCLIENT)`);
    if (la.passed + ml.passed > 0) notes.push(`${la.passed + ml.passed} listed clients passed: their lookup had not answered when the greet wait ended (fail-open)`);
    if (mu.screened > 0) notes.push(`${mu.screened} unlisted clients were rejected`);
    if (!settled) notes.push('the server still held sockets 10 s after the last client');
    if (o.target !== null) notes.push('--target: the target must use a DNSBL that lists 127.30.0.0/16 (see bench/load/listed.ts) for the rejections to mean anything');
    const figures: Record<string, Figure> = {
      clients_per_run: n,
      listed_rejected: la.screened,
      listed_passed: la.passed,
      listed_refused: la.refused,
      listed_failed: la.failed,
      rejected_per_s: verdictRate(a, la.screened),
      rejected_per_s_overall: a.lastVerdictAt > a.firstAt ? round((la.screened / (a.lastVerdictAt - a.firstAt)) * 1000, 1) : null,
      listed_verdict_ms: la.ms,
      listed_server_cpu_ms_per_conn: (() => {
        const c = cpuMsBetween(before.sample, mid.sample);
        return c === null || n === 0 ? null : round(c / n, 3);
      })(),
      mixed_listed_share_pct: wl,
      mixed_rejected: ml.screened + mu.screened,
      mixed_passed: ml.passed + mu.passed,
      mixed_listed_passed: ml.passed,
      mixed_unlisted_rejected: mu.screened,
      mixed_failed: ml.failed + mu.failed,
      mixed_screened_per_s: verdictRate(b, mixedVerdicts),
      mixed_screened_per_s_overall: b.lastVerdictAt > b.firstAt ? round((mixedVerdicts / (b.lastVerdictAt - b.firstAt)) * 1000, 1) : null,
      mixed_listed_verdict_ms: ml.ms,
      mixed_unlisted_verdict_ms: mu.ms,
      mixed_server_cpu_ms_per_conn: (() => {
        const c = cpuMsBetween(mid.sample, after.sample);
        return c === null || n === 0 ? null : round(c / n, 3);
      })(),
      server_cpu_pct_avg: cpuBetween(before.sample, after.sample),
      server_cpu_pct_peak: tt.pid === null ? null : s.peakCpu(),
      ...serverFigures('before', before),
      server_peak_rss_kb: tt.pid === null ? null : s.peakRss(),
      ...serverFigures('after', after),
      generator_cpu_ms: Math.round(b.cpuMs),
    };
    return {
      scenario: 'listed',
      settings: {
        clients: n, greet_wait_ms: o.target === null ? waitMs : null, action: o.action, rate: o.rate, pending_cap: o.pending,
        site: DNSBL_SITE, threshold: 3, listed_share_pct: wl, workers: fleet.workers.length,
      },
      figures,
      notes,
      timeline: s.points,
    };
  } finally {
    sampler.s?.stop();
    await fleet?.stop();
    await t?.stop();
    await rbl?.stop();
  }
}
