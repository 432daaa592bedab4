/*
 * bench/load/server.ts - the server side of a load run: the screener as a
 * child process, a standalone sink process, and how to stop them.
 *
 * Exports: Target, ScreenerSpec, SinkProcess, CLI, startScreener(spec),
 *   startSinkProcess(self, exitBy), reservePort(), waitListening(...), stopChild(child, ms),
 *   track(child), killAll(), logStats(file), sleep(ms).
 * Every child started here is tracked so that killAll() can end exactly
 * those (by their PIDs) when the run is interrupted.
 * BENCH_METRICS=1 in the environment turns the screener's admin listener on
 * (admin.listen on a loopback port, Target.admin): metrics on vs off.
 * The screener runs as `node dist/src/cli.js run --config FILE` with a config
 * written to a temp directory. Its log goes to a file there, not to a pipe:
 * a pipe the generator is slow to drain would block the screener's
 * synchronous log writes and show up as screener latency.
 * XXX The listen port is reserved here (bind port 0, read it, close) and then
 * given to the screener: STARTED, which names the bound port, is logged at
 * info and the load runs at warn. The window between the two is a race with
 * any other process binding 127.0.0.1 ports; start-up fails loudly if lost.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostPort } from './protocol.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/bench/load -> dist/src/cli.js */
export const CLI = join(here, '..', '..', 'src', 'cli.js');

export interface Target {
  readonly listen: HostPort;
  /** PID to measure, or null (an external target without --target-pid). */
  readonly pid: number | null;
  readonly backend: string;
  /** The screener's log file (null for an external target). */
  readonly logFile: string | null;
  /** Date.now() when the screener was spawned (its --trace-gc times count from about then). */
  readonly spawnedAt: number;
  /** "host:port" of its admin listener (BENCH_METRICS=1), or null. */
  readonly admin?: string | null;
  stop(): Promise<void>;
}

export interface ScreenerSpec {
  greetWaitMs: number;
  action: 'enforce' | 'drop' | 'ignore';
  maxConnections: number;
  /** Dummy engine command time limit: long enough to hold zombies for the whole run. */
  commandTimeMs: number;
  logLevel: string;
  /** null: the built-in sink ("sink:0"). */
  backend: HostPort | null;
  nodeArgs: string[];
  /** Add --trace-gc: V8 prints heap used after each GC to the log file (see gcEvents). */
  traceGc: boolean;
  keepFiles: boolean;
  /** Config sections merged over the defaults above, key by key (dnsbl, resolver, backend.handoff, ...). */
  extra?: Record<string, Record<string, unknown>>;
  /** workers: N (> 1 needs a Redis URL in extra.cache); the start waits for STARTED, after every worker is ready. */
  workers?: number;
  /** workers_accept with workers > 1 (the configuration's default when absent). */
  workersAccept?: 'shared' | 'primary';
  /** The cli.js to run (default: this build's); another build's, to compare two builds in one sitting. */
  cli?: string;
}

export function reservePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** isListening - a LISTEN socket on 127.0.0.1:port (from /proc/net/tcp). */
function isListening(port: number): boolean {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const text = readFileSync('/proc/net/tcp', 'latin1');
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === want && f[3] === '0A') return true;
  }
  return false;
}

