/*
 * server/generation.ts - build the generation (session/generation.ts) from a
 * configuration: everything derived from it, in one immutable object.
 *
 * Exports: makeGeneration(), MadeGeneration, NamedParts, stopNamed(), loadTls() (server/preflight.ts checks the files with it).
 * Order: access list (a bad file fails, naming file and line) → STARTTLS
 * context → replies → DNSBL test and its resolver → the policy check (kept
 * when the policy section did not change) → the built-in sink if the
 * backend is "sink" → the backend, and with deep.after_pass handoff its EHLO
 * learned (a backend that cannot be reached delays this by at most its two
 * timeouts and is asked again every 30 s) → the backend probe started
 * (server/backend-health.ts, not awaited) → the two personalities, each
 * pointing back at the generation. A reload (server/reload.ts) calls this
 * again with the previous generation's parts: what a section of the
 * configuration that did not change made is kept (the DNSBL test and its
 * resolver with their cache and site health, the built-in sink, the EHLO
 * learner, the backend probe), the rest is made anew; on a throw, what was
 * made anew is closed. Each named backend (backends:) gets its own probe and
 * EHLO learner, kept by a reload when its element did not change; routes:
 * are compiled with them (handoff/backend.ts makeRouting()).
 */
import { readFileSync } from 'node:fs';
import type tls from 'node:tls';
import type { Config } from '../config/types.js';
import { EV, type EventName } from '../log/events.js';
import type { Emitter } from '../log/emit.js';
import { ACCESS_FILE, parseAccessList } from '../checks/access.js';
import { readTextFile } from '../util/read-file.js';
import { lazyRequire } from '../util/lazy-require.js';
import { makeReplies } from '../smtp/replies.js';
import { TestIndex } from '../checks/tests.js';
import type { Generation, Personality, PersonalityConfig } from '../session/generation.js';
import { Dnsbl } from '../checks/dnsbl.js';
import { Policy } from '../checks/policy.js';
import type { EarlyCheck } from '../checks/check.js';
import { parsePolicyUrl } from '../config/policy-url.js';
import { HttpPolicyTransport } from '../net/policy-http.js';
import { Resolver } from '../dns/resolver.js';
import { reverseName } from '../dns/reverse.js';
import { ScreenError } from '../util/errors.js';
import { startSink, type Sink } from './sink.js';
import { EhloLearner, probeBackendEhlo } from './backend-ehlo.js';
import { makeBackend, makeRouting, type Backend } from '../handoff/backend.js';
import { BackendHealth, PROBE_RETRY_MS } from './backend-health.js';
import { makePersonalities } from './stress.js';

export interface MadeGeneration {
  readonly gen: Generation;
  /** The DNSBL resolver (closed at stop), or null. */
  readonly resolver: Resolver | null;
  /** The built-in sink backend, or null. */
  readonly sink: Sink | null;
  /** The backend's EHLO learner (deep.after_pass handoff; stopped at stop), or null. */
  readonly ehlo: EhloLearner | null;
  /** The backend probe (server/backend-health.ts), started here, stopped at stop (or when a reload retires this generation). */
  readonly health: BackendHealth;
  /** The named backends' (backends:) EHLO learners and probes, each its own; stopped as the default's are (stopNamed()). */
  readonly named: readonly NamedParts[];
}

/** What one named backend runs: its probe and, with deep.after_pass handoff, its EHLO learner. */
export interface NamedParts {
  /** Its configuration with the hostname, as JSON: a reload keeps the parts when it is unchanged. */
  readonly key: string;
  readonly name: string;
  readonly ehlo: EhloLearner | null;
  readonly health: BackendHealth;
}

/** Stop the named backends' parts of `old` that `next` does not keep (all of them when `next` is null). */
export function stopNamed(old: MadeGeneration, next: MadeGeneration | null): void {
  const kept = new Set(next?.named ?? []);
  for (const p of old.named) {
    if (kept.has(p)) continue;
    p.ehlo?.stop();
    p.health.stop();
  }
}

