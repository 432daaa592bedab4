/*
 * test/dns/fake-server.ts - a programmable DNS responder on loopback for resolver tests.
 *
 * Exports: startFakeDns(handler, opts), reply(query, opts), FakeDnsServer, FakeHandler,
 *          FakeReply, FakeRinfo.
 *
 * One UDP socket and (unless opts.tcp is false) one TCP listener on the same
 * port number, both on loopback, port picked by the kernel. Every query that
 * decodes is recorded in `queries` and handed to the handler, which returns
 * what to send back: any bytes at all (a real answer, a reply with the wrong ID
 * or question, garbage), each with an optional delay, and over UDP optionally
 * from a second socket on another port (a spoofer that got the ID right but
 * not the source). 'silent' sends nothing. Over TCP the same handler is asked
 * (rinfo.transport === 'tcp') and each buffer goes out with its 2-byte length.
 * Queries that do not decode are counted in `undecodable` and dropped.
 * close() stops both sides, the spoofing socket and every pending delayed reply.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { decodeMessage } from '../../src/dns/packet.js';
import { encodeResponse } from '../helpers/dns-encode.js';
import type { DnsMessage } from '../../src/dns/types.js';

export interface FakeRinfo {
  address: string;
  port: number;
  transport: 'udp' | 'tcp';
}

export interface FakeReply {
  buf: Buffer;
  /** Send after this many ms (default: at once). */
  delayMs?: number;
  /** UDP only: 'other-port' sends from a second socket, so the source port is wrong. */
  from?: 'same' | 'other-port';
}

export type FakeHandler = (query: DnsMessage, rinfo: FakeRinfo) => FakeReply[] | 'silent';

export interface FakeDnsServer {
  readonly host: string;
  readonly port: number;
  /** Every decoded query, in arrival order. */
  readonly queries: Array<{ id: number; name: string; qtype: number; transport: 'udp' | 'tcp'; srcPort: number }>;
  /** Datagrams or TCP frames that did not decode as DNS. */
  undecodable: number;
  handler: FakeHandler;
  /** Queries seen over one transport. */
  count(transport?: 'udp' | 'tcp'): number;
  close(): Promise<void>;
}

export interface FakeDnsOptions {
  host?: string;
  /** Also listen on TCP, same port (default true). */
  tcp?: boolean;
}

/** reply - a response to `query` (same ID and question) built with encodeResponse. */
export function reply(
  query: DnsMessage,
  opts: {
    rcode?: number;
    tc?: boolean;
    aa?: boolean;
    id?: number;
    answers?: Array<{ name: string; type: number; ttl: number; data: string }>;
    authority?: Array<{ name: string; type: 6; ttl: number; data: string }>;
    question?: { name: string; qtype: number };
  } = {},
): Buffer {
  const q = query.questions[0];
  const question = opts.question ?? { name: q?.name ?? '', qtype: q?.qtype ?? 1 };
  return encodeResponse({
    id: opts.id ?? query.id,
    question,
    ...(opts.rcode !== undefined ? { rcode: opts.rcode } : {}),
    ...(opts.tc !== undefined ? { tc: opts.tc } : {}),
    ...(opts.aa !== undefined ? { aa: opts.aa } : {}),
    ...(opts.answers !== undefined ? { answers: opts.answers } : {}),
    ...(opts.authority !== undefined ? { authority: opts.authority } : {}),
  });
}

