/*
 * test/helpers/screener.ts - run the real CLI (`node dist/src/cli.js run`) as a
 * child process and read its NDJSON log events from stdout.
 *
 * Exports: startScreener(config, args?, opts?), ScreenerProc, ScreenerEvent,
 *          ScreenerOptions, killAllScreeners(), repoRoot().
 * startScreener resolves once the STARTED event arrives (its `listen` field
 * holds the bound "host:port" strings, so port 0 in the config is fine) and
 * rejects on START FAILED, on an exit before STARTED or on a timeout; every
 * error message carries the last 20 events and the stderr text. Every child
 * is tracked: killAllScreeners() (use it in after()) and a process 'exit' hook
 * SIGKILL whatever is still running.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { connectClient, type RawClient } from './smtp-client.js';

export type ScreenerEvent = Record<string, unknown>;

export interface ScreenerOptions {
  /** ms to wait for STARTED (default 10000). */
  startTimeoutMs?: number;
  /** Path of the CLI script (default <repo>/dist/src/cli.js). */
  cli?: string;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /** Keep the temp config directory after stop(). */
  keepDir?: boolean;
}

export interface ScreenerProc {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  pid: number;
  /** "host:port" strings from the STARTED event. */
  listen: string[];
  /** The config file written for this run. */
  configFile: string;
  /** Every NDJSON event parsed from stdout so far, in order. */
  events: ScreenerEvent[];
  /** stdout lines that were not JSON objects. */
  stdoutNoise: string[];
  /** First event (at index >= fromIndex) for which pred is true; waits for it up to timeoutMs. */
  waitForEvent(pred: (e: ScreenerEvent) => boolean, timeoutMs?: number, fromIndex?: number): Promise<ScreenerEvent>;
  /** Events whose `event` field equals name. */
  eventsNamed(name: string): ScreenerEvent[];
  /** Send signal, wait for the exit (SIGKILL after killAfterMs, default 10000); resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
  /** Resolves with the exit code when the process exits. */
  exited: Promise<number | null>;
  /** All stderr text so far. */
  stderr(): string;
}

/** The repository root: the nearest ancestor of this file with package.json named smtpscreen. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    try {
      if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: unknown }).name === 'smtpscreen') return dir;
    } catch {
      /* keep going up */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repoRoot: no package.json named smtpscreen above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const running = new Set<ChildProcessByStdio<null, Readable, Readable>>();
/** Temp config directories not removed yet (also those of children that exited on their own). */
const tempDirs = new Set<string>();
let hooked = false;

/** SIGKILL every screener child still running and remove its temp config (synchronous; safe in after() and on exit). */
export function killAllScreeners(): void {
  for (const p of running) {
    if (p.exitCode === null && p.signalCode === null) {
      try {
        p.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  running.clear();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllScreeners);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSig = () => {
      killAllScreeners();
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, onSig);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSig);
  }
}

function lastEvents(events: ScreenerEvent[], n = 20): string {
  return events
    .slice(-n)
    .map((e) => JSON.stringify(e))
    .join('\n');
}

/**
 * The tests run as root: a screener started as root without `user` refuses to
 * run unless `allow_root: true` (server/privileges.ts). Added to a config that
 * sets neither (a config that does is left as written).
 */
export function withAllowRoot(yaml: string): string {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) return yaml;
  if (/^(allow_root|user)\s*:/m.test(yaml)) return yaml;
  return `${yaml.endsWith('\n') || yaml === '' ? yaml : yaml + '\n'}allow_root: true\n`;
}