/** The generation a reload replaces: its configuration and its parts, to keep what did not change. */
export interface PreviousGeneration {
  readonly config: Config;
  readonly made: MadeGeneration;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export async function makeGeneration(config: Config, emitter: Emitter, prev?: PreviousGeneration): Promise<MadeGeneration> {
  const made: Made = { resolver: null, sink: null, ehlo: null, health: null, named: [] };
  try {
    return await build(config, emitter, prev, made);
  } catch (err) {
    // Close only what this call made: what it kept belongs to the running generation.
    made.ehlo?.stop();
    made.health?.stop();
    for (const p of made.named) { p.ehlo?.stop(); p.health.stop(); }
    await made.resolver?.close();
    await made.sink?.close();
    throw err;
  }
}

/** What one makeGeneration() call made anew (not kept from the previous generation): closed if it throws. */
interface Made { resolver: Resolver | null; sink: Sink | null; ehlo: EhloLearner | null; health: BackendHealth | null; named: NamedParts[] }

async function build(config: Config, emitter: Emitter, prev: PreviousGeneration | undefined, made: Made): Promise<MadeGeneration> {
  const accessFile = config.access.list;
  const access = accessFile === null ? null : parseAccessList(readTextFile(accessFile, ACCESS_FILE), accessFile);
  const tlsContext = loadTls(config);
  const replies = makeReplies(config.hostname, config.banner);
  const enabled: number[] = [];
  if (config.pregreet.enable) enabled.push(TestIndex.pregreet);
  // The DNSBL test and its resolver are kept when neither section changed: answers cached, lookups in flight and site health go on.
  const keepDnsbl = prev !== undefined && prev.made.gen.dnsbl !== null && same(prev.config.dnsbl, config.dnsbl) && same(prev.config.resolver, config.resolver);
  const { dnsbl, resolver } = keepDnsbl ? { dnsbl: prev.made.gen.dnsbl, resolver: prev.made.resolver } : makeDnsbl(config, emitter);
  if (!keepDnsbl) made.resolver = resolver;
  if (dnsbl !== null) enabled.push(TestIndex.dnsbl);
  if (config.greylist.enable) enabled.push(TestIndex.greylist);
  const pc = makePersonalities(config, enabled);
  let sink: Sink | null = null;
  let host = config.backend.address.host;
  let port = config.backend.address.port;
  if (host === 'sink') {
    if (prev?.made.sink != null && same(prev.config.backend.address, config.backend.address)) sink = prev.made.sink;
    else sink = made.sink = await startSink('127.0.0.1', port);
    host = sink.host;
    port = sink.port;
  }
  const b = config.backend;
  // deep.after_pass handoff: learn the backend's EHLO before the first client sees the dummy engine's.
  const wantEhlo = b.handoff !== 'none' && config.deep.after_pass === 'handoff' && (pc.normal.deep !== null || pc.stress.deep !== null);
  const sameBackend = prev !== undefined && prev.made.sink === sink && same(prev.config.backend, b) && prev.config.hostname === config.hostname;
  let ehlo: EhloLearner | null = null;
  if (wantEhlo && prev?.made.ehlo != null && sameBackend) {
    ehlo = prev.made.ehlo;
  } else if (wantEhlo) {
    ehlo = made.ehlo = makeEhloLearner(config, b, host, port, emitter);
    await ehlo.start();
  }
  // The probe is the backend's: kept (with what it knows of the backend's health) when the backend did not change.
  let health: BackendHealth;
  if (sameBackend && prev !== undefined) health = prev.made.health;
  else health = made.health = makeHealth(config, b, host, port, emitter);
  const backend = makeBackend(host, port, b.handoff, b.connect_timeout, b.handshake_timeout, ehlo, health);
  // The named backends (backends:), each with its own probe and EHLO learner, kept across a reload when unchanged.
  const named: NamedParts[] = [];
  const namedBackends: Backend[] = [];
  for (const nb of config.backends) {
    const key = JSON.stringify([nb, config.hostname, b.ehlo_refresh, wantEhlo]);
    let parts = prev?.made.named.find((p) => p.name === nb.name && p.key === key);
    if (parts === undefined) {
      const { host: h, port: p } = nb.address;
      const spec = { ...nb, ehlo_refresh: b.ehlo_refresh };
      const learner = wantEhlo && nb.handoff !== 'none' ? makeEhloLearner(config, spec, h, p, emitter) : null;
      parts = { key, name: nb.name, ehlo: learner, health: makeHealth(config, spec, h, p, emitter) };
      made.named.push(parts);
      await learner?.start();
    }
    named.push(parts);
    namedBackends.push(makeBackend(nb.address.host, nb.address.port, nb.handoff, nb.connect_timeout, nb.handshake_timeout, parts.ehlo, parts.health, nb.name));
  }
  const routing = makeRouting(backend, namedBackends, config.routes, config.routes_fallback);
  // The policy check is kept (its cache, breaker and connections) when its section did not change.
  const keepPolicy = prev !== undefined && prev.made.gen.policy !== null && same(prev.config.policy, config.policy) && prev.config.hostname === config.hostname;
  const policy = keepPolicy ? prev.made.gen.policy : makePolicy(config, emitter);
  const checks: EarlyCheck[] = [];
  if (dnsbl !== null) checks.push(dnsbl);
  if (policy !== null) checks.push(policy as unknown as EarlyCheck);
  const gen = { config, replies, access, dnsbl, policy, checks, tls: tlsContext, backend, routing } as unknown as Generation & { personalities: Generation['personalities'] };
  const withGen = (p: PersonalityConfig): Personality => Object.freeze({ ...p, gen });
  (gen as { personalities: Generation['personalities'] }).personalities = Object.freeze({ normal: withGen(pc.normal), stress: withGen(pc.stress) });
  if (made.health === health) void health.start(); // not awaited: a backend that is down must not keep the screener from listening
  for (const p of made.named) void p.health.start();
  return { gen: Object.freeze(gen), resolver, sink, ehlo, health, named };
}

/** What the probe and the EHLO learner read of a backend: backend: or a backends: element. */
type BackendSpec = Pick<Config['backend'], 'handoff' | 'connect_timeout' | 'handshake_timeout' | 'ehlo_refresh'>;

/** The backend probe, logging its first answer (BACKEND OK or BACKEND FAIL at warn), then BACKEND FAIL when the backend is found down and BACKEND OK when it answers again. */
function makeHealth(config: Config, b: BackendSpec, host: string, port: number, emitter: Emitter): BackendHealth {
  const target = `${host}:${port}`;
  return new BackendHealth({
    host, port, mode: b.handoff, hostname: config.hostname, timeoutMs: b.connect_timeout + b.handshake_timeout,
    onDown: (v) => {
      emitter.emit(EV.BACKEND_FAIL, {
        backend: target, stage: v.stage, reason: v.reason, probe: true, retry_ms: PROBE_RETRY_MS,
        ...(v.detail !== undefined ? { detail: v.detail } : {}),
      }, 'warn');
    },
    onUp: (downMs) => emitter.emit(EV.BACKEND_OK, downMs === null ? { backend: target, mode: b.handoff } : { backend: target, mode: b.handoff, down_ms: downMs }),
  });
}

/** The policy check over its HTTP transport (policy.url), or null when none is configured. */
function makePolicy(config: Config, emitter: Emitter): Policy | null {
  const p = config.policy;
  if (p.url === null) return null;
  const target = parsePolicyUrl(p.url);
  if (typeof target === 'string') throw new ScreenError('SCR_ERR_CONFIG', `policy.url: ${target}`, { key: 'policy.url', value: p.url });
  return new Policy({
    budgetMs: p.budget, maxInFlight: p.max_in_flight, fail: p.fail, slowWarningMs: p.slow_warning, ttlMaxMs: p.ttl_max,
    cacheMax: p.cache_max, breaker: { failures: p.breaker.failures, windowMs: p.breaker.window, openMs: p.breaker.open_for },
    hostname: config.hostname,
  }, new HttpPolicyTransport(target, p.connections), (event, fields, level) => emitter.emit(event, fields, level));
}

/** The DNSBL test and its resolver, or nulls when no sites are configured. */
function makeDnsbl(config: Config, emitter: Emitter): { dnsbl: Dnsbl | null; resolver: Resolver | null } {
  const d = config.dnsbl;
  if (d.sites.length === 0) return { dnsbl: null, resolver: null };
  const r = config.resolver;
  const servers = r.servers.length > 0 ? r.servers : Resolver.fromResolvConf();
  if (servers.length === 0) {
    throw new ScreenError('SCR_ERR_CONFIG', 'resolver.servers is empty and /etc/resolv.conf names no nameserver: DNSBL lookups have nowhere to go', { key: 'resolver.servers', value: [] });
  }
  const resolver = new Resolver({
    servers, timeoutMs: r.timeout, tries: r.tries, deadlineMs: d.timeout,
    minTtl: r.min_ttl / 1000, maxTtl: r.max_ttl / 1000, cacheMax: r.cache_max, maxOutstanding: r.max_outstanding,
  });
  const emit = (event: string, fields: Record<string, unknown>): void => {
    emitter.emit(event as EventName, fields, event === EV.DNSBL_SITE && fields['state'] === 'resumed' ? 'info' : undefined);
  };
  const dnsbl = new Dnsbl(d.sites, {
    threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
    slowWarningMs: d.slow_warning, timeoutMs: d.timeout, txt: d.txt, replyMap: d.reply_map, revealSites: config.log.reveal_sites,
    health: {
      enable: d.health.enable, intervalMs: d.health.interval, listed: d.health.listed, unlisted: d.health.unlisted,
      errorLimit: d.health.error_limit, sites: d.health.sites,
    },
  }, resolver, reverseName, emit);
  dnsbl.observed = emitter; // its observer (server/metrics.ts), when the admin listener has one
  return { dnsbl, resolver };
}


/** While the backend cannot be reached, its EHLO is asked again this often. */
const EHLO_RETRY_MS = 30_000;

/** The backend's EHLO learner (handoff/ehlo.ts), logging BACKEND EHLO when what it offers is learned, changes, or cannot be learned. */
function makeEhloLearner(config: Config, b: BackendSpec, host: string, port: number, emitter: Emitter): EhloLearner {
  const target = `${host}:${port}`;
  let learnedOnce = false;
  return new EhloLearner({
    probe: () => probeBackendEhlo({
      host, port, mode: b.handoff, hostname: config.hostname,
      timeoutMs: b.connect_timeout + b.handshake_timeout,
    }),
    hostname: config.hostname,
    refreshMs: b.ehlo_refresh,
    retryMs: EHLO_RETRY_MS,
    onChange: (info) => {
      const ev: Record<string, unknown> = {
        backend: target, state: learnedOnce ? 'changed' : 'learned',
        offered: info.offered, xclient: info.xclient === null ? null : [...info.xclient],
      };
      learnedOnce = true;
      if (b.handoff === 'xclient' && info.xclient === null) {
        // Every handoff would fail too: say so once, where the postmaster looks first.
        ev['warning'] = 'backend.handoff is xclient but the backend does not offer XCLIENT to the screener (Postfix: smtpd_authorized_xclient_hosts)';
        emitter.emit(EV.BACKEND_EHLO, ev, 'warn');
      } else emitter.emit(EV.BACKEND_EHLO, ev);
    },
    onError: (reason) => {
      emitter.emit(EV.BACKEND_EHLO, { backend: target, state: 'failed', reason, retry_ms: EHLO_RETRY_MS }, 'warn');
    },
  });
}


/** tls.cert and tls.key: one secure context for every STARTTLS; a bad file fails start-up naming its key. */
export function loadTls(config: Config): tls.SecureContext | null {
  const { cert: certFile, key: keyFile } = config.tls;
  if (certFile === null || keyFile === null) return null;
  const read = (key: string, file: string): string => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ScreenError('SCR_ERR_CONFIG', `${key}: cannot read ${file} (${code})`, { key, value: file });
    }
    if (!text.includes('-----BEGIN ')) {
      throw new ScreenError('SCR_ERR_CONFIG', `${key}: ${file} is not PEM`, { key, value: file });
    }
    return text;
  };
  const cert = read('tls.cert', certFile);
  const key = read('tls.key', keyFile);
  try {
    return (lazyRequire('node:tls') as typeof tls).createSecureContext({ cert, key });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // Which file is at fault: try the certificate alone.
    let bad = 'tls.key';
    try { new (lazyRequire('node:crypto') as typeof import('node:crypto')).X509Certificate(cert); } catch { bad = 'tls.cert'; }
    throw new ScreenError('SCR_ERR_CONFIG', `${bad}: ${bad === 'tls.cert' ? certFile : keyFile}: cannot use tls.cert and tls.key (${why})`,
      { key: bad, value: bad === 'tls.cert' ? certFile : keyFile });
  }
}