export async function waitListening(port: number, child: ChildProcess, ms: number, what: string, errFile?: string): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const err = errFile !== undefined ? tail(errFile) : '';
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}${err !== '' ? `:\n${err}` : ''}`);
    }
    if (isListening(port)) return;
    await sleep(50);
  }
  throw new Error(`${what} did not listen on ${port} within ${ms} ms`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-10).join('\n').trim();
  } catch {
    return '';
  }
}

const children = new Set<ChildProcess>();

/** track - remember a child until it exits, for killAll(). */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** killAll - SIGKILL every child this process started and that still runs. */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** stopChild - SIGTERM, then SIGKILL after graceMs; only this child, by its PID. */
export function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startScreener(spec: ScreenerSpec): Promise<Target> {
  const dir = mkdtempSync(join(os.tmpdir(), 'smtpscreen-load-'));
  const port = await reservePort();
  const config = {
    hostname: 'screen.bench.invalid',
    // Pinned to the normal personality: the scenarios hold up to 97% of max_connections, past the stress
    // mark, and measure the configured waits and limits (under stress, idle zombies would be handed over after 2s).
    listen: [{ address: `127.0.0.1:${port}`, personality: 'normal' }],
    limits: { max_connections: spec.maxConnections, max_per_client: 0, backlog: 4096 },
    pregreet: { enable: true, wait: `${spec.greetWaitMs}ms`, action: spec.action },
    dummy: { command_time_limit: `${spec.commandTimeMs}ms` },
    backend: {
      address: spec.backend === null ? 'sink:0' : `${spec.backend.host}:${spec.backend.port}`,
      handoff: 'xclient',
    },
    drain_timeout: '1s',
    log: { format: 'json', level: spec.logLevel },
    // The benches run as root here; without user (or this) the screener refuses to run as root.
    allow_root: true,
    ...(spec.workers !== undefined ? { workers: spec.workers } : {}),
    ...(spec.workersAccept !== undefined ? { workers_accept: spec.workersAccept } : {}),
  };
  const merged = config as Record<string, unknown>;
  const adminPort = process.env['BENCH_METRICS'] === '1' || (spec.workers ?? 1) > 1 ? await reservePort() : null;
  if (adminPort !== null) merged['admin'] = { listen: [`127.0.0.1:${adminPort}`] };
  for (const [k, v] of Object.entries(spec.extra ?? {})) {
    const cur = merged[k];
    merged[k] = typeof cur === 'object' && cur !== null ? { ...(cur as Record<string, unknown>), ...v } : v;
  }
  const cfgFile = join(dir, 'smtpscreen.yaml');
  writeFileSync(cfgFile, `# written by bench/load/zombie.ts (JSON is YAML)\n${JSON.stringify(config, null, 2)}\n`);
  const logFile = join(dir, 'screener.log');
  const errFile = join(dir, 'screener.err');
  const out = openSync(logFile, 'w');
  const err = openSync(errFile, 'w');
  const spawnedAt = Date.now();
  const nodeArgs = spec.traceGc ? ['--trace-gc', ...spec.nodeArgs] : spec.nodeArgs;
  const child = track(spawn(process.execPath, [...nodeArgs, spec.cli ?? CLI, 'run', '--config', cfgFile], {
    cwd: dir,
    stdio: ['ignore', out, err],
  }));
  closeSync(out);
  closeSync(err);
  try {
    await waitListening(port, child, 15_000, 'screener', errFile);
    // With workers the primary listens first and refuses until every worker is ready: its /healthz says when they are.
    for (const until = Date.now() + 30_000; (spec.workers ?? 1) > 1;) {
      const ok = await fetch(`http://127.0.0.1:${adminPort ?? 0}/healthz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (Date.now() > until) throw new Error(`screener: its workers were not all up within 30 s (${logFile})`);
      await sleep(100);
    }
  } catch (e) {
    await stopChild(child, 2000);
    throw e;
  }
  return {
    listen: { host: '127.0.0.1', port },
    pid: child.pid ?? null,
    backend: config.backend.address,
    logFile,
    spawnedAt,
    admin: adminPort === null ? null : `127.0.0.1:${adminPort}`,
    stop: async () => {
      await stopChild(child, 15_000);
      if (!spec.keepFiles) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** logStats - lines and bytes of a log file (0 when it is gone). */
export function logStats(file: string | null): { lines: number; bytes: number } {
  if (file === null) return { lines: 0, bytes: 0 };
  try {
    const bytes = statSync(file).size;
    let lines = 0;
    const text = readFileSync(file);
    for (let i = text.indexOf(10); i >= 0; i = text.indexOf(10, i + 1)) lines++;
    return { lines, bytes };
  } catch {
    return { lines: 0, bytes: 0 };
  }
}

export interface GcEvent {
  /** Date.now() scale (approximate: V8 counts from isolate start, a few ms after the spawn). */
  at: number;
  full: boolean;
  /** Heap used after the collection, MB. */
  afterMb: number;
  /** Heap committed after the collection, MB. */
  committedMb: number;
}

// "[pid:0x...]   1561 ms: Mark-Compact 83.8 (107.7) -> 51.4 (106.0) MB, ..."
const GC_LINE = /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact|Mark-Compact \(reduce\))[^\d(]*[\d.]+ \([\d.]+\) -> ([\d.]+) \(([\d.]+)\) MB/;

/** gcEvents - the --trace-gc lines of the screener's log, in order. */
export function gcEvents(t: Target): GcEvent[] {
  if (t.logFile === null) return [];
  let text: string;
  try {
    text = readFileSync(t.logFile, 'latin1');
  } catch {
    return [];
  }
  const out: GcEvent[] = [];
  for (const line of text.split('\n')) {
    if (line[0] !== '[') continue;
    const m = GC_LINE.exec(line);
    if (m === null) continue;
    out.push({ at: t.spawnedAt + Number(m[1]), full: (m[2] as string).startsWith('Mark-'), afterMb: Number(m[3]), committedMb: Number(m[4]) });
  }
  return out;
}

export interface SinkProcess {
  readonly listen: HostPort;
  readonly pid: number | null;
  stop(): Promise<void>;
}

/** startSinkProcess - the built-in sink (src/server/sink.ts) alone in a child process. */
export function startSinkProcess(self: string, exitBy: number): Promise<SinkProcess> {
  const child = track(fork(self, ['--role=sink', `--exit-by=${exitBy}`], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('sink process did not start within 10 s'));
    }, 10_000);
    child.once('exit', (code) => reject(new Error(`sink process exited (${code})`)));
    child.once('message', (m: { type: string; port: number }) => {
      clearTimeout(t);
      resolve({ listen: { host: '127.0.0.1', port: m.port }, pid: child.pid ?? null, stop: () => stopChild(child, 5000) });
    });
  });
}
