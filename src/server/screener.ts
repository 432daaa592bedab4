/*
 * server/screener.ts - wires the rooms together: init order, listeners, drain.
 *
 * Exports: startScreener(), Screener, ScreenerOptions.
 * Init order: access list (a bad file fails start-up, naming file and line) →
 * verdict store → replies → built-in sink if the backend is "sink" → the two
 * personalities and the stress watermarks (server/stress.ts) → with
 * deep.after_pass handoff, the backend's EHLO (handoff/ehlo.ts; a backend
 * that cannot be reached delays start-up by at most its two timeouts and is
 * asked again every 30 s) → listeners → STARTED. close() stops accepting, ends sessions still being screened with
 * a 421, lets spliced sessions finish for up to drain_timeout, then cuts the rest.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config, HostPort } from '../config/types.js';
import { EV } from '../log/events.js';
import { MemoryStore } from '../cache/memory.js';
import type { VerdictStore } from '../cache/store.js';
import { ACCESS_FILE, parseAccessList } from '../checks/access.js';
import { readTextFile } from '../util/read-file.js';
import { makeReplies } from '../smtp/replies.js';
import { TestIndex } from '../checks/tests.js';
import type { Ctx } from '../session/state.js';
import { closeWith } from '../session/close.js';
import { loadSnapshot, saveSnapshot, type SnapshotResult } from '../cache/snapshot.js';
import { startListener, type Listener } from './listener.js';
import { FD_RESERVE, readFdLimit } from './fdlimit.js';
import { Dnsbl } from '../checks/dnsbl.js';
import { Resolver } from '../dns/resolver.js';
import { reverseName } from '../dns/reverse.js';
import { ScreenError } from '../util/errors.js';
import { startSink, type Sink } from '../handoff/sink.js';
import { EhloLearner, probeBackendEhlo } from '../handoff/ehlo.js';
import { StressState, makePersonalities, stressLimit, watermarks } from './stress.js';

export interface ScreenerOptions {
  logger: Logger;
  /** A store to use instead of a new memory store (tests, shared tiers). */
  store?: VerdictStore;
}

export interface Screener {
  readonly ctx: Ctx;
  /** "host:port" of every listener, as bound. */
  readonly addresses: string[];
  readonly sink: Sink | null;
  /** Stop accepting, drain, close. Resolves to the number of sessions cut at the deadline. */
  close(drainMs?: number, signal?: string): Promise<number>;
}

