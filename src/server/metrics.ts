/*
 * server/metrics.ts - the Prometheus metrics of the admin listener, derived
 * from the events every decision already emits (log/emit.ts).
 *
 * Exports: Metrics, MetricsSources, METRIC_NAMES, testOf(), outcomeOf(), reasonLabel().
 *   new Metrics(sources)   a prom-client Registry with the metrics below and
 *                          the default process metrics; attach() makes it the
 *                          Emitter's observer, detach() stops it
 *   text()                 the exposition text (Promise), contentType
 * Counters that events already count (the Emitter's per-name counts) and
 * gauges of runtime state are read at scrape time (collect callbacks): they
 * cost nothing between scrapes. What an event says beyond its name (test,
 * action, outcome, DNSBL site, backend, stage, times) is counted as it is
 * emitted, through the observer. XXX Labels are bounded sets only: a label
 * value comes from a fixed table, from the configuration (a DNSBL site, the
 * backend), or is mapped to "other"; no client address, port, sample, or
 * reply text ever becomes a label (the test scrapes after a run of many
 * clients and checks every label value).
 * Outcomes: enforce -> reject, drop -> drop, ignore -> ignore, and an event
 * with `would: W` (action shadow, or shadow mode) -> would_W, so shadow results
 * are their own series beside the real ones; the action label keeps the action.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';

/** The shared store's outcomes exported (cache/redis.ts RedisCounts). */
const STORE_OUTCOMES = ['lookups', 'hits', 'misses', 'errors', 'timeouts', 'observes', 'writes', 'flushed', 'dropped'] as const;
import { EVENTS, EV, type EventName } from '../log/events.js';
import type { EmitObserver, Fields, LookupOutcome } from '../log/emit.js';
import type { Resolver } from '../dns/resolver.js';
import type { Session } from '../session/state.js';
import type { ServerCtx } from './stress.js';

export interface MetricsSources {
  ctx: ServerCtx;
  /** The current generation's resolver (null: no DNSBL sites). */
  resolver: () => Resolver | null;
  /** Why the backend probe finds the current backend down, or null while it is up (or not probed yet). */
  backendDown: () => { stage: string; reason: string } | null;
  /** Log lines dropped since start, or null when unknown. */
  logDropped: () => number | null;
  /** Add prom-client's default process metrics (process_*, nodejs_*). Default true. */
  processMetrics?: boolean;
}

/** Every metric this module exports (the dashboard test checks its queries against it), without process metrics. */
export const METRIC_NAMES = [
  'smtpscreen_events_total', 'smtpscreen_test_results_total', 'smtpscreen_hangups_total',
  'smtpscreen_dnsbl_lookups_total', 'smtpscreen_dnsbl_lookup_seconds', 'smtpscreen_dnsbl_site_suspended',
  'smtpscreen_backend_handoffs_total', 'smtpscreen_backend_failures_total', 'smtpscreen_backend_handshake_seconds',
  'smtpscreen_backend_up', 'smtpscreen_connect_to_verdict_seconds', 'smtpscreen_connect_to_handoff_seconds',
  'smtpscreen_connections', 'smtpscreen_connections_proxy_pending', 'smtpscreen_stress_active',
  'smtpscreen_fds_held', 'smtpscreen_fds_reserved', 'smtpscreen_fds_limit', 'smtpscreen_cache_entries',
  'smtpscreen_resolver_in_flight', 'smtpscreen_resolver_cache_entries', 'smtpscreen_log_dropped_total',
  'smtpscreen_store_operations_total', 'smtpscreen_store_up',
] as const;

