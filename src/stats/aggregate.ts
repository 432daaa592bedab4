/*
 * stats/aggregate.ts - Rec after Rec -> the counts `smtpscreen stats` reports.
 *
 * Exports: Aggregator (line(kind, rec, raw, format), summary(top)).
 * Memory is bounded whatever the log's size: every per-key table is a
 * TopCounter or an Evicting map (stats/bounded.ts), the per-hour table has 24
 * rows (hour of day as written, as pflogsumm counts), stress periods are kept
 * up to 100. Connections in flight are remembered by client and port (up to
 * 100,000) to time the greeting delay of clients that are handed over:
 * CONNECT to HANDOFF (JSON), or to PASS NEW / PASS OLD / ALLOWLISTED
 * (postscreen lines, which have no HANDOFF).
 * Shadow mode: an event with a `would` field (reject, drop, defer) is counted
 * in `would` by test, next to the real actions in `tests` (its action:
 * shadow); a GREYLIST or NOQUEUE with `would` did not happen for real and is
 * left out of the greylist and reject tables.
 */
import { EV } from '../log/events.js';
import { Evicting, Histogram, TopCounter } from './bounded.js';
import type { LineKind, Rec } from './record.js';
import { TEST_OF, networkOf, reasonOf } from './keys.js';
import { HOUR_COLUMNS, type Counts, type HourColumn, type Summary } from './summary.js';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

interface Conn { t: number; delay: number }
interface Grey { retried: boolean }
export interface NetEntry { sites: TopCounter }

/** Bounds of the latency histograms, in ms. */
const DELAY_MS = [100, 250, 500, 1000, 2000, 4000, 6000, 10000];
const LOOKUP_MS = [10, 25, 50, 100, 250, 500, 1000, 2000, 5000];

export class Aggregator {
  readonly lines = { total: 0, events: 0, other: 0, malformed: 0 };
  readonly formats = { json: 0, postscreen: 0 };
  readonly malformedSamples: Array<{ line: number; text: string }> = [];
  first = { t: NaN, stamp: '' };
  last = { t: NaN, stamp: '' };
  readonly events = new TopCounter(256);
  readonly hours: Record<HourColumn, number[]> = Object.fromEntries(HOUR_COLUMNS.map((c) => [c, new Array<number>(24).fill(0)])) as
    Record<HourColumn, number[]>;
  readonly c = { connections: 0, pass_new: 0, pass_new_deep: 0, pass_old: 0, allowlisted: 0, denylisted: 0, rejected: 0, deferred: 0,
    dropped: 0, all_ports_busy: 0, too_many_connections: 0, proxy_fail: 0, disconnects: 0, reject_lines: 0, handoffs: 0, warnings: 0 };
  readonly tests = new TopCounter<TopCounter>(64, () => new TopCounter(16));
  readonly would = new TopCounter<TopCounter>(64, () => new TopCounter(16));
  readonly hangups = new TopCounter(32);
  readonly rejectReasons = new TopCounter(1000);
  readonly rejectCodes = new TopCounter(100);
  readonly rejectClients = new TopCounter(10_000);
  readonly rejectCommands = new TopCounter(16);
  readonly networks = new TopCounter<NetEntry>(10_000, () => ({ sites: new TopCounter(16) }));
  readonly dnsbl = { events: 0, sites: new TopCounter(1000), late: new TopCounter(1000), slow: new TopCounter(1000),
    errors: new TopCounter(1000), suspended: new TopCounter(1000), lookup: new Histogram(LOOKUP_MS), score: new TopCounter(100) };
  readonly grey = { deferred: new TopCounter(16), passed: 0, networks: 0, retried: 0, neverRetried: 0, approximate: false,
    delay: new Histogram([60_000, 300_000, 900_000, 3_600_000, 14_400_000, 86_400_000]) };
  readonly greyNets = new Evicting<Grey>(100_000);
  readonly conns = new Evicting<Conn>(100_000);
  readonly greetDelay = new Histogram(DELAY_MS);
  readonly fallbacks = new TopCounter(200);
  readonly backendFail = new TopCounter(200);
  readonly backendProbe = new TopCounter(200);
  readonly handoffVerdicts = new TopCounter(16);
  readonly handshake = new Histogram(LOOKUP_MS);
  readonly stress: Array<{ enter: string; leave: string | null; count: number; duration_ms: number | null; t: number }> = [];
  stressEnters = 0;
  stressMs = 0;

  constructor() {
    this.conns.onEvict = (_k, c) => this.#finishConn(c);
    this.greyNets.onEvict = (_k, g) => {
      this.grey.approximate = true;
      if (!g.retried) this.grey.neverRetried++;
    };
  }

