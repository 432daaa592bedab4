/*
 * log/out-fd.ts - the stdout and file destinations: bounded, never blocking.
 *
 * Exports: openFd(fd, limit, kind), openFile(path, limit), corkTick(socket), waitFor(done, ms).
 * Which writer a descriptor gets depends on what it is:
 *   - a pipe or a socket (a shell pipe, journald's stdout stream): a net.Socket
 *     on the descriptor. libuv puts it in non-blocking mode and writes when
 *     epoll says there is room, so a reader that stops reading costs the event
 *     loop nothing; the socket's own queue (writableLength) is the buffer, and a
 *     line that would take it past `limit` is dropped. On a pipe, lines are
 *     written whole, at most PIPE_ATOMIC bytes a write (workers share the pipe).
 *   - a regular file, a terminal, /dev/null: fs.write() from libuv's thread
 *     pool, one write at a time, the lines queued meanwhile written together
 *     next. Files cannot be polled, so this is the only way not to block; a slow
 *     disk holds one pool thread, never the loop.
 * Measured (bench/log/stall.ts: stdout into a pipe nobody reads, 10,000 lines
 * a second for 3 s, 3 runs on 2 loaded cores): this writer's worst loop lag
 * 5.4-31.9 ms, ~6,800 of 30,000 lines dropped and counted; pino's synchronous
 * destination stopped the loop at the first full pipe (64 KiB) until the
 * reader came back. sonic-boom's async mode lags alike, but it writes with
 * fs.write from the thread pool (a stalled blocking pipe holds a pool thread in
 * write(2)), and its flush() answers at once with minLength 0 even with 4 MiB
 * unwritten, so an exit could not know what was lost.
 * XXX Never touch process.stdout after openFd(1): Node makes a pipe on fd 1
 * blocking again when process.stdout is first used, and the flag belongs to
 * the open file, so this writer would then block too.
 */
import { Socket } from 'node:net';
import { close as fsClose, fstatSync, open as fsOpen, openSync, write as fsWrite } from 'node:fs';
import { DropCounter, type LineOut } from './out-base.js';

/**
 * POSIX's PIPE_BUF on Linux: a write of at most this many bytes to a pipe is never split, nor
 * mixed with another process's writes, even when the pipe is full (a non-blocking write of that
 * size either goes in whole or fails with EAGAIN, and libuv then retries it whole).
 */
export const PIPE_ATOMIC = 4096;

/**
 * A pipe or socket descriptor: a non-blocking net.Socket.
 * On a pipe (several workers may share it as their stdout) the lines go out whole: in writes of
 * at most PIPE_ATOMIC bytes, each made of whole lines, one write in flight at a time (so Node
 * never joins them into one larger writev). A single line longer than PIPE_ATOMIC is written
 * alone and may still be split when the pipe is full. On a socket the lines of one tick go
 * out as one writev (corkTick).
 */
class SocketOut implements LineOut {
  readonly kind: string;
  readonly #sock: Socket;
  readonly #limit: number;
  readonly #drops = new DropCounter();
  #broken = false;
  readonly #written: () => void;
  readonly #atomic: boolean;
  /** Pipe mode: lines not yet handed to the socket, and their length in characters. */
  #lines: string[] = [];
  #pending = 0;
  #inFlight = false;
  #pumpQueued = false;

