/*
 * bench/load/protocol.ts - what the parent and its workers say to each other
 * over IPC, and how a client index becomes a source address.
 *
 * Exports: HostPort, ZombieKind, OpenCmd, TimeCmd, WorkerCmd, ZombieCounts,
 *   WorkerMsg, sourceAddress(base, i).
 */
/**
 * idle: silent; hold: talks first, then silent in the dummy engine; screen: talks
 * first, then plays the bot to RCPT; polite: waits for its turn, then plays
 * EHLO/MAIL/RCPT (a DNSBL-listed bot, or a legit new client when unlisted);
 * slow: talks first, then dribbles one byte of an endless command every
 * dribbleMs in the dummy engine (slowloris) until the server cuts it.
 */
export type ZombieKind = 'idle' | 'hold' | 'screen' | 'polite' | 'slow';

/** One row of a mixed load: `weight` of every sum-of-weights connections are `kind`, from `base`. */
export interface PlanEntry {
  label: string;
  kind: ZombieKind;
  base: readonly [number, number];
  weight: number;
}

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
  /** A mix of kinds instead of `kind`/`base` (null: all `kind`). */
  plan: PlanEntry[] | null;
  /** slow zombies: ms between two bytes. */
  dribbleMs: number;
}

/** Counts and verdict latencies of one plan label (or of the kind, without a plan). */
export interface LabelStats {
  counts: ZombieCounts;
  /** connect() to the verdict line (screen, polite) or to the cut (slow), ms. */
  latencies: number[];
  /** slow: server greeting to the 421 that cut it, ms. */
  cutMs: number[];
  /**
   * polite: connect() to a 4xx reply to its RCPT (a deferral, e.g. the dummy
   * engine's 450), ms. Still counted as `refused`; not a verdict.
   */
  deferredMs: number[];
}

export interface XferCmd {
  cmd: 'xfer';
  /** raw: "RAW n" then n bytes (a raw discard backend); smtp: EHLO/MAIL/RCPT/DATA with 998-octet lines. */
  mode: 'raw' | 'smtp';
  target: HostPort;
  direct: HostPort | null;
  bytes: number;
  messages: number;
  base: readonly [number, number];
  timeoutMs: number;
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

export type WorkerCmd = OpenCmd | TimeCmd | XferCmd | { cmd: 'close' } | { cmd: 'exit' };

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
  /** slow: cut by the server's 421 (command time limit). */
  cut: number;
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
      byLabel: Record<string, LabelStats>;
    }
  | {
      type: 'xfered';
      /** ms from the first body byte written to the final reply, per message. */
      screened: number[];
      direct: number[];
      failures: Record<string, number>;
      cpuMs: number;
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
  | { type: 'closed'; counts: ZombieCounts; cpuMs: number; rssKb: number; byLabel: Record<string, LabelStats> };

/** sourceAddress - the i-th client address 127.a.b.c from base [a, b], c in 1..254. */
export function sourceAddress(base: readonly [number, number], i: number): string {
  const block = base[0] * 256 + base[1] + Math.floor(i / 254);
  const a = Math.floor(block / 256);
  if (a > 255) throw new RangeError(`source address ${i} is past 127.255.255.254`);
  return `127.${a}.${block % 256}.${(i % 254) + 1}`;
}
