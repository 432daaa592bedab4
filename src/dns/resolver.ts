/*
 * dns/resolver.ts - stub resolver over UDP (TCP after TC) for A and TXT lookups (AAAA, MX: the SPF allowlist).
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
 * within deadlineMs. A reply with TC=1 repeats the try over TCP to the same server. At most a
 * window of UDP tries per server are on the wire (128, growing towards maxOutstanding while the
 * queue would not drain in time: dns/window.ts); the rest wait in a FIFO (another server with
 * room takes them first), so a burst of lookups never overruns a server's receive buffer.
 *
 * The parts: this file decides (cache, coalescing, which server, which try, what an answer
 * means, when a try is over); dns/resolver-options.ts checks the options; dns/udp-pool.ts owns
 * the UDP sockets (random ports, rotation, reply matching by source, ID and question) over the
 * mechanics of dns/udp.ts (IDs, query slab); dns/tcp-fallback.ts repeats a truncated try over
 * TCP (the exchange itself: dns/tcp.ts); dns/query.ts holds the records they share. A given-up
 * ID stays quarantined on its socket for deadlineMs, so a late reply is told apart from a
 * spoofed one and never matches a new query.
 *
 * Timers: one sweep interval (period min(timeout, deadline)/4, at most 100 ms, unref'd) runs
 * while anything is in flight, moves expired tries on and ticks the windows (sweep() is public
 * for that timer and tests). A try ends between timeoutMs and timeoutMs + period; a lookup by
 * deadlineMs + period at the latest. Measured (bench/load/dns-resolver.ts, "micro"):
 * setTimeout+clearTimeout costs 91-98 ns and a Timeout object per try; the sweep 6-11 ns per
 * lookup in flight per tick (0.06-0.11 ms with 10,000 in flight): cheaper while mean latency is
 * under ~0.8 s. ID table: Map<number, Query> per socket, 156 ns per set+get+delete against 17 ns
 * for a 65,536-slot array: ~1% of a lookup's ~14 us CPU, kept for memory (512 KiB per socket).
 *
 * Whose fault: a lookup whose deadline comes while it waits in the FIFO (or whose try, sent after
 * such a wait, is cut short by the deadline) ends 'queued' (stats().queued): our overload, not
 * the server's. 'timeout': a query was sent and not answered in its try (stats().timeouts).
 * Errors are not cached: they are outcomes of a moment (a busy or restarting server), and a
 * cached 'timeout' would keep a DNSBL silently scoring 0 for that client after the server came back.
 */
import { LRUCache } from 'lru-cache';
import { canonical, encodeQuery, type ReplySummary } from './packet.js';
import { QTYPE, RCODE, type DnsLookup, type LookupError, type LookupResult, type LookupType } from './types.js';
import { newId, slabAdvance, slabTake } from './udp.js';
import { UdpPool } from './udp-pool.js';
import { TcpFallback } from './tcp-fallback.js';
import type { Counters, Query, Server } from './query.js';
import { resolvConfServers, resolverSettings, type ResolverOptions } from './resolver-options.js';
import { Windows } from './window.js';

export { RESOLVER_DEFAULTS, type ResolverOptions, type ResolverServer } from './resolver-options.js';

/** The Counters (dns/query.ts, each documented there) and two gauges. */
export interface ResolverStats extends Counters {
  /** Distinct queries in flight. */
  inFlight: number;
  cacheSize: number;
}

interface CacheEntry {
  status: 'ok' | 'nxdomain' | 'nodata';
  records: string[];
  expiresAt: number;
}

/** The records of a cached NXDOMAIN or NODATA: one frozen array for all. */
const NONE: string[] = Object.freeze([]) as unknown as string[];
const CLOSED: LookupResult = Object.freeze({ status: 'error', error: 'network', message: 'resolver closed' });
const BAD_NAME: LookupResult = Object.freeze({ status: 'error', error: 'bad-name' });
const CNAME_LOOP: LookupResult = Object.freeze({ status: 'error', error: 'cname-loop' });
const ERRORS = new Map<LookupError, LookupResult>();
function errorResult(e: LookupError): LookupResult {
  let r = ERRORS.get(e);
  if (r === undefined) ERRORS.set(e, (r = Object.freeze({ status: 'error', error: e })));
  return r;
}

