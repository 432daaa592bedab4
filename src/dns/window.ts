/*
 * dns/window.ts - how many UDP tries the resolver keeps on the wire to one server (its window),
 * between a floor safe for any server and the maxOutstanding ceiling.
 *
 * Exports:
 *   Windows                   the windows of a resolver's servers
 *     new Windows(servers, floor, cap, targetMs, periodMs)  sets each server's window to the floor
 *                             (minOutstanding, default 128; the ceiling is maxOutstanding)
 *     start(now)              the resolver's sweep timer starts (after an idle spell)
 *     tick(now)               the sweep's tick (every periodMs): each server's reply rate
 *     reply(s, now)           a UDP reply from s: grow, hold or decay
 *     timeout(s, now)         a UDP try to s went unanswered: back to the floor, growth frozen
 *
 * Why adaptive, measured (bench/load/dns-burst.ts, bench/load/dns-resolver.ts, 2-core machine):
 * - a fast server (rbldnsd on loopback) drops what its 128 KiB receive buffer cannot hold: with
 *   3,000 lookups in flight a fixed window of 128 lost no try, 256 lost 109-120, 512 568-716,
 *   1024 568-846 (each a 1 s retry). More slots never help it: it answers in microseconds.
 * - a server answering in 200 ms (a recursive resolver asking far away) serves window/0.2 s: 640
 *   lookups/s at 128, so of a burst of 9,000 (3,000 new clients x 3 sites) 6,057 were answered
 *   in a 10 s dnsbl.timeout; its queries wait upstream, not in its receive buffer.
 * So the window starts at the floor and grows by one per reply (each reply then sends at most two
 * queries: never a burst beyond what came back), only while the queries waiting for this server
 * could not drain within targetMs (the resolver's per-try timeout) at the rate replies came back
 * (smoothed over the sweep's ticks), and to at most twice its size at the last tick. The measured rate, not a
 * round trip, decides: a fast server on a busy CPU drains thousands a second and is left alone
 * (its round trips look long only because our own event loop is late to read the replies); a
 * server answering in 200 ms drains window/0.2 s and grows until its queue drains in time, up to
 * the ceiling. With no query waiting each reply takes one slot back (down to the floor), so the
 * next burst starts safe again. A try that times out puts the window back to the floor and stops
 * its growth for FREEZE_MS: drops are the sign of a server whose buffer the window overran (or of
 * genuine overload, where more slots cannot help); a server that is merely far away drops none.
 * Known cost: when our own CPU is the bottleneck (a queue that cannot drain in time even at the
 * floor) the rate says "slow" and the window grows into a fast server's buffer once per FREEZE_MS:
 * rbldnsd, 10,000 in flight: 0-315 of 30,000 tries retried (0-510 at load 8), no lookup lost.
 */
import type { Server } from './query.js';

/** Weight of one tick's reply rate in the smoothed rate. */
const RATE_GAIN = 1 / 4;
/** After a try timed out, the window is not grown for this long. */
const FREEZE_MS = 10_000;

export class Windows {
  readonly #servers: readonly Server[];
  readonly #cap: number;
  readonly #targetMs: number;
  readonly #periodMs: number;
  #lastTick = 0;

  constructor(servers: readonly Server[], floor: number, cap: number, targetMs: number, periodMs: number) {
    this.#servers = servers;
    this.#cap = cap;
    this.#targetMs = targetMs;
    this.#periodMs = periodMs;
    for (const s of servers) s.window = s.floor = s.tickWindow = floor;
  }

  start(now: number): void {
    this.#lastTick = now;
    for (const s of this.#servers) s.delivered = 0; // an idle spell is no measure of a rate
  }

  /**
   * The rate is smoothed over ticks (RATE_GAIN): a server answering in 200 ms sends its replies in
   * waves, one tick full and the next empty. A tick late by more than a period saw our event loop
   * stall, not the server: the rate starts over (no growth until a tick on time).
   */
  tick(now: number): void {
    const elapsed = now - this.#lastTick;
    if (elapsed <= 0) return;
    this.#lastTick = now;
    const stalled = elapsed > 2 * this.#periodMs;
    for (const s of this.#servers) {
      const r = s.delivered / elapsed;
      s.rate = stalled ? 0 : s.rate === 0 ? r : s.rate + (r - s.rate) * RATE_GAIN;
      s.delivered = 0;
      s.tickWindow = s.window;
    }
  }

  reply(s: Server, now: number): void {
    s.delivered++;
    const waiting = s.wait.length - s.head; // may count a few stale entries: an estimate
    if (waiting === 0) {
      if (s.window > s.floor) s.window--;
    } else if (s.window < this.#cap && s.window < 2 * s.tickWindow && s.rate > 0 && waiting > s.rate * this.#targetMs && now >= s.frozenUntil) {
      s.window++;
    }
  }

  timeout(s: Server, now: number): void {
    s.frozenUntil = now + FREEZE_MS;
    s.window = s.floor;
  }
}
