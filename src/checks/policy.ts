/*
 * checks/policy.ts - the HTTP policy service as an early check, with its
 * latency discipline: a budget per call, a cap on calls in flight, a circuit
 * breaker, a fail mode, and a per-client cache of replies.
 *
 * Exports: Policy, PolicyRun, PolicyOptions, PolicyStats, BreakerState.
 * Policy is an EarlyCheck (checks/check.ts): start() at accept with the
 * client's facts, the owner called back once (never synchronously), outcome()
 * read when the greet wait ends. What each reply means to the verdict:
 *   permit, route  the client is vouched for (as the DNSBL allowlist
 *                  threshold): the greet wait ends now and every enabled test
 *                  passes for the reply's ttl; route keeps its name for the
 *                  router (until routing lands it is a permit, name logged);
 *   reject         a failure: policy.action (enforce: their text in a 550 at
 *                  RCPT; drop: a 521 now; ignore: logged);
 *   defer          a failure with a 4xx: 450 at RCPT (enforce) or 421 (drop);
 *   dunno          no say: the other tests decide.
 * A call that fails (timeout at the budget, connection error, an HTTP status
 * but 200, a bad reply) or is not made (breaker open) is dunno under
 * policy.fail open and a defer under tempfail; a call past policy.max_in_flight
 * is not made and is dunno whatever the fail mode (our overload, not the
 * service's: as the DNSBL test's overload, it never trips the breaker).
 * The breaker: policy.breaker.failures failures within policy.breaker.window
 * open it; open, no call is made for policy.breaker.open_for; then the next
 * client's call is the one probe (half-open): an answer closes it, a failure
 * opens it again. Transitions are found when a client comes (no timer here:
 * the clock is injected, as the tests' fake one).
 * Replies with a ttl are cached per client (bounded LRU); failures are not.
 * The transport (net/policy-http.ts) is injected; it owns its sockets and the
 * call's deadline.
 */
import { LRUCache } from 'lru-cache';
import { EV, type EventLevel, type EventName } from '../log/events.js';
import type { PolicyTransport } from '../net/policy-http.js';
import { TestIndex } from './tests.js';
import type { CheckOutcome, CheckRun, EarlyCheck } from './check.js';
import { connectRequest, parsePolicyReply, rcptRequest, smtpReplyOf, type ConnectFacts, type PolicyReply } from './policy-reply.js';

export interface PolicyOptions {
  budgetMs: number;
  maxInFlight: number;
  fail: 'open' | 'tempfail';
  slowWarningMs: number;
  ttlMaxMs: number;
  cacheMax: number;
  breaker: { failures: number; windowMs: number; openMs: number };
  /** In our own reply texts. */
  hostname: string;
}

export type BreakerState = 'closed' | 'open' | 'half-open';
export type PolicyEmit = (event: EventName, fields: Record<string, unknown>, level?: EventLevel) => void;

/** Counts since start (metrics, the tests). */
export interface PolicyStats {
  calls: number;
  answers: number;
  failures: number;
  timeouts: number;
  bad: number;
  /** Not asked: past policy.max_in_flight. */
  busy: number;
  /** Not asked: the breaker was open. */
  skipped: number;
  cached: number;
}

/** One client's question; `reply` null with `failure` null: still waiting. */
export class PolicyRun implements CheckRun {
  reply: PolicyReply | null = null;
  failure: string | null = null;
  cached = false;
  ms = 0;
  cancelled = false;
  readonly client: string;
  constructor(client: string) {
    this.client = client;
  }
  cancel(): void {
    this.cancelled = true;
  }
}

interface Cached { readonly reply: PolicyReply; readonly until: number }

const WARN_EVERY_MS = 1000;
const NO_FIELDS = Object.freeze({});

export class Policy implements EarlyCheck<PolicyRun> {
  readonly test = TestIndex.policy;
  readonly wantsFacts = true;
  readonly opts: PolicyOptions;
  readonly stats: PolicyStats = { calls: 0, answers: 0, failures: 0, timeouts: 0, bad: 0, busy: 0, skipped: 0, cached: 0 };
  readonly #transport: PolicyTransport;
  readonly #emit: PolicyEmit;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, Cached>;
  #inFlight = 0;
  // The breaker: the times of the last `failures` failures, as a ring.
  #state: BreakerState = 'closed';
  readonly #failTimes: number[] = [];
  #failNext = 0;
  #openedAt = 0;
  #probing = false;
  /** Warnings not logged yet by reason, and when each was last logged. */
  readonly #warn = new Map<string, { last: number; count: number }>();

