/*
 * server/cluster-ipc.ts - what the primary and its workers say to each other (workers > 1).
 *
 * Exports: workerCount(), networkSlot(), ToWorker, ToPrimary, Slot, WORKER_ENV, CLOSE_REPORT_MS, STATE_MS.
 * workers_accept: primary - the primary (server/primary.ts) accepts every
 * connection and hands the socket to a worker (server/worker.ts) with one `conn`
 * message; the worker reports the sockets that closed, in batches (`closed`, at
 * most every CLOSE_REPORT_MS), so the primary's host-wide count never waits on a
 * round trip per connection.
 * workers_accept: shared - every worker accepts itself; it reports its open
 * count and the clients whose count changed (`open`, at most every STATE_MS),
 * and the primary answers each worker with the others' total and the clients at
 * or over limits.max_per_client host-wide (`host`, at most every STATE_MS;
 * server/host-counts.ts).
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

/**
 * workers_accept: shared - how long a worker holds a change of its counts before it reports, and the
 * primary a change of the host's before it tells the workers: a worker's view of the others is at most
 * 2 * STATE_MS plus the IPC delivery old (the window in which the host limits can be overshot).
 */
export const STATE_MS = 10;

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
  | { t: 'admin'; line: string }
  /**
   * workers_accept: shared. `o`: connections open in the other workers, as they last reported;
   * `full` (only when it changed): every client at or over limits.max_per_client on the host, with its host count.
   */
  | { t: 'host'; o: number; full?: Array<[string, number]> };

/** Worker → primary. */
export type ToPrimary =
  /** Started: serving from now on; `listen`: the addresses it accepts on (workers_accept: shared). */
  | { t: 'ready'; listen?: string[] }
  /** workers_accept: shared: a reload changed the listeners; `a`: the addresses it accepts on now. */
  | { t: 'listen'; a: string[] }
  /** workers_accept: shared. `n`: connections open in this worker now; `c`: clients whose count here changed, with the count (0: none left). */
  | { t: 'open'; n: number; c?: Array<[string, number]> }
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
  /** Connections handed to it and not reported closed (primary), or open as it last reported (shared). */
  open: number;
  startedAt: number;
  /** The delay of its next restart, when it dies soon after a start. */
  delay: number;
  restarts: number;
  timer: NodeJS.Timeout | null;
}
