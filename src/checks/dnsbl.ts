/*
 * checks/dnsbl.ts - the DNSBL test: weighted blocklist and allowlist sites,
 * score, thresholds, reply text, and site health. No UDP here: lookups go
 * through an injected DnsLookup, reverse names through an injected function.
 *
 * Exports: Dnsbl, DnsblQuery, DnsblOptions, DnsblHit, DnsblSummary, dnsblReply().
 * Dnsbl is an EarlyCheck (checks/check.ts): start(), outcome().
 * One query per client connection: start() launches one lookup per distinct
 * domain (sites sharing a domain share its answer); each answer adds the
 * weight of every site of that domain whose filter matches. The session reads
 * the summary when the greet wait ends: lookups still pending count as not
 * listed (fail-open) and are named in `late`.
 * Site health (postscreen has none): each domain is probed with its test
 * entries; a domain that fails the probe, or gives error_limit errors in a
 * row, is suspended: its weight counts as zero and it is not even asked,
 * until a probe passes again. A dead list never rejects anybody.
 * Only what the server did counts as an error: a query sent and not answered,
 * an error rcode, a reserved error answer. A lookup that ran out of time in
 * the resolver's own queue (error 'queued': a burst beyond what the resolver
 * sends at once) is our overload: counted in `overloaded`, logged as DNSBL
 * WARNING reason overload (at most once a second per site, with the count
 * since the last such line), and neither an error nor an answer for the site.
 * A probe that ends 'queued' is inconclusive and changes nothing.
 * No timers here: the server calls healthTick() every health interval.
 * Metrics: `observed`, when set (server/generation.ts: the Emitter), is asked
 * for its observer at each answer; with none, an answer costs one null check.
 */
import type { DnsLookup, LookupResult } from '../dns/types.js';
import { EV } from '../log/events.js';
import type { EmitObserver, LookupOutcome } from '../log/emit.js';
import { TestIndex } from './tests.js';
import type { CheckOutcome, CheckRun, EarlyCheck } from './check.js';
import { filterMatches, isReservedErrorAnswer } from './dnsbl-site.js';
import { parseSite, type DnsblSite } from '../config/dnsbl-site.js';

export interface DnsblOptions {
  threshold: number;
  allowlistThreshold: number;
  ttlMinMs: number;
  ttlMaxMs: number;
  slowWarningMs: number;
  /** dnsbl.timeout: the deadlineMs of the check contract (default 0: none given). */
  timeoutMs?: number;
  txt: boolean;
  replyMap: Record<string, string>;
  /** log.reveal_sites: log the real domains; otherwise (default) their replyMap names. */
  revealSites?: boolean;
  health: {
    enable: boolean;
    intervalMs: number;
    listed: string;
    unlisted: string;
    errorLimit: number;
    sites: Record<string, { listed: string; unlisted: string }>;
  };
}

export interface DnsblHit {
  site: string;
  weight: number;
  records: string[];
}

export interface DnsblSummary {
  score: number;
  hits: DnsblHit[];
  /** Every lookup answered (or its domain is suspended). */
  complete: boolean;
  /** Domains whose answer had not arrived. */
  late: string[];
  /** Pass TTL from the answers, clamped; ms. */
  ttlMs: number;
  /** ms from start to the last answer. */
  lookupMs: number;
}

export type Emit = (event: string, fields: Record<string, unknown>) => void;
export type ReverseFn = (addr: string, zone: string) => string | null;

interface Domain {
  readonly domain: string;
  readonly sites: DnsblSite[];
  suspended: boolean;
  errors: number;
  lastSlowWarn: number;
  lastErrorWarn: number;
  lastOverloadWarn: number;
  /** Overloaded lookups not logged yet. */
  overloadUnlogged: number;
  probeListed: string;
  probeUnlisted: string;
  probing: boolean;
}

const WARN_EVERY_MS = 60_000;
/** Overload lines are about a burst happening now: each second's count, not one line a minute. */
const OVERLOAD_WARN_EVERY_MS = 1000;

export class DnsblQuery implements CheckRun {
  readonly client: string;
  readonly started: number;
  pending = 0;
  score = 0;
  hits: DnsblHit[] = [];
  lateDomains: Set<string> = new Set();
  ttlSec = Infinity;
  lastAnswer = 0;
  cancelled = false;
  /** TXT texts by domain, when dnsbl.txt is on. */
  txt = new Map<string, string>();
  constructor(client: string, started: number) {
    this.client = client;
    this.started = started;
  }
  cancel(): void {
    this.cancelled = true;
  }
}