export async function startScreener(
  config: string | object,
  args: string[] = [],
  opts: ScreenerOptions = {},
): Promise<ScreenerProc> {
  const root = repoRoot();
  const cli = opts.cli ?? path.join(root, 'dist', 'src', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: build first (npx tsc -p .)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-test-'));
  const configFile = path.join(dir, 'smtpscreen.yaml');
  fs.writeFileSync(configFile, withAllowRoot(typeof config === 'string' ? config : toYaml(config)));

  hook();
  const proc = spawn(process.execPath, [cli, 'run', '--config', configFile, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  running.add(proc);
  if (opts.keepDir !== true) tempDirs.add(dir);
  // A screener a test forgot to stop must not keep the test process alive (the
  // test file would never end): unref it; the 'exit' hook then SIGKILLs it.
  // Every wait in this helper holds a timer, so the loop stays up while a test waits.
  proc.unref();
  (proc.stdout as unknown as Socket).unref(); // stdio pipes are net.Sockets
  (proc.stderr as unknown as Socket).unref();

  const events: ScreenerEvent[] = [];
  const stdoutNoise: string[] = [];
  let stderrText = '';
  let partial = '';
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };

  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl).replace(/\r$/, '');
      partial = partial.slice(nl + 1);
      if (line.trim() === '') continue;
      try {
        const v: unknown = JSON.parse(line);
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) events.push(v as ScreenerEvent);
        else stdoutNoise.push(line);
      } catch {
        stdoutNoise.push(line);
      }
    }
    notify();
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s: string) => {
    stderrText += s;
  });

  let exitCode: number | null = null;
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) => {
    proc.on('close', (code) => {
      // 'close' comes after stdio has drained, so every event is parsed by now.
      hasExited = true;
      exitCode = code;
      running.delete(proc);
      notify();
      resolve(code);
    });
  });
  proc.on('error', (err) => {
    stderrText += `\n[spawn error] ${err.message}`;
  });

  const describe = () =>
    `exit code ${String(proc.exitCode)} signal ${String(proc.signalCode)}\n` +
    `--- last events ---\n${lastEvents(events)}\n` +
    (stdoutNoise.length > 0 ? `--- non-JSON stdout (last 10) ---\n${stdoutNoise.slice(-10).join('\n')}\n` : '') +
    `--- stderr ---\n${stderrText.slice(-4000)}`;

  const waitForEvent = (
    pred: (e: ScreenerEvent) => boolean,
    timeoutMs = 10_000,
    fromIndex = 0,
  ): Promise<ScreenerEvent> =>
    new Promise((resolve, reject) => {
      let i = fromIndex;
      const check = (): boolean => {
        for (; i < events.length; i++) {
          const e = events[i];
          if (e !== undefined && pred(e)) {
            done();
            resolve(e);
            return true;
          }
        }
        if (hasExited) {
          done();
          reject(new Error(`screener exited while waiting for an event; ${describe()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`waitForEvent timed out after ${timeoutMs} ms; ${describe()}`));
      }, timeoutMs);
      const listener = () => {
        check();
      };
      const done = () => {
        clearTimeout(timer);
        listeners.delete(listener);
      };
      if (!check()) listeners.add(listener);
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 10_000): Promise<number | null> => {
    if (!hasExited) {
      proc.kill(signal);
      const t = setTimeout(() => {
        if (!hasExited) proc.kill('SIGKILL');
      }, killAfterMs);
      await exited;
      clearTimeout(t);
    }
    if (opts.keepDir !== true) {
      fs.rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    }
    return exitCode;
  };

  let started: ScreenerEvent;
  try {
    started = await waitForEvent(
      (e) => e['event'] === 'STARTED' || e['event'] === 'START FAILED',
      opts.startTimeoutMs ?? 10_000,
    );
  } catch (err) {
    await stop('SIGKILL', 1000);
    throw new Error(`screener did not start: ${(err as Error).message}`);
  }
  if (started['event'] !== 'STARTED') {
    const msg = `screener START FAILED: ${JSON.stringify(started)}\n${describe()}`;
    await stop('SIGKILL', 1000);
    throw new Error(msg);
  }
  const listen = Array.isArray(started['listen']) ? started['listen'].map((x) => String(x)) : [];
  if (proc.pid === undefined) throw new Error(`screener has no pid; ${describe()}`);

  return {
    proc,
    pid: proc.pid,
    listen,
    configFile,
    events,
    stdoutNoise,
    waitForEvent,
    eventsNamed: (name: string) => events.filter((e) => e['event'] === name),
    stop,
    exited,
    stderr: () => stderrText,
  };
}

/** The port of listener `i` (from STARTED). */
export function portOf(s: ScreenerProc, i = 0): number {
  return Number(s.listen[i]?.split(':').pop());
}

/** Events named `name` for one client address. */
export function byClient(s: ScreenerProc, name: string, client: string): ScreenerEvent[] {
  return s.eventsNamed(name).filter((e) => e['client'] === client);
}

/** Connect from `addr` and read up to the end of the greeting (hostname screen.test, the tests' configs). */
export async function greeted(s: ScreenerProc, addr: string): Promise<RawClient> {
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.readUntil(/^220 screen\.test ESMTP\r\n/m, 5000);
  return c;
}

/** Start a screener with `config`, run `fn`, always stop it. */
export async function withScreener(config: string | object, fn: (s: ScreenerProc) => Promise<void>): Promise<void> {
  const s = await startScreener(config);
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}
