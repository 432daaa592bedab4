#!/usr/bin/env node
/*
 * cli.ts - the `smtpscreen` command: run | check-config | explain | probe | cache | demo | stats | help | version.
 *
 * Exports: main().
 * Exit codes: 0 ok; 1 bad configuration or usage (the message names the key
 * or flag and the value); 2 start-up failure (a port in use, an unreadable
 * access list, root without `user` or `allow_root`, a user that cannot be
 * switched to: server/privileges.ts, called once the listeners are bound).
 * check-config and run both run cli/preflight.ts (the files the
 * configuration names, a backend that was never named): check-config exits 1,
 * run logs START FAILED and exits 2. SIGTERM/SIGINT: stop accepting, drain, save the snapshot,
 * exit 0; a second one during the drain cuts the open sessions now, and the
 * snapshot is still saved (the default action, death without it, never runs).
 * SIGHUP reloads: the configuration file (with the same command-line flags)
 * and the access list are read again and new connections get them
 * (server/screener.ts reload(), RELOAD); a bad file keeps the running
 * configuration. A SIGHUP during start-up reloads once started; one while
 * stopping is logged (SIGNAL) and ignored. A stop signal during start-up
 * stops the screener once it has started.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, helpText } from './cli/args.js';
import { applyOverrides, formatConfig, loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { createLogger, flushLog } from './log/logger.js';
import { openLogOutput } from './log/output.js';
import { installLogReopen } from './log/reopen-signal.js';
import { EV } from './log/events.js';
import { Emitter } from './log/emit.js';
import { startScreener, type Screener } from './server/screener.js';
import { dropPrivileges, resolveUser, type PrivilegeResult } from './server/privileges.js';
import { preflight } from './cli/preflight.js';
import { ScreenError } from './util/errors.js';
import cluster from 'node:cluster';
import { WORKER_ENV, workerCount } from './server/cluster-ipc.js';

function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '..', '..', 'package.json'), join(here, '..', 'package.json')]) {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    } catch {
      /* try the next layout */
    }
  }
  return 'unknown';
}

/** At exit, how long lines still queued for a slow log destination may take; then they are lost (never a hang). */
const LOG_FLUSH_MS = 2000;

type Overrides = Parameters<typeof applyOverrides>[1];

/** The configuration from the file and the flags, or null after printing the error (exit 1). */
function configOrNull(file: string | undefined, overrides: Overrides, onError?: (err: ScreenError) => void): Config | null {
  try {
    return applyOverrides(loadConfig(file), overrides);
  } catch (err) {
    if (err instanceof ScreenError) {
      onError?.(err);
      process.stderr.write(`smtpscreen: ${err.message}\n`);
      return null;
    }
    throw err;
  }
}

export async function main(argv: string[]): Promise<number> {
  // `stats` reads logs, not a configuration: its own flags (stats/command.ts).
  // The other commands' modules (stats, demo, probe, cache, explain) are imported when their
  // command runs: a `run` process does not pay for them in start-up time and memory.
  if (argv[0] === 'stats') return (await import('./stats/command.js')).statsMain(argv.slice(1));
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof ScreenError) {
      process.stderr.write(`smtpscreen: ${err.message}\n${'\n'}Try 'smtpscreen --help'.\n`);
      return 1;
    }
    throw err;
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(helpText());
      return 0;
    case 'version':
      process.stdout.write(`smtpscreen ${version()}\n`);
      return 0;
    case 'check-config': {
      const cfg = configOrNull(args.config, args.overrides);
      if (cfg === null) return 1;
      const issues = preflight(cfg, args.config, args.overrides);
      if (issues.length > 0) {
        process.stderr.write(`smtpscreen: ${problems(args.config, issues.map((i) => i.message))}\n`);
        return 1;
      }
      if (cfg.user !== null) {
        try {
          resolveUser(cfg.user, cfg.group);
        } catch (err) {
          if (!(err instanceof ScreenError)) throw err;
          process.stderr.write(`smtpscreen: ${err.message}\n`);
          return 1;
        }
      }
      process.stdout.write(formatConfig(cfg));
      return 0;
    }
    case 'demo': {
      const cfg = configOrNull(args.config, args.overrides);
      if (cfg === null) return 1;
      const { runDemo } = await import('./demo.js');
      await runDemo(cfg, { zombies: 300, hangups: 50, clients: 100, greetWaitMs: 1000, out: (l) => process.stdout.write(l + '\n') });
      return 0;
    }
    case 'run':
      return run(args.config, args.overrides);
    case 'probe':
      return runProbe(args.extra);
    case 'cache': {
      const cfg = args.config === undefined ? null : configOrNull(args.config, args.overrides);
      if (args.config !== undefined && cfg === null) return 1;
      const e = args.extra;
      const opt = (k: string): Record<string, string> => (typeof e[k] === 'string' ? { [k]: e[k] } : {});
      const { runCache } = await import('./cli/cache.js');
      return runCache(cfg, { sub: String(e['sub']), ...opt('arg'), ...opt('ttl'), ...opt('snapshot'), ...opt('socket') },
        (l) => process.stdout.write(l + '\n'), (l) => process.stderr.write(l + '\n'));
    }
    case 'explain': {
      const cfg = configOrNull(args.config, args.overrides);
      if (cfg === null) return 1;
      const { explain } = await import('./explain.js');
      try {
        return await explain(cfg, String(args.extra['address']), (l) => process.stdout.write(l + '\n'));
      } catch (err) {
        // A bad access list: one line naming the file and line, as check-config says it.
        if (!(err instanceof ScreenError)) throw err;
        process.stderr.write(`smtpscreen: ${err.message}\n`);
        return 1;
      }
    }
  }
}

