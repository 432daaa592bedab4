/*
 * bench/load/deep.ts - the deep scenario: new, well-behaved clients with the
 * three deep tests on, under deep.after_pass reconnect (postscreen's way) and
 * handoff (the same connection), against the built-in sink backend.
 *
 * Exports: deep(env), DEEP_TESTS_ON.
 * Clients are `polite` zombies (bench/load/worker.ts): they wait for the
 * greeting, then EHLO, MAIL, RCPT; an accepted RCPT (the sink behind the
 * splice) is a delivery, timed from connect. Two screeners, one per mode,
 * each started for its run and stopped after it:
 *   reconnect  N clients (127.50.x.y) get 450 at RCPT (deferred, remembered);
 *              the same N addresses come back at once: PASS OLD, delivered.
 *   handoff    N other clients (127.51.x.y) are delivered on their first
 *              connection: the screener replays EHLO/MAIL/RCPT to the sink.
 * Figures per mode: deliveries, connections per delivery, server CPU ms per
 * delivery, deliveries per second (between the first and the last), and the
 * delivering connection's connect -> RCPT accepted time; for reconnect also
 * the first attempt's connect -> 450 time and its share of the CPU. The 450s
 * are counted from the pass's own reply codes (the worker's `errors` are
 * cumulative over the fleet's life: see codesSince). A real sender's
 * retry after the 450 comes when its queue retries (Postfix: 5 minutes at
 * the least), which this bench leaves out: reconnect's latency here is the
 * retry connection's alone.
 */
import { Fleet, Sampler, log, measure, type Opened } from './fleet.js';
import { percentiles, round } from './proc.js';
import type { PlanEntry } from './protocol.js';
import {
  commonNotes, cpuMsBetween, serverFigures, settle, targetFor, workersFor,
  type Env, type Figure, type ScenarioResult,
} from './scenarios.js';
import { label, verdictRate } from './listed.js';

export const DEEP_TESTS_ON = { pipelining: { enable: true }, non_smtp: { enable: true }, bare_newline: { enable: true } };
const RECONNECT_BASE: readonly [number, number] = [50, 0];
const HANDOFF_BASE: readonly [number, number] = [51, 0];

interface Run {
  opened: Opened;
  label: string;
}

const stats = (r: Run): ReturnType<typeof label> => label(r.opened, r.label);

const plan = (label: string, base: readonly [number, number]): PlanEntry[] => [{ label, kind: 'polite', base, weight: 1 }];