  /** line - count one line: its kind from a parser, the Rec it filled, its text (for malformed samples). */
  line(kind: LineKind, rec: Rec, raw: string, format: 'json' | 'postscreen'): void {
    this.lines.total++;
    if (kind === 'malformed') {
      this.lines.malformed++;
      if (this.malformedSamples.length < 5) this.malformedSamples.push({ line: this.lines.total, text: raw.slice(0, 200) });
      return;
    }
    this.formats[format]++;
    if (rec.level !== '') this.c.warnings++;
    if (kind === 'other') {
      this.lines.other++;
      return;
    }
    this.lines.events++;
    this.#event(rec);
  }

  #hour(col: HourColumn, rec: Rec): void {
    if (rec.hour >= 0 && rec.hour < 24) (this.hours[col][rec.hour] as number)++;
  }

  #event(r: Rec): void {
    const f = r.f;
    const name = r.event;
    this.events.add(name);
    if (Number.isFinite(r.t)) {
      if (!(r.t >= this.first.t)) this.first = { t: r.t, stamp: r.stamp };
      if (!(r.t <= this.last.t)) this.last = { t: r.t, stamp: r.stamp };
    }
    const key = r.client !== '' ? `${r.client} ${r.port}` : '';
    const test = TEST_OF[name];
    const action = str(f['action']);
    const would = str(f['would']);
    if (test !== undefined && name !== EV.GREYLIST) {
      this.tests.add(test).add(action ?? 'unknown');
      if (action === 'drop') this.#reject(r, 'dropped', `${test} (drop)`);
    }
    if (would !== undefined) {
      this.would.add(test ?? name.toLowerCase()).add(would);
      this.#hour('would', r);
    }
    switch (name) {
      case EV.CONNECT: {
        this.c.connections++;
        this.#hour('connections', r);
        if (key !== '') {
          const old = this.conns.map.get(key);
          if (old !== undefined) this.#finishConn(old);
          this.conns.set(key, { t: r.t, delay: -1 });
        }
        break;
      }
      case EV.PASS_NEW:
        if (f['deep'] !== undefined) this.c.pass_new_deep++;
        else this.#passed(key, r);
        this.c.pass_new++;
        this.#hour('pass_new', r);
        break;
      case EV.PASS_OLD:
        this.c.pass_old++;
        this.#hour('pass_old', r);
        this.#passed(key, r);
        break;
      case EV.ALLOWLISTED:
        this.c.allowlisted++;
        this.#hour('allowlisted', r);
        this.#passed(key, r);
        break;
      case EV.DENYLISTED:
        this.c.denylisted++;
        break;
      case EV.HANDOFF: {
        this.c.handoffs++;
        this.handoffVerdicts.add(str(f['verdict']) ?? 'unknown');
        const ms = num(f['handshake_ms']);
        if (ms !== undefined) this.handshake.add(ms);
        const c = key !== '' ? this.conns.map.get(key) : undefined;
        if (c !== undefined && Number.isFinite(c.t) && Number.isFinite(r.t)) c.delay = r.t - c.t;
        break;
      }
      case EV.HANGUP:
        this.hangups.add(str(f['phase']) || 'unknown');
        this.#hour('hangups', r);
        break;
      case EV.DISCONNECT: {
        this.c.disconnects++;
        const c = key !== '' ? this.conns.map.get(key) : undefined;
        if (c !== undefined) {
          this.conns.map.delete(key);
          this.#finishConn(c);
        }
        break;
      }
      case EV.NOQUEUE: {
        if (would !== undefined) break; // shadow: counted in `would` only
        const reply = str(f['reply']) ?? '';
        const code = /^\d{3}/.exec(reply)?.[0] ?? 'unknown';
        this.rejectCodes.add(code);
        this.#rejectLine(r, str(f['cmd']) ?? 'RCPT');
        const reason = str(f['reason']) ?? reasonOf(reply);
        if (code.startsWith('4')) {
          this.c.deferred++;
          this.#hour('deferred', r);
          this.rejectReasons.add(`${reason} (${code})`);
        } else {
          this.#reject(r, 'rejected', `${reason} (${code})`);
          const site = /blocked using (\S+?)[;,]?(?:\s|$)/.exec(reply)?.[1];
          if (site !== undefined && r.client !== '') this.networks.add(networkOf(r.client) || r.client, 0).sites.add(site);
        }
        break;
      }
      case EV.ALL_PORTS_BUSY: case EV.TOO_MANY_CONNECTIONS:
        if (name === EV.ALL_PORTS_BUSY) this.c.all_ports_busy++; else this.c.too_many_connections++;
        this.#rejectLine(r, 'CONNECT');
        this.#hour('busy', r);
        break;
      case EV.PROXY_FAIL:
        this.c.proxy_fail++;
        break;
      case EV.DNSBL: this.#dnsbl(r); break;
      case EV.DNSBL_WARNING: {
        const site = str(f['site']) ?? 'unknown';
        if (f['reason'] === 'slow') this.dnsbl.slow.add(site);
        else if (f['reason'] === 'error-answer') this.dnsbl.errors.add(site);
        break;
      }
      case EV.DNSBL_SITE:
        if (f['state'] === 'suspended') this.dnsbl.suspended.add(str(f['site']) ?? 'unknown');
        break;
      case EV.GREYLIST: if (would === undefined) this.#greylist(r); break;
      case EV.HANDOFF_FALLBACK:
        this.fallbacks.add(`${str(f['reason']) ?? 'unknown'} (at ${str(f['stage']) ?? 'unknown'})`);
        break;
      case EV.BACKEND_FAIL:
        (f['probe'] === true ? this.backendProbe : this.backendFail)
          .add(`${str(f['backend']) ?? 'unknown'} at ${str(f['stage']) ?? 'unknown'}: ${str(f['reason'])?.slice(0, 80) ?? 'unknown'}`);
        break;
      case EV.STRESS: this.#stress(r); break;
    }
  }

  /** A rejected or dropped client: per hour, by reason, by client and network. */
  #reject(r: Rec, col: 'rejected' | 'dropped', reason: string): void {
    this.c[col]++;
    this.#hour(col, r);
    this.rejectReasons.add(reason);
    if (r.client !== '') this.networks.add(networkOf(r.client) || r.client);
  }

  /** A reject line as pflogsumm counts them: NOQUEUE (4xx, 5xx) and refused connections. */
  #rejectLine(r: Rec, cmd: string): void {
    this.c.reject_lines++;
    this.rejectCommands.add(cmd);
    if (r.client !== '') this.rejectClients.add(r.client);
  }

  #passed(key: string, r: Rec): void {
    const c = key !== '' ? this.conns.map.get(key) : undefined;
    if (c !== undefined && c.delay < 0 && Number.isFinite(c.t) && Number.isFinite(r.t)) c.delay = r.t - c.t;
  }

  #finishConn(c: Conn): void {
    if (c.delay >= 0) this.greetDelay.add(c.delay);
  }

  #dnsbl(r: Rec): void {
    const f = r.f;
    this.dnsbl.events++;
    const score = num(f['score']);
    if (score !== undefined) this.dnsbl.score.add(String(score));
    const ms = num(f['lookup_ms']);
    if (ms !== undefined) this.dnsbl.lookup.add(ms);
    const net = r.client !== '' ? networkOf(r.client) || r.client : '';
    const hits = f['hits'];
    if (Array.isArray(hits)) {
      for (const h of hits) {
        const site = h !== null && typeof h === 'object' ? str((h as Record<string, unknown>)['site']) : undefined;
        if (site === undefined) continue;
        this.dnsbl.sites.add(site);
        if (net !== '') this.networks.add(net, 0).sites.add(site);
      }
    }
    const late = f['late'];
    if (Array.isArray(late)) for (const s of late) if (typeof s === 'string') this.dnsbl.late.add(s);
  }

  #greylist(r: Rec): void {
    const f = r.f;
    const net = str(f['network']) ?? (r.client !== '' ? networkOf(r.client) || r.client : '');
    const g = net !== '' ? this.greyNets.map.get(net) : undefined;
    if (f['state'] === 'pass') {
      this.grey.passed++;
      const d = num(f['delay_ms']);
      if (d !== undefined) this.grey.delay.add(d);
      if (g !== undefined && !g.retried) { g.retried = true; this.grey.retried++; }
      return;
    }
    this.grey.deferred.add(str(f['reason']) ?? 'unknown');
    if (net === '') return;
    if (g === undefined) {
      this.grey.networks++;
      this.greyNets.set(net, { retried: false });
    } else if (!g.retried) {
      g.retried = true;
      this.grey.retried++;
    }
  }

  #stress(r: Rec): void {
    const f = r.f;
    const stamp = r.stamp !== '' ? r.stamp : Number.isFinite(r.t) ? new Date(r.t).toISOString() : 'unknown';
    const open = this.stress.at(-1);
    if (f['state'] === 'enter') {
      this.stressEnters++;
      if (open !== undefined && open.leave === null) return;
      if (this.stress.length >= 100) this.stress.shift();
      this.stress.push({ enter: stamp, leave: null, count: num(f['count']) ?? 0, duration_ms: null, t: r.t });
    } else if (open !== undefined && open.leave === null) {
      open.leave = stamp;
      open.duration_ms = Number.isFinite(r.t) && Number.isFinite(open.t) ? r.t - open.t : null;
      if (open.duration_ms !== null) this.stressMs += open.duration_ms;
    }
  }

  /** summary - the report as plain data (--json prints it; the text and HTML renderers read it). */
  summary(top = 20): Summary {
    let never = this.grey.neverRetried;
    for (const g of this.greyNets.map.values()) if (!g.retried) never++;
    const pending: number[] = [];
    for (const c of this.conns.map.values()) if (c.delay >= 0) pending.push(c.delay);
    return buildSummary(this, { top, neverRetried: never, pendingDelays: pending });
  }
}

