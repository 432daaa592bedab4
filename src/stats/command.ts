/*
 * stats/command.ts - `smtpscreen stats`: logs in, a summary out.
 *
 * Exports: statsMain(argv, io?) -> exit code, parseStatsArgs(argv), statsHelp(), StatsArgs.
 *   smtpscreen stats [FILE...|-] [--format auto|json|postscreen] [--json] [--html FILE]
 *                    [--top N] [--follow [--interval DURATION]]
 * No FILE: stdin. Each line's format is detected (a line starting with '{' is
 * JSON) unless --format says. --follow reads one FILE (or stdin) to its end
 * and on, printing the summary every --interval (default 1m; with --json one
 * JSON document per line) and once more at SIGINT/SIGTERM, then exits 0.
 * Exit codes: 0 ok, 1 usage (the message names the flag and the value),
 * 2 an input or output file that cannot be read or written (named).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { parseDuration } from '../util/duration.js';
import { ScreenError } from '../util/errors.js';
import { Aggregator } from './aggregate.js';
import { follow, readSource } from './input.js';
import { parseJsonLine } from './parse-json.js';
import { PostscreenParser } from './parse-postscreen.js';
import { newRec } from './record.js';
import { renderHtml } from './render-html.js';
import { renderText } from './render-text.js';

export interface StatsArgs {
  files: string[];
  format: 'auto' | 'json' | 'postscreen';
  json: boolean;
  html: string | null;
  top: number;
  follow: boolean;
  intervalMs: number;
  help: boolean;
}

export function statsHelp(): string {
  return [
    'usage: smtpscreen stats [FILE...|-] [flags]      summarise smtpscreen (JSON) or postscreen logs',
    '',
    '  FILE                    a log file, gzip-compressed or not; - or none: stdin',
    '  --format auto|json|postscreen   how lines are read (auto: per line; default)',
    '  --json                  print the summary as JSON instead of text',
    '  --html FILE             also write a self-contained HTML report to FILE',
    '  --top N                 rows in the top-N tables (default 20)',
    '  --follow                read one FILE to its end and on (across rotation), printing every --interval and at SIGINT/SIGTERM',
    '  --interval DURATION     with --follow: how often to print (default 1m)',
    '',
  ].join('\n');
}

function usage(msg: string, details: Record<string, unknown> = {}): ScreenError {
  return new ScreenError('SCR_ERR_USAGE', `stats: ${msg} (see smtpscreen stats --help)`, details);
}

export function parseStatsArgs(argv: readonly string[]): StatsArgs {
  const a: StatsArgs = { files: [], format: 'auto', json: false, html: null, top: 20, follow: false, intervalMs: 60_000, help: false };
  let interval: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i] as string;
    if (tok === '-' || !tok.startsWith('-')) { a.files.push(tok); continue; }
    if (tok === '-h' || tok === '--help') { a.help = true; continue; }
    const eq = tok.indexOf('=');
    const name = eq < 0 ? tok : tok.slice(0, eq);
    const value = (): string => {
      const v = eq >= 0 ? tok.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw usage(`${name} needs a value`, { flag: name });
      return v;
    };
    switch (name) {
      case '--json': a.json = true; break;
      case '--follow': a.follow = true; break;
      case '--html': a.html = value(); break;
      case '--interval': interval = value(); break;
      case '--format': {
        const v = value();
        if (v !== 'auto' && v !== 'json' && v !== 'postscreen') throw usage(`--format ${JSON.stringify(v)}: want auto, json or postscreen`, { flag: name, value: v });
        a.format = v;
        break;
      }
      case '--top': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 10_000) throw usage(`--top ${JSON.stringify(v)}: want a whole number from 1 to 10000`, { flag: name, value: v });
        a.top = Number(v);
        break;
      }
      default: throw usage(`unknown flag "${name}"`, { flag: name });
    }
  }
  if (interval !== null) {
    if (!a.follow) throw usage('--interval needs --follow', { flag: '--interval' });
    try { a.intervalMs = parseDuration(interval); } catch (e) { throw usage(`--interval: ${(e as Error).message}`, { flag: '--interval', value: interval }); }
    if (a.intervalMs < 10) throw usage(`--interval ${JSON.stringify(interval)}: want at least 10ms`, { flag: '--interval', value: interval });
  }
  if (a.follow && a.files.length > 1) throw usage('--follow reads one FILE', { flag: '--follow' });
  if (a.files.length === 0) a.files.push('-');
  return a;
}

export interface StatsIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Resolves when --follow should stop (default: SIGINT or SIGTERM). */
  stopSignal?: Promise<unknown>;
}

