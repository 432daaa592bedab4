/*
 * server/sink.ts - the built-in sink backend: a tiny SMTP server on loopback
 * that accepts and discards everything. For `smtpscreen demo`, for
 * `npm start` out of the box, and for the load generator.
 *
 * Exports: startSink(), Sink.
 * It understands what the screener sends it (a PROXY v1/v2 header, XCLIENT)
 * and counts sessions, messages and the client addresses it was told about,
 * so the demo can show who reached "the backend". Not a mail server: every
 * message is thrown away after "250 2.0.0 Ok: discarded".
 */
import { createServer, type Server, type Socket } from 'node:net';
import { LineReader, type LineSink } from '../smtp/line-reader.js';
import { decodeProxyHeader } from '../net/proxy-protocol.js';

export interface SinkStats {
  sessions: number;
  messages: number;
  /** Client addresses announced by XCLIENT ADDR= or a PROXY header. */
  clients: Map<string, number>;
}

export interface Sink {
  readonly host: string;
  readonly port: number;
  readonly stats: SinkStats;
  close(): Promise<void>;
}

const GREETING = '220 sink.invalid ESMTP smtpscreen-sink\r\n';

class SinkSession implements LineSink {
  readonly sock: Socket;
  readonly stats: SinkStats;
  readonly reader = new LineReader(65536);
  head: Buffer | null = Buffer.alloc(0); // until the PROXY question is settled
  inData = false;
  constructor(sock: Socket, stats: SinkStats) {
    this.sock = sock;
    this.stats = stats;
  }
  seen(addr: string): void {
    this.stats.clients.set(addr, (this.stats.clients.get(addr) ?? 0) + 1);
  }
  data(chunk: Buffer): void {
    if (this.head !== null) {
      const buf = Buffer.concat([this.head, chunk]);
      const sig = buf.subarray(0, 5).toString('latin1');
      const maybeProxy = buf[0] === 0x0d || sig === 'PROXY'.slice(0, Math.min(5, buf.length));
      if (maybeProxy) {
        try {
          const d = decodeProxyHeader(buf, 'any');
          if (d.status === 'incomplete') {
            this.head = buf;
            return;
          }
          if (d.header.srcAddr !== undefined) this.seen(d.header.srcAddr);
          chunk = buf.subarray(d.consumed);
        } catch {
          this.sock.destroy();
          return;
        }
      } else chunk = buf;
      this.head = null;
    }
    this.reader.feed(chunk, this);
  }
  onOverlong(): void {
    if (!this.inData) this.sock.write('500 5.5.0 Line too long\r\n');
  }
  onLine(line: Buffer): void {
    if (this.inData) {
      if (line.length === 1 && line[0] === 0x2e) {
        this.inData = false;
        this.stats.messages++;
        this.sock.write('250 2.0.0 Ok: discarded\r\n');
      }
      return;
    }
    const text = line.toString('latin1');
    const verb = text.slice(0, 4).toUpperCase();
    switch (verb) {
      case 'EHLO':
        this.sock.write('250-sink.invalid\r\n250-XCLIENT ADDR PORT NAME HELO PROTO\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n');
        break;
      case 'HELO':
        this.sock.write('250 sink.invalid\r\n');
        break;
      case 'XCLI': {
        const m = /ADDR=(?:IPV6:)?([^ ]+)/i.exec(text);
        if (m?.[1] !== undefined) this.seen(m[1]);
        this.sock.write(GREETING);
        break;
      }
      case 'DATA':
        this.inData = true;
        this.sock.write('354 End data with <CR><LF>.<CR><LF>\r\n');
        break;
      case 'QUIT':
        this.sock.end('221 2.0.0 Bye\r\n');
        break;
      case 'MAIL':
      case 'RCPT':
      case 'RSET':
      case 'NOOP':
        this.sock.write('250 2.0.0 Ok\r\n');
        break;
      default:
        this.sock.write('502 5.5.2 Error: command not recognized\r\n');
    }
  }
}

export async function startSink(host = '127.0.0.1', port = 0): Promise<Sink> {
  const stats: SinkStats = { sessions: 0, messages: 0, clients: new Map() };
  const open = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (sock) => {
    stats.sessions++;
    open.add(sock);
    const ss = new SinkSession(sock, stats);
    sock.on('data', (c: Buffer) => ss.data(c));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => open.delete(sock));
    sock.write(GREETING);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => resolve());
  });
  const addr = server.address();
  const realPort = typeof addr === 'object' && addr !== null ? addr.port : port;
  return {
    host,
    port: realPort,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
