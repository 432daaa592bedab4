/*
 * dns/resolver.ts - stub resolver over UDP (TCP after TC) for A and TXT lookups.
 *
 * Exports:
 *   Resolver                    implements DnsLookup: cache, coalescing, retries, deadlines
 *     new Resolver(opts)        ResolverOptions; throws ScreenError SCR_ERR_CONFIG on a bad option
 *     Resolver.fromResolvConf(text?)  nameserver lines of /etc/resolv.conf (or `text`) as servers
 *     lookup(name, type)        Promise<LookupResult>; never rejects, never answers synchronously
 *     stats()                   ResolverStats counters
 *     close()                   pending lookups end with error 'network'; idempotent
 *   ResolverOptions, ResolverServer, ResolverStats, RESOLVER_DEFAULTS
 *
 * Lookup: cache (LRU, our own expiry against the injected clock) -> in-flight table (identical
 * name+type share one query and one promise) -> UDP try to servers[start], start rotating per
 * lookup, then round-robin on timeout / SERVFAIL / REFUSED / FORMERR while tries remain, all
 * within deadlineMs. A reply with TC=1 repeats the try over TCP to the same server. At most
 * maxOutstanding UDP tries per server are on the wire; the rest wait in a FIFO (another server
 * with room takes them first), so a burst of lookups never overruns a server's receive buffer.
 *
 * Transport (dns/udp.ts, dns/tcp.ts): per address family, `sockets` unconnected dgram sockets
 * bound to port 0 (the kernel picks a random port), each replaced after `rotateAfter` queries; a
 * retired socket is closed once its last query has left. IDs are random, unique among the
 * queries in flight on that socket and among those it recently gave up on (so a late reply is
 * told apart from a spoofed one and never matches a new query). A reply is taken only if it
 * comes from the server's address and port, carries a live ID, is a response and repeats the
 * question.
 *
 * Timers: one sweep interval (period min(timeout, deadline)/4, at most 100 ms, unref'd) runs
 * while anything is in flight and moves expired tries on (sweep() is public for that timer and
 * for tests). A try ends between timeoutMs and timeoutMs + period; a lookup by deadlineMs +
 * period at the latest. Measured (bench/load/dns-resolver.ts, "micro"): setTimeout+clearTimeout
 * costs 91-98 ns and a Timeout object per try; the sweep 6-11 ns per lookup in flight per tick,
 * i.e. 0.06-0.11 ms per tick with 10,000 in flight. At 60,000 lookups/s that is ~6 ms/s of
 * timer work against ~1 ms/s; the sweep stays cheaper while mean latency is under ~0.8 s.
 * ID table: Map<number, Query> per socket, 156 ns per set+get+delete against 17 ns for a
 * 65,536-slot array (same bench): ~1% of the ~14 us CPU a lookup costs here, kept for memory
 * (a Map holds what is in flight, an array 512 KiB per socket).
 *
 * Errors are not cached: they are outcomes of a moment (a busy or restarting server), concurrent
 * askers already share one query, and a cached 'timeout' would keep a DNSBL silently scoring 0
 * for that client after the server came back.
 */
import type dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { ScreenError } from '../util/errors.js';
import { answersFor, canonical, decodeMessage, encodeQuery, negativeTtl, questionMatches } from './packet.js';
import { QTYPE, RCODE, type DnsLookup, type DnsMessage, type LookupError, type LookupResult, type LookupType } from './types.js';
import { ID_CAP, bindUdp, closeUdp, createUdp, forgetIds, newId, slabAdvance, slabTake, type UdpSock } from './udp.js';
import { TcpExchange } from './tcp.js';

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
   * UDP queries on the wire per server; more wait in a FIFO for a free slot (their deadline
   * still runs). Default 128: rbldnsd's 128 KiB receive buffer holds ~157 queries, and a burst
   * beyond what a server can buffer is dropped and costs a whole try timeout.
   */
  maxOutstanding?: number;
  /** Clock in ms (monotonic) for TTLs and deadlines. Default performance.now. */
  now?: () => number;
}