/** `smtpscreen probe`: 0 when the dialogue ran (whatever the screener decided), 1 on a usage error, 2 when the screener could not be reached. */
async function runProbe(extra: Record<string, string | boolean>): Promise<number> {
  const { formatProbe, parseProbeTarget, probe } = await import('./probe.js');
  const str = (k: string, d: string): string => (typeof extra[k] === 'string' ? (extra[k] as string) : d);
  const target = parseProbeTarget(str('to', ''));
  const as = str('as', '');
  const proxy = str('proxy', 'v1');
  const bad = typeof target === 'string' ? target : net.isIP(as) === 0 ? `--as ${as}: want an IPv4 or IPv6 address` : proxy !== 'v1' && proxy !== 'v2' ? `--proxy ${proxy}: want v1 or v2` : null;
  if (bad !== null || typeof target === 'string') {
    process.stderr.write(`smtpscreen: ${bad ?? ''}\n`);
    return 1;
  }
  try {
    const r = await probe({
      as, host: target.host, port: target.port, proxy: proxy as 'v1' | 'v2', helo: str('helo', 'probe.invalid'), mail: str('mail', 'probe@probe.invalid'),
      rcpt: str('rcpt', 'postmaster'), pregreet: extra['pregreet'] === true, pipeline: extra['pipeline'] === true,
      deliver: extra['deliver'] === true, timeoutMs: 10_000,
    });
    process.stdout.write(`${formatProbe(r).join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`smtpscreen: probe ${target.host}:${target.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
    return 2;
  }
}

/** One problem on one line; several as a count and one line each, prefixed by the file when there is one. */
function problems(file: string | undefined, messages: readonly string[]): string {
  const where = file !== undefined ? `${file}: ` : '';
  return messages.length === 1 ? `${where}${messages[0] ?? ''}` : `${where}${messages.length} configuration errors:\n  ${messages.join('\n  ')}`;
}

async function run(file: string | undefined, overrides: Overrides): Promise<number> {
  const cfg = configOrNull(file, overrides, (err) => {
    // The log is the monitoring interface: a refused configuration shows there too (JSON: the file's log settings are unknown).
    const logger = createLogger({ format: 'json', level: 'info' });
    new Emitter(logger).emit(EV.START_FAILED, { code: err.code, message: err.message });
    logger.flush();
  });
  if (cfg === null) return 1;
  // workers > 1: this process is the primary (server/primary.ts), or a worker forked by it with its index in the environment.
  const workers = workerCount(cfg.workers);
  const worker = workers > 1 && cluster.isWorker ? Number(process.env[WORKER_ENV]) : undefined;
  let logger;
  try {
    logger = createLogger({ format: cfg.log.format, level: cfg.log.level, output: openLogOutput(cfg.log),
      ...(cfg.log.destination === 'syslog' ? { program: cfg.log.syslog.tag } : {}), ...(worker !== undefined ? { worker } : {}) });
  } catch (err) {
    if (!(err instanceof ScreenError)) throw err;
    process.stderr.write(`smtpscreen: ${err.message}\n`);
    return 1;
  }
  installLogReopen(logger, cfg.log.file);
  const issues = preflight(cfg, file, overrides);
  if (issues.length > 0) {
    const message = problems(file, issues.map((i) => i.message));
    new Emitter(logger).emit(EV.START_FAILED, { code: 'SCR_ERR_CONFIG', message });
    await flushLog(logger, LOG_FLUSH_MS);
    process.stderr.write(`smtpscreen: cannot start: ${message}\n`);
    return 2;
  }
  const readAgain = (): Config => applyOverrides(loadConfig(file), overrides);
  if (workers > 1 && cluster.isPrimary) {
    try {
      // Imported only here: the primary's admin pulls in prom-client (~4 MB of RSS in every process otherwise).
      const { runPrimary } = await import('./server/primary.js');
      return await runPrimary(cfg, { logger, read: readAgain, afterBind: () => privilegeFields(dropPrivileges(cfg), cfg) });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      new Emitter(logger).emit(EV.START_FAILED, { code: err instanceof ScreenError ? err.code : e.code, message: e.message });
      await flushLog(logger, LOG_FLUSH_MS);
      process.stderr.write(`smtpscreen: cannot start: ${e.message}\n`);
      return 2;
    } finally {
      await flushLog(logger, LOG_FLUSH_MS);
    }
  }
  // Every handler is in place before start-up: a signal that came between STARTED and its handler would get the default action.
  let scr: Screener | null = null;
  const signals = new Emitter(logger);
  let stopping = false;
  let onFirstStop: (signal: NodeJS.Signals) => void = () => undefined;
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => (onFirstStop = resolve));
  const stop = (signal: NodeJS.Signals): void => {
    if (!stopping) {
      stopping = true;
      onFirstStop(signal);
      return;
    }
    signals.emit(EV.SIGNAL, { signal, action: 'cut', reason: 'second stop signal during the drain: open sessions are cut now' });
    void scr?.close(0, signal);
  };
  // Kept until the exit: a later signal must find a handler, not the default action.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Reload: the file as it is now, with the same flags. Its default action would kill the screener.
  let hupBeforeStart = false;
  process.on('SIGHUP', () => {
    if (stopping) {
      signals.emit(EV.SIGNAL, { signal: 'SIGHUP', action: 'ignored', reason: 'stopping: no reload' });
      return;
    }
    if (scr === null) hupBeforeStart = true;
    else void scr.reload(readAgain);
  });
  try {
    // A worker of workers_accept: primary was forked by the primary after its privilege drop: nothing left to drop.
    // One of shared was forked before it (cluster binds its listeners in the primary when it asks): it drops as one process does.
    const drop = { afterBind: () => privilegeFields(dropPrivileges(cfg), cfg) };
    scr = await startScreener(cfg, worker === undefined ? { logger, ...drop } : cfg.workers_accept === 'shared' ? { logger, worker, ...drop } : { logger, worker });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = err instanceof ScreenError ? err.code : e.code;
    new Emitter(logger).emit(EV.START_FAILED, { code, message: e.message });
    await flushLog(logger, LOG_FLUSH_MS);
    process.stderr.write(`smtpscreen: cannot start: ${e.message}\n`);
    return 2;
  }
  // The last guard: an error that no session handler contained (session/guard.ts) is logged and counted; the other sessions go on.
  const emitter = scr.ctx.emitter;
  process.on('uncaughtException', (err: Error) => {
    emitter.emit(EV.INTERNAL_ERROR, { where: 'process', error: err.message, stack: err.stack });
  });
  if (hupBeforeStart && !stopping) void scr.reload(readAgain);
  // A stop signal during start-up is served now that the screener runs.
  await scr.close(undefined, await stopSignal);
  await flushLog(logger, LOG_FLUSH_MS);
  return 0;
}

/** STARTED's fields for the privileges: the user and ids the screener runs as from now on. */
function privilegeFields(p: PrivilegeResult, cfg: Config): Record<string, unknown> {
  return { user: p.action === 'dropped' ? cfg.user : p.action === 'root' ? 'root' : cfg.user, uid: p.uid, gid: p.gid };
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1]);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      if (code === 0 || code === 1) setImmediate(() => process.exit(code));
    },
    (err: unknown) => {
      // A ScreenError names what is wrong: its message, not a stack trace, is for the administrator.
      process.stderr.write(`smtpscreen: ${err instanceof ScreenError ? err.message : (err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