  constructor(fd: number, limit: number, kind: string, pipe: boolean) {
    this.kind = kind;
    this.#limit = limit;
    this.#atomic = pipe;
    this.#sock = new Socket({ fd, readable: false, writable: true });
    // Not 'drain': Node emits it only after a write() returned false (past the 16 KiB highWaterMark), and log.buffer may be smaller.
    this.#written = (): void => {
      if (this.#sock.writableLength === 0 && this.#pending === 0) this.#drops.caughtUp();
    };
    // EPIPE: the reader is gone; every later line is dropped and counted.
    this.#sock.on('error', () => {
      this.#broken = true;
    });
    this.#sock.unref(); // flush() holds the process open when it must, never the socket
  }

  get dropped(): number {
    return this.#drops.total;
  }
  get queued(): number {
    return this.#sock.writableLength + this.#pending;
  }
  get onRecover(): LineOut['onRecover'] {
    return this.#drops.onRecover;
  }
  set onRecover(f: LineOut['onRecover']) {
    this.#drops.onRecover = f;
  }

  write(text: string): boolean {
    const q = this.queued;
    if (this.#broken || this.#sock.destroyed || q + text.length > this.#limit) {
      this.#drops.drop(text);
      if (q === 0 && !this.#broken) this.#drops.caughtUp();
      return false;
    }
    if (this.#atomic) {
      this.#lines.push(text);
      this.#pending += text.length;
      if (!this.#inFlight && !this.#pumpQueued) {
        // The lines of this tick go out together, as corkTick does for a socket.
        this.#pumpQueued = true;
        process.nextTick(pumpLater, this);
      }
      return true;
    }
    corkTick(this.#sock);
    this.#sock.write(text, this.#written);
    return true;
  }

  /** Pipe mode: the next write, whole lines up to PIPE_ATOMIC bytes (one longer line alone). */
  pump(): void {
    this.#pumpQueued = false;
    if (this.#inFlight || this.#lines.length === 0) return;
    if (this.#broken || this.#sock.destroyed) {
      for (const l of this.#lines) this.#drops.drop(l);
      this.#lines = [];
      this.#pending = 0;
      return;
    }
    let n = 0, bytes = 0, chars = 0;
    for (const l of this.#lines) {
      const b = Buffer.byteLength(l);
      if (n > 0 && bytes + b > PIPE_ATOMIC) break;
      n++;
      bytes += b;
      chars += l.length;
    }
    const batch = n === this.#lines.length ? this.#lines : this.#lines.slice(0, n);
    this.#lines = n === this.#lines.length ? [] : this.#lines.slice(n);
    this.#inFlight = true;
    this.#sock.write(batch.length === 1 ? (batch[0] as string) : batch.join(''), () => {
      this.#inFlight = false;
      this.#pending -= chars;
      this.#written();
      this.pump();
    });
  }

  reopen(done: (err: Error | null) => void): void {
    done(null); // nothing to reopen
  }

  flush(timeoutMs: number): Promise<boolean> {
    return waitFor(() => this.#broken || (this.queued === 0 && !this.#inFlight), timeoutMs);
  }

  close(): void {
    this.#broken = true;
    this.#sock.destroy();
  }
}

function pumpLater(out: SocketOut): void {
  out.pump();
}

/** A regular file, a terminal or a device: async fs.write, one at a time; reopened by path. */
class FileOut implements LineOut {
  readonly kind: string;
  readonly #limit: number;
  readonly #path: string | null;
  readonly #drops = new DropCounter();
  #fd: number;
  /** The descriptor to switch to once the write in flight is done (after a reopen). */
  #next: number | null = null;
  #chunks: string[] = [];
  #queued = 0;
  #busy = false;
  #closed = false;

  constructor(fd: number, limit: number, kind: string, path: string | null) {
    this.#fd = fd;
    this.#limit = limit;
    this.kind = kind;
    this.#path = path;
  }

  get dropped(): number {
    return this.#drops.total;
  }
  get queued(): number {
    return this.#queued;
  }
  get onRecover(): LineOut['onRecover'] {
    return this.#drops.onRecover;
  }
  set onRecover(f: LineOut['onRecover']) {
    this.#drops.onRecover = f;
  }

  write(text: string): boolean {
    if (this.#closed || this.#queued + text.length > this.#limit) {
      this.#drops.drop(text);
      if (this.#queued === 0) this.#drops.caughtUp();
      return false;
    }
    this.#chunks.push(text);
    this.#queued += text.length;
    if (!this.#busy) this.#kick();
    return true;
  }

  #kick(): void {
    if (this.#next !== null) {
      const old = this.#fd;
      this.#fd = this.#next;
      this.#next = null;
      fsClose(old, () => undefined);
    }
    if (this.#chunks.length === 0 || this.#closed) {
      this.#busy = false;
      this.#drops.caughtUp();
      return;
    }
    this.#busy = true;
    const text = this.#chunks.length === 1 ? (this.#chunks[0] as string) : this.#chunks.join('');
    this.#chunks = [];
    this.#writeAll(Buffer.from(text, 'utf8'), 0, text);
  }

  #writeAll(buf: Buffer, off: number, text: string): void {
    fsWrite(this.#fd, buf, off, buf.length - off, null, (err, n) => {
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          // A terminal someone made non-blocking: try again shortly (the bound still applies meanwhile).
          setTimeout(() => this.#writeAll(buf, off, text), 50).unref();
          return;
        }
        this.#drops.drop(text); // ENOSPC, EIO, EBADF: these lines are lost, the next ones may not be
      } else if (off + n < buf.length) {
        this.#writeAll(buf, off + n, text);
        return;
      }
      this.#queued -= text.length;
      this.#kick();
    });
  }

  reopen(done: (err: Error | null) => void): void {
    if (this.#path === null || this.#closed) {
      done(null);
      return;
    }
    fsOpen(this.#path, 'a', 0o640, (err, fd) => {
      if (err !== null) {
        done(err); // keep writing to the old descriptor
        return;
      }
      if (this.#next !== null) fsClose(this.#next, () => undefined);
      this.#next = fd;
      if (!this.#busy) this.#kick();
      done(null);
    });
  }

  flush(timeoutMs: number): Promise<boolean> {
    return waitFor(() => this.#queued === 0 && !this.#busy, timeoutMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#path !== null) {
      fsClose(this.#fd, () => undefined);
      if (this.#next !== null) fsClose(this.#next, () => undefined);
    }
  }
}

const uncork = (sock: Socket): void => {
  sock.uncork();
};

/**
 * corkTick - hold a socket's writes until the end of this tick, then send them as one writev:
 * an event usually logs a few lines in one callback, and a syscall each cost more than the line.
 */
export function corkTick(sock: Socket): void {
  if (sock.writableCorked === 0) {
    sock.cork();
    process.nextTick(uncork, sock);
  }
}

/** Poll `done()` every 10 ms for at most `timeoutMs`; the timer holds the process open meanwhile. */
export function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const timer = setInterval(() => {
      if (done()) {
        clearInterval(timer);
        resolve(true);
      } else if (Date.now() - t0 >= timeoutMs) {
        clearInterval(timer);
        resolve(false);
      }
    }, 10);
  });
}

/** openFd - a destination on an open descriptor (stdout: 1). */
export function openFd(fd: number, limit: number, kind = 'stdout'): LineOut {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    st = null;
  }
  if (st !== null && (st.isFIFO() || st.isSocket())) {
    try {
      return new SocketOut(fd, limit, kind, st.isFIFO());
    } catch {
      /* a socket type net cannot open (a datagram socket): written like a file */
    }
  }
  return new FileOut(fd, limit, kind, null);
}

/** openFile - the file destination: opened for appending now (errors are the caller's to report), reopened by path. */
export function openFile(path: string, limit: number): LineOut {
  return new FileOut(openSync(path, 'a', 0o640), limit, 'file', path);
}