export const RESOLVER_DEFAULTS = {
  timeoutMs: 1000, tries: 3, deadlineMs: 5000, minTtl: 60, maxTtl: 3600, negTtl: 60,
  cacheMax: 100000, sockets: 4, rotateAfter: 10000, maxOutstanding: 128,
} as const;

export interface ResolverStats {
  /** Queries sent (UDP datagrams and TCP queries). */
  sent: number;
  /** Replies accepted (UDP and TCP). */
  received: number;
  /** Dropped: wrong source address/port, unknown ID, or wrong question. */
  spoofed: number;
  /** Dropped: not DNS, or not a response; TCP replies that do not decode. */
  malformed: number;
  /** Dropped: ID of a try we had already given up on. */
  late: number;
  /** Tries (UDP or TCP) that ran out of time. */
  timeouts: number;
  /** TCP repeats after TC. */
  tcp: number;
  cacheHits: number;
  coalesced: number;
  /** Distinct queries in flight. */
  inFlight: number;
  cacheSize: number;
}

interface Server {
  host: string;
  port: number;
  family: 4 | 6;
  /** UDP tries on the wire to this server. */
  outstanding: number;
  /** Queries waiting for a slot (FIFO from `head`; stale entries are skipped). */
  wait: Query[];
  head: number;
}

type Sock = UdpSock<Query>;
type TcpTry = TcpExchange<Query>;

interface Query {
  readonly key: string;
  readonly name: string;
  readonly qtype: number;
  readonly deadline: number;
  readonly promise: Promise<LookupResult>;
  resolve: (r: LookupResult) => void;
  /** The query as sent last (ID of the current try); the first try sends the lookup's encoding. */
  pkt: Buffer;
  /** No try sent yet: pkt may be written in place. */
  fresh: boolean;
  id: number;
  sock: Sock | null;
  tcp: TcpTry | null;
  server: number;
  /** Index of the server whose wait queue holds q, or -1. */
  queued: number;
  triesLeft: number;
  tryDeadline: number;
  lastError: LookupError;
  done: boolean;
}

interface CacheEntry {
  status: 'ok' | 'nxdomain' | 'nodata';
  records: string[];
  expiresAt: number;
}

const CLOSED: LookupResult = Object.freeze({ status: 'error', error: 'network', message: 'resolver closed' });
const BAD_NAME: LookupResult = Object.freeze({ status: 'error', error: 'bad-name' });
const CNAME_LOOP: LookupResult = Object.freeze({ status: 'error', error: 'cname-loop' });
const ERRORS = new Map<LookupError, LookupResult>();
function errorResult(e: LookupError): LookupResult {
  let r = ERRORS.get(e);
  if (r === undefined) ERRORS.set(e, (r = Object.freeze({ status: 'error', error: e })));
  return r;
}

function positiveInt(key: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new ScreenError('SCR_ERR_CONFIG', `resolver: ${key} must be an integer >= ${min}, got ${String(v)}`, { key, value: v });
  return v;
}

export class Resolver implements DnsLookup {
  readonly #servers: Server[];
  readonly #timeoutMs: number;
  readonly #tries: number;
  readonly #deadlineMs: number;
  readonly #minTtl: number;
  readonly #maxTtl: number;
  readonly #negTtl: number;
  readonly #nsockets: number;
  readonly #rotateAfter: number;
  readonly #maxOutstanding: number;
  readonly #sweepMs: number;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, CacheEntry>;
  readonly #inflight = new Map<string, Query>();
  readonly #pool4: Sock[] = [];
  readonly #pool6: Sock[] = [];
  #pick = 0;
  readonly #retiring = new Set<Sock>();
  readonly #tcps = new Set<TcpTry>();
  #rr = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #st = { sent: 0, received: 0, spoofed: 0, malformed: 0, late: 0, timeouts: 0, tcp: 0, cacheHits: 0, coalesced: 0 };