  constructor(opts: PolicyOptions, transport: PolicyTransport, emit: PolicyEmit, now: () => number = Date.now) {
    this.opts = opts;
    this.#transport = transport;
    this.#emit = emit;
    this.#now = now;
    this.#cache = new LRUCache<string, Cached>({ max: Math.max(1, opts.cacheMax) });
  }

  get deadlineMs(): number {
    return this.opts.budgetMs;
  }
  get inFlight(): number {
    return this.#inFlight;
  }
  get breaker(): BreakerState {
    return this.#state;
  }

  start<T>(client: string, owner: T, done: (owner: T, run: PolicyRun) => void, facts?: ConnectFacts): PolicyRun | null {
    const now = this.#now();
    const hit = this.#cache.get(client);
    if (hit !== undefined) {
      if (hit.until > now) {
        this.stats.cached++;
        const run = new PolicyRun(client);
        run.reply = hit.reply;
        run.cached = true;
        queueMicrotask(() => { if (!run.cancelled) done(owner, run); });
        return run;
      }
      this.#cache.delete(client);
    }
    const f = facts ?? { client, port: 0, local: '', localPort: 0, proxy: null, passed: [], denylisted: false };
    return this.#ask(client, connectRequest(f), owner, done);
  }

  /** At RCPT in the dummy engine (policy.at_rcpt): the reply, or null: no say (dunno, a failure under fail open, busy). Not cached. */
  askRcpt(client: string, port: number, helo: string, from: string, to: string): Promise<PolicyRun | null> {
    return new Promise((resolve) => {
      const run = this.#ask(client, rcptRequest(client, port, helo, from, to), resolve, (r, x) => r(x), true);
      if (run === null) resolve(null);
    });
  }

