/*
 * bench/load/fleet.ts - the parent's handle on its worker processes and on
 * the server it measures.
 *
 * Exports: Fleet, Opened, Measure, measure(target), Sampler, log(msg).
 * A Fleet forks N workers (this same file with --role=worker), splits a
 * count of zombies over them (each at most perWorker sockets, each with its
 * own share of the pending cap and the rate), and gathers their reports.
 * Every wait here is bounded: a worker that does not answer in time is
 * reported as such and killed by PID when the fleet stops.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { childPids, countEstablished, countFds, cpuPct, round, sampleProc, sampleTree, type ProcSample } from './proc.js';
import { stopChild, track } from './server.js';
import type { HostPort, LabelStats, OpenCmd, PlanEntry, TimeCmd, WorkerMsg, XferCmd, ZombieCounts, ZombieKind } from './protocol.js';

let quiet = false;
export function setQuiet(q: boolean): void {
  quiet = q;
}

let statusShown = false;

/** log - progress on stderr (the summary goes to stdout). */
export function log(msg: string): void {
  if (quiet) return;
  if (statusShown) process.stderr.write('\n');
  statusShown = false;
  process.stderr.write(`[load ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/**
 * status - the progress line of a scenario: on a terminal one line rewritten
 * in place; otherwise (CI, a pipe) a plain line, at most one every `plainEvery` calls.
 */
let statusCalls = 0;
export function status(msg: string, plainEvery = 2): void {
  if (quiet) return;
  if (process.stderr.isTTY) {
    process.stderr.write(`\r\x1b[K[load ${new Date().toISOString().slice(11, 19)}] ${msg}`);
    statusShown = true;
  } else if (statusCalls++ % plainEvery === 0) log(msg);
}

/** endStatus - close the terminal's progress line. */
export function endStatus(): void {
  if (statusShown && !quiet) process.stderr.write('\n');
  statusShown = false;
  statusCalls = 0;
}

function mergeStats(into: Record<string, LabelStats>, from: Record<string, LabelStats>): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (cur === undefined) {
      into[k] = { counts: { ...v.counts }, latencies: [...v.latencies], cutMs: [...v.cutMs], deferredMs: [...v.deferredMs] };
      continue;
    }
    cur.counts = addCounts(cur.counts, v.counts);
    for (const x of v.latencies) cur.latencies.push(x);
    for (const x of v.cutMs) cur.cutMs.push(x);
    for (const x of v.deferredMs) cur.deferredMs.push(x);
  }
}

export interface Opened {
  counts: ZombieCounts;
  errors: Record<string, number>;
  stoppedBy: 'done' | 'deadline' | 'no answer';
  capWaitMs: number;
  firstAt: number;
  lastAt: number;
  latencies: number[];
  firstVerdictAt: number;
  lastVerdictAt: number;
  cpuMs: number;
  rssKb: number;
  /** Per plan label (or kind), cumulative over this worker fleet's life. */
  byLabel: Record<string, LabelStats>;
}

function addCounts(a: ZombieCounts, b: ZombieCounts): ZombieCounts {
  const out = { ...a };
  for (const k of Object.keys(b) as Array<keyof ZombieCounts>) out[k] += b[k];
  return out;
}

export const ZERO: ZombieCounts = {
  started: 0, pending: 0, accepted: 0, waiting: 0, held: 0, screened: 0, refused: 0, failed: 0, lost: 0, passed: 0, open: 0, cut: 0,
};

type Timed = Extract<WorkerMsg, { type: 'timed' }>;

export class Fleet {
  readonly workers: ChildProcess[] = [];
  readonly progress: ZombieCounts[] = [];

  constructor(self: string, n: number, exitBy: number) {
    for (let i = 0; i < n; i++) {
      const w = track(fork(self, ['--role=worker', `--exit-by=${exitBy}`], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      w.on('message', (m: WorkerMsg) => {
        if (m.type === 'progress') this.progress[i] = m.counts;
      });
      this.workers.push(w);
      this.progress.push({ ...ZERO });
    }
  }

  /** next - the next message of `type` from worker i, or null after ms. */
  next<T extends WorkerMsg['type']>(i: number, type: T, ms: number): Promise<Extract<WorkerMsg, { type: T }> | null> {
    const w = this.workers[i] as ChildProcess;
    return new Promise((resolve) => {
      const onMsg = (m: WorkerMsg): void => {
        if (m.type !== type) return;
        done(m as Extract<WorkerMsg, { type: T }>);
      };
      const onExit = (): void => done(null);
      const t = setTimeout(() => done(null), ms);
      const done = (v: Extract<WorkerMsg, { type: T }> | null): void => {
        clearTimeout(t);
        w.removeListener('message', onMsg);
        w.removeListener('exit', onExit);
        resolve(v);
      };
      w.on('message', onMsg);
      w.once('exit', onExit);
    });
  }

  /**
   * open - `total` zombies of `kind` from source addresses first.., spread
   * over the workers; resolves when every worker has reported (or at deadline + 10 s).
   */
  async open(kind: ZombieKind, target: HostPort, total: number, first: number, base: readonly [number, number],
    pendingCap: number, rate: number, deadline: number, plan: PlanEntry[] | null = null, dribbleMs = 0): Promise<Opened> {
    const n = this.workers.length;
    const per = Math.ceil(total / n);
    const waits: Array<Promise<Extract<WorkerMsg, { type: 'opened' }> | null>> = [];
    let at = 0;
    for (let i = 0; i < n; i++) {
      const count = Math.min(per, total - at);
      const cmd: OpenCmd = {
        cmd: 'open', kind, target, first: first + at, count, base,
        pendingCap: Math.max(1, Math.ceil(pendingCap / n)), rate: rate / n, deadline, plan, dribbleMs,
      };
      waits.push(this.next(i, 'opened', Math.max(0, deadline - Date.now()) + 10_000));
      this.workers[i]?.send(cmd);
      at += count;
    }
    const what = plan === null ? kind : plan.map((e) => e.label).join('+');
    const shown = this.showProgress(what);
    const got = await Promise.all(waits);
    clearInterval(shown);
    endStatus();
    const out: Opened = {
      counts: { ...ZERO }, errors: {}, stoppedBy: 'done', capWaitMs: 0, firstAt: Infinity, lastAt: 0, latencies: [],
      firstVerdictAt: 0, lastVerdictAt: 0, cpuMs: 0, rssKb: 0, byLabel: {},
    };
    for (const m of got) {
      if (m === null) {
        out.stoppedBy = 'no answer';
        continue;
      }
      out.counts = addCounts(out.counts, m.counts);
      for (const [k, v] of Object.entries(m.errors)) out.errors[k] = (out.errors[k] ?? 0) + v;
      if (m.stoppedBy === 'deadline' && out.stoppedBy === 'done') out.stoppedBy = 'deadline';
      out.capWaitMs = Math.max(out.capWaitMs, m.capWaitMs);
      out.firstAt = Math.min(out.firstAt, m.firstAt);
      out.lastAt = Math.max(out.lastAt, m.lastAt);
      for (const x of m.latencies) out.latencies.push(x);
      if (m.firstVerdictAt > 0 && (out.firstVerdictAt === 0 || m.firstVerdictAt < out.firstVerdictAt)) out.firstVerdictAt = m.firstVerdictAt;
      out.lastVerdictAt = Math.max(out.lastVerdictAt, m.lastVerdictAt);
      out.cpuMs += m.cpuMs;
      out.rssKb += m.rssKb;
      mergeStats(out.byLabel, m.byLabel);
    }
    if (!Number.isFinite(out.firstAt)) out.firstAt = Date.now();
    return out;
  }

  /** showProgress - the status line once a second: open, rate of accepts + verdicts, errors. */
  showProgress(what: string): NodeJS.Timeout {
    let last = this.progress.reduce(addCounts, { ...ZERO });
    let lastAt = Date.now();
    return setInterval(() => {
      const c = this.progress.reduce(addCounts, { ...ZERO });
      const now = Date.now();
      const rate = Math.round(((c.accepted - last.accepted) * 1000) / Math.max(1, now - lastAt));
      last = c;
      lastAt = now;
      status(`${what}: open ${c.open} (held ${c.held}, pending ${c.pending}) rate ${rate} conn/s; screened ${c.screened} passed ${c.passed} cut ${c.cut}; errors ${c.failed + c.refused} (refused ${c.refused}, failed ${c.failed})`);
    }, 1000);
  }

  /** xfer - one transfer phase on worker i (bounded by cmd.deadline + per-message timeout). */
  xfer(i: number, cmd: XferCmd): Promise<Extract<WorkerMsg, { type: 'xfered' }> | null> {
    const p = this.next(i, 'xfered', Math.max(0, cmd.deadline - Date.now()) + cmd.timeoutMs + 10_000);
    this.workers[i]?.send(cmd);
    return p;
  }

  /** time - one timing phase on worker i (bounded by cmd.deadline + 10 s). */
  time(i: number, cmd: TimeCmd): Promise<Timed | null> {
    const p = this.next(i, 'timed', Math.max(0, cmd.deadline - Date.now()) + 10_000);
    this.workers[i]?.send(cmd);
    return p;
  }

  /** closeAll - every worker destroys its sockets; resolves when all said so (or after ms). */
  async closeAll(ms: number): Promise<{ cpuMs: number; rssKb: number; lost: number; counts: ZombieCounts; byLabel: Record<string, LabelStats> }> {
    const waits = this.workers.map((_, i) => this.next(i, 'closed', ms));
    for (const w of this.workers) w.send({ cmd: 'close' });
    const got = await Promise.all(waits);
    let cpuMs = 0;
    let rssKb = 0;
    let lost = 0;
    let counts = { ...ZERO };
    const byLabel: Record<string, LabelStats> = {};
    for (const m of got) {
      if (m === null) continue;
      cpuMs += m.cpuMs;
      rssKb += m.rssKb;
      lost += m.counts.lost;
      counts = addCounts(counts, m.counts);
      mergeStats(byLabel, m.byLabel);
    }
    return { cpuMs, rssKb, lost, counts, byLabel };
  }

  async stop(): Promise<void> {
    for (const w of this.workers) if (w.connected) w.send({ cmd: 'exit' });
    await Promise.all(this.workers.map((w) => stopChild(w, 5000)));
  }
}

/** What the server holds at one moment. */
export interface Measure {
  sample: ProcSample | null;
  fds: number;
  established: number;
}

/** measure - the server now: its process and its children (a primary's workers) summed, and the connections to target. */
export function measure(pid: number | null, target: HostPort): Measure {
  return {
    sample: pid === null ? null : sampleTree(pid),
    fds: pid === null ? -1 : [pid, ...childPids(pid)].reduce((n, p) => n + Math.max(0, countFds(p)), 0),
    established: countEstablished(target.host, target.port),
  };
}

/** Sampler - the server's CPU % and RSS once a second, for the timeline and the peak. */
export class Sampler {
  readonly points: Array<{ t_s: number; cpu_pct: number; rss_kb: number; fds: number }> = [];
  #timer: NodeJS.Timeout | null = null;
  #last: ProcSample | null = null;
  readonly #t0 = Date.now();

  /** intervalMs: idle samples every 250 ms, so that its 1 s ramp shows in the RSS chart. */
  constructor(readonly pid: number | null, readonly intervalMs = 1000) {}

  start(): void {
    if (this.pid === null) return;
    this.#last = sampleTree(this.pid);
    this.#timer = setInterval(() => {
      const s = sampleTree(this.pid as number);
      if (s === null || this.#last === null) return;
      this.points.push({ t_s: round((s.at - this.#t0) / 1000, 1), cpu_pct: round(cpuPct(this.#last, s), 1), rss_kb: s.rssKb, fds: countFds(this.pid as number) });
      this.#last = s;
    }, this.intervalMs);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  peakCpu(): number {
    return this.points.reduce((m, p) => Math.max(m, p.cpu_pct), 0);
  }

  peakRss(): number {
    return this.points.reduce((m, p) => Math.max(m, p.rss_kb), 0);
  }
}