export class Dnsbl implements EarlyCheck<DnsblQuery> {
  readonly test = TestIndex.dnsbl;
  readonly opts: DnsblOptions;
  readonly domains: Domain[];
  readonly #lookup: DnsLookup;
  readonly #reverse: ReverseFn;
  readonly #emit: Emit;
  readonly #now: () => number;
  /** Lookups (and probes) that ended 'queued' in the resolver: our overload, not the sites'. */
  overloaded = 0;
  /** Whose observer sees each client lookup's outcome and time (the Emitter), or null. */
  observed: { readonly observer: EmitObserver | null } | null = null;

  constructor(sites: string[], opts: DnsblOptions, lookup: DnsLookup, reverse: ReverseFn, emit: Emit, now: () => number = Date.now) {
    this.opts = opts;
    this.#lookup = lookup;
    this.#reverse = reverse;
    this.#emit = emit;
    this.#now = now;
    const byDomain = new Map<string, Domain>();
    for (const spec of sites) {
      const site = parseSite(spec);
      let d = byDomain.get(site.domain);
      if (d === undefined) {
        const p = opts.health.sites[site.domain];
        d = {
          domain: site.domain, sites: [], suspended: false, errors: 0, lastSlowWarn: 0, lastErrorWarn: 0,
          lastOverloadWarn: -Infinity, overloadUnlogged: 0,
          probeListed: p?.listed ?? opts.health.listed, probeUnlisted: p?.unlisted ?? opts.health.unlisted, probing: false,
        };
        byDomain.set(site.domain, d);
      }
      d.sites.push(site);
    }
    this.domains = [...byDomain.values()];
  }

  get enabled(): boolean {
    return this.domains.length > 0;
  }