export async function startScreener(config: Config, opts: ScreenerOptions): Promise<Screener> {
  const log = opts.logger;
  const accessFile = config.access.list;
  const access = accessFile === null ? null : parseAccessList(readTextFile(accessFile, ACCESS_FILE), accessFile);
  const tlsContext = loadTls(config);
  const store = opts.store ?? new MemoryStore(config.cache.max_entries);
  const enabled: number[] = [];
  if (config.pregreet.enable) enabled.push(TestIndex.pregreet);
  const counters: Record<string, number> = {};
  const { dnsbl, resolver } = makeDnsbl(config, log, counters);
  if (dnsbl !== null) enabled.push(TestIndex.dnsbl);
  if (config.greylist.enable) enabled.push(TestIndex.greylist);
  const personalities = makePersonalities(config, enabled);
  let sink: Sink | null = null;
  let backend: HostPort = config.backend.address;
  if (backend.host === 'sink') {
    sink = await startSink('127.0.0.1', backend.port);
    backend = { host: sink.host, port: sink.port };
  }
  const fdLimit = readFdLimit();
  const stressMarks = watermarks(stressLimit(config.limits.max_connections, fdLimit), config.stress.enter_at, config.stress.leave_at);
  const ctx: Ctx = {
    config,
    log,
    store,
    access,
    dnsbl,
    replies: makeReplies(config.hostname, config.banner),
    enabled: personalities.normal.enabled,
    deep: personalities.normal.deep,
    tls: tlsContext,
    ehlo: null,
    backend,
    sessions: new Set(),
    perClient: new Map(),
    draining: false,
    pendingProxy: 0,
    backends: 0,
    fdLimit,
    counters,
    personalities,
    stressState: new StressState(stressMarks),
  };
  // deep.after_pass handoff: learn the backend's EHLO before the first client sees the dummy engine's.
  if (config.deep.after_pass === 'handoff' && (personalities.normal.deep !== null || personalities.stress.deep !== null)) {
    ctx.ehlo = makeEhloLearner(ctx);
    await ctx.ehlo.start();
  }
  const snapFile = config.cache.snapshot;
  if (snapFile !== null) {
    const r = await loadSnapshot(store, snapFile);
    logSnapshot(ctx, 'load', snapFile, r);
  }
  const listeners: Listener[] = [];
  try {
    for (const l of config.listen) listeners.push(await startListener(ctx, l));
  } catch (err) {
    for (const l of listeners) l.server.close();
    ctx.ehlo?.stop();
    await sink?.close();
    throw err;
  }
  const addresses = listeners.map((l) => l.address);
  const started: Record<string, unknown> = {
    event: EV.STARTED,
    listen: addresses,
    backend: `${backend.host}:${backend.port}`,
    handoff: config.backend.handoff,
    pid: process.pid,
    fd_limit: ctx.fdLimit,
    stress: ctx.stressState.marks,
  };
  if (ctx.fdLimit !== null && config.limits.max_connections > ctx.fdLimit - FD_RESERVE) {
    started['warning'] = `limits.max_connections ${config.limits.max_connections} is above the file descriptor limit ` +
      `${ctx.fdLimit} minus ${FD_RESERVE} reserved: the descriptor limit applies first`;
    log.warn(started);
  } else log.info(started);

  dnsbl?.startHealth();
  let snapTimer: NodeJS.Timeout | null = null;
  let saving = false;
  if (snapFile !== null) {
    snapTimer = setInterval(() => {
      if (saving) return;
      saving = true;
      void saveSnapshot(store, snapFile).then((r) => {
        saving = false;
        logSnapshot(ctx, 'save', snapFile, r);
      });
    }, config.cache.snapshot_interval);
    snapTimer.unref();
  }

  let closing: Promise<number> | null = null;
  const close = (drainMs = config.drain_timeout, signal = 'close'): Promise<number> => {
    closing ??= drain(ctx, listeners, sink, drainMs, signal).then(async (forced) => {
      if (snapTimer !== null) clearInterval(snapTimer);
      dnsbl?.stopHealth();
      ctx.ehlo?.stop();
      await resolver?.close();
      if (snapFile !== null) logSnapshot(ctx, 'save', snapFile, await saveSnapshot(store, snapFile));
      ctx.log.info({ event: EV.STOPPED, forced });
      return forced;
    });
    return closing;
  };
  return { ctx, addresses, sink, close };
}

