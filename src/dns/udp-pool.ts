/*
 * dns/udp-pool.ts - the resolver's UDP sockets as a pool: which socket a try goes out on, when a
 * socket is rotated out and closed, and which datagrams are taken as replies.
 *
 * Exports: UdpPool
 *   new UdpPool(servers, counters, sockets, rotateAfter, quarantineMs, now, onReply, onLost)
 *   socket(family)          a socket for the next try: round-robin, opened lazily, never a full one
 *   send(s, pkt, server)    write one try (its ID already filed in s.ids); rotate s after `rotateAfter`
 *   release(s, id, giveUp)  take id out of s.ids; a given-up id is quarantined for quarantineMs;
 *                           a retiring socket closes with its last try
 *   forget(now)             end the quarantines that are over (the resolver's sweep calls it)
 *   close()                 stop taking replies and close every socket; resolves when closed
 *
 * Per address family, `sockets` unconnected dgram sockets bound to port 0 (the kernel picks a
 * random port; dns/udp.ts has the mechanics: binding, IDs, the query slab). Each is replaced
 * after `rotateAfter` tries; a retired socket is closed once its last try has left. When every
 * socket of a family holds ID_CAP IDs (in flight + quarantined), one more is opened.
 * A datagram is a reply only if it comes from the try's server address and port, carries an ID
 * in flight on that socket, decodes, is a response (QR) and repeats the question. Then the pool
 * hands its ReplySummary to onReply(q, r) with q's try still filed: the resolver releases it.
 * The common shape is read by quickReply (no names decoded, no DnsMessage); the rest in full. An ID given up
 * on (quarantined) that answers late counts as `late`, any other unknown ID as `spoofed`.
 * A socket that errs, or is closed by someone else, is retired and closed; each try on it goes
 * to onLost(q) (the resolver releases it and lets the next sweep move it on).
 * Allocation: none per try or reply here (quickReply: the answer's records only); the handlers given to dgram are bound once per pool.
 */
import type dgram from 'node:dgram';
import { decodeMessage, questionMatches, quickReply, summarize, type ReplySummary } from './packet.js';
import type { DnsMessage } from './types.js';
import { ID_CAP, bindUdp, closeUdp, createUdp, forgetIds } from './udp.js';
import type { Counters, Query, Server, Sock } from './query.js';

export class UdpPool {
  readonly #servers: readonly Server[];
  readonly #st: Counters;
  readonly #nsockets: number;
  readonly #rotateAfter: number;
  readonly #quarantineMs: number;
  readonly #now: () => number;
  readonly #onReply: (q: Query, r: ReplySummary) => void;
  readonly #onLost: (q: Query) => void;
  readonly #pool4: Sock[] = [];
  readonly #pool6: Sock[] = [];
  #pick = 0;
  readonly #retiring = new Set<Sock>();
  #closed = false;

  constructor(servers: readonly Server[], counters: Counters, sockets: number, rotateAfter: number, quarantineMs: number,
    now: () => number, onReply: (q: Query, r: ReplySummary) => void, onLost: (q: Query) => void) {
    this.#servers = servers;
    this.#st = counters;
    this.#nsockets = sockets;
    this.#rotateAfter = rotateAfter;
    this.#quarantineMs = quarantineMs;
    this.#now = now;
    this.#onReply = onReply;
    this.#onLost = onLost;
  }

  /** A socket of `family` for the next try: round-robin, opened lazily, never a full one. */
  socket(family: 4 | 6): Sock {
    const pool = family === 4 ? this.#pool4 : this.#pool6;
    if (pool.length < this.#nsockets) return this.#open(pool, family);
    for (let k = 0; k < pool.length; k++) {
      this.#pick = (this.#pick + 1) % pool.length;
      const s = pool[this.#pick] as Sock;
      if (s.ids.size + s.recent.size < ID_CAP) return s;
    }
    return this.#open(pool, family); // every socket full: one more (counts against `sockets` no more)
  }

  /** Writes pkt to server on s; counts it against s's rotation. */
  send(s: Sock, pkt: Buffer, server: Server): void {
    // Send errors are not reported without a callback: such a try simply times out.
    try {
      s.sock.send(pkt, server.port, server.host);
    } catch {
      // Not running any more (closed under us): the 'close' handler moves its tries on.
    }
    if (++s.sent >= this.#rotateAfter) this.#retire(s);
  }

  /** Takes id out of s's table (into quarantine when given up on). */
  release(s: Sock, id: number, giveUp: boolean): void {
    s.ids.delete(id);
    if (giveUp && !s.closed) s.recent.set(id, this.#now() + this.#quarantineMs);
    if (s.retiring && s.ids.size === 0) void this.#closeSock(s);
  }

  /** Drops the quarantined IDs whose time is over, on the sockets in service. */
  forget(now: number): void {
    for (const s of this.#pool4) forgetIds(s, now);
    for (const s of this.#pool6) forgetIds(s, now);
  }

  /** Not async: Resolver.close() awaits this Promise.all itself (no extra microtask hop). */
  close(): Promise<void[]> {
    this.#closed = true;
    const socks = [...this.#pool4, ...this.#pool6, ...this.#retiring];
    this.#pool4.length = 0;
    this.#pool6.length = 0;
    this.#retiring.clear();
    return Promise.all(socks.map((s) => this.#closeSock(s)));
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
    if (q !== undefined) {
      // The common reply, read without decoding its names (dns/packet.ts quickReply); null: the full decode decides.
      let r: ReplySummary | null;
      try {
        r = quickReply(buf, q.pkt);
      } catch {
        st.malformed++;
        return;
      }
      if (r !== null) {
        st.received++;
        this.#onReply(q, r);
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
      this.#onReply(q, summarize(msg, q.name, q.qtype));
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
    for (const q of s.ids.values()) this.#onLost(q);
    void this.#closeSock(s);
  }

  #closeSock(s: Sock): Promise<void> {
    this.#retiring.delete(s);
    return closeUdp(s);
  }
}
