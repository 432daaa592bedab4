/*
 * session/guard.ts - the boundary between Node's event sources and the
 * session code: an error thrown from a socket, timer or DNS callback ends
 * that one session, never the process.
 *
 * Exports: guardSocket(), guardTimer(), internalError(), INTERNAL_ERROR.
 * Handlers stay module-level functions; each is wrapped once, at module
 * load, so the guard costs no allocation per connection or per chunk. When
 * a wrapped handler throws, internalError() counts it, logs INTERNAL ERROR
 * (error level, with where it happened and the stack) and closes that
 * session with a 421, so the client retries later and loses nothing; a
 * failure inside that clean-up only destroys the sockets.
 * The CLI adds a last guard at the process level (uncaughtException) for
 * what no handler of ours catches.
 */
import { EV } from '../log/events.js';
import { kSession, type ScreenSocket, type Session } from './state.js';
import { closeWith } from './close.js';

export const INTERNAL_ERROR = EV.INTERNAL_ERROR;

/** Count, log and contain an error thrown by a handler of session `s` (or of no known session). */
export function internalError(s: Session | undefined, where: string, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  // No session to close: the process-level guard (cli.ts) logs it.
  if (s === undefined) throw e;
  try {
    s.ctx.emitter.emit(INTERNAL_ERROR, { client: s.client, port: s.port, where, phase: s.phase, error: e.message, stack: e.stack });
  } catch {
    /* a logger that throws must not stop the clean-up */
  }
  try {
    if (!s.closed) closeWith(s, s.gen.replies.serviceUnavailable);
  } catch {
    s.backendSock?.destroy();
    s.io.destroy();
    s.socket.destroy();
  }
}

/** Wrap a module-level socket handler (`this` is the socket, one argument). */
export function guardSocket<A>(where: string, fn: (this: ScreenSocket, a: A) => void): (this: ScreenSocket, a: A) => void {
  return function guarded(this: ScreenSocket, a: A): void {
    try {
      fn.call(this, a);
    } catch (err) {
      internalError(this[kSession], where, err);
    }
  };
}

/** Wrap a timer or callback whose first argument is the session. */
export function guardTimer<R extends unknown[]>(where: string, fn: (s: Session, ...rest: R) => void): (s: Session, ...rest: R) => void {
  return function guarded(s: Session, ...rest: R): void {
    try {
      fn(s, ...rest);
    } catch (err) {
      internalError(s, where, err);
    }
  };
}
