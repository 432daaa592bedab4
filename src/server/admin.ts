/*
 * server/admin.ts - the admin HTTP listener: /metrics, /healthz, /readyz.
 *
 * Exports: startAdmin(), Admin, AdminOptions, peerAllowed(), isLoopback(),
 *          tokenMatches(), readAdminToken(), healthz(), readyz(), Health.
 * Off unless admin.listen names an address; node:http, one server per address,
 * started and closed by the screener (server/screener.ts). Sessions never see it.
 * Every request is checked in this order:
 *   1. the peer (peerAllowed): loopback peers only, unless admin.allow_remote
 *      is set or the listener is bound to a specific non-loopback address
 *      (binding one is asking for remote peers; a wildcard such as 0.0.0.0 is
 *      not): 403;
 *   2. the bearer token (admin.token / admin.token_file), compared in constant
 *      time: missing or wrong, 401 with WWW-Authenticate;
 *   3. GET or HEAD only (405), then the route (404).
 * allow_remote, the token and the loop-delay bound are read from the current
 * generation at each request, so a reload applies them; admin.listen needs a
 * restart (server/reload.ts RESTART_KEYS).
 * /healthz: the process answers and its event loop was not delayed more than
 * admin.max_loop_delay in the last window (perf_hooks monitorEventLoopDelay,
 * 10 s windows). /readyz: listening (not draining), the backend probe finds
 * the backend up (server/backend-health.ts), and at least one DNSBL site is not
 * suspended when sites are configured. JSON bodies, 200 or 503.
 */
import type http from 'node:http';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { Config, HostPort } from '../config/types.js';
import { ScreenError } from '../util/errors.js';
import type { Metrics, MetricsSources } from './metrics.js';
import type { ServerCtx } from './stress.js';

let httpMod: typeof import('node:http') | undefined;
let loopDelayMonitor: typeof import('node:perf_hooks').monitorEventLoopDelay | undefined;

export interface AdminOptions extends Omit<MetricsSources, 'ctx'> {
  ctx: ServerCtx;
  listen: readonly HostPort[];
  /** The screener's client listeners, as bound (empty: not listening). */
  listening: () => readonly string[];
  /** Tests: which peer addresses count as local (default isLoopback). */
  isLocal?: (addr: string) => boolean;
}

export interface Admin {
  /** "host:port" of every admin listener, as bound. */
  readonly addresses: string[];
  readonly metrics: Metrics;
  close(): Promise<void>;
}

/** 127.0.0.0/8, ::1, and IPv4-mapped 127/8. */
export function isLoopback(addr: string): boolean {
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  if (net.isIPv4(a)) return a.startsWith('127.');
  return a === '::1' || a === '0:0:0:0:0:0:0:1';
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

/**
 * peerAllowed - may `peer` use an admin listener bound to `bindHost`? Loopback
 * peers always; others when allowRemote, or when the bind address is a
 * specific non-loopback one. An unknown peer address never.
 */
export function peerAllowed(peer: string | undefined, bindHost: string, allowRemote: boolean, isLocal: (a: string) => boolean = isLoopback): boolean {
  if (peer === undefined || peer === '') return false;
  if (isLocal(peer)) return true;
  if (allowRemote) return true;
  return !isWildcard(bindHost) && !isLoopback(bindHost);
}

/** tokenMatches - does the Authorization header carry `Bearer <token>`? No token configured: always. Constant time. */
export function tokenMatches(header: string | undefined, token: string | null): boolean {
  if (token === null) return true;
  if (header === undefined) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (m === null) return false;
  // Hash both sides: equal lengths for timingSafeEqual, and no length leak.
  const a = createHash('sha256').update(m[1] as string).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

let tokenCache: { config: Config; token: string | null } | null = null;

/** readAdminToken - admin.token, or the first line of admin.token_file; a file that cannot be read is a config error naming the key. */
export function readAdminToken(config: Config): string | null {
  if (tokenCache !== null && tokenCache.config === config) return tokenCache.token;
  const { token, token_file: file } = config.admin;
  let t = token;
  if (file !== null) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ScreenError('SCR_ERR_CONFIG', `admin.token_file: cannot read ${file} (${code})`, { key: 'admin.token_file', value: file });
    }
    t = (text.split(/\r?\n/)[0] ?? '').trim();
    if (t === '') throw new ScreenError('SCR_ERR_CONFIG', `admin.token_file: ${file} has no token on its first line`, { key: 'admin.token_file', value: file });
  }
  tokenCache = { config, token: t };
  return t;
}

export interface Health {
  status: 'ok' | 'fail';
  [k: string]: unknown;
}

