/*
 * session/close.ts - the ways a session ends: reply-and-close, hangup, final accounting.
 *
 * Exports: closeWith(), endSocket(), refuse(), refusedOpen(), finish(),
 *          onClientClose(), onClientEnd(), onSocketError().
 * finish() runs once per session, from the client socket's 'close' event: it
 * releases the counters, stops timers, tears down the backend, logs
 * DISCONNECT and tells the server (its stress state) the new open count.
 * A hangup before the handoff is logged as HANGUP, never as a
 * test failure (postscreen's psc_hangup_event). Whichever way a dummy
 * session ends, its deep tests are concluded first (session/deep.ts).
 */
import type { Socket } from 'node:net';
import { EV } from '../log/events.js';
import { kSession, type ScreenSocket, type Session } from './state.js';
import { concludeDummy } from './deep.js';

/** How long a socket we finished writing to may stay half-open before we cut it. */
export const LINGER_MS = 2000;

function destroyLater(sock: Socket): void {
  sock.destroy();
}

/**
 * Write a last reply, half-close, and destroy the socket LINGER_MS later if
 * the peer has not closed by then. A hard timer, not the idle timeout: a peer
 * that keeps sending must not keep the socket alive. Incoming bytes are read
 * and dropped meanwhile, so that closing does not turn into a reset that
 * could destroy the reply before the client reads it.
 */
export function endSocket(sock: Socket, text: string | null): void {
  if (sock.destroyed) return;
  sock.removeAllListeners('data');
  sock.resume();
  if (text !== null && sock.writable) sock.end(text);
  else sock.end();
  const t = setTimeout(destroyLater, LINGER_MS, sock);
  t.unref();
  sock.once('close', clearTimeout.bind(null, t));
}

/** Sockets refused at accept (busy, too many connections) that have not closed yet: they hold descriptors too. */
let refused = 0;

function onRefusedClose(): void {
  refused--;
}

/** Refuse a connection that never became a session: one reply, then close. */
export function refuse(sock: Socket, text: string): void {
  refused++;
  sock.once('close', onRefusedClose);
  endSocket(sock, text);
}

export function refusedOpen(): number {
  return refused;
}

/** The screener ends the session with a reply (521, 421, ...). */
export function closeWith(s: Session, text: string | null): void {
  if (s.closed) return;
  concludeDummy(s);
  s.closed = true;
  s.clearTimer();
  s.reader?.stop();
  s.io.removeAllListeners('data');
  endSocket(s.io, text);
}

/** 'error' on any socket we own: network outcomes (ECONNRESET, EPIPE) are expected. 'close' follows. */
export function onSocketError(this: ScreenSocket, err: NodeJS.ErrnoException): void {
  const s = this[kSession];
  if (s !== undefined) s.event(EV.SOCKET_ERROR, { code: err.code, phase: s.phase });
}

/**
 * The client half-closed. Before the splice that is a hangup (the socket
 * allows half-open only so that a spliced session can finish its last reply):
 * log it and close our side too. In the splice, session/splice.ts forwards the FIN.
 */
export function onClientEnd(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.phase === 'splice' || s.phase === 'closed') return;
  if (!s.closed) {
    s.event(EV.HANGUP, { after_ms: s.ctx.clock.now() - s.started, phase: s.phase });
    concludeDummy(s);
    s.closed = true;
    s.clearTimer();
    s.reader?.stop();
  }
  this.destroy();
}

/** The client socket is fully closed: account for the session once. */
export function onClientClose(this: ScreenSocket): void {
  const s = this[kSession];
  if (s === undefined || s.phase === 'closed') return;
  const phase = s.phase;
  if (!s.closed && (phase === 'pregreet' || phase === 'dummy' || phase === 'handoff')) {
    s.event(EV.HANGUP, { after_ms: s.ctx.clock.now() - s.started, phase });
  }
  if (!s.closed) concludeDummy(s);
  s.closed = true;
  finish(s, phase);
}

export function finish(s: Session, phase: string): void {
  s.phase = 'closed';
  s.clearTimer();
  s.reader?.stop();
  const ctx = s.ctx;
  ctx.sessions.delete(s);
  if (s.dummyOnly) {
    s.dummyOnly = false;
    ctx.dummyOnly--;
  }
  if (s.counted) {
    const n = (ctx.perClient.get(s.client) ?? 1) - 1;
    if (n <= 0) ctx.perClient.delete(s.client);
    else ctx.perClient.set(s.client, n);
    s.counted = false;
    ctx.onClientCount?.(s.client, Math.max(0, n));
  }
  const b = s.backendSock;
  if (b !== null && !b.destroyed) b.destroy();
  s.event(EV.DISCONNECT, {
    duration_ms: s.ctx.clock.now() - s.started,
    bytes_in: s.socket.bytesRead,
    bytes_out: s.socket.bytesWritten,
    phase,
  });
  ctx.noteOpen(ctx.sessions.size + ctx.pendingProxy);
  ctx.onSessionEnd?.();
}
