/*
 * bench/load/protocol.ts - what the parent and its workers say to each other
 * over IPC, and how a client index becomes a source address.
 *
 * Exports: HostPort, ZombieKind, OpenCmd, TimeCmd, WorkerCmd, ZombieCounts,
 *   WorkerMsg, sourceAddress(base, i).
 */
export type ZombieKind = 'idle' | 'hold' | 'screen';

export interface HostPort {
  host: string;
  port: number;
}

export interface OpenCmd {
  cmd: 'open';
  kind: ZombieKind;
  target: HostPort;
  /** Index of the first source address (see sourceAddress). */
  first: number;
  count: number;
  base: readonly [number, number];
  pendingCap: number;
  /** Connects per second; 0 = as fast as pendingCap allows. */
  rate: number;
  /** Epoch ms: stop opening, report what was reached. */
  deadline: number;
}

export interface TimeCmd {
  cmd: 'time';
  /** new: first visits (pay the greet wait); paired: each client screened (cached) and direct. */
  phase: 'new' | 'paired';
  target: HostPort;
  direct: HostPort | null;
  first: number;
  count: number;
  base: readonly [number, number];
  concurrency: number;
  /** Discarded pairs before the measured ones (paired only). */
  warmup: number;
  timeoutMs: number;
  deadline: number;
}

export type WorkerCmd = OpenCmd | TimeCmd | { cmd: 'close' } | { cmd: 'exit' };

export interface ZombieCounts {
  /** connect() called. */
  started: number;
  /** Connected or connecting, no byte from the server yet. */
  pending: number;
  /** Saw the server's first bytes. */
  accepted: number;
  /** hold: accepted, greeting not complete yet. */
  waiting: number;
  /** Held now (idle: teaser seen; hold: greeting complete). */
  held: number;
  /** screen: refused with 5xx (RCPT or 521). */
  screened: number;
  /** Turned away with 4xx before being held or screened (421 busy, ...). */
  refused: number;
  /** Closed or failed before being held or screened. */
  failed: number;
  /** Closed by the server while held. */
  lost: number;
  /** screen: RCPT accepted (the server did not screen this bot). */
  passed: number;
  /** Open sockets. */
  open: number;
}

export type WorkerMsg =
  | { type: 'progress'; counts: ZombieCounts }
  | {
      type: 'opened';
      counts: ZombieCounts;
      errors: Record<string, number>;
      stoppedBy: 'done' | 'deadline';
      /** ms spent with the pending cap reached. */
      capWaitMs: number;
      firstAt: number;
      lastAt: number;
      /** screen: connect() to the verdict line, ms. */
      latencies: number[];
      /** screen: Date.now() of the first and the last verdict (0 when none). */
      firstVerdictAt: number;
      lastVerdictAt: number;
      cpuMs: number;
      rssKb: number;
    }
  | {
      type: 'timed';
      phase: 'new' | 'paired';
      screened: number[];
      direct: number[];
      /** screened - direct of the same client, in the order run. */
      diffs: number[];
      failures: Record<string, number>;
      cpuMs: number;
    }
  | { type: 'closed'; counts: ZombieCounts; cpuMs: number; rssKb: number };

/** sourceAddress - the i-th client address 127.a.b.c from base [a, b], c in 1..254. */
export function sourceAddress(base: readonly [number, number], i: number): string {
  const block = base[0] * 256 + base[1] + Math.floor(i / 254);
  const a = Math.floor(block / 256);
  if (a > 255) throw new RangeError(`source address ${i} is past 127.255.255.254`);
  return `127.${a}.${block % 256}.${(i % 254) + 1}`;
}
