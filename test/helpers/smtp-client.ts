/*
 * test/helpers/smtp-client.ts - a raw TCP/SMTP client for tests that need
 * byte-level control (pregreet, pipelining, bare LF, PROXY headers, half-close).
 *
 * Exports: connectClient(host, port, localAddress?), RawClient.
 * readUntil(re) waits until `re` matches the text received since the previous
 * readUntil returned (the read cursor), resolves with that text up to the end
 * of the match and moves the cursor past it; the rest stays for the next call.
 * readUntil(re, ms, from) searches the received text from offset `from`
 * instead (e.g. `from = c.received().length` taken before a write). received()
 * is everything ever received. Data is decoded as latin1 (one char per byte).
 * readUntil rejects on timeout, or when the peer closes before a match; both
 * messages show the unread and the whole received text.
 */
import net from 'node:net';

export interface RawClient {
  socket: net.Socket;
  /** Local port of the connection (the client's source port). */
  localPort: number;
  /**
   * Wait for `re` in the text after the read cursor (or after offset `from`);
   * resolve with that text up to the match end and move the cursor past it.
   */
  readUntil(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Write text (latin1) or bytes; errors are recorded in `errors`, never thrown. */
  write(s: string | Buffer): void;
  /** Half-close: send FIN, keep reading. */
  end(): void;
  /** Tear down at once (RST if data is pending). */
  destroy(): void;
  /** Resolves when the socket is fully closed (never rejects). */
  closed: Promise<void>;
  /** True once the peer has sent FIN (or the socket closed). */
  peerEnded(): boolean;
  /** Every byte received so far, as latin1 text. */
  received(): string;
  /** Socket errors seen (ECONNRESET, EPIPE, ...). */
  errors: Error[];
}

export function connectClient(host: string, port: number, localAddress?: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const opts: net.NetConnectOpts = { host, port };
    if (localAddress !== undefined) opts.localAddress = localAddress;
    const socket = net.connect(opts);
    let all = '';
    let cursor = 0;
    let ended = false;
    let isClosed = false;
    const errors: Error[] = [];
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const w of [...waiters]) w();
    };
    socket.setEncoding('latin1');
    socket.on('data', (s: string) => {
      all += s;
      wake();
    });
    socket.on('end', () => {
      ended = true;
      wake();
    });
    const closed = new Promise<void>((res) =>
      socket.on('close', () => {
        isClosed = true;
        ended = true;
        wake();
        res();
      }),
    );
    socket.on('error', (err) => {
      errors.push(err);
    });
    const onConnectError = (err: Error) => reject(err);
    socket.once('error', onConnectError);
    socket.once('connect', () => {
      socket.removeListener('error', onConnectError);
      const client: RawClient = {
        socket,
        localPort: socket.localPort ?? 0,
        readUntil(re: RegExp, timeoutMs = 5_000, from?: number): Promise<string> {
          const base = from ?? cursor;
          const unread = () => all.slice(base);
          const rx = new RegExp(re.source, re.flags.replace('g', '').replace('y', ''));
          return new Promise((res, rej) => {
            const check = (): boolean => {
              const text = unread();
              const m = rx.exec(text);
              if (m) {
                const endAt = m.index + m[0].length;
                const out = text.slice(0, endAt);
                cursor = Math.max(cursor, base + endAt);
                finish();
                res(out);
                return true;
              }
              if (ended || isClosed) {
                finish();
                rej(new Error(`connection closed before ${String(re)} matched; unread: ${JSON.stringify(unread())}; received: ${JSON.stringify(all)}`));
                return true;
              }
              return false;
            };
            const timer = setTimeout(() => {
              finish();
              rej(new Error(`readUntil(${String(re)}) timed out after ${timeoutMs} ms; unread: ${JSON.stringify(unread())}; received: ${JSON.stringify(all)}`));
            }, timeoutMs);
            const waiter = () => {
              check();
            };
            const finish = () => {
              clearTimeout(timer);
              waiters.delete(waiter);
            };
            if (!check()) waiters.add(waiter);
          });
        },
        write(s: string | Buffer): void {
          if (socket.destroyed || socket.writableEnded) {
            errors.push(new Error('write after close'));
            return;
          }
          socket.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
        },
        end(): void {
          socket.end();
        },
        destroy(): void {
          socket.destroy();
        },
        closed,
        peerEnded: () => ended,
        received: () => all,
        errors,
      };
      resolve(client);
    });
  });
}

/** Send one command line ('' for none: just read) and read its reply, every line of it. */
export function reply(c: RawClient, line: string, timeoutMs = 8000): Promise<string> {
  if (line !== '') c.write(line);
  return c.readUntil(/^\d{3} [^\r\n]*\r\n/m, timeoutMs);
}

/** The final line of a reply, without CRLF. */
export function lastLine(text: string): string {
  return text.split('\r\n').filter((l) => l !== '').at(-1) ?? '';
}
