/*
 * bench/load/slowloris.ts - the slowloris scenario: clients in the dummy
 * engine that send one byte every few seconds.
 *
 * Exports: slowloris(env).
 * N slow zombies talk first (pregreet, enforce: they land in the dummy SMTP
 * engine after the greet wait), then dribble "HELO aaaa..." one byte every
 * --dribble, a command that never ends. The dummy engine's command time limit
 * (--command-time, postscreen_command_time_limit) times the whole command,
 * not the gap between bytes, so each is cut with a 421 at the limit however
 * often it sends. Figures: RSS per connection while all dribble, the time
 * from the greeting to the cut (≈ the limit), how many were cut, and the
 * descriptors and RSS after the cut (all released).
 */
import { Fleet, Sampler, log, measure } from './fleet.js';
import { percentiles, round } from './proc.js';
import { sleep } from './server.js';
import {
  commonNotes, cpuBetween, kbDelta, perConnBytes, serverFigures, settle, targetFor, workersFor,
  type Env, type ScenarioResult,
} from './scenarios.js';

export async function slowloris(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const n = o.count ?? 5000;
  const waitMs = o.greetWaitMs ?? 1000;
  const limitMs = o.commandTimeMs;
  const end = Date.now() + o.durationMs;
  const t = await targetFor(env, waitMs, 'enforce', limitMs, null);
  const fleet = new Fleet(env.self, workersFor(o, n), end + 30_000);
  const sampler = new Sampler(t.pid);
  try {
    await sleep(300);
    const before = measure(t.pid, t.listen);
    sampler.start();
    log(`slowloris: ${n} slow zombies, one byte every ${o.dribbleMs} ms, command time limit ${limitMs} ms, pending cap ${o.pending}`);
    const opened = await fleet.open('slow', t.listen, n, 0, o.addrBase, o.pending, o.rate, end - limitMs - 5000, null, o.dribbleMs);
    const heldAt = Date.now();
    // Measure while all dribble: half-way to the limit of the last one greeted.
    await sleep(Math.min(limitMs / 2, Math.max(0, end - Date.now() - 5000)));
    const held = measure(t.pid, t.listen);
    const serverHeld = held.fds >= 0 && before.fds >= 0 ? held.fds - before.fds : null;
    log(`slowloris: ${opened.counts.held} dribbling (server fds ${held.fds}); waiting for the cut`);
    // Wait for the cut: every slow zombie closed, bounded by the limit + 10 s and --duration.
    const until = Math.min(end, heldAt + limitMs + 10_000);
    const shown = fleet.showProgress('slow');
    await sleep(Math.max(0, Math.min(until, heldAt + limitMs + 1500) - Date.now())); // none is cut before the limit
    while (Date.now() < until) {
      const open = fleet.progress.reduce((a, c) => a + c.open, 0);
      if (open === 0) break;
      await sleep(250);
    }
    clearInterval(shown);
    const cutAt = Date.now();
    const gen = await fleet.closeAll(15_000);
    const settled = await settle(t, before.fds + 2, 10_000);
    await sleep(1000);
    const after = measure(t.pid, t.listen);
    sampler.stop();
    const st = gen.byLabel['slow'];
    const cut = st?.counts.cut ?? 0;
    const cutMs = percentiles(st?.cutMs ?? []);
    const notes = commonNotes(env, t, opened);
    notes.push(`the command time limit (${limitMs} ms) bounds the whole command from the greeting, whatever the gaps: cut_ms should sit at the limit plus at most one coarse timer tick`);
    notes.push('held RSS is taken half-way to the limit while every zombie dribbles; per connection = (held - before) / sockets held');
    if (cut < opened.counts.accepted) notes.push(`${opened.counts.accepted - cut} slow zombies were not cut by a 421 (closed otherwise or still open when the wait ended at ${cutAt - heldAt} ms)`);
    if (!settled) notes.push('the server still held sockets 10 s after the cut');
    return {
      scenario: 'slowloris',
      settings: { zombies: n, greet_wait_ms: o.target === null ? waitMs : null, command_time_limit_ms: o.target === null ? limitMs : null, dribble_ms: o.dribbleMs, pending_cap: o.pending, workers: fleet.workers.length },
      figures: {
        zombies_requested: n,
        zombies_dribbling: opened.counts.held,
        server_sockets_held: serverHeld,
        cut,
        cut_ratio: n > 0 ? round(cut / n, 4) : null,
        other_replies: st?.counts.refused ?? 0,
        failed: st?.counts.failed ?? 0,
        cut_ms: cutMs,
        cut_over_limit_ms: { p50: round(cutMs.p50 - limitMs, 1), p99: round(cutMs.p99 - limitMs, 1), max: round(cutMs.max - limitMs, 1) },
        ...serverFigures('before', before),
        ...serverFigures('held', held),
        rss_per_conn_bytes: perConnBytes(kbDelta(before.sample, held.sample, 'rssKb'), serverHeld ?? opened.counts.held),
        server_cpu_pct_dribbling: cpuBetween(held.sample, after.sample),
        server_peak_rss_kb: t.pid === null ? null : sampler.peakRss(),
        ...serverFigures('after', after),
        generator_cpu_ms: Math.round(gen.cpuMs),
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
