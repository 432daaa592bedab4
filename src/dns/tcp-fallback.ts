/*
 * dns/tcp-fallback.ts - TCP after TC: the repeat over TCP of a UDP try whose answer came back
 * truncated (TC=1), to the same server, with the same ID.
 *
 * Exports:
 *   TcpFallback                 the resolver's TCP repeats: start, check the reply, fail, drop
 *     new TcpFallback(servers, counters, timeoutMs, onAnswer, onFail)
 *     start(q, now)             repeat q's try over TCP; the try's deadline becomes
 *                               min(now + 2 * timeoutMs, q.deadline) (connect plus one exchange:
 *                               two round trips); counts `tcp` and `sent`
 *     drop(q)                   close q's exchange, if any; nothing more is reported for it
 *     close()                   close every open exchange
 *
 * The exchange itself (connect, framing) is dns/tcp.ts's. TcpFallback takes a reply only if it
 * decodes, is a response (QR), carries q.id (the ID of the truncated UDP try, which q.pkt still
 * carries) and repeats the question; then it drops the exchange and calls onAnswer(q, summarize(...)).
 * Anything else counts as `malformed` and, like a broken exchange, drops it and calls
 * onFail(q, why). The deadline is enforced by the resolver's sweep (dns/resolver.ts), which drops
 * the exchange when it passes.
 * Allocation: the callbacks given to each exchange are bound once per TcpFallback.
 */
import { decodeMessage, questionMatches, summarize, type ReplySummary } from './packet.js';
import type { DnsMessage, LookupError } from './types.js';
import type { Counters, Query, Server, TcpTry } from './query.js';
import { TcpExchange } from './tcp.js';

export class TcpFallback {
  readonly #servers: readonly Server[];
  readonly #st: Counters;
  readonly #timeoutMs: number;
  readonly #onAnswer: (q: Query, r: ReplySummary) => void;
  readonly #onFail: (q: Query, why: LookupError) => void;
  readonly #open = new Set<TcpTry>();

  constructor(servers: readonly Server[], counters: Counters, timeoutMs: number,
    onAnswer: (q: Query, r: ReplySummary) => void, onFail: (q: Query, why: LookupError) => void) {
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
    this.#onAnswer(q, summarize(msg, q.name, q.qtype));
  }

  /** The exchange broke before a good reply: the resolver moves q on (next server). */
  #fail(t: TcpTry, why: LookupError): void {
    if (t.done) return;
    const q = t.q;
    this.drop(q);
    this.#onFail(q, why);
  }
}
