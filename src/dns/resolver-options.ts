/*
 * dns/resolver-options.ts - what a Resolver is configured with, checked once at construction.
 *
 * Exports:
 *   ResolverServer, ResolverOptions, RESOLVER_DEFAULTS   (re-exported by dns/resolver.ts, the
 *                               public names; import them from there)
 *   ResolverSettings            the options validated, defaults filled, servers normalised
 *   resolverSettings(opts)      ResolverOptions -> ResolverSettings; throws ScreenError
 *                               SCR_ERR_CONFIG naming the key and the value
 *   resolvConfServers(text?)    nameserver lines of /etc/resolv.conf (or `text`) as servers
 *
 * Servers must be IP literals: the UDP pool matches a reply's source against them as rinfo
 * gives it, so IPv6 hosts are normalised here the way rinfo.address is ('::1', not '0:0::1').
 * Keys are checked in a fixed order (servers, then the numbers as listed in ResolverOptions,
 * cacheMax last), so the first bad key is the one reported. maxTtl must be >= minTtl.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ScreenError } from '../util/errors.js';
import type { Server } from './query.js';

export interface ResolverServer {
  host: string;
  port: number;
}

export interface ResolverOptions {
  /** IP literals (IPv4 or IPv6) and ports. At least one. */
  servers: ResolverServer[];
  /** Per try, ms. Default 1000. */
  timeoutMs?: number;
  /** Total UDP tries over the servers (a TCP repeat after TC is part of its try). Default 3. */
  tries?: number;
  /** Whole lookup, ms. Default 5000. */
  deadlineMs?: number;
  /** Clamp for answer and SOA-derived negative TTLs, seconds. Defaults 60 / 3600. */
  minTtl?: number;
  maxTtl?: number;
  /** Negative TTL when the reply has no SOA, seconds. Default 60. */
  negTtl?: number;
  /** Cache entries (LRU). Default 100000. */
  cacheMax?: number;
  /** UDP sockets per address family. Default 4. */
  sockets?: number;
  /** Queries per socket before it is replaced by one on a new random port. Default 10000. */
  rotateAfter?: number;
  /**
   * Most UDP queries on the wire per server; more wait in a FIFO for a free slot (their deadline
   * still runs). The window starts at 128 (rbldnsd's 128 KiB receive buffer holds ~157 queries:
   * a burst beyond what a server buffers is dropped and costs a whole try timeout) and grows
   * towards this while the FIFO would not drain in time (dns/window.ts). Default 1024 (unbound's
   * num-queries-per-thread): a server answering in 200 ms then serves up to 5,120 lookups/s.
   */
  maxOutstanding?: number;
  /** The window's start and floor; default 128, at most maxOutstanding. */
  minOutstanding?: number;
  /** Clock in ms (monotonic) for TTLs and deadlines. Default performance.now. */
  now?: () => number;
}

export const RESOLVER_DEFAULTS = {
  timeoutMs: 1000, tries: 3, deadlineMs: 5000, minTtl: 60, maxTtl: 3600, negTtl: 60,
  cacheMax: 100000, sockets: 4, rotateAfter: 10000, maxOutstanding: 1024, minOutstanding: 128,
} as const;

export interface ResolverSettings {
  /** In the order given; each with no try on the wire and an empty wait FIFO. */
  servers: Server[];
  timeoutMs: number;
  tries: number;
  deadlineMs: number;
  minTtl: number;
  maxTtl: number;
  negTtl: number;
  sockets: number;
  rotateAfter: number;
  maxOutstanding: number;
  minOutstanding: number;
  cacheMax: number;
  now: () => number;
}

function positiveInt(key: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new ScreenError('SCR_ERR_CONFIG', `resolver: ${key} must be an integer >= ${min}, got ${String(v)}`, { key, value: v });
  return v;
}

export function resolverSettings(opts: ResolverOptions): ResolverSettings {
  if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
    throw new ScreenError('SCR_ERR_CONFIG', 'resolver: servers must list at least one server', { key: 'servers', value: opts.servers });
  }
  const servers = opts.servers.map((s, i): Server => {
    const family = net.isIP(s.host);
    if (family === 0 || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      throw new ScreenError('SCR_ERR_CONFIG', `resolver: servers[${i}] must be an IP address and port, got ${s.host}:${s.port}`, { key: `servers[${i}]`, value: s });
    }
    // rinfo.address is normalised ('::1', not '0:0::1'); compare like with like. A zone
    // ('fe80::1%eth0') is kept as given: SocketAddress drops it.
    const pct = s.host.indexOf('%');
    const host = family === 4 ? s.host
      : new net.SocketAddress({ address: pct < 0 ? s.host : s.host.slice(0, pct), family: 'ipv6' }).address + (pct < 0 ? '' : s.host.slice(pct));
    return { host, port: s.port, family: family as 4 | 6, outstanding: 0, window: 1, floor: 1, tickWindow: 1,
      delivered: 0, rate: 0, frozenUntil: -Infinity, wait: [], head: 0 }; // window: see dns/window.ts
  });
  const d = RESOLVER_DEFAULTS;
  const timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, d.timeoutMs);
  const tries = positiveInt('tries', opts.tries, d.tries);
  const deadlineMs = positiveInt('deadlineMs', opts.deadlineMs, d.deadlineMs);
  const minTtl = positiveInt('minTtl', opts.minTtl, d.minTtl, 0);
  const maxTtl = positiveInt('maxTtl', opts.maxTtl, d.maxTtl, minTtl);
  const negTtl = positiveInt('negTtl', opts.negTtl, d.negTtl, 0);
  const sockets = positiveInt('sockets', opts.sockets, d.sockets);
  const rotateAfter = positiveInt('rotateAfter', opts.rotateAfter, d.rotateAfter);
  const maxOutstanding = positiveInt('maxOutstanding', opts.maxOutstanding, d.maxOutstanding);
  const minOutstanding = Math.min(maxOutstanding, positiveInt('minOutstanding', opts.minOutstanding, d.minOutstanding));
  const cacheMax = positiveInt('cacheMax', opts.cacheMax, d.cacheMax);
  const now = opts.now ?? (() => performance.now());
  return { servers, timeoutMs, tries, deadlineMs, minTtl, maxTtl, negTtl, sockets, rotateAfter, maxOutstanding, minOutstanding, cacheMax, now };
}

/**
 * Nameservers from resolv.conf text (default: read /etc/resolv.conf). Like glibc: the first
 * three usable lines, and the local server when there are none or the file cannot be read.
 */
export function resolvConfServers(text?: string): Array<{ host: string; port: 53 }> {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      t = '';
    }
  }
  const out: Array<{ host: string; port: 53 }> = [];
  for (const line of t.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const host = m?.[1];
    if (host !== undefined && net.isIP(host) !== 0 && out.length < 3) out.push({ host, port: 53 });
  }
  if (out.length === 0) out.push({ host: '127.0.0.1', port: 53 });
  return out;
}
