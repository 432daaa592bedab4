/*
 * dns/tcp.ts - the resolver's TCP transport: one length-framed DNS exchange (RFC 1035 4.2.2,
 * RFC 7766) with one server.
 *
 * Exports:
 *   TcpExchange<Q>              one exchange: connect, framed write, framed read
 *     new TcpExchange(q, host, port, family, pkt, onReply, onFail)
 *     close()                   stop: nothing more is reported; idempotent
 *
 * The policy (when to repeat a try over TCP, which replies are taken) is dns/tcp-fallback.ts's;
 * this file holds the mechanics, as dns/udp.ts does for UDP. TcpExchange connects to the server,
 * writes the query with its two-octet length prefix, reads the length-prefixed reply in whatever
 * pieces TCP delivers it, and hands the reply's body to onReply once. A reply length under 12 (no
 * room for a DNS header) is reported as 'malformed' before any body is read; a socket error or a
 * close before a whole reply as 'network'. After onReply, onFail or close() nothing more is
 * reported.
 * Allocation: the frame once, the body once (at most 65,535 octets: the prefix is 16 bits); the
 * socket listeners are closures per exchange (a rare path: one per truncated answer).
 */
import net from 'node:net';
import type { LookupError } from './types.js';

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
