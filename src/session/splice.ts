/*
 * session/splice.ts - a handed-over session's two sockets joined: what one reads, the other writes.
 *
 * Exports: splice().
 * What stream.pipe() did for the pair, with handlers shared by every session: pipe() made nine
 * closures per direction, eighteen per session, for as long as the session lasts. The peer of a
 * socket is found through its session (s.socket <-> s.backendSock), so nothing is added per socket.
 * Backpressure as pipe(): a write the peer does not take whole pauses the reader until the peer
 * drains. A FIN is passed on (end(): both sockets allow half-open, so the other direction goes
 * on). Errors and closes stay with the session's handlers (session/close.ts, session/handoff.ts).
 */
import type { Socket } from 'node:net';
import { kSession, type ScreenSocket } from './state.js';

function peerOf(sock: ScreenSocket): Socket | null {
  const s = sock[kSession];
  if (s === undefined) return null;
  const peer = sock === s.socket ? s.backendSock : s.socket;
  return peer === null || peer.destroyed ? null : peer;
}

function onData(this: ScreenSocket, chunk: Buffer): void {
  const peer = peerOf(this);
  if (peer !== null && !peer.write(chunk)) this.pause();
}

function onDrain(this: ScreenSocket): void {
  peerOf(this)?.resume();
}

function onEnd(this: ScreenSocket): void {
  const peer = peerOf(this);
  if (peer !== null && peer.writable) peer.end();
}

function join(x: ScreenSocket): void {
  x.on('data', onData);
  x.on('drain', onDrain);
  x.on('end', onEnd);
  x.resume();
}

/** Join client and backend; both start reading. */
export function splice(cs: ScreenSocket, bs: ScreenSocket): void {
  join(cs);
  join(bs);
}
