#!/usr/bin/env node
/*
 * cli.ts - the `smtpscreen` command: run | check-config | demo | help | version.
 *
 * Exports: main().
 * Exit codes: 0 ok; 1 bad configuration or usage (the message names the key
 * or flag and the value); 2 start-up failure (a port in use, an unreadable
 * access list). check-config and run both run cli/preflight.ts (the files the
 * configuration names, a backend that was never named): check-config exits 1,
 * run logs START FAILED and exits 2. SIGTERM/SIGINT: stop accepting, drain, save the snapshot,
 * exit 0; a second one during the drain cuts the open sessions now, and the
 * snapshot is still saved (the default action, death without it, never runs).
 * SIGHUP is logged (SIGNAL) and ignored: reload does not exist yet, and its
 * default action would kill the screener. A stop signal during start-up
 * stops the screener once it has started.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, helpText } from './cli/args.js';
import { applyOverrides, formatConfig, loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { createLogger } from './log/logger.js';
import { EV } from './log/events.js';
import { Emitter } from './log/emit.js';
import { startScreener, type Screener } from './server/screener.js';
import { runDemo } from './demo.js';
import { preflight } from './cli/preflight.js';
import { explain } from './explain.js';
import { ScreenError } from './util/errors.js';

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
      process.stdout.write(formatConfig(cfg));
      return 0;
    }
    case 'demo': {
      const cfg = configOrNull(args.config, args.overrides);
      if (cfg === null) return 1;
      await runDemo(cfg, { zombies: 300, hangups: 50, clients: 100, greetWaitMs: 1000, out: (l) => process.stdout.write(l + '\n') });
      return 0;
    }
    case 'run':
      return run(args.config, args.overrides);
    case 'explain': {
      const cfg = configOrNull(args.config, args.overrides);
      if (cfg === null) return 1;
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
  const logger = createLogger({ format: cfg.log.format, level: cfg.log.level });
  const issues = preflight(cfg, file, overrides);
  if (issues.length > 0) {
    const message = problems(file, issues.map((i) => i.message));
    new Emitter(logger).emit(EV.START_FAILED, { code: 'SCR_ERR_CONFIG', message });
    logger.flush();
    process.stderr.write(`smtpscreen: cannot start: ${message}\n`);
    return 2;
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
  process.on('SIGHUP', () => {
    signals.emit(EV.SIGNAL, { signal: 'SIGHUP', action: 'ignored', reason: 'configuration reload is not supported yet; restart to apply changes' });
  });
  try {
    scr = await startScreener(cfg, { logger });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = err instanceof ScreenError ? err.code : e.code;
    new Emitter(logger).emit(EV.START_FAILED, { code, message: e.message });
    logger.flush();
    process.stderr.write(`smtpscreen: cannot start: ${e.message}\n`);
    return 2;
  }
  // The last guard: an error that no session handler contained (session/guard.ts) is logged and counted; the other sessions go on.
  const emitter = scr.ctx.emitter;
  process.on('uncaughtException', (err: Error) => {
    emitter.emit(EV.INTERNAL_ERROR, { where: 'process', error: err.message, stack: err.stack });
  });
  // A stop signal during start-up is served now that the screener runs.
  await scr.close(undefined, await stopSignal);
  logger.flush();
  return 0;
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