export class Resolver implements DnsLookup {
  readonly #servers: Server[];
  readonly #timeoutMs: number;
  readonly #tries: number;
  readonly #deadlineMs: number;
  readonly #minTtl: number;
  readonly #maxTtl: number;
  readonly #negTtl: number;
  readonly #sweepMs: number;
  readonly #win: Windows;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, CacheEntry>;
  readonly #inflight = new Map<string, Query>();
  readonly #udp: UdpPool;
  readonly #tcp: TcpFallback;
  #rr = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #st: Counters = { sent: 0, received: 0, spoofed: 0, malformed: 0, late: 0, timeouts: 0, queued: 0, tcp: 0, cacheHits: 0, coalesced: 0 };

  constructor(opts: ResolverOptions) {
    const c = resolverSettings(opts);
    this.#servers = c.servers;
    this.#timeoutMs = c.timeoutMs;
    this.#tries = c.tries;
    this.#deadlineMs = c.deadlineMs;
    this.#minTtl = c.minTtl;
    this.#maxTtl = c.maxTtl;
    this.#negTtl = c.negTtl;
    // maxSize at one unit per entry: bounded like `max`, without preallocating cacheMax slots at start.
    this.#cache = new LRUCache<string, CacheEntry>({ maxSize: c.cacheMax, sizeCalculation: () => 1 });
    this.#now = c.now;
    this.#sweepMs = Math.max(1, Math.min(100, Math.floor(Math.min(this.#timeoutMs, this.#deadlineMs) / 4)));
    this.#win = new Windows(c.servers, c.minOutstanding, c.maxOutstanding, c.timeoutMs, this.#sweepMs);
    // A given-up ID is quarantined for a whole lookup's time: no reply to it can come later.
    this.#udp = new UdpPool(c.servers, this.#st, c.sockets, c.rotateAfter, c.deadlineMs, c.now,
      this.#onUdpReply, this.#onUdpLost);
    this.#tcp = new TcpFallback(c.servers, this.#st, c.timeoutMs, this.#onTcpAnswer, this.#onTcpFail);
  }

  /** Nameservers from resolv.conf text (default: /etc/resolv.conf), as glibc reads them. */
  static fromResolvConf(text?: string): Array<{ host: string; port: 53 }> {
    return resolvConfServers(text);
  }

  /**
   * `fresh` skips the cache read (site health probes must see the server's
   * answer now, not one cached for an hour); the answer is still cached, and
   * an identical query already on the wire is shared.
   */
  lookup(name: string, type: LookupType, fresh = false): Promise<LookupResult> {
    if (this.#closed) return Promise.resolve(CLOSED);
    const qname = canonical(name);
    const qtype = type === 'A' ? QTYPE.A : type === 'TXT' ? QTYPE.TXT : type === 'AAAA' ? QTYPE.AAAA : type === 'MX' ? QTYPE.MX : 0;
    if (qtype === 0) return Promise.resolve(BAD_NAME);
    const key = (qtype === QTYPE.A ? 'A ' : qtype === QTYPE.TXT ? 'T ' : qtype === QTYPE.AAAA ? 'Q ' : 'M ') + qname;
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
      waited: false, lastError: 'queued', done: false,
    };
    this.#rr = (this.#rr + 1) % this.#servers.length;
    this.#inflight.set(key, q);
    if (this.#timer === null) {
      this.#timer = setInterval(sweepTick, this.#sweepMs, this);
      this.#timer.unref();
      this.#win.start(now);
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
    this.#tcp.close();
    await this.#udp.close();
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
    if (server.outstanding >= server.window) {
      // Full: another server with room takes it, or it waits for this one.
      const n = this.#servers.length;
      let k = 1;
      for (; k < n; k++) {
        const other = this.#servers[(q.server + k) % n] as Server;
        if (other.outstanding < other.window) break;
      }
      if (k === n) {
        q.queued = q.server;
        q.waited = true;
        q.tryDeadline = q.deadline;
        server.wait.push(q);
        return;
      }
      q.server = (q.server + k) % n;
      server = this.#servers[q.server] as Server;
    }
    q.triesLeft--;
    const s = this.#udp.socket(server.family);
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
    this.#udp.send(s, pkt, server);
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
    this.#tcp.drop(q);
    if (this.#inflight.get(q.key) === q) this.#inflight.delete(q.key);
    if (r.status === 'error') {
      if (r.error === 'queued') this.#st.queued++;
    } else {
      this.#cache.set(q.key, {
        status: r.status,
        records: r.status === 'ok' ? r.records : NONE,
        expiresAt: this.#now() + r.ttl * 1000,
      });
    }
    q.resolve(r);
  }