const TEST_OF: Readonly<Record<string, string>> = {
  [EV.ALLOWLISTED]: 'access', [EV.DENYLISTED]: 'access', [EV.PREGREET]: 'pregreet', [EV.DNSBL]: 'dnsbl',
  [EV.COMMAND_PIPELINING]: 'pipelining', [EV.NON_SMTP_COMMAND]: 'non_smtp', [EV.BARE_NEWLINE]: 'bare_newline',
  [EV.GREYLIST]: 'greylist',
};
const DEEP_TESTS: ReadonlySet<string> = new Set(['pipelining', 'non_smtp', 'bare_newline']);
const ACTIONS: ReadonlySet<string> = new Set(['ignore', 'enforce', 'drop', 'shadow']);
const WOULD: ReadonlySet<string> = new Set(['reject', 'drop', 'defer']);
const VERDICTS: ReadonlySet<string> = new Set(['allowlisted', 'old', 'new', 'ignored', 'untested']);
const PHASES = ['proxy', 'pregreet', 'dummy', 'handoff', 'splice'] as const;
const PHASE_INDEX: ReadonlyMap<string, number> = new Map(PHASES.map((p, i) => [p, i]));
const HANGUP_PHASES: ReadonlySet<string> = new Set(['accept', ...PHASES]);
const STAGES: ReadonlySet<string> = new Set(['start', 'connect', 'greeting', 'proxy', 'xclient', 'helo', 'ehlo', 'mail', 'rcpt']);
const REASONS: ReadonlySet<string> = new Set(['timeout', 'closed', 'handoff mode']);

/** The test an event is the result of, or undefined. */
export function testOf(event: string): string | undefined {
  return TEST_OF[event];
}

/**
 * What a failed test's action did: reject, drop, ignore; with a `would` field (action shadow, or
 * shadow mode whatever the action) what it would have done: would_reject, would_drop, would_defer.
 */
export function outcomeOf(action: unknown, would: unknown): string {
  if (would !== undefined) return typeof would === 'string' && WOULD.has(would) ? `would_${would}` : 'would_other';
  switch (action) {
    case 'enforce': return 'reject';
    case 'drop': return 'drop';
    case 'ignore': return 'ignore';
    case 'shadow': return typeof would === 'string' && WOULD.has(would) ? `would_${would}` : 'would_other';
    default: return 'other';
  }
}

/** A backend failure's reason as a bounded label: an errno code, timeout, closed, handoff mode, malformed reply, reply_4xx/5xx, other. */
export function reasonLabel(r: unknown): string {
  if (typeof r !== 'string') return 'other';
  if (REASONS.has(r)) return r;
  if (r.startsWith('malformed reply')) return 'malformed reply';
  if (/^E[A-Z0-9_]{1,20}$/.test(r)) return r;
  const m = /^([45])\d\d\b/.exec(r);
  if (m !== null) return `reply_${m[1] as string}xx`;
  return 'other';
}

const WANTED: ReadonlySet<string> = new Set([
  EV.ALLOWLISTED, EV.PASS_OLD, EV.PASS_NEW, EV.DENYLISTED, EV.PREGREET, EV.DNSBL, EV.COMMAND_PIPELINING, EV.NON_SMTP_COMMAND,
  EV.BARE_NEWLINE, EV.GREYLIST, EV.HANGUP, EV.HANDOFF, EV.BACKEND_FAIL,
]);

/** prom-client default metrics whose cost grows with the connections held (see the constructor). */
const SLOW_DEFAULTS = [
  'process_open_fds', 'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_handles',
  'nodejs_active_handles_total', 'nodejs_active_requests', 'nodejs_active_requests_total',
];

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const VERDICT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 6, 8, 10, 15, 30, 60];

export class Metrics implements EmitObserver {
  readonly registry = new Registry();
  readonly #src: MetricsSources;
  readonly #tests: Counter<'test' | 'action' | 'outcome'>;
  readonly #hangups: Counter<'phase'>;
  readonly #lookups: Counter<'site' | 'outcome'>;
  readonly #lookupTime: Histogram<'site'>;
  readonly #handoffs: Counter<'backend' | 'verdict'>;
  readonly #backendFail: Counter<'backend' | 'stage' | 'reason' | 'probe'>;
  readonly #handshake: Histogram<'backend'>;
  readonly #toVerdict: Histogram<'verdict'>;
  readonly #toHandoff: Histogram<'verdict'>;
  /** Sessions whose failure was already timed (a client failing two tests is one verdict). */
  #timed = new WeakSet<object>();
  #dropped = 0;

