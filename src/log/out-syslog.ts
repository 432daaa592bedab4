/*
 * log/out-syslog.ts - the syslog destination: lines to a syslog daemon on this
 * host (rsyslog's imtcp/imudp, syslog-ng's network()), over TCP or UDP.
 *
 * Exports: openSyslog(host, port, limit, transport).
 * Why a network input and not /dev/log: /dev/log is a Unix datagram socket,
 * and Node's net module speaks only stream sockets (dgram speaks only UDP).
 * The lines are RFC 3164 (rendered in log/logger.ts), as rsyslog and syslog-ng
 * expect on these inputs and write them to mail.log.
 *   tcp (the default): LF-framed lines on one connection. The socket's queue is
 *     the bound: a daemon that stops reading costs lines that are dropped and
 *     counted; a lost connection is retried every second, and lines meanwhile
 *     (and those still queued when it broke) are counted as dropped.
 *   udp: one datagram a line; no connection to keep. Bounded by the bytes of
 *     sends not yet completed. The socket is connected, so "nobody listens"
 *     (ECONNREFUSED, from the ICMP answer to an earlier datagram) comes back on
 *     a later send and that line is counted; but datagrams the daemon's socket
 *     buffer overflows on are lost without a trace (measured in
 *     bench/log/line-cost.ts: 50,000 lines in one burst to a receiver that was
 *     busy, 1,600 arrived and 0 were counted as dropped). Hence tcp by default.
 */
import { createSocket, type Socket } from 'node:dgram';
import { connect as tcpConnect, isIPv6, type Socket as TcpSocket } from 'node:net';
import { DropCounter, type LineOut } from './out-base.js';
import { corkTick, waitFor } from './out-fd.js';

/** rsyslog's default maxMessageSize is 8 KiB; a longer line is cut, not lost. */
const MAX_DATAGRAM = 8000;

class SyslogOut implements LineOut {
  readonly kind = 'syslog';
  readonly #sock: Socket;
  readonly #limit: number;
  readonly #drops = new DropCounter();
  #inflight = 0;
  #closed = false;
  /** Lines written before connect() completed (dgram refuses a send without an address until then). */
  #early: string[] | null = [];
  readonly #sent: (err: Error | null, n: number, msg: string) => void;

  constructor(host: string, port: number, limit: number) {
    this.#limit = limit;
    this.#sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    // A connect that fails (a name that does not resolve) leaves the early lines unsent: dropped.
    this.#sock.on('error', () => {
      for (const l of this.#early ?? []) this.#drops.drop(l);
      if (this.#early !== null) this.#inflight = 0;
      this.#early = null;
      this.#closed = true;
    });
    this.#sock.connect(port, host, () => {
      const early = this.#early ?? [];
      this.#early = null;
      for (const l of early) this.#transmit(l);
    });
    this.#sock.unref();
    this.#sent = (err, n, msg) => {
      this.#inflight -= n;
      if (err !== null) this.#drops.drop(msg);
      else if (this.#inflight === 0) this.#drops.caughtUp();
    };
  }

  get dropped(): number {
    return this.#drops.total;
  }
  get queued(): number {
    return this.#inflight;
  }
  get onRecover(): LineOut['onRecover'] {
    return this.#drops.onRecover;
  }
  set onRecover(f: LineOut['onRecover']) {
    this.#drops.onRecover = f;
  }

  write(text: string): boolean {
    let ok = true;
    let start = 0;
    for (let nl = text.indexOf('\n'); start < text.length; nl = text.indexOf('\n', start)) {
      const end = nl < 0 ? text.length : nl;
      if (end > start) ok = this.#send(text.slice(start, end)) && ok;
      start = end + 1;
    }
    return ok;
  }

  #send(line: string): boolean {
    if (this.#closed || this.#inflight + line.length > this.#limit) {
      this.#drops.drop(line);
      if (this.#inflight === 0) this.#drops.caughtUp();
      return false;
    }
    const msg = line.length > MAX_DATAGRAM ? line.slice(0, MAX_DATAGRAM) : line;
    this.#inflight += msg.length;
    if (this.#early !== null) this.#early.push(msg);
    else this.#transmit(msg);
    return true;
  }

  /** Send one datagram on the connected socket; its bytes count in flight until the callback. */
  #transmit(msg: string): void {
    const n = msg.length;
    try {
      this.#sock.send(msg, (err) => this.#sent(err ?? null, n, msg));
    } catch (err) {
      this.#sent(err as Error, n, msg); // a closed socket: never throw into the logger's caller
    }
  }

  reopen(done: (err: Error | null) => void): void {
    done(null);
  }

  flush(timeoutMs: number): Promise<boolean> {
    return waitFor(() => this.#inflight === 0, timeoutMs);
  }

  close(): void {
    this.#closed = true;
    this.#sock.close();
  }
}

/** After the daemon closed the connection (or refused it), the next try is this much later; lines meanwhile are dropped. */
const RECONNECT_MS = 1000;

/**
 * TCP: one line per LF (rsyslog's imtcp and syslog-ng's network() read LF framing; our lines
 * never hold an LF). The socket's own queue is the buffer, so a daemon that stops reading
 * costs lines that are counted, never the loop; writes while there is no connection are dropped.
 */
class SyslogTcpOut implements LineOut {
  readonly kind = 'syslog';
  readonly #host: string;
  readonly #port: number;
  readonly #limit: number;
  readonly #drops = new DropCounter();
  #sock: TcpSocket | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(host: string, port: number, limit: number) {
    this.#host = host;
    this.#port = port;
    this.#limit = limit;
    this.#open();
  }

  #open(): void {
    this.#timer = null;
    if (this.#closed) return;
    const sock = tcpConnect({ host: this.#host, port: this.#port });
    sock.setNoDelay(true);
    sock.unref();
    sock.on('error', () => undefined); // 'close' follows
    sock.on('close', () => {
      if (this.#sock === sock) this.#sock = null;
      if (!this.#closed) this.#timer = setTimeout(() => this.#open(), RECONNECT_MS).unref();
    });
    this.#sock = sock; // lines written before the connect completes wait in its queue
  }

  get dropped(): number {
    return this.#drops.total;
  }
  get queued(): number {
    return this.#sock?.writableLength ?? 0;
  }
  get onRecover(): LineOut['onRecover'] {
    return this.#drops.onRecover;
  }
  set onRecover(f: LineOut['onRecover']) {
    this.#drops.onRecover = f;
  }

  write(text: string): boolean {
    const sock = this.#sock;
    if (sock === null || sock.destroyed || sock.writableLength + text.length > this.#limit) {
      this.#drops.drop(text);
      if (sock !== null && sock.writableLength === 0) this.#drops.caughtUp();
      return false;
    }
    // The callback gets an error for lines still queued when the connection is lost: counted as dropped.
    corkTick(sock);
    sock.write(text, (err) => {
      if (err !== null && err !== undefined) this.#drops.drop(text);
      else if (sock.writableLength === 0) this.#drops.caughtUp();
    });
    return true;
  }

  reopen(done: (err: Error | null) => void): void {
    done(null);
  }

  flush(timeoutMs: number): Promise<boolean> {
    return waitFor(() => (this.#sock?.writableLength ?? 0) === 0, timeoutMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#sock?.end();
  }
}

/** openSyslog - the syslog destination, sending to host:port over UDP (one datagram a line) or TCP (LF-framed). */
export function openSyslog(host: string, port: number, limit: number, transport: 'udp' | 'tcp' = 'udp'): LineOut {
  return transport === 'tcp' ? new SyslogTcpOut(host, port, limit) : new SyslogOut(host, port, limit);
}