/** codesSince - the reply codes and socket errors of one pass: the fleet's cumulative counts now minus before it. */
export function codesSince(before: Record<string, number>, now: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export async function deep(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  if (o.target !== null) throw new Error('deep: starts its own two screeners (reconnect, handoff); --target is not supported');
  const n = o.count ?? 2000;
  const waitMs = o.greetWaitMs ?? 1000;
  const start = Date.now();
  const end = start + o.durationMs;
  const fleet = new Fleet(env.self, workersFor(o, n), end + 30_000);
  const samplers: Sampler[] = [];
  const stops: Array<() => Promise<void>> = [];
  /** A screener for one mode, sampled from now on; stopped by the finally below if the run throws. */
  const startMode = async (afterPass: 'reconnect' | 'handoff'): Promise<{ t: Awaited<ReturnType<typeof targetFor>>; sampler: Sampler; m0: ReturnType<typeof measure> }> => {
    const t = await targetFor(env, waitMs, 'enforce', 300_000, null, { deep: { ...DEEP_TESTS_ON, after_pass: afterPass } });
    stops.push(t.stop);
    const sampler = new Sampler(t.pid);
    samplers.push(sampler);
    const m0 = measure(t.pid, t.listen);
    sampler.start();
    return { t, sampler, m0 };
  };
  try {
    // ---- reconnect: 450, then the retry ----
    const half = start + (end - start) / 2;
    const { t: ta, sampler: sa, m0: a0 } = await startMode('reconnect');
    log(`deep: reconnect, ${n} new clients (127.50.x.y), greet wait ${waitMs} ms, then their retries`);
    const first: Run = { label: 'reconnect_first', opened: await fleet.open('polite', ta.listen, n, 0, RECONNECT_BASE, o.pending, o.rate, (start + half) / 2, plan('reconnect_first', RECONNECT_BASE)) };
    const am = measure(ta.pid, ta.listen);
    const retry: Run = { label: 'reconnect_retry', opened: await fleet.open('polite', ta.listen, n, 0, RECONNECT_BASE, o.pending, o.rate, half - 2000, plan('reconnect_retry', RECONNECT_BASE)) };
    await settle(ta, a0.fds + 2, 10_000);
    const a1 = measure(ta.pid, ta.listen);
    sa.stop();
    await ta.stop();
    stops.pop();

    // ---- handoff: delivered on the first connection ----
    const { t: tb, sampler: sb, m0: b0 } = await startMode('handoff');
    log(`deep: handoff, ${n} new clients (127.51.x.y), greet wait ${waitMs} ms`);
    const hand: Run = { label: 'handoff', opened: await fleet.open('polite', tb.listen, n, 0, HANDOFF_BASE, o.pending, o.rate, end - 2000, plan('handoff', HANDOFF_BASE)) };
    const settled = await settle(tb, b0.fds + 2, 10_000);
    const b1 = measure(tb.pid, tb.listen);
    sb.stop();

    const f = stats(first);
    const r = stats(retry);
    const h = stats(hand);
    const perDelivery = (a: typeof a0, b: typeof a1, delivered: number): number | null => {
      const c = cpuMsBetween(a.sample, b.sample);
      return c === null || delivered === 0 ? null : round(c / delivered, 3);
    };
    // Reply codes ("reply 450") and socket errors per pass: the workers' counts are cumulative over the three passes.
    const fCodes = codesSince({}, first.opened.errors);
    const rCodes = codesSince(first.opened.errors, retry.opened.errors);
    const hCodes = codesSince(retry.opened.errors, hand.opened.errors);
    const deferred = fCodes['reply 450'] ?? 0;
    const firstCpu = cpuMsBetween(a0.sample, am.sample);
    const runCpu = cpuMsBetween(a0.sample, a1.sample);
    // Opened.counts are cumulative too: connections made by each run.
    const reconnectConns = retry.opened.counts.started;
    const handoffConns = hand.opened.counts.started - retry.opened.counts.started;
    const notes = commonNotes(env, tb, hand.opened).filter((x) => !/^client socket errors|refused by the server/.test(x));
    notes.push(`replies other than 2xx/5xx and socket errors, per pass: reconnect first ${JSON.stringify(fCodes)} (a 450 expected for each), retry ${JSON.stringify(rCodes)}, handoff ${JSON.stringify(hCodes)}`);
    notes.push(o.rate > 0
      ? `clients connect at --rate ${o.rate}/s: *_delivered_per_s is bounded by it`
      : `clients connect unpaced, at most --pending ${o.pending} connecting at a time: *_delivered_per_s is what this machine sustains, generator included`);
    notes.push('deep tests on: pipelining, non_smtp, bare_newline (postscreen\'s default actions); backend: the built-in sink, which offers XCLIENT');
    notes.push('reconnect: a real sender retries after the 450 when its queue does (Postfix: minimal_backoff_time, 300 s by default); this bench retries at once, so reconnect_ms is the retry connection\'s connect -> RCPT accepted alone, and the first delivery really waits minutes');
    notes.push('handoff_ms: connect -> RCPT accepted on the first connection: the greet wait, the dummy session, then the replay to the backend (connect, XCLIENT, EHLO, MAIL, RCPT)');
    notes.push('*_cpu_ms_per_delivery: the screener\'s CPU over the whole run (both passes for reconnect) / deliveries; reconnect_first_cpu_share: the first pass\'s part of it (the dummy session and the 450; the retry is a PASS OLD and a splice)');
    notes.push('reconnect_first_ms: connect -> 450 at RCPT of the first attempt (the greet wait and the dummy session)');
    if (!settled) notes.push('the handoff screener still held sockets 10 s after the last client');
    const figures: Record<string, Figure> = {
      clients_per_run: n,
      reconnect_deferred: deferred,
      reconnect_first_delivered: f.passed,
      reconnect_first_failed: f.failed + f.screened + f.refused - deferred,
      reconnect_first_ms: percentiles(first.opened.byLabel[first.label]?.deferredMs ?? []),
      reconnect_first_cpu_ms: firstCpu === null ? null : Math.round(firstCpu),
      reconnect_first_cpu_share: firstCpu === null || runCpu === null || runCpu <= 0 ? null : round(firstCpu / runCpu, 2),
      reconnect_delivered: r.passed,
      reconnect_retry_failed: r.failed + r.screened + r.refused,
      reconnect_connections_per_delivery: r.passed > 0 ? round(reconnectConns / r.passed, 2) : null,
      reconnect_cpu_ms_per_delivery: perDelivery(a0, a1, r.passed),
      reconnect_delivered_per_s: verdictRate(retry.opened, r.passed),
      reconnect_ms: r.ms,
      handoff_delivered: h.passed,
      handoff_failed: h.failed + h.screened + h.refused,
      handoff_connections_per_delivery: h.passed > 0 ? round(handoffConns / h.passed, 2) : null,
      handoff_cpu_ms_per_delivery: perDelivery(b0, b1, h.passed),
      handoff_delivered_per_s: verdictRate(hand.opened, h.passed),
      handoff_ms: h.ms,
      ...serverFigures('reconnect_before', a0),
      ...serverFigures('reconnect_after', a1),
      ...serverFigures('handoff_before', b0),
      ...serverFigures('handoff_after', b1),
      generator_cpu_ms: Math.round(hand.opened.cpuMs),
    };
    return {
      scenario: 'deep',
      settings: { clients: n, greet_wait_ms: waitMs, rate: o.rate, pending_cap: o.pending, workers: fleet.workers.length, deep: 'pipelining non_smtp bare_newline' },
      figures,
      notes,
      timeline: sb.points,
    };
  } finally {
    for (const s of samplers) s.stop();
    await fleet.stop();
    for (const stop of stops) await stop();
  }
}
