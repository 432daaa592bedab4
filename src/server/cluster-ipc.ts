/*
 * server/cluster-ipc.ts - what the primary and its workers say to each other (workers > 1).
 *
 * Exports: workerCount(), networkSlot(), ToWorker, ToPrimary, Slot, WORKER_ENV, CLOSE_REPORT_MS.
 * The primary (server/primary.ts) accepts every connection and hands the socket
 * to a worker (server/worker.ts) with one `conn` message; the worker reports the
 * sockets that closed, in batches (`closed`, at most every CLOSE_REPORT_MS), so
 * the primary's host-wide count never waits on a round trip per connection.
 * Everything else (metrics, readiness, cache admin changes, drain results) is
 * rare and asked for by the primary.
 */
import type { Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseAddressInto } from '../net/cidr.js';

/** The environment variable that carries a worker's index (0-based) into the forked process. */
export const WORKER_ENV = 'SMTPSCREEN_WORKER';

/** How long a worker may hold closes before it tells the primary (the host-wide count over-counts by at most this much). */
export const CLOSE_REPORT_MS = 20;

/** workerCount - the `workers` key as a number of processes (auto: one per core). */
export function workerCount(w: number | 'auto'): number {
  return w === 'auto' ? Math.max(1, Math.min(64, availableParallelism())) : w;
}

const words = new Uint32Array(4);

/**
 * networkSlot - the slot (0..n-1) of `addr`'s network: the /24 of an IPv4
 * address, the /64 of an IPv6 one. Every connection of one client, and of
 * its neighbours in one network, lands in one worker: per-client limits and
 * greylisting by network stay in one process. Unreadable text: slot 0.
 */
export function networkSlot(addr: string, n: number): number {
  if (n <= 1) return 0;
  const fam = parseAddressInto(addr, words);
  let h: number;
  if (fam === 4) h = (words[0] ?? 0) >>> 8;
  else if (fam === 6) h = (words[0] ?? 0) ^ Math.imul(words[1] ?? 0, 0x85ebca6b);
  else return 0;
  // murmur3's finaliser: neighbouring networks (127.0.1.0/24, 127.0.2.0/24) spread evenly.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.floor(((h >>> 0) * n) / 0x100000000);
}

/** Primary → worker. A `conn` message carries the client's socket as its handle. */
export type ToWorker =
  /** A connection accepted on listener `l` (its configured "host:port"); `o`: connections open in the other workers. */
  | { t: 'conn'; l: string; o: number }
  /** Answer with this process's metrics as JSON (prom-client getMetricsAsJSON). */
  | { t: 'metrics'; id: number }
  /** Answer with /readyz. */
  | { t: 'ready?'; id: number }
  /** A cache admin request (one JSON line) that changed the shared store: apply it to this worker's memory tier too. */
  | { t: 'admin'; line: string };

/** Worker → primary. */
export type ToPrimary =
  /** Started: serving from now on. */
  | { t: 'ready' }
  /** `n` handed sockets closed since the last report. */
  | { t: 'closed'; n: number }
  | { t: 'metrics'; id: number; data: unknown }
  | { t: 'ready?'; id: number; data: Record<string, unknown> }
  /** The drain is over: `forced` sessions were cut at its deadline. */
  | { t: 'stopped'; forced: number };

/** The primary's record of one worker (server/primary.ts keeps them; server/primary-admin.ts asks them). */
export interface Slot {
  readonly index: number;
  worker: Worker | null;
  pid: number;
  ready: boolean;
  /** Connections handed to it and not reported closed. */
  open: number;
  startedAt: number;
  /** The delay of its next restart, when it dies soon after a start. */
  delay: number;
  restarts: number;
  timer: NodeJS.Timeout | null;
}
