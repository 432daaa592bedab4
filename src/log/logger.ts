/*
 * log/logger.ts - the pino root logger, in one of two output formats.
 *
 * Exports: createLogger(opts), postscreenStream(out, opts?), Logger, LoggerOptions.
 * json: pino's NDJSON, one line per event: {"level":30,"time":<epoch ms>,"event":"CONNECT",...}
 *   with no pid/hostname bindings (they are the same on every line).
 * postscreen: the same records rendered in-process (no worker thread) as
 *   "<ISO time> smtpscreen[<pid>]: CONNECT from [192.0.2.1]:5678 to [127.0.0.1]:2525",
 *   with "warning: " / "error: " / "fatal: " before lines at those levels, as Postfix does.
 *   XXX This format parses each JSON line back: it costs a JSON.parse per line and is
 *   meant for compatibility with existing log tools, not for the hot path at 100k clients.
 * Writes to an fd are synchronous (sonic-boom, sync), so nothing is lost on a crash.
 * Sessions take a child logger with their bindings set once (pino's child()).
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { ScreenError } from '../util/errors.js';
import { formatPostscreen } from './postscreen-format.js';

export type Logger = PinoLogger;

export interface LoggerOptions {
  format: 'json' | 'postscreen';
  level: string;
  /** A stream, or a file descriptor (default 1, stdout). */
  destination?: NodeJS.WritableStream | number;
  /** Program name in postscreen lines (default "smtpscreen"). */
  program?: string;
}

const LEVEL_PREFIX: ReadonlyArray<readonly [number, string]> = [
  [60, 'fatal: '],
  [50, 'error: '],
  [40, 'warning: '],
];

function levelPrefix(level: unknown): string {
  if (typeof level !== 'number') return '';
  for (const [n, p] of LEVEL_PREFIX) if (level >= n) return p;
  return '';
}

type Sink = { write(s: string): unknown };

/** postscreenStream - a pino destination that renders each JSON line as a postscreen syslog line onto `out`. */
export function postscreenStream(out: Sink, opts: { program?: string; pid?: number } = {}): DestinationStream {
  const tag = ` ${opts.program ?? 'smtpscreen'}[${opts.pid ?? process.pid}]: `;
  const render = (line: string): string => {
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return `${new Date().toISOString()}${tag}${line}\n`; // not ours: pass it through on one line
    }
    if (typeof rec !== 'object' || rec === null) return `${new Date().toISOString()}${tag}${line}\n`;
    const r = rec as Record<string, unknown>;
    const t = typeof r['time'] === 'number' ? new Date(r['time']) : new Date();
    const iso = Number.isNaN(t.getTime()) ? new Date().toISOString() : t.toISOString();
    return `${iso}${tag}${levelPrefix(r['level'])}${formatPostscreen(r)}\n`;
  };
  return {
    write(chunk: string): void {
      // pino writes one record per call, newline-terminated.
      let nl = chunk.indexOf('\n');
      if (nl === chunk.length - 1 || nl < 0) {
        const line = nl < 0 ? chunk : chunk.slice(0, nl);
        if (line !== '') out.write(render(line));
        return;
      }
      let start = 0;
      let text = '';
      while (nl >= 0) {
        if (nl > start) text += render(chunk.slice(start, nl));
        start = nl + 1;
        nl = chunk.indexOf('\n', start);
      }
      if (start < chunk.length) text += render(chunk.slice(start));
      out.write(text);
    },
  };
}

function isLevel(level: string): boolean {
  return level === 'silent' || Object.prototype.hasOwnProperty.call(pino.levels.values, level);
}

/** createLogger - the process's root logger. */
export function createLogger(opts: LoggerOptions): Logger {
  if (!isLevel(opts.level)) {
    throw new ScreenError('SCR_ERR_CONFIG', `log.level: unknown level "${opts.level}"`, { key: 'log.level', value: opts.level });
  }
  const dest = opts.destination ?? 1;
  const raw: Sink = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  const stream: DestinationStream = opts.format === 'postscreen'
    ? postscreenStream(raw, opts.program !== undefined ? { program: opts.program } : {})
    : (raw as DestinationStream);
  return pino(
    {
      level: opts.level,
      base: null, // no pid/hostname on every line
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    stream,
  );
}