  /**
   * Start the lookups for one client. `onDone(owner, q)` runs once, after the
   * last answer, never synchronously. Returns null when there is nothing to
   * ask (every domain suspended, or an address that cannot be reversed).
   */
  start<T>(client: string, owner: T, onDone: (owner: T, q: DnsblQuery) => void): DnsblQuery | null {
    const q = new DnsblQuery(client, this.#now());
    for (const d of this.domains) {
      if (d.suspended) continue;
      const name = this.#reverse(client, d.domain);
      if (name === null) return null;
      q.pending++;
      q.lateDomains.add(d.domain);
      void this.#lookup.lookup(name, 'A').then((r) => {
        this.#answer(q, d, name, r);
        if (--q.pending === 0 && !q.cancelled) onDone(owner, q);
      });
    }
    return q.pending === 0 ? null : q;
  }

  #answer(q: DnsblQuery, d: Domain, name: string, r: LookupResult): void {
    const now = this.#now();
    q.lateDomains.delete(d.domain);
    q.lastAnswer = now;
    const elapsed = now - q.started;
    const o = this.observed?.observer ?? null;
    if (o !== null) o.dnsblLookup(d.domain, lookupOutcome(d, r), elapsed);
    if (r.status === 'error' && r.error === 'queued') {
      this.#overload(d, now);
      return;
    }
    if (elapsed > this.opts.slowWarningMs && now - d.lastSlowWarn >= WARN_EVERY_MS) {
      d.lastSlowWarn = now;
      this.#emit('DNSBL WARNING', { site: this.logName(d.domain), reason: 'slow', lookup_ms: elapsed });
    }
    if (r.status === 'error') {
      this.#error(d, r.error);
      return;
    }
    if (r.ttl < q.ttlSec) q.ttlSec = r.ttl;
    if (r.status !== 'ok') {
      d.errors = 0;
      return;
    }
    let reserved: string | null = null;
    for (const site of d.sites) {
      let matched: string[] | null = null;
      for (const a of r.records) {
        if (isReservedErrorAnswer(a)) reserved = a;
        else if (filterMatches(site, a)) (matched ??= []).push(a);
      }
      if (matched !== null) {
        q.score += site.weight;
        q.hits.push({ site: site.domain, weight: site.weight, records: matched });
        if (this.opts.txt && site.weight > 0 && !q.txt.has(d.domain)) {
          q.txt.set(d.domain, '');
          void this.#lookup.lookup(name, 'TXT').then((t) => {
            if (t.status === 'ok' && t.records[0] !== undefined) q.txt.set(d.domain, t.records[0]);
          });
        }
      }
    }
    if (reserved !== null) {
      if (now - d.lastErrorWarn >= WARN_EVERY_MS) {
        d.lastErrorWarn = now;
        this.#emit('DNSBL WARNING', { site: this.logName(d.domain), reason: 'error-answer', value: reserved });
      }
      this.#error(d, `error answer ${reserved}`);
    } else d.errors = 0;
  }

  #overload(d: Domain, now: number): void {
    this.overloaded++;
    d.overloadUnlogged++;
    if (now - d.lastOverloadWarn >= OVERLOAD_WARN_EVERY_MS) this.#logOverload(d, now);
  }

  #logOverload(d: Domain, now: number): void {
    d.lastOverloadWarn = now;
    this.#emit('DNSBL WARNING', { site: this.logName(d.domain), reason: 'overload', count: d.overloadUnlogged, total: this.overloaded });
    d.overloadUnlogged = 0;
  }

  #error(d: Domain, why: string): void {
    d.errors++;
    if (!d.suspended && d.errors >= this.opts.health.errorLimit) this.#suspend(d, `${d.errors} errors in a row, last: ${why}`);
  }

  #suspend(d: Domain, reason: string): void {
    if (d.suspended) return;
    d.suspended = true;
    this.#emit('DNSBL SITE', { site: this.logName(d.domain), state: 'suspended', reason });
  }

  #resume(d: Domain): void {
    d.errors = 0;
    if (!d.suspended) return;
    d.suspended = false;
    this.#emit('DNSBL SITE', { site: this.logName(d.domain), state: 'resumed', reason: 'probe passed' });
  }

  /** The score and hits so far, for the verdict at the end of the greet wait. */
  summary(q: DnsblQuery): DnsblSummary {
    // No TTL seen (ttlSec Infinity): the clamp gives ttl_max exactly (ttl_max / 1000 * 1000 was not: 1001 -> 1000.9999999999999).
    const ttlMs = Math.min(this.opts.ttlMaxMs, Math.max(this.opts.ttlMinMs, q.ttlSec * 1000));
    return {
      score: q.score,
      hits: q.hits,
      complete: q.pending === 0,
      late: [...q.lateDomains],
      ttlMs,
      lookupMs: (q.lastAnswer === 0 ? this.#now() : q.lastAnswer) - q.started,
    };
  }

  failed(s: DnsblSummary): boolean {
    return s.score >= this.opts.threshold;
  }

  allowlisted(s: DnsblSummary): boolean {
    return this.opts.allowlistThreshold < 0 && s.complete && s.score <= this.opts.allowlistThreshold;
  }

  /** The longest a session waits for the answers without a pregreet test (dnsbl.timeout), ms. */
  get deadlineMs(): number {
    return this.opts.timeoutMs ?? 0;
  }

  /** The check contract (checks/check.ts): what this client's lookups say now. */
  outcome(q: DnsblQuery): CheckOutcome {
    const s = this.summary(q);
    const failed = this.failed(s);
    return {
      complete: s.complete,
      failed,
      allowlisted: this.allowlisted(s),
      ttlMs: s.ttlMs,
      score: s.score,
      reply: (code) => {
        const site = this.replySite(s);
        const hit = s.hits.find((h) => (this.opts.replyMap[h.site] ?? h.site) === site);
        return withTxt(dnsblReply(code, q.client, site), q.txt.get(hit?.site ?? '') ?? '');
      },
      event: EV.DNSBL,
      fields: failed ? { score: s.score, hits: this.#loggedHits(s.hits), lookup_ms: s.lookupMs, late: this.#loggedNames(s.late) } : NO_FIELDS,
      passFields: s.late.length > 0 ? { dnsbl_score: s.score, dnsbl_late: this.#loggedNames(s.late) } : { dnsbl_score: s.score },
    };
  }

  /** A site as logged: its reply_map name (a paid feed's key stays out of the log), or the domain with log.reveal_sites. */
  logName(domain: string): string {
    return this.opts.revealSites === true ? domain : this.opts.replyMap[domain] ?? domain;
  }

  #mapped(): boolean {
    return this.opts.revealSites !== true && Object.keys(this.opts.replyMap).length > 0;
  }

  /** Hits as logged: new objects with the logged site name (the summary's own are kept for the reply). */
  #loggedHits(hits: DnsblHit[]): DnsblHit[] {
    return this.#mapped() ? hits.map((h) => ({ site: this.logName(h.site), weight: h.weight, records: h.records })) : hits;
  }

  #loggedNames(domains: string[]): string[] {
    return this.#mapped() ? domains.map((d) => this.logName(d)) : domains;
  }

  /** The name in the reject text: the listing site with the highest weight, through reply_map. */
  replySite(s: DnsblSummary): string {
    let best: DnsblHit | null = null;
    for (const h of s.hits) if (h.weight > 0 && (best === null || h.weight > best.weight)) best = h;
    const site = best?.site ?? this.domains[0]?.domain ?? 'dnsbl';
    return this.opts.replyMap[site] ?? site;
  }

  // ---- site health ---------------------------------------------------------

  /**
   * The server calls this at start and every health.intervalMs: probes every
   * domain (unless health is off) and logs overload counts a burst left unlogged.
   */
  healthTick(): void {
    const now = this.#now();
    for (const d of this.domains) if (d.overloadUnlogged > 0) this.#logOverload(d, now);
    if (this.opts.health.enable) void this.probeAll();
  }

  /** Probe every domain once (test entries, bypassing the cache). Resolves when all have answered. */
  async probeAll(): Promise<void> {
    await Promise.all(this.domains.map((d) => this.#probe(d)));
  }

  async #probe(d: Domain): Promise<void> {
    if (d.probing) return;
    d.probing = true;
    try {
      const yes = this.#reverse(d.probeListed, d.domain);
      const no = this.#reverse(d.probeUnlisted, d.domain);
      if (yes === null || no === null) return;
      const [a, b] = await Promise.all([this.#lookup.lookup(yes, 'A', true), this.#lookup.lookup(no, 'A', true)]);
      if (isQueued(a) || isQueued(b)) {
        // Never asked in time: says nothing about the site.
        this.#overload(d, this.#now());
        return;
      }
      const listed = a.status === 'ok' && a.records.some((r) => !isReservedErrorAnswer(r));
      const notListed = b.status === 'nxdomain' || b.status === 'nodata';
      if (listed && notListed) this.#resume(d);
      else if (!listed) this.#suspend(d, `test entry ${d.probeListed} not listed (${describe(a)})`);
      else this.#suspend(d, `test entry ${d.probeUnlisted} listed (${describe(b)})`);
    } finally {
      d.probing = false;
    }
  }
}

const NO_FIELDS: Readonly<Record<string, unknown>> = Object.freeze({});

/** For metrics: one answer of a domain as listed (a site's filter matched), clean, error (a reserved answer too) or overload. */
function lookupOutcome(d: Domain, r: LookupResult): LookupOutcome {
  if (r.status === 'error') return r.error === 'queued' ? 'overload' : 'error';
  if (r.status !== 'ok') return 'clean';
  let listed = false;
  for (const a of r.records) {
    if (isReservedErrorAnswer(a)) return 'error';
    if (!listed) for (const site of d.sites) if (filterMatches(site, a)) listed = true;
  }
  return listed ? 'listed' : 'clean';
}

/**
 * dnsblReply - postscreen's DNSBL reply: 521 for drop, 550 for enforce.
 * "550 5.7.1 Service unavailable; client [1.2.3.4] blocked using zen.example"
 * Formatted per failing client; unprintable characters become '?' so that no
 * client or site name can inject a line.
 */
export function dnsblReply(code: 521 | 550, client: string, site: string): string {
  return `${code} 5.7.1 Service unavailable; client [${printable(client)}] blocked using ${printable(site)}\r\n`;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/** Append a listing's TXT text to a reply, printable ASCII only, bounded. */
function withTxt(reply: string, txt: string): string {
  if (txt === '') return reply;
  return `${reply.slice(0, -2)}; ${printable(txt).slice(0, 200)}\r\n`;
}

function isQueued(r: LookupResult): boolean {
  return r.status === 'error' && r.error === 'queued';
}

function describe(r: LookupResult): string {
  if (r.status === 'ok') return r.records.join(',');
  if (r.status === 'error') return r.error;
  return r.status;
}