async function drain(ctx: Ctx, listeners: Listener[], sink: Sink | null, drainMs: number, signal: string): Promise<number> {
  ctx.draining = true;
  for (const l of listeners) l.server.close();
  // Sessions still being screened are told to come back later; spliced ones may finish.
  for (const s of ctx.sessions) {
    if (s.phase !== 'splice' && s.phase !== 'handoff') closeWith(s, ctx.replies.serviceUnavailable);
  }
  ctx.log.info({ event: EV.STOPPING, signal, open: ctx.sessions.size, drain_ms: drainMs });
  let forced = 0;
  if (ctx.sessions.size > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        forced = ctx.sessions.size;
        for (const s of ctx.sessions) {
          s.backendSock?.destroy();
          if (s.io !== s.socket) s.io.destroy();
          s.socket.destroy();
        }
        resolve();
      }, drainMs);
      ctx.onSessionEnd = () => {
        if (ctx.sessions.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
  }
  await Promise.all(listeners.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
  await sink?.close();
  return forced;
}

/** The DNSBL test and its resolver, or nulls when no sites are configured. */
function makeDnsbl(config: Config, log: Logger, counters: Record<string, number>): { dnsbl: Dnsbl | null; resolver: Resolver | null } {
  const d = config.dnsbl;
  if (d.sites.length === 0) return { dnsbl: null, resolver: null };
  const r = config.resolver;
  const servers = r.servers.length > 0 ? r.servers : Resolver.fromResolvConf();
  if (servers.length === 0) {
    throw new ScreenError('SCR_ERR_CONFIG', 'resolver.servers is empty and /etc/resolv.conf names no nameserver: DNSBL lookups have nowhere to go', { key: 'resolver.servers', value: [] });
  }
  const resolver = new Resolver({
    servers, timeoutMs: r.timeout, tries: r.tries, deadlineMs: d.timeout,
    minTtl: r.min_ttl / 1000, maxTtl: r.max_ttl / 1000, cacheMax: r.cache_max,
  });
  const emit = (event: string, fields: Record<string, unknown>): void => {
    counters[event] = (counters[event] ?? 0) + 1;
    if (event === EV.DNSBL_SITE && fields['state'] === 'resumed') log.info({ event, ...fields });
    else log.warn({ event, ...fields });
  };
  const dnsbl = new Dnsbl(d.sites, {
    threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
    slowWarningMs: d.slow_warning, txt: d.txt, replyMap: d.reply_map,
    health: {
      enable: d.health.enable, intervalMs: d.health.interval, listed: d.health.listed, unlisted: d.health.unlisted,
      errorLimit: d.health.error_limit, sites: d.health.sites,
    },
  }, resolver, reverseName, emit);
  return { dnsbl, resolver };
}

function logSnapshot(ctx: Ctx, op: 'load' | 'save', file: string, r: SnapshotResult): void {
  const c = ctx.counters;
  c[EV.CACHE] = (c[EV.CACHE] ?? 0) + 1;
  if (r.ok) ctx.log.info({ event: EV.CACHE, op, file, entries: r.entries, skipped: r.skipped, expired: r.expired });
  else ctx.log.error({ event: EV.CACHE, op: 'error', during: op, file, error: r.error, set_aside: r.setAside });
}

/** While the backend cannot be reached, its EHLO is asked again this often. */
const EHLO_RETRY_MS = 30_000;

/** The backend's EHLO learner (handoff/ehlo.ts), logging BACKEND EHLO when what it offers is learned, changes, or cannot be learned. */
function makeEhloLearner(ctx: Ctx): EhloLearner {
  const b = ctx.config.backend;
  const target = `${ctx.backend.host}:${ctx.backend.port}`;
  let learnedOnce = false;
  return new EhloLearner({
    probe: () => probeBackendEhlo({
      host: ctx.backend.host, port: ctx.backend.port, mode: b.handoff, hostname: ctx.config.hostname,
      timeoutMs: b.connect_timeout + b.handshake_timeout,
    }),
    hostname: ctx.config.hostname,
    refreshMs: b.ehlo_refresh,
    retryMs: EHLO_RETRY_MS,
    onChange: (info) => {
      const ev: Record<string, unknown> = {
        event: EV.BACKEND_EHLO, backend: target, state: learnedOnce ? 'changed' : 'learned',
        offered: info.offered, xclient: info.xclient === null ? null : [...info.xclient],
      };
      learnedOnce = true;
      if (b.handoff === 'xclient' && info.xclient === null) {
        // Every handoff would fail too: say so once, where the postmaster looks first.
        ev['warning'] = 'backend.handoff is xclient but the backend does not offer XCLIENT to the screener (Postfix: smtpd_authorized_xclient_hosts)';
        ctx.log.warn(ev);
      } else ctx.log.info(ev);
    },
    onError: (reason) => {
      ctx.log.warn({ event: EV.BACKEND_EHLO, backend: target, state: 'failed', reason, retry_ms: EHLO_RETRY_MS });
    },
  });
}

/** tls.cert and tls.key: one secure context for every STARTTLS; a bad file fails start-up naming its key. */
function loadTls(config: Config): tls.SecureContext | null {
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
    return tls.createSecureContext({ cert, key });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // Which file is at fault: try the certificate alone.
    let bad = 'tls.key';
    try { new X509Certificate(cert); } catch { bad = 'tls.cert'; }
    throw new ScreenError('SCR_ERR_CONFIG', `${bad}: ${bad === 'tls.cert' ? certFile : keyFile}: cannot use tls.cert and tls.key (${why})`,
      { key: bad, value: bad === 'tls.cert' ? certFile : keyFile });
  }
}