function nested(t: TopCounter<TopCounter>): Record<string, Counts> {
  const out: Record<string, Counts> = {};
  for (const [k, , inner] of t.top()) out[k] = inner.toObject();
  return out;
}

function iso(t: number, stamp: string): string | null {
  if (stamp !== '') return stamp;
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

function buildSummary(a: Aggregator, o: { top: number; neverRetried: number; pendingDelays: readonly number[] }): Summary {
  const greet = a.greetDelay.clone();
  for (const d of o.pendingDelays) greet.add(d);
  const passes = a.c.pass_new + a.c.pass_old;
  return {
    input: { lines: a.lines.total, events: a.lines.events, other: a.lines.other, malformed: a.lines.malformed, formats: { ...a.formats },
      malformed_samples: a.malformedSamples.slice(), first: iso(a.first.t, a.first.stamp), last: iso(a.last.t, a.last.stamp) },
    connections: { total: a.c.connections, all_ports_busy: a.c.all_ports_busy, too_many_connections: a.c.too_many_connections,
      proxy_fail: a.c.proxy_fail, disconnects: a.c.disconnects },
    verdicts: { pass_old: a.c.pass_old, pass_new: a.c.pass_new, pass_new_deep: a.c.pass_new_deep, allowlisted: a.c.allowlisted,
      denylisted: a.c.denylisted, rejected: a.c.rejected, dropped: a.c.dropped, deferred: a.c.deferred, handoffs: a.c.handoffs,
      pass_new_ratio: passes > 0 ? Math.round((a.c.pass_new / passes) * 1000) / 1000 : null },
    tests: nested(a.tests),
    would: nested(a.would),
    hangups: a.hangups.toObject(),
    rejects: { lines: a.c.reject_lines, by_command: a.rejectCommands.toObject(), codes: a.rejectCodes.toObject(), reasons: a.rejectReasons.toObject(o.top),
      top_clients: a.rejectClients.toObject(o.top), approximate: a.rejectClients.approximate || a.rejectReasons.approximate },
    networks: { top: a.networks.top(o.top).filter(([, n]) => n > 0).map(([network, rejects, e]) => ({ network, rejects, dnsbl_sites: e.sites.toObject(5) })),
      approximate: a.networks.approximate },
    dnsbl: { events: a.dnsbl.events, site_hits: a.dnsbl.sites.toObject(o.top), late: a.dnsbl.late.toObject(o.top),
      slow: a.dnsbl.slow.toObject(o.top), error_answers: a.dnsbl.errors.toObject(o.top), suspended: a.dnsbl.suspended.toObject(o.top),
      scores: a.dnsbl.score.toObject(o.top), lookup_ms: a.dnsbl.lookup.toJSON() },
    greylist: { deferred: a.grey.deferred.total, deferred_by_reason: a.grey.deferred.toObject(), networks_deferred: a.grey.networks,
      retried: a.grey.retried, passed: a.grey.passed, never_retried: o.neverRetried, approximate: a.grey.approximate,
      pass_delay_ms: a.grey.delay.toJSON() },
    deep: { fallbacks: a.fallbacks.toObject(o.top), fallbacks_total: a.fallbacks.total },
    backend: { handoffs_by_verdict: a.handoffVerdicts.toObject(), failures: a.backendFail.toObject(o.top), failures_total: a.backendFail.total,
      probe_failures: a.backendProbe.toObject(o.top), handshake_ms: a.handshake.toJSON() },
    stress: { periods: a.stress.map(({ enter, leave, count, duration_ms }) => ({ enter, leave, count, duration_ms })),
      enters: a.stressEnters, total_ms: a.stressMs },
    greeting_delay_ms: greet.toJSON(),
    hours: Array.from({ length: 24 }, (_, h) => {
      const row = { hour: h } as { hour: number } & Record<HourColumn, number>;
      for (const c of HOUR_COLUMNS) row[c] = a.hours[c][h] as number;
      return row;
    }),
    events: a.events.toObject(),
    warnings: a.c.warnings,
  };
}