  constructor(src: MetricsSources) {
    this.#src = src;
    const r = [this.registry];
    const ctx = src.ctx;
    new Counter({
      name: 'smtpscreen_events_total', help: 'Events emitted (logged or not), by event name.', labelNames: ['event'], registers: r,
      collect() {
        this.reset();
        const counts = ctx.emitter.counts;
        for (const e of EVENTS) this.inc({ event: e.name }, counts[e.name] ?? 0);
      },
    });
    this.#tests = new Counter({
      name: 'smtpscreen_test_results_total', registers: r, labelNames: ['test', 'action', 'outcome'],
      help: 'Test results: failures by action and outcome (reject, drop, ignore; would_reject, would_drop, would_defer under action shadow), greylist defer/pass, allowlisted and deep-test passes.',
    });
    this.#hangups = new Counter({ name: 'smtpscreen_hangups_total', help: 'Clients that left before a verdict or handoff, by phase.', labelNames: ['phase'], registers: r });
    this.#lookups = new Counter({
      name: 'smtpscreen_dnsbl_lookups_total', help: 'DNSBL lookups of clients by site and outcome (listed, clean, error, overload).',
      labelNames: ['site', 'outcome'], registers: r,
    });
    this.#lookupTime = new Histogram({
      name: 'smtpscreen_dnsbl_lookup_seconds', help: 'Time from the start of a client\'s lookups to this site\'s answer.',
      labelNames: ['site'], buckets: SECONDS_BUCKETS, registers: r,
    });
    new Gauge({
      name: 'smtpscreen_dnsbl_site_suspended', help: '1 while a DNSBL site is suspended (its weight counts as zero).', labelNames: ['site'], registers: r,
      collect() {
        this.reset();
        for (const d of ctx.gen.dnsbl?.domains ?? []) this.set({ site: d.domain }, d.suspended ? 1 : 0);
      },
    });
    this.#handoffs = new Counter({ name: 'smtpscreen_backend_handoffs_total', help: 'Clients the backend took, by verdict.', labelNames: ['backend', 'verdict'], registers: r });
    this.#backendFail = new Counter({
      name: 'smtpscreen_backend_failures_total', help: 'BACKEND FAIL by stage and reason (probe="true": the backend probe).',
      labelNames: ['backend', 'stage', 'reason', 'probe'], registers: r,
    });
    this.#handshake = new Histogram({
      name: 'smtpscreen_backend_handshake_seconds', help: 'Backend connect to splice (greeting, PROXY/XCLIENT).',
      labelNames: ['backend'], buckets: SECONDS_BUCKETS, registers: r,
    });
    new Gauge({
      name: 'smtpscreen_backend_up', help: '0 while the backend probe finds the backend down.', labelNames: ['backend'], registers: r,
      collect() {
        this.reset();
        const b = ctx.gen.backend;
        this.set({ backend: b.name }, src.backendDown() === null ? 1 : 0);
      },
    });
    this.#toVerdict = new Histogram({
      name: 'smtpscreen_connect_to_verdict_seconds', labelNames: ['verdict'], buckets: VERDICT_BUCKETS, registers: r,
      help: 'Connect to the verdict: allowlisted, denylisted, old (PASS OLD), new (PASS NEW), fail (a test failed, not ignored), greylist (deferred).',
    });
    this.#toHandoff = new Histogram({
      name: 'smtpscreen_connect_to_handoff_seconds', labelNames: ['verdict'], buckets: VERDICT_BUCKETS, registers: r,
      help: 'Connect to the backend\'s greeting reaching the client: the greeting delay clients see, by verdict.',
    });
    new Gauge({
      name: 'smtpscreen_connections', help: 'Open client connections by phase and personality.', labelNames: ['phase', 'personality'], registers: r,
      collect() {
        // One pass over the sessions, no string built per session: [phase index * 2 + stress].
        const n = new Array<number>(PHASES.length * 2).fill(0);
        for (const s of ctx.sessions) {
          const i = PHASE_INDEX.get(s.phase);
          if (i === undefined) continue;
          const k = i * 2 + (s.personality.stress ? 1 : 0);
          n[k] = (n[k] as number) + 1;
        }
        this.reset();
        PHASES.forEach((phase, i) => {
          this.set({ phase, personality: 'normal' }, n[i * 2] as number);
          this.set({ phase, personality: 'stress' }, n[i * 2 + 1] as number);
        });
      },
    });
    new Gauge({ name: 'smtpscreen_connections_proxy_pending', help: 'Connections still sending their PROXY header.', registers: r, collect() { this.set(ctx.pendingProxy); } });
    new Gauge({ name: 'smtpscreen_stress_active', help: '1 while new connections get the stress personality.', registers: r, collect() { this.set(ctx.stressState.active ? 1 : 0); } });
    new Gauge({
      name: 'smtpscreen_fds_held', help: 'Sockets held: client connections (PROXY headers pending included) and backend connections.', registers: r,
      collect() { this.set(ctx.sessions.size + ctx.pendingProxy + ctx.backends); },
    });
    new Gauge({
      name: 'smtpscreen_fds_reserved', help: 'Descriptors the listener counts against the limit: a backend one for every client that may still be handed over.', registers: r,
      collect() {
        const open = ctx.sessions.size + ctx.pendingProxy;
        this.set(Math.max(2 * open - ctx.dummyOnly, open + ctx.backends));
      },
    });
    new Gauge({ name: 'smtpscreen_fds_limit', help: 'The soft file descriptor limit (-1: unknown).', registers: r, collect() { this.set(ctx.fdLimit ?? -1); } });
    new Gauge({ name: 'smtpscreen_cache_entries', help: 'Verdict cache records held.', registers: r, collect() { this.set(ctx.store.size); } });
    new Gauge({
      name: 'smtpscreen_resolver_in_flight', help: 'DNS queries in flight (distinct names).', registers: r,
      collect() { this.set(src.resolver()?.stats().inFlight ?? 0); },
    });
    new Gauge({
      name: 'smtpscreen_resolver_cache_entries', help: 'Answers held in the resolver cache.', registers: r,
      collect() { this.set(src.resolver()?.stats().cacheSize ?? 0); },
    });
    // The shared store (cache.store: redis): its counts by outcome, and whether it answers.
    const storeSeen: Record<string, number> = {};
    new Counter({
      name: 'smtpscreen_store_operations_total', help: 'Shared store (Redis) operations by outcome: lookups, hits, misses, errors, timeouts, observes, writes, flushed, dropped.',
      labelNames: ['outcome'], registers: r,
      collect() {
        const c = ctx.store.shared?.counts;
        if (c === undefined) return;
        for (const k of STORE_OUTCOMES) {
          const v = c[k] ?? 0;
          const d = v - (storeSeen[k] ?? 0);
          if (d > 0 || storeSeen[k] === undefined) this.inc({ outcome: k }, Math.max(d, 0));
          storeSeen[k] = v;
        }
      },
    });
    new Gauge({
      name: 'smtpscreen_store_up', help: '1 while the shared store (Redis) answers, 0 while it does not; no series without one.',
      labelNames: ['store'], registers: r,
      collect() {
        const sh = ctx.store.shared;
        if (sh !== undefined) this.set({ store: 'redis' }, sh.up ? 1 : 0);
      },
    });
    const self = this;
    new Counter({
      name: 'smtpscreen_log_dropped_total', help: 'Log lines dropped because the destination could not keep up.', registers: r,
      collect() {
        const d = src.logDropped();
        if (d !== null && d > self.#dropped) {
          this.inc(d - self.#dropped);
          self.#dropped = d;
        }
      },
    });
    // Zero series for every test outcome a dashboard plots, so that rate() has a start.
    for (const phase of HANGUP_PHASES) this.#hangups.inc({ phase }, 0);
    if (src.processMetrics !== false) {
      // The lag histogram's timer wakes the loop every eventLoopMonitoringPrecision ms: 10 by default,
      // about 1 % of a core with nothing else to do (bench:load idle); 100 ms still sees any stall.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
      // XXX These walk every handle or descriptor at each scrape, in the event loop: with 8,000
      // client sockets, 108-151 ms a scrape (nodejs_active_resources 66 ms: an array of 16,000
      // strings; process_open_fds 36 ms: a readdir of /proc/self/fd). smtpscreen_fds_held and
      // smtpscreen_connections say the same from our own counts, for nothing.
      for (const name of SLOW_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Make this the Emitter's observer (events and DNSBL lookups from now on). */
  attach(): void {
    this.#src.ctx.emitter.observer = this;
  }

  detach(): void {
    if (this.#src.ctx.emitter.observer === this) this.#src.ctx.emitter.observer = null;
  }

  /** The events whose fields it reads (CONNECT and DISCONNECT, the hot pair, are only counted). */
  wants(name: EventName): boolean {
    return WANTED.has(name);
  }

  dnsblLookup(site: string, outcome: LookupOutcome, ms: number): void {
    this.#lookups.inc({ site, outcome });
    if (outcome !== 'overload') this.#lookupTime.observe({ site }, ms / 1000);
  }

  event(name: EventName, f: Fields, subject: object | undefined): void {
    switch (name) {
      case EV.ALLOWLISTED:
        this.#tests.inc({ test: 'access', action: 'permit', outcome: 'pass' });
        this.#verdict('allowlisted', subject);
        return;
      case EV.PASS_OLD:
        this.#verdict('old', subject);
        return;
      case EV.PASS_NEW: {
        const deep = f['deep'];
        if (Array.isArray(deep)) {
          for (const t of deep) if (typeof t === 'string' && DEEP_TESTS.has(t)) this.#tests.inc({ test: t, action: 'none', outcome: 'pass' });
        } else this.#verdict('new', subject);
        return;
      }
      case EV.DENYLISTED:
      case EV.PREGREET:
      case EV.DNSBL:
      case EV.COMMAND_PIPELINING:
      case EV.NON_SMTP_COMMAND:
      case EV.BARE_NEWLINE: {
        const action = f['action'];
        const labels: LabelValues<'test' | 'action' | 'outcome'> = {
          test: TEST_OF[name] as string, action: typeof action === 'string' && ACTIONS.has(action) ? action : 'other',
          outcome: outcomeOf(action, f['would']),
        };
        this.#tests.inc(labels);
        if (f['would'] !== undefined) return; // shadow: the client goes on as if it had passed
        if (name === EV.DENYLISTED) this.#verdict('denylisted', subject);
        else if (action === 'enforce' || action === 'drop') this.#failOnce(subject);
        return;
      }
      case EV.GREYLIST: {
        const shadow = f['action'] === 'shadow' || f['would'] !== undefined;
        const defer = f['state'] === 'defer';
        this.#tests.inc({ test: 'greylist', action: shadow ? 'shadow' : 'enforce', outcome: defer ? (shadow ? 'would_defer' : 'defer') : 'pass' });
        if (defer && !shadow && subject !== undefined && !this.#timed.has(subject)) {
          this.#timed.add(subject);
          this.#verdict('greylist', subject);
        }
        return;
      }
      case EV.HANGUP: {
        const phase = f['phase'];
        this.#hangups.inc({ phase: typeof phase === 'string' && HANGUP_PHASES.has(phase) ? phase : 'other' });
        return;
      }
      case EV.HANDOFF: {
        const backend = String(f['backend']);
        const verdict = typeof f['verdict'] === 'string' && VERDICTS.has(f['verdict']) ? f['verdict'] : 'other';
        this.#handoffs.inc({ backend, verdict });
        const hs = f['handshake_ms'];
        if (typeof hs === 'number') this.#handshake.observe({ backend }, hs / 1000);
        if (f['after'] === undefined && subject !== undefined) {
          this.#toHandoff.observe({ verdict }, this.#since(subject));
        }
        return;
      }
      case EV.BACKEND_FAIL: {
        const stage = f['stage'];
        this.#backendFail.inc({
          backend: String(f['backend']), stage: typeof stage === 'string' && STAGES.has(stage) ? stage : 'other',
          reason: reasonLabel(f['reason']), probe: f['probe'] === true ? 'true' : 'false',
        });
        return;
      }
      default:
        return;
    }
  }

  #since(subject: object): number {
    const s = subject as Session;
    return Math.max(0, this.#src.ctx.clock.now() - s.started) / 1000;
  }

  #verdict(verdict: string, subject: object | undefined): void {
    if (subject !== undefined) this.#toVerdict.observe({ verdict }, this.#since(subject));
  }

  /** A failed test (enforce or drop) is the verdict the first time only. */
  #failOnce(subject: object | undefined): void {
    if (subject === undefined || this.#timed.has(subject)) return;
    this.#timed.add(subject);
    this.#verdict('fail', subject);
  }
}