  /** A reply passed every check (UDP or TCP). r may be quickReply's reused object: read it now. */
  #onAnswer(q: Query, r: ReplySummary, viaTcp: boolean): void {
    const now = this.#now();
    if (r.tc && !viaTcp) {
      this.#tcp.start(q, now);
      return;
    }
    switch (r.rcode) {
      case RCODE.NOERROR:
        if (r.cnameLoop) {
          this.#finish(q, CNAME_LOOP);
        } else if (r.records.length > 0) {
          Object.freeze(r.records); // shared by every asker and the cache
          this.#finish(q, { status: 'ok', records: r.records, ttl: this.#clamp(r.ttl) });
        } else {
          this.#finish(q, { status: 'nodata', ttl: this.#negativeTtl(r) });
        }
        return;
      case RCODE.NXDOMAIN:
        this.#finish(q, { status: 'nxdomain', ttl: this.#negativeTtl(r) });
        return;
      default: // REFUSED, FORMERR, SERVFAIL, NOTIMP and the rest: this server cannot answer, another may
        q.lastError = r.rcode === RCODE.REFUSED ? 'refused' : r.rcode === RCODE.FORMERR ? 'formerr' : 'servfail';
    }
    this.#nextTry(q, now);
  }

  #clamp(ttl: number): number {
    return ttl < this.#minTtl ? this.#minTtl : ttl > this.#maxTtl ? this.#maxTtl : ttl;
  }

  #negativeTtl(r: ReplySummary): number {
    return r.negTtl < 0 ? this.#negTtl : this.#clamp(r.negTtl);
  }

  /* -------- sweep -------- */

  /** Moves on every try past its deadline; forgets old IDs; stops itself when idle. */
  sweep(): void {
    const now = this.#now();
    for (const q of this.#inflight.values()) {
      if (now < q.tryDeadline) continue;
      // A try still waiting on a socket timed out; one without was cut off by a socket error or
      // never left the queue. A try cut short by the deadline of a lookup that had waited for a
      // slot lost its time to our queue: lastError stays (a server's earlier failure, or 'queued').
      if ((q.sock !== null || q.tcp !== null) && !(q.waited && q.tryDeadline >= q.deadline)) {
        this.#st.timeouts++;
        q.lastError = 'timeout';
        if (q.sock !== null) this.#win.timeout(this.#servers[q.server] as Server, now);
      }
      this.#release(q, true);
      this.#tcp.drop(q);
      this.#nextTry(q, now);
    }
    this.#udp.forget(now);
    this.#win.tick(now);
    if (this.#inflight.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /* -------- UDP and TCP slots -------- */

  /** A UDP reply passed the pool's checks: its try is over. */
  readonly #onUdpReply = (q: Query, r: ReplySummary): void => {
    this.#win.reply(this.#servers[q.server] as Server, this.#now());
    this.#release(q, false);
    this.#onAnswer(q, r, false);
  };

  /** q's socket died under it: the next sweep moves the try on. */
  readonly #onUdpLost = (q: Query): void => {
    this.#release(q, false);
    q.lastError = 'network';
    q.tryDeadline = 0;
  };

  readonly #onTcpAnswer = (q: Query, r: ReplySummary): void => this.#onAnswer(q, r, true);

  /** The TCP repeat broke before a good reply: next server. */
  readonly #onTcpFail = (q: Query, why: LookupError): void => {
    if (q.done || this.#closed) return;
    q.lastError = why;
    this.#nextTry(q, this.#now());
  };

  /** Ends q's UDP try: its ID leaves the socket (quarantined when given up on), its server slot frees. */
  #release(q: Query, giveUp: boolean): void {
    const s = q.sock;
    if (s === null) return;
    q.sock = null;
    this.#udp.release(s, q.id, giveUp);
    const server = this.#servers[q.server] as Server;
    server.outstanding--;
    if (server.wait.length > server.head && !this.#closed) this.#pump(q.server);
  }

  /** Sends waiting queries to server i while it has free slots. */
  #pump(i: number): void {
    const server = this.#servers[i] as Server;
    const wait = server.wait;
    let now = -1;
    while (server.head < wait.length && server.outstanding < server.window) {
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
}

function sweepTick(r: Resolver): void {
  r.sweep();
}
