/*
 * server/fdlimit.ts - the process's file descriptor limit, and why we count our own.
 *
 * Exports: readFdLimit(), fdsFull(), connectionCeiling(), FD_RESERVE.
 * XXX When accept(2) fails with EMFILE, libuv does not tell Node: it closes a
 * reserve descriptor, accepts the pending connections and closes them at once
 * (its "EMFILE trick"), so the clients see a reset and no 'error' event ever
 * reaches the server (measured on Node 20 with `ulimit -n 40`). A screener
 * that waits for EMFILE therefore never logs it. Instead the listener counts
 * the descriptors it holds (client sockets, backend sockets, PROXY headers
 * pending) and refuses new clients with a proper 421 before the limit, logging
 * ACCEPT ERROR with code EMFILE, rate-limited. FD_RESERVE descriptors stay free
 * for the listeners, log output, the snapshot file and the like.
 * A client let in must also get its backend connection when it passes: a
 * burst of clients that pass together would otherwise fail at the handoff,
 * after their greet wait, with EMFILE on connect. So every session that may
 * still be handed over counts for two descriptors from its accept (client and
 * backend), one that no longer can (the dummy engine) for one, and the limit
 * refuses at accept, as postscreen does, never after the wait.
 */
import { readFileSync } from 'node:fs';

export const FD_RESERVE = 64;

/**
 * fdsFull - whether one more client would overrun `fdLimit`. `open`: client
 * connections (sessions and pending PROXY headers); `dummyOnly`: those of them
 * that will not be handed over; `backends`: backend sockets open (a closed
 * session's may linger a moment); `refused`: refused sockets still closing.
 * The new client counts for two.
 */
export function fdsFull(fdLimit: number | null, open: number, dummyOnly: number, backends: number, refused: number): boolean {
  if (fdLimit === null) return false;
  const held = Math.max(2 * open - dummyOnly, open + backends);
  return held + 2 + refused + FD_RESERVE > fdLimit;
}

/** How many clients `fdLimit` lets in when every one of them may be handed over (two descriptors each). */
export function connectionCeiling(fdLimit: number): number {
  return Math.max(1, Math.floor((fdLimit - FD_RESERVE) / 2));
}

/** The soft RLIMIT_NOFILE from /proc/self/limits, or null where that file does not exist. */
export function readFdLimit(text?: string): number | null {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+/m.exec(t);
  if (m === null || m[1] === undefined) return null;
  return m[1] === 'unlimited' ? null : Number(m[1]);
}
