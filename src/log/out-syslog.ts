/*
 * log/out-syslog.ts - the syslog destination: one UDP datagram per line to a
 * syslog daemon on this host (rsyslog's or syslog-ng's UDP input).
 *
 * Exports: openSyslog(host, port, limit).
 * Why UDP to 127.0.0.1:514 and not /dev/log: /dev/log is a Unix datagram
 * socket, and Node's net module speaks only stream sockets (dgram speaks only
 * UDP). UDP rather than TCP: a datagram send never waits for the daemon (a
 * daemon that stops reading loses datagrams in the kernel, it cannot stall
 * us), there is no connection to re-establish when the daemon restarts, and a
 * line is a message with no framing to agree on (RFC 6587 octet counting vs
 * newlines). The lines are RFC 3164 (rendered in log/logger.ts), as rsyslog's
 * and syslog-ng's UDP inputs expect and as they write them to mail.log.
 * Bounded: the bytes handed to sends not yet completed; past `limit` a line
 * is dropped and counted. The socket is connected, so "nobody listens"
 * (ECONNREFUSED, from the ICMP answer to an earlier datagram) comes back on a
 * later send and that line is counted as dropped; datagrams a listening
 * daemon loses in its own queue are not seen here.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { DropCounter, type LineOut } from './out-base.js';
import { waitFor } from './out-fd.js';

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

/** openSyslog - the syslog destination, sending to host:port (an IP address). */
export function openSyslog(host: string, port: number, limit: number): LineOut {
  return new SyslogOut(host, port, limit);
}