/** The per-line entry: detect or force the format, parse, count. */
function makeCounter(agg: Aggregator, format: StatsArgs['format']): (line: string) => void {
  const rec = newRec();
  const ps = new PostscreenParser();
  return (line: string): void => {
    let json = format === 'json';
    if (format === 'auto') {
      let k = 0;
      while (k < line.length && (line.charCodeAt(k) === 32 || line.charCodeAt(k) === 9)) k++;
      if (k === line.length) return; // blank lines are not counted
      json = line.charCodeAt(k) === 123; /* { */
    } else if (line.trim() === '') return;
    let kind;
    try {
      kind = json ? parseJsonLine(line, rec) : ps.parse(line, rec);
    } catch {
      kind = 'malformed' as const; // parsers do not throw; should one, the line is counted, not the run lost
    }
    agg.line(kind, rec, line, json ? 'json' : 'postscreen');
  };
}

function emit(a: StatsArgs, agg: Aggregator, io: StatsIo, oneLine: boolean): void {
  const s = agg.summary(a.top);
  if (a.html !== null) writeFileSync(a.html, renderHtml(s, { generated: new Date().toISOString() }));
  io.out(a.json ? `${JSON.stringify(s, null, oneLine ? undefined : 2)}\n` : renderText(s));
}

export async function statsMain(argv: readonly string[], io: StatsIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  let a: StatsArgs;
  try {
    a = parseStatsArgs(argv);
  } catch (e) {
    if (!(e instanceof ScreenError)) throw e;
    io.err(`smtpscreen: ${e.message}\n`);
    return 1;
  }
  if (a.help) { io.out(statsHelp()); return 0; }
  const agg = new Aggregator();
  const count = makeCounter(agg, a.format);
  try {
    if (a.follow && a.files[0] !== '-') {
      const path = a.files[0] as string;
      const stop = io.stopSignal ?? new Promise((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
      if (!existsSync(path)) io.err(`smtpscreen: stats: ${path} does not exist (yet): waiting for it\n`);
      let failed: Error | null = null;
      const f = follow(path, count, { pollMs: Math.min(250, a.intervalMs), onError: (e) => { failed ??= e; } });
      const every = setInterval(() => emit(a, agg, io, true), a.intervalMs);
      await stop;
      clearInterval(every);
      await f.stop();
      emit(a, agg, io, true);
      if (failed !== null) { io.err(`smtpscreen: stats: ${path}: ${(failed as Error).message}\n`); return 2; }
      return 0;
    }
    if (a.follow) { // stdin: read on until it ends or a stop signal comes
      const stop = io.stopSignal ?? new Promise((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
      const every = setInterval(() => emit(a, agg, io, true), a.intervalMs);
      await Promise.race([readSource('-', count), stop]);
      clearInterval(every);
      emit(a, agg, io, true);
      process.stdin.destroy();
      return 0;
    }
    for (const file of a.files) await readSource(file, count);
    emit(a, agg, io, false);
    return 0;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    io.err(`smtpscreen: stats: ${err.path ?? ''}${err.path !== undefined ? ': ' : ''}${err.message}\n`);
    return 2;
  }
}