class Fake implements FakeDnsServer {
  readonly host: string;
  port = 0;
  readonly queries: FakeDnsServer['queries'] = [];
  undecodable = 0;
  handler: FakeHandler;
  readonly #udp: dgram.Socket;
  readonly #spoofer: dgram.Socket;
  #tcp: net.Server | null = null;
  readonly #conns = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(host: string, handler: FakeHandler) {
    this.host = host;
    this.handler = handler;
    const type = net.isIPv6(host) ? 'udp6' : 'udp4';
    this.#udp = dgram.createSocket(type);
    this.#spoofer = dgram.createSocket(type);
    this.#udp.on('message', (msg, rinfo) => this.#onUdp(msg, rinfo));
    // Sending to a closed client port is not an error for a test server.
    this.#udp.on('error', () => {});
    this.#spoofer.on('error', () => {});
  }

  /** Bind UDP on port 0, then TCP on the same number; throws when TCP finds it taken. */
  async start(tcp: boolean): Promise<void> {
    await bindUdp(this.#udp, 0, this.host);
    // The default (~200 KB, ~250 queries) would drop a burst of a few thousand.
    this.#udp.setRecvBufferSize(4 << 20);
    const port = this.#udp.address().port;
    await bindUdp(this.#spoofer, 0, this.host);
    if (tcp) {
      const srv = net.createServer((c) => this.#onTcp(c));
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: this.host, port, exclusive: true }, () => resolve());
      });
      this.#tcp = srv;
    }
    this.port = port;
  }

  count(transport?: 'udp' | 'tcp'): number {
    if (transport === undefined) return this.queries.length;
    let n = 0;
    for (const q of this.queries) if (q.transport === transport) n++;
    return n;
  }

  #ask(buf: Buffer, rinfo: FakeRinfo): FakeReply[] | 'silent' {
    let msg: DnsMessage;
    try {
      msg = decodeMessage(buf);
    } catch {
      this.undecodable++;
      return 'silent';
    }
    const q = msg.questions[0];
    this.queries.push({ id: msg.id, name: q?.name ?? '', qtype: q?.qtype ?? 0, transport: rinfo.transport, srcPort: rinfo.port });
    return this.handler(msg, rinfo);
  }

  #later(delayMs: number | undefined, fn: () => void): void {
    if (delayMs === undefined || delayMs <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) fn();
    }, delayMs);
    this.#timers.add(t);
  }

  #onUdp(buf: Buffer, r: dgram.RemoteInfo): void {
    if (this.#closed) return;
    const out = this.#ask(buf, { address: r.address, port: r.port, transport: 'udp' });
    if (out === 'silent') return;
    for (const o of out) {
      const sock = o.from === 'other-port' ? this.#spoofer : this.#udp;
      this.#later(o.delayMs, () => sock.send(o.buf, r.port, r.address));
    }
  }

  #onTcp(c: net.Socket): void {
    this.#conns.add(c);
    c.on('close', () => this.#conns.delete(c));
    c.on('error', () => {});
    let acc = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      while (acc.length >= 2) {
        const len = acc.readUInt16BE(0);
        if (acc.length < 2 + len) break;
        const frame = acc.subarray(2, 2 + len);
        acc = acc.subarray(2 + len);
        const out = this.#ask(frame, { address: c.remoteAddress ?? '', port: c.remotePort ?? 0, transport: 'tcp' });
        if (out === 'silent') continue;
        for (const o of out) {
          this.#later(o.delayMs, () => {
            if (c.destroyed) return;
            const len2 = Buffer.alloc(2);
            len2.writeUInt16BE(o.buf.length & 0xffff, 0);
            c.write(Buffer.concat([len2, o.buf]));
          });
        }
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#conns) c.destroy();
    const waits: Array<Promise<void>> = [
      new Promise((resolve) => this.#udp.close(() => resolve())),
      new Promise((resolve) => this.#spoofer.close(() => resolve())),
    ];
    const tcp = this.#tcp;
    if (tcp !== null) waits.push(new Promise((resolve) => tcp.close(() => resolve())));
    await Promise.all(waits);
  }
}

function bindUdp(sock: dgram.Socket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (err: Error): void => reject(err);
    sock.once('error', onErr);
    sock.bind(port, host, () => {
      sock.removeListener('error', onErr);
      resolve();
    });
  });
}

/** startFakeDns - a fake DNS server on loopback (127.0.0.1 unless opts.host), port 0. */
export async function startFakeDns(handler: FakeHandler, opts: FakeDnsOptions = {}): Promise<FakeDnsServer> {
  const host = opts.host ?? '127.0.0.1';
  // A TCP port collision leaves a bound UDP socket behind: start over with a new server.
  for (let attempt = 0; ; attempt++) {
    const f = new Fake(host, handler);
    try {
      await f.start(opts.tcp ?? true);
      return f;
    } catch (err) {
      await f.close();
      if (attempt >= 10) throw err;
    }
  }
}