  #ask<T>(client: string, body: string, owner: T, done: (owner: T, run: PolicyRun) => void, noCache = false): PolicyRun | null {
    const now = this.#now();
    if (this.#inFlight >= this.opts.maxInFlight) {
      this.stats.busy++;
      this.#warning('busy', now, { in_flight: this.#inFlight, limit: this.opts.maxInFlight });
      return null;
    }
    const run = new PolicyRun(client);
    if (!this.#admit(now)) {
      this.stats.skipped++;
      if (this.opts.fail === 'open') return null;
      run.failure = 'breaker open';
      queueMicrotask(() => { if (!run.cancelled) done(owner, run); });
      return run;
    }
    this.stats.calls++;
    this.#inFlight++;
    this.#transport.post(body, this.opts.budgetMs).then(
      (a) => {
        const t = this.#now();
        run.ms = t - now;
        if (a.status !== 200) return this.#failed(run, t, 'status', `HTTP ${a.status}`);
        const r = parsePolicyReply(a.body, this.opts.ttlMaxMs);
        if (typeof r === 'string') {
          this.stats.bad++;
          return this.#failed(run, t, 'bad-reply', r);
        }
        this.stats.answers++;
        this.#succeeded(t);
        run.reply = r;
        if (!noCache && r.ttlMs > 0) this.#cache.set(client, { reply: r, until: t + r.ttlMs });
        if (run.ms > this.opts.slowWarningMs) this.#warning('slow', t, { lookup_ms: run.ms });
      },
      (err: unknown) => {
        const t = this.#now();
        run.ms = t - now;
        // The deadline's AbortSignal.timeout() rejects with a DOMException named TimeoutError (its `code` is a number).
        const e = err as { code?: unknown; name?: unknown };
        const code = typeof e.code === 'string' ? e.code : e.name;
        const timeout = code === 'TimeoutError' || code === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
        if (timeout) this.stats.timeouts++;
        this.#failed(run, t, timeout ? 'timeout' : 'error', timeout ? `no answer within ${this.opts.budgetMs} ms` : String(code ?? err));
      },
    ).finally(() => {
      this.#inFlight--;
      if (!run.cancelled) done(owner, run);
    });
    return run;
  }

  #failed(run: PolicyRun, now: number, reason: string, detail: string): void {
    this.stats.failures++;
    run.failure = reason;
    this.#warning(reason, now, { detail, lookup_ms: run.ms });
    if (this.#probing || this.#state === 'half-open') {
      this.#probing = false;
      this.#open(now, 'probe failed');
      return;
    }
    if (this.#state !== 'closed') return;
    const n = this.opts.breaker.failures;
    this.#failTimes[this.#failNext] = now;
    this.#failNext = (this.#failNext + 1) % n;
    // The ring is full and its oldest entry (the next to be overwritten) is within the window.
    if (this.#failTimes.length < n) return;
    if (now - (this.#failTimes[this.#failNext] as number) <= this.opts.breaker.windowMs) this.#open(now, `${n} failures within ${this.opts.breaker.windowMs} ms`);
  }

  #succeeded(now: number): void {
    if (this.#state !== 'half-open') return;
    this.#probing = false;
    this.#state = 'closed';
    this.#failTimes.length = 0;
    this.#failNext = 0;
    this.#emit(EV.POLICY_BREAKER, { state: 'closed', down_ms: now - this.#openedAt });
  }

  #open(now: number, reason: string): void {
    this.#state = 'open';
    this.#openedAt = now;
    this.#emit(EV.POLICY_BREAKER, { state: 'open', reason, open_ms: this.opts.breaker.openMs }, 'warn');
  }

  /** May a call be made now? Moves open to half-open once open_for has passed; half-open admits one probe. */
  #admit(now: number): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (now - this.#openedAt < this.opts.breaker.openMs) return false;
      this.#state = 'half-open';
      this.#emit(EV.POLICY_BREAKER, { state: 'half-open' });
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** POLICY WARNING, at most once a second per reason, with the count since the last line. */
  #warning(reason: string, now: number, fields: Record<string, unknown>): void {
    let w = this.#warn.get(reason);
    if (w === undefined) this.#warn.set(reason, (w = { last: -Infinity, count: 0 }));
    w.count++;
    if (now - w.last < WARN_EVERY_MS) return;
    this.#emit(EV.POLICY_WARNING, { reason, ...fields, count: w.count });
    w.last = now;
    w.count = 0;
  }

  /** The check contract: what the run says now (a pending call is a timeout). */
  outcome(run: PolicyRun): CheckOutcome {
    const r = run.reply;
    const failure = r === null ? (run.failure ?? 'timeout') : null;
    const decision = r !== null ? r.action : this.opts.fail === 'tempfail' ? 'defer' : 'dunno';
    const fields: Record<string, unknown> = { decision, lookup_ms: run.ms };
    if (run.cached) fields['cached'] = true;
    if (failure !== null) fields['failure'] = failure;
    if (r?.route != null) fields['route'] = r.route;
    if (r?.reply != null) fields['reply'] = r.reply;
    if (r !== null && r.ttlMs > 0) fields['ttl_ms'] = r.ttlMs;
    const failed = decision === 'reject' || decision === 'defer';
    const text = r?.reply ?? (failure !== null ? `${this.opts.hostname} Policy service unavailable, try again later` : null);
    const vouched = decision === 'permit' || decision === 'route';
    return {
      complete: false, // never written to the verdict record: replies have their own cache
      failed,
      allowlisted: vouched,
      ttlMs: vouched ? (r?.ttlMs ?? 0) : 0,
      score: 0,
      reply: (code) => decision === 'defer'
        ? smtpReplyOf(code === 521 ? 421 : 450, text, this.opts.hostname)
        : smtpReplyOf(code, text, this.opts.hostname),
      event: EV.POLICY,
      fields,
      passFields: NO_FIELDS,
        // A plain dunno answer is not logged (one line per new client for nothing); a failure under fail open is.
      note: failed || (decision === 'dunno' && failure === null) ? null : { fields, event: EV.POLICY },
      route: r?.route ?? null,
    };
  }

  /** Waits for the calls in flight, then closes the transport's connections. */
  close(): Promise<void> {
    return this.#transport.close();
  }
}
