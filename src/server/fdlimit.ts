/*
 * server/fdlimit.ts - the process's file descriptor limit, and why we count our own.
 *
 * Exports: readFdLimit(), FD_RESERVE.
 * XXX When accept(2) fails with EMFILE, libuv does not tell Node: it closes a
 * reserve descriptor, accepts the pending connections and closes them at once
 * (its "EMFILE trick"), so the clients see a reset and no 'error' event ever
 * reaches the server (measured on Node 20 with `ulimit -n 40`). A screener
 * that waits for EMFILE therefore never logs it. Instead the listener counts
 * the descriptors it holds (client sockets, backend sockets, PROXY headers
 * pending) and refuses new clients with a proper 421 before the limit, logging
 * ACCEPT ERROR with code EMFILE, rate-limited. FD_RESERVE descriptors stay free
 * for the listeners, log output, the snapshot file and backend connects.
 */
import { readFileSync } from 'node:fs';

export const FD_RESERVE = 64;

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
