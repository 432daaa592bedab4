/*
 * dns/tcp.ts - TCP after TC: the repeat over TCP (RFC 1035 4.2.2, RFC 7766) of a UDP try whose
 * answer came back truncated (TC=1), to the same server, with the same ID.
 *
 * Exports:
 *   TcpFallback                 the resolver's TCP repeats: start, check the reply, fail, drop
 *     new TcpFallback(servers, counters, timeoutMs, onAnswer, onFail)
 *     start(q, now)             repeat q's try over TCP; the try's deadline becomes
 *                               min(now + 2 * timeoutMs, q.deadline) (connect plus one exchange:
 *                               two round trips); counts `tcp` and `sent`
 *     drop(q)                   close q's exchange, if any; nothing more is reported for it
 *     close()                   close every open exchange
 *   TcpExchange<Q>              one exchange: connect, framed write, framed read
 *
 * TcpExchange connects to the server, writes the query with its two-octet length prefix, reads
 * the length-prefixed reply in whatever pieces TCP delivers it, and hands the reply's body to
 * onReply once. A reply length under 12 (no room for a DNS header) is reported as 'malformed'
 * before any body is read; a socket error or a close before a whole reply as 'network'. After
 * onReply, onFail or close() nothing more is reported.
 * TcpFallback takes a reply only if it decodes, is a response (QR), carries q.id (the ID of the
 * truncated UDP try, which q.pkt still carries) and repeats the question; then it drops the
 * exchange and calls onAnswer(q, msg). Anything else counts as `malformed` and, like a broken
 * exchange, drops it and calls onFail(q, why). The deadline is enforced by the resolver's sweep
 * (dns/resolver.ts), which drops the exchange when it passes.
 * Allocation: the frame once, the body once (at most 65,535 octets: the prefix is 16 bits); the
 * callbacks given to each exchange are bound once per TcpFallback, while the exchange's own
 * socket listeners are closures per exchange (a rare path: one per truncated answer).
 */
import net from 'node:net';
import { decodeMessage, questionMatches } from './packet.js';
import type { DnsMessage, LookupError } from './types.js';
import type { Counters, Query, Server, TcpTry } from './query.js';

export class TcpFallback {
  readonly #servers: readonly Server[];
  readonly #st: Counters;
  readonly #timeoutMs: number;
  readonly #onAnswer: (q: Query, msg: DnsMessage) => void;
  readonly #onFail: (q: Query, why: LookupError) => void;
  readonly #open = new Set<TcpTry>();

  constructor(servers: readonly Server[], counters: Counters, timeoutMs: number,
    onAnswer: (q: Query, msg: DnsMessage) => void, onFail: (q: Query, why: LookupError) => void) {
    this.#servers = servers;
    this.#st = counters;
    this.#timeoutMs = timeoutMs;
    this.#onAnswer = onAnswer;
    this.#onFail = onFail;
  }

  start(q: Query, now: number): void {
    this.#st.tcp++;
    this.#st.sent++;
    const server = this.#servers[q.server] as Server;
    // Connect plus one exchange: two round trips.
    q.tryDeadline = Math.min(now + 2 * this.#timeoutMs, q.deadline);
    // q.pkt carries q.id, the ID of the UDP try that came back truncated.
    const t = new TcpExchange<Query>(q, server.host, server.port, server.family, q.pkt, this.#onReplyBound, this.#onBroken);
    q.tcp = t;
    this.#open.add(t);
  }

  drop(q: Query): void {
    const t = q.tcp;
    if (t === null) return;
    q.tcp = null;
    this.#open.delete(t);
    t.close();
  }

  close(): void {
    for (const t of this.#open) t.close();
    this.#open.clear();
  }

  readonly #onReplyBound = (t: TcpTry, body: Buffer): void => this.#onReply(t, body);
  /** The exchange itself failed: a socket error or close, or a reply length with no room for a header. */
  readonly #onBroken = (t: TcpTry, why: LookupError): void => {
    if (why === 'malformed') this.#st.malformed++;
    this.#fail(t, why);
  };

  #onReply(t: TcpTry, body: Buffer): void {
    const q = t.q;
    let msg: DnsMessage;
    try {
      msg = decodeMessage(body);
    } catch {
      this.#st.malformed++;
      this.#fail(t, 'malformed');
      return;
    }
    if (!msg.qr || msg.id !== q.id || !questionMatches(msg, q.name, q.qtype)) {
      this.#st.malformed++;
      this.#fail(t, 'malformed');
      return;
    }
    this.#st.received++;
    this.drop(q);
    this.#onAnswer(q, msg);
  }

  /** The exchange broke before a good reply: the resolver moves q on (next server). */
  #fail(t: TcpTry, why: LookupError): void {
    if (t.done) return;
    const q = t.q;
    this.drop(q);
    this.#onFail(q, why);
  }
}

/* -------- one exchange -------- */

export class TcpExchange<Q> {
  /** The query this exchange is for (the resolver's). */
  readonly q: Q;
  readonly #sock: net.Socket;
  readonly #onReply: (t: TcpExchange<Q>, body: Buffer) => void;
  readonly #onFail: (t: TcpExchange<Q>, why: LookupError) => void;
  /** Length prefix: octets read so far (0..2) and value. */
  #hdrGot = 0;
  #len = 0;
  #body: Buffer | null = null;
  #got = 0;
  done = false;

  constructor(q: Q, host: string, port: number, family: 4 | 6, pkt: Buffer,
    onReply: (t: TcpExchange<Q>, body: Buffer) => void, onFail: (t: TcpExchange<Q>, why: LookupError) => void) {
    this.q = q;
    this.#onReply = onReply;
    this.#onFail = onFail;
    const frame = Buffer.allocUnsafe(pkt.length + 2);
    frame.writeUInt16BE(pkt.length, 0);
    pkt.copy(frame, 2);
    const sock = net.connect({ host, port, family, noDelay: true });
    this.#sock = sock;
    sock.on('data', (d: Buffer) => this.#onData(d));
    sock.on('error', () => this.#fail('network'));
    sock.on('close', () => this.#fail('network'));
    sock.write(frame);
  }

  /** Stop: nothing more is reported; the socket is destroyed. Idempotent. */
  close(): void {
    this.done = true;
    this.#sock.destroy();
  }

  #fail(why: LookupError): void {
    if (this.done) return;
    this.#onFail(this, why);
  }

  #onData(d: Buffer): void {
    let i = 0;
    while (i < d.length && !this.done) {
      if (this.#hdrGot < 2) {
        this.#len = (this.#len << 8) | (d[i++] as number);
        if (++this.#hdrGot === 2) {
          if (this.#len < 12) {
            this.#fail('malformed');
            return;
          }
          this.#body = Buffer.allocUnsafe(this.#len);
        }
        continue;
      }
      const body = this.#body as Buffer;
      const n = Math.min(this.#len - this.#got, d.length - i);
      d.copy(body, this.#got, i, i + n);
      this.#got += n;
      i += n;
      if (this.#got === this.#len) {
        this.#onReply(this, body);
        return;
      }
    }
  }
}