  constructor(opts: ResolverOptions) {
    if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
      throw new ScreenError('SCR_ERR_CONFIG', 'resolver: servers must list at least one server', { key: 'servers', value: opts.servers });
    }
    this.#servers = opts.servers.map((s, i) => {
      const family = net.isIP(s.host);
      if (family === 0 || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        throw new ScreenError('SCR_ERR_CONFIG', `resolver: servers[${i}] must be an IP address and port, got ${s.host}:${s.port}`, { key: `servers[${i}]`, value: s });
      }
      // rinfo.address is normalised ('::1', not '0:0::1'); compare like with like. A zone
      // ('fe80::1%eth0') is kept as given: SocketAddress drops it.
      const pct = s.host.indexOf('%');
      const host = family === 4 ? s.host
        : new net.SocketAddress({ address: pct < 0 ? s.host : s.host.slice(0, pct), family: 'ipv6' }).address + (pct < 0 ? '' : s.host.slice(pct));
      return { host, port: s.port, family: family as 4 | 6, outstanding: 0, wait: [], head: 0 };
    });
    const d = RESOLVER_DEFAULTS;
    this.#timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, d.timeoutMs);
    this.#tries = positiveInt('tries', opts.tries, d.tries);
    this.#deadlineMs = positiveInt('deadlineMs', opts.deadlineMs, d.deadlineMs);
    this.#minTtl = positiveInt('minTtl', opts.minTtl, d.minTtl, 0);
    this.#maxTtl = positiveInt('maxTtl', opts.maxTtl, d.maxTtl, this.#minTtl);
    this.#negTtl = positiveInt('negTtl', opts.negTtl, d.negTtl, 0);
    this.#nsockets = positiveInt('sockets', opts.sockets, d.sockets);
    this.#rotateAfter = positiveInt('rotateAfter', opts.rotateAfter, d.rotateAfter);
    this.#maxOutstanding = positiveInt('maxOutstanding', opts.maxOutstanding, d.maxOutstanding);
    this.#cache = new LRUCache<string, CacheEntry>({ max: positiveInt('cacheMax', opts.cacheMax, d.cacheMax) });
    this.#now = opts.now ?? (() => performance.now());
    this.#sweepMs = Math.max(1, Math.min(100, Math.floor(Math.min(this.#timeoutMs, this.#deadlineMs) / 4)));
  }

  /**
   * Nameservers from resolv.conf text (default: read /etc/resolv.conf). Like glibc: the first
   * three usable lines, and the local server when there are none or the file cannot be read.
   */
  static fromResolvConf(text?: string): Array<{ host: string; port: 53 }> {
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

  /**
   * `fresh` skips the cache read (site health probes must see the server's
   * answer now, not one cached for an hour); the answer is still cached, and
   * an identical query already on the wire is shared.
   */
  lookup(name: string, type: LookupType, fresh = false): Promise<LookupResult> {
    if (this.#closed) return Promise.resolve(CLOSED);
    const qname = canonical(name);
    const qtype = type === 'A' ? QTYPE.A : type === 'TXT' ? QTYPE.TXT : 0;
    if (qtype === 0) return Promise.resolve(BAD_NAME);
    const key = (qtype === QTYPE.A ? 'A ' : 'T ') + qname;
    const now = this.#now();
    const e = fresh ? undefined : this.#cache.get(key);
    if (e !== undefined) {
      if (e.expiresAt > now) {
        this.#st.cacheHits++;
        const ttl = Math.ceil((e.expiresAt - now) / 1000);
        // A resolved promise: the caller's then() still runs later (STYLE 3).
        return Promise.resolve(e.status === 'ok' ? { status: 'ok', records: e.records, ttl } : { status: e.status, ttl });
      }
      this.#cache.delete(key);
    }
    const pending = this.#inflight.get(key);
    if (pending !== undefined) {
      this.#st.coalesced++;
      return pending.promise;
    }
    let pkt: Buffer;
    try {
      pkt = encodeQuery(0, qname, qtype, slabTake());
    } catch {
      return Promise.resolve(BAD_NAME); // encodeQuery throws only ScreenError 'bad-name' here
    }
    slabAdvance(pkt.length);
    let resolve!: (r: LookupResult) => void;
    const promise = new Promise<LookupResult>((r) => { resolve = r; });
    const q: Query = {
      key, name: qname, qtype, deadline: now + this.#deadlineMs, promise, resolve, pkt, fresh: true,
      id: -1, sock: null, tcp: null, server: this.#rr, queued: -1, triesLeft: this.#tries, tryDeadline: 0,
      lastError: 'timeout', done: false,
    };
    this.#rr = (this.#rr + 1) % this.#servers.length;
    this.#inflight.set(key, q);
    if (this.#timer === null) {
      this.#timer = setInterval(sweepTick, this.#sweepMs, this);
      this.#timer.unref();
    }
    this.#sendTry(q, now);
    return promise;
  }

  stats(): ResolverStats {
    return { ...this.#st, inFlight: this.#inflight.size, cacheSize: this.#cache.size };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const q of this.#inflight.values()) this.#finish(q, CLOSED);
    for (const server of this.#servers) {
      server.wait.length = 0;
      server.head = 0;
    }
    for (const t of this.#tcps) t.close();
    this.#tcps.clear();
    const socks = [...this.#pool4, ...this.#pool6, ...this.#retiring];
    this.#pool4.length = 0;
    this.#pool6.length = 0;
    this.#retiring.clear();
    await Promise.all(socks.map((s) => this.#closeSock(s)));
  }

  /* -------- tries -------- */

  /** Sends the next UDP try of q to servers[q.server], or ends q when no try or time is left. */
  #sendTry(q: Query, now: number): void {
    q.queued = -1;
    if (q.triesLeft <= 0 || now >= q.deadline) {
      this.#finish(q, errorResult(q.lastError));
      return;
    }
    let server = this.#servers[q.server] as Server;
    if (server.outstanding >= this.#maxOutstanding) {
      // Full: another server with room takes it, or it waits for this one.
      const n = this.#servers.length;
      let k = 1;
      for (; k < n; k++) {
        if ((this.#servers[(q.server + k) % n] as Server).outstanding < this.#maxOutstanding) break;
      }
      if (k === n) {
        q.queued = q.server;
        q.tryDeadline = q.deadline;
        server.wait.push(q);
        return;
      }
      q.server = (q.server + k) % n;
      server = this.#servers[q.server] as Server;
    }
    q.triesLeft--;
    const s = this.#socket(server.family);
    const id = newId(s);
    let pkt = q.pkt;
    if (!q.fresh) {
      // The last try's bytes may still be queued in libuv: a retry writes a copy.
      const copy = slabTake();
      pkt.copy(copy);
      slabAdvance(pkt.length);
      pkt = q.pkt = copy.subarray(0, pkt.length);
    }
    q.fresh = false;
    pkt.writeUInt16BE(id, 0);
    q.id = id;
    if (s.closed) {
      // Died at bind (reported synchronously): the next sweep moves the try on.
      q.lastError = 'network';
      q.tryDeadline = now;
      return;
    }
    q.sock = s;
    s.ids.set(id, q);
    server.outstanding++;
    q.tryDeadline = Math.min(now + this.#timeoutMs, q.deadline);
    this.#st.sent++;
    // Send errors are not reported without a callback: such a try simply times out.
    try {
      s.sock.send(pkt, server.port, server.host);
    } catch {
      // Not running any more (closed under us): the 'close' handler moves its tries on.
    }
    if (++s.sent >= this.#rotateAfter) this.#retire(s);
  }

  /** The try of q failed (lastError set): next server, if any try is left. */
  #nextTry(q: Query, now: number): void {
    q.server = (q.server + 1) % this.#servers.length;
    this.#sendTry(q, now);
  }

  #finish(q: Query, r: LookupResult): void {
    if (q.done) return;
    q.done = true;
    this.#release(q, false);
    this.#dropTcp(q);
    if (this.#inflight.get(q.key) === q) this.#inflight.delete(q.key);
    if (r.status !== 'error') {
      this.#cache.set(q.key, {
        status: r.status,
        records: r.status === 'ok' ? r.records : [],
        expiresAt: this.#now() + r.ttl * 1000,
      });
    }
    q.resolve(r);
  }

  /** A reply passed every check (UDP or TCP). */
  #onAnswer(q: Query, msg: DnsMessage, viaTcp: boolean): void {
    const now = this.#now();
    if (msg.tc && !viaTcp) {
      this.#startTcp(q, now);
      return;
    }
    switch (msg.rcode) {
      case RCODE.NOERROR: {
        const a = answersFor(msg, q.name, q.qtype);
        if ('cnameLoop' in a) {
          this.#finish(q, CNAME_LOOP);
        } else if (a.records.length > 0) {
          Object.freeze(a.records); // shared by every asker and the cache
          this.#finish(q, { status: 'ok', records: a.records, ttl: this.#clamp(a.ttl) });
        } else {
          this.#finish(q, { status: 'nodata', ttl: this.#negativeTtl(msg) });
        }
        return;
      }
      case RCODE.NXDOMAIN:
        this.#finish(q, { status: 'nxdomain', ttl: this.#negativeTtl(msg) });
        return;
      case RCODE.REFUSED:
        q.lastError = 'refused';
        break;
      case RCODE.FORMERR:
        q.lastError = 'formerr';
        break;
      default: // SERVFAIL, NOTIMP and the rest: this server cannot answer, another may
        q.lastError = 'servfail';
        break;
    }
    this.#nextTry(q, now);
  }

  #clamp(ttl: number): number {
    return ttl < this.#minTtl ? this.#minTtl : ttl > this.#maxTtl ? this.#maxTtl : ttl;
  }

  #negativeTtl(msg: DnsMessage): number {
    const t = negativeTtl(msg);
    return t === null ? this.#negTtl : this.#clamp(t);
  }

  /* -------- sweep -------- */

  /** Moves on every try past its deadline; forgets old IDs; stops itself when idle. */
  sweep(): void {
    const now = this.#now();
    for (const q of this.#inflight.values()) {
      if (now < q.tryDeadline) continue;
      // A try still waiting on a socket timed out; one without was cut off by a socket error.
      if (q.sock !== null || q.tcp !== null) {
        this.#st.timeouts++;
        q.lastError = 'timeout';
      }
      this.#release(q, true);
      this.#dropTcp(q);
      this.#nextTry(q, now);
    }
    for (const s of this.#pool4) forgetIds(s, now);
    for (const s of this.#pool6) forgetIds(s, now);
    if (this.#inflight.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /* -------- UDP -------- */

  /** A socket of `family` for the next query: round-robin, opened lazily, never a full one. */
  #socket(family: 4 | 6): Sock {
    const pool = family === 4 ? this.#pool4 : this.#pool6;
    if (pool.length < this.#nsockets) return this.#open(pool, family);
    for (let k = 0; k < pool.length; k++) {
      this.#pick = (this.#pick + 1) % pool.length;
      const s = pool[this.#pick] as Sock;
      if (s.ids.size + s.recent.size < ID_CAP) return s;
    }
    return this.#open(pool, family); // every socket full: one more (counts against `sockets` no more)
  }

  #open(pool: Sock[], family: 4 | 6): Sock {
    const s = createUdp<Query>(family, this.#onUdpBound, this.#onSockErrorBound);
    pool.push(s); // filed before the bind: a bind error retires it from the pool
    bindUdp(s);
    return s;
  }

  readonly #onUdpBound = (s: Sock, buf: Buffer, rinfo: dgram.RemoteInfo): void => this.#onUdp(s, buf, rinfo);
  readonly #onSockErrorBound = (s: Sock): void => this.#onSockError(s);

  #onUdp(s: Sock, buf: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const st = this.#st;
    if (buf.length < 12) {
      st.malformed++;
      return;
    }
    const id = ((buf[0] as number) << 8) | (buf[1] as number);
    const q = s.ids.get(id);
    if (q !== undefined) {
      const server = this.#servers[q.server] as Server;
      if (rinfo.port !== server.port || rinfo.address !== server.host) {
        st.spoofed++;
        return;
      }
    }
    let msg: DnsMessage;
    try {
      msg = decodeMessage(buf);
    } catch {
      st.malformed++;
      return;
    }
    if (!msg.qr) {
      st.malformed++;
    } else if (q === undefined) {
      if (s.recent.has(id)) st.late++;
      else st.spoofed++;
    } else if (!questionMatches(msg, q.name, q.qtype)) {
      st.spoofed++;
    } else {
      st.received++;
      this.#release(q, false);
      this.#onAnswer(q, msg, false);
    }
  }

  /** Takes q's ID out of its socket's table (into `recent` when given up on). */
  #release(q: Query, giveUp: boolean): void {
    const s = q.sock;
    if (s === null) return;
    q.sock = null;
    s.ids.delete(q.id);
    if (giveUp && !s.closed) s.recent.set(q.id, this.#now() + this.#deadlineMs);
    if (s.retiring && s.ids.size === 0) void this.#closeSock(s);
    const server = this.#servers[q.server] as Server;
    server.outstanding--;
    if (server.wait.length > server.head && !this.#closed) this.#pump(q.server);
  }

  /** Sends waiting queries to server i while it has free slots. */
  #pump(i: number): void {
    const server = this.#servers[i] as Server;
    const wait = server.wait;
    let now = -1;
    while (server.head < wait.length && server.outstanding < this.#maxOutstanding) {
      const q = wait[server.head] as Query;
      wait[server.head++] = undefined as unknown as Query; // let it go
      if (q.done || q.queued !== i) continue;
      if (now < 0) now = this.#now();
      this.#sendTry(q, now);
    }
    if (server.head === wait.length) {
      wait.length = 0;
      server.head = 0;
    } else if (server.head > 1024 && server.head * 2 > wait.length) {
      wait.splice(0, server.head);
      server.head = 0;
    }
  }

  #retire(s: Sock): void {
    const pool = s.family === 4 ? this.#pool4 : this.#pool6;
    const i = pool.indexOf(s);
    if (i >= 0) pool.splice(i, 1);
    s.retiring = true;
    this.#retiring.add(s);
    if (s.ids.size === 0) void this.#closeSock(s);
  }

  #onSockError(s: Sock): void {
    // Unusable: take it out of service; its tries move on at the next sweep.
    if (!s.retiring) this.#retire(s);
    for (const q of s.ids.values()) {
      this.#release(q, false);
      q.lastError = 'network';
      q.tryDeadline = 0;
    }
    void this.#closeSock(s);
  }

  #closeSock(s: Sock): Promise<void> {
    this.#retiring.delete(s);
    return closeUdp(s);
  }

  /* -------- TCP after TC -------- */

  #startTcp(q: Query, now: number): void {
    this.#st.tcp++;
    this.#st.sent++;
    const server = this.#servers[q.server] as Server;
    // Connect plus one exchange: two round trips.
    q.tryDeadline = Math.min(now + 2 * this.#timeoutMs, q.deadline);
    // q.pkt carries q.id, the ID of the UDP try that came back truncated.
    const t = new TcpExchange<Query>(q, server.host, server.port, server.family, q.pkt, this.#onTcpReplyBound, this.#onTcpBroken);
    q.tcp = t;
    this.#tcps.add(t);
  }

  readonly #onTcpReplyBound = (t: TcpTry, body: Buffer): void => this.#onTcpReply(t, body);
  /** The exchange itself failed: a socket error or close, or a reply length with no room for a header. */
  readonly #onTcpBroken = (t: TcpTry, why: LookupError): void => {
    if (why === 'malformed') this.#st.malformed++;
    this.#onTcpFail(t, why);
  };

  #onTcpReply(t: TcpTry, body: Buffer): void {
    const q = t.q;
    let msg: DnsMessage;
    try {
      msg = decodeMessage(body);
    } catch {
      this.#st.malformed++;
      this.#onTcpFail(t, 'malformed');
      return;
    }
    if (!msg.qr || msg.id !== q.id || !questionMatches(msg, q.name, q.qtype)) {
      this.#st.malformed++;
      this.#onTcpFail(t, 'malformed');
      return;
    }
    this.#st.received++;
    this.#dropTcp(q);
    this.#onAnswer(q, msg, true);
  }

  /** The TCP exchange broke before a good reply: next server. */
  #onTcpFail(t: TcpTry, why: LookupError): void {
    if (t.done) return;
    const q = t.q;
    this.#dropTcp(q);
    if (q.done || this.#closed) return;
    q.lastError = why;
    this.#nextTry(q, this.#now());
  }

  #dropTcp(q: Query): void {
    const t = q.tcp;
    if (t === null) return;
    q.tcp = null;
    this.#tcps.delete(t);
    t.close();
  }
}

function sweepTick(r: Resolver): void {
  r.sweep();
}
