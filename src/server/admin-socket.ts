/*
 * server/admin-socket.ts - the cache admin's Unix socket (admin.socket):
 * `smtpscreen cache ...` talks to the running screener's verdict store here.
 *
 * Exports: startAdminSocket(), AdminSocket.
 * Protocol: one JSON request per line, one JSON reply per line
 * (cache/admin.ts); list and export first send one line per entry
 * ({"address":..} / {"line":..}), in batches between which sessions run,
 * then the reply with the count. A line longer than MAX_REQUEST, or no line
 * within IDLE_MS, gets an error reply and the connection is closed; garbage
 * gets an error reply and the connection stays: never a throw.
 * The socket is created mode 0600 (umask 0177 around listen(), then chmod):
 * only its owner (the user that started the screener) may connect. A path
 * that exists is refused unless it is a stale socket (nothing answers on
 * it): then it is removed. close() removes it.
 * Changes are logged as CACHE ADMIN with by: socket.
 */
import net from 'node:net';
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { EV } from '../log/events.js';
import type { Emitter } from '../log/emit.js';
import type { VerdictStore } from '../cache/store.js';
import { MAX_REQUEST, applyAdmin, parseAdminRequest } from '../cache/admin.js';
import { ScreenError } from '../util/errors.js';

const IDLE_MS = 30_000;
/** Entries written per turn of the event loop (list, export). */
const BATCH = 2000;

export interface AdminSocket {
  readonly path: string;
  close(): Promise<void>;
}

/** Something answers on `path`: a screener already listens there. */
function alive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

async function clearPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) {
    throw new ScreenError('SCR_ERR_CONFIG', `admin.socket: ${path} exists and is not a socket: remove it or choose another path`, { key: 'admin.socket', value: path });
  }
  if (await alive(path)) {
    throw new ScreenError('SCR_ERR_CONFIG', `admin.socket: ${path} is in use (another screener answers on it)`, { key: 'admin.socket', value: path });
  }
  unlinkSync(path); // stale: left by a screener that died
}

/** `onChange` (a primary, server/primary-admin.ts): the request line of each change, for the workers' memory tiers. */
export async function startAdminSocket(path: string, store: VerdictStore, emitter: Emitter, now: () => number = Date.now,
  onChange?: (line: string) => void): Promise<AdminSocket> {
  await clearPath(path);
  const conns = new Set<net.Socket>();
  const server = net.createServer((sock) => serve(sock, store, emitter, now, conns, onChange));
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  let closed: Promise<void> | null = null;
  return {
    path,
    close: () => (closed ??= new Promise<void>((resolve) => {
      for (const c of conns) c.destroy();
      server.close(() => resolve());
    }).then(() => {
      try {
        unlinkSync(path); // server.close() unlinks it too; this covers a chmod'ed or moved one
      } catch {
        /* already gone */
      }
    })),
  };
}

function send(sock: net.Socket, obj: Record<string, unknown>): void {
  if (sock.writable) sock.write(JSON.stringify(obj) + '\n');
}

function serve(sock: net.Socket, store: VerdictStore, emitter: Emitter, now: () => number, conns: Set<net.Socket>,
  onChange: ((line: string) => void) | undefined): void {
  conns.add(sock);
  sock.setEncoding('utf8');
  sock.setTimeout(IDLE_MS, () => {
    send(sock, { ok: false, error: `no request within ${IDLE_MS / 1000}s` });
    sock.end();
  });
  let buf = '';
  let busy = false;
  const queue: string[] = [];
  const next = (): void => {
    while (!busy && queue.length > 0) handle(queue.shift() as string);
  };
  const handle = (line: string): void => {
    const req = parseAdminRequest(line);
    if ('error' in req) {
      send(sock, { ok: false, error: req.error });
      return;
    }
    if (req.op === 'list' || req.op === 'export') {
      // Many entries: written in batches, the event loop turns between them (sessions go on).
      busy = true;
      const lines: Array<Record<string, unknown>> = [];
      const { reply } = applyAdmin(store, req, now(), (e) => lines.push(e));
      let i = 0;
      const batch = (): void => {
        if (sock.destroyed) return;
        const end = Math.min(lines.length, i + BATCH);
        let text = '';
        for (; i < end; i++) text += JSON.stringify(lines[i]) + '\n';
        if (text !== '') sock.write(text);
        if (i < lines.length) setImmediate(batch);
        else {
          send(sock, reply);
          busy = false;
          next();
        }
      };
      batch();
      return;
    }
    const { reply, change } = applyAdmin(store, req, now());
    if (change !== null) {
      emitter.emit(EV.CACHE_ADMIN, { ...change, by: 'socket' });
      onChange?.(line);
    }
    send(sock, reply);
  };
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() !== '') queue.push(line);
    }
    if (buf.length > MAX_REQUEST) {
      send(sock, { ok: false, error: `request longer than ${MAX_REQUEST} bytes` });
      buf = '';
      sock.end();
      return;
    }
    next();
  });
  sock.on('error', () => sock.destroy());
  sock.on('close', () => conns.delete(sock));
}