/** The event loop's delay: the worst of the last full window and the current one. */
class LoopDelay {
  // A stall shows as one late sample however coarse the timer: 100 ms wakes the loop 10 times a second.
  readonly #h: IntervalHistogram = (loopDelayMonitor as NonNullable<typeof loopDelayMonitor>)({ resolution: 100 });
  #lastMaxMs = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(windowMs = 10_000) {
    this.#h.enable();
    this.#timer = setInterval(() => {
      this.#lastMaxMs = this.#h.max / 1e6;
      this.#h.reset();
    }, windowMs).unref();
  }
  get maxMs(): number {
    const now = this.#h.count > 0 ? this.#h.max / 1e6 : 0;
    return Math.round(Math.max(this.#lastMaxMs, now));
  }
  stop(): void {
    clearInterval(this.#timer);
    this.#h.disable();
  }
}

/** healthz - process up and its event loop not delayed beyond the bound. */
export function healthz(loopDelayMs: number, maxMs: number): Health {
  return {
    status: loopDelayMs <= maxMs ? 'ok' : 'fail', pid: process.pid, uptime_s: Math.round(process.uptime()),
    event_loop_delay_ms: loopDelayMs, max_loop_delay_ms: maxMs,
  };
}

/** readyz - listening, backend up, and a DNSBL site usable when any is configured. */
export function readyz(ctx: ServerCtx, listening: readonly string[], backendDown: { stage: string; reason: string } | null): Health {
  const listen = { ok: listening.length > 0 && !ctx.draining, addresses: listening, draining: ctx.draining };
  const backend = backendDown === null
    ? { ok: true, address: ctx.gen.backend.name }
    : { ok: false, address: ctx.gen.backend.name, stage: backendDown.stage, reason: backendDown.reason };
  const domains = ctx.gen.dnsbl?.domains ?? [];
  const healthy = domains.filter((d) => !d.suspended).map((d) => d.domain);
  const dnsbl = { ok: domains.length === 0 || healthy.length > 0, sites: domains.length, healthy };
  const ok = listen.ok && backend.ok && dnsbl.ok;
  return { status: ok ? 'ok' : 'fail', checks: { listening: listen, backend, dnsbl } };
}

function send(res: http.ServerResponse, code: number, type: string, body: string, extra?: Record<string, string>): void {
  res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: http.ServerResponse, code: number, obj: unknown, extra?: Record<string, string>): void {
  send(res, code, 'application/json', `${JSON.stringify(obj)}\n`, extra);
}

function fmt(h: HostPort): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

/** Bind every admin listener; a bind error closes those bound and throws (the start-up fails, START FAILED). */
export async function startAdmin(o: AdminOptions): Promise<Admin> {
  const ctx = o.ctx;
  // Loaded here, not at start-up: prom-client and its modules cost ~12 MB of RSS, node:http and
  // node:perf_hooks ~2 MB more, and most configurations never open an admin listener.
  const { Metrics } = await import('./metrics.js');
  httpMod ??= await import('node:http');
  loopDelayMonitor ??= (await import('node:perf_hooks')).monitorEventLoopDelay;
  const http = httpMod;
  const metrics = new Metrics({ ...o, ctx });
  const loop = new LoopDelay();
  const isLocal = o.isLocal ?? isLoopback;
  const handle = (bindHost: string) => (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const cfg = ctx.gen.config.admin;
    if (!peerAllowed(req.socket.remoteAddress, bindHost, cfg.allow_remote, isLocal)) {
      sendJson(res, 403, { error: 'forbidden: only loopback peers are served (admin.allow_remote)' }, { Connection: 'close' });
      return;
    }
    let token: string | null;
    try {
      token = readAdminToken(ctx.gen.config);
    } catch (err) {
      sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (!tokenMatches(req.headers.authorization, token)) {
      sendJson(res, 401, { error: 'unauthorized: a bearer token is needed (admin.token)' }, { 'WWW-Authenticate': 'Bearer realm="smtpscreen"' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD' });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics':
        metrics.text().then(
          (text) => send(res, 200, metrics.contentType, text),
          (err: unknown) => sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) }),
        );
        return;
      case '/healthz': {
        const h = healthz(loop.maxMs, cfg.max_loop_delay);
        sendJson(res, h.status === 'ok' ? 200 : 503, h);
        return;
      }
      case '/readyz': {
        const h = readyz(ctx, o.listening(), o.backendDown());
        sendJson(res, h.status === 'ok' ? 200 : 503, h);
        return;
      }
      default:
        sendJson(res, 404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
    }
  };
  const servers: http.Server[] = [];
  const addresses: string[] = [];
  try {
    for (const hp of o.listen) {
      const srv = http.createServer(handle(hp.host));
      srv.requestTimeout = 10_000;
      srv.headersTimeout = 5_000;
      srv.keepAliveTimeout = 5_000;
      srv.maxHeadersCount = 32;
      srv.maxConnections = 64;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: hp.host, port: hp.port }, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      servers.push(srv);
      const a = srv.address() as net.AddressInfo;
      addresses.push(fmt({ host: a.address, port: a.port }));
    }
  } catch (err) {
    for (const s of servers) s.close();
    loop.stop();
    const e = err as NodeJS.ErrnoException;
    // START FAILED names the key and keeps the code (EADDRINUSE...), as a client listener's bind error does.
    throw Object.assign(new Error(`admin.listen ${o.listen.map(fmt).join(', ')}: ${e.message}`), { code: e.code });
  }
  metrics.attach();
  return {
    addresses,
    metrics,
    async close() {
      metrics.detach();
      loop.stop();
      await Promise.all(servers.map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })));
    },
  };
}
