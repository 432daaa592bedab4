/*
 * log/logger.ts - the pino root logger: its output format and its destination.
 *
 * Exports: createLogger(opts), postscreenStream(out, opts?), syslogTime(ms),
 *   logOutput(logger), flushLog(logger, ms), Logger, LoggerOptions.
 * Formats:
 *   json: pino's NDJSON, one line per event: {"level":30,"time":<epoch ms>,
 *     "hostname":"mx1","event":"CONNECT",...,"msg":"CONNECT from [192.0.2.1]:5678 to ..."}:
 *     `msg` is the postscreen text (log/emit.ts), so pino-pretty shows one line.
 *   postscreen: "<ISO time> smtpscreen[<pid>]: CONNECT from [192.0.2.1]:5678 to [127.0.0.1]:2525",
 *     with "warning: " / "error: " / "fatal: " before lines at those levels, as Postfix does.
 *   journal: "<6>CONNECT from ...": the text with only sd-daemon's priority prefix, for
 *     systemd's journal, which adds the identifier (the unit's SyslogIdentifier) and pid.
 *   syslog (the syslog destination, whatever the format): RFC 3164,
 *     "<22>Nov 30 18:30:14 mx1 postfix/postscreen[4242]: CONNECT from ...".
 *   XXX The text formats parse each JSON line back: a JSON.parse per line.
 * Destinations (log/out-fd.ts, log/out-syslog.ts) are bounded and never block: a line
 * that does not fit is dropped and counted, and one LOG DROPPED line reports the count
 * once the destination has caught up. A plain stream or descriptor (tests) is written
 * as it is, synchronously for a descriptor.
 * Sessions take a child logger with their bindings set once (pino's child()).
 */
import os from 'node:os';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { ScreenError } from '../util/errors.js';
import { formatPostscreen } from './postscreen-format.js';
import { Emitter } from './emit.js';
import { EV } from './events.js';
import type { LineOut } from './out-base.js';

export type Logger = PinoLogger;

export interface LoggerOptions {
  format: 'json' | 'postscreen' | 'journal';
  level: string;
  /** A stream, or a file descriptor (default 1, stdout), written synchronously. */
  destination?: NodeJS.WritableStream | number;
  /** A bounded destination (log/out-*.ts); takes the place of `destination`. */
  output?: LineOut;
  /** Program name in postscreen lines (default "smtpscreen"); the tag in syslog lines (default "postfix/postscreen"). */
  program?: string;
  /** In JSON lines and syslog headers (default os.hostname(); syslog: up to the first dot). */
  hostname?: string;
  /** A worker of a primary (workers > 1): its index, a `worker` field on every line. */
  worker?: number;
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

/** syslog severity of a pino level: crit, err, warning, info, debug. */
function severity(level: unknown): number {
  if (typeof level !== 'number') return 6;
  return level >= 60 ? 2 : level >= 50 ? 3 : level >= 40 ? 4 : level >= 30 ? 6 : 7;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => (n < 10 ? `0${n}` : String(n));
let stampSec = -1;
let stampText = '';

/** syslogTime - RFC 3164's "Mmm dd hh:mm:ss" in local time, as syslogd writes it ("Nov  3 09:05:01"); made once a second. */
export function syslogTime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  if (sec !== stampSec) {
    const d = new Date(sec * 1000);
    const day = d.getDate();
    stampText = `${MONTHS[d.getMonth()] ?? 'Jan'} ${day < 10 ? ` ${day}` : day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
    stampSec = sec;
  }
  return stampText;
}

/** mail facility (2) * 8 */
const FACILITY_MAIL = 16;

export type TextStyle = 'iso' | 'syslog' | 'journal';

interface TextOptions {
  program?: string;
  pid?: number;
  /** iso (default): "<ISO time> program[pid]: "; syslog: RFC 3164; journal: "<severity>" only. */
  style?: TextStyle;
  /** syslog: the HOSTNAME field. */
  hostname?: string;
}

/** postscreenStream - a pino destination that renders each JSON line as a postscreen syslog line onto `out`. */
export function postscreenStream(out: Sink, opts: TextOptions = {}): DestinationStream {
  const style = opts.style ?? 'iso';
  const tag = ` ${opts.program ?? (style === 'syslog' ? 'postfix/postscreen' : 'smtpscreen')}[${opts.pid ?? process.pid}]: `;
  const host = (opts.hostname ?? os.hostname()).split('.')[0] || 'localhost';
  const head = (time: number, level: unknown): string => {
    if (style === 'journal') return `<${severity(level)}>`;
    if (style === 'syslog') return `<${FACILITY_MAIL + severity(level)}>${syslogTime(time)} ${host}${tag}`;
    const t = new Date(time);
    return `${Number.isNaN(t.getTime()) ? new Date().toISOString() : t.toISOString()}${tag}`;
  };
  const render = (line: string): string => {
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return `${head(Date.now(), 30)}${line}\n`; // not ours: pass it through on one line
    }
    if (typeof rec !== 'object' || rec === null) return `${head(Date.now(), 30)}${line}\n`;
    const r = rec as Record<string, unknown>;
    const time = typeof r['time'] === 'number' ? r['time'] : Date.now();
    // An event's msg is its postscreen text already (log/emit.ts).
    const text = r['event'] !== undefined && typeof r['msg'] === 'string' ? r['msg'] : formatPostscreen(r);
    return `${head(time, r['level'])}${levelPrefix(r['level'])}${text}\n`;
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

const OUTPUTS = new WeakMap<object, LineOut>();

/** logOutput - the bounded destination of a logger made by createLogger (its `dropped` count is for metrics), or undefined. */
export function logOutput(logger: Logger): LineOut | undefined {
  return OUTPUTS.get(logger);
}

/** flushLog - wait for the logger's destination to take what is queued, for at most `timeoutMs`; true when it did. */
export function flushLog(logger: Logger, timeoutMs: number): Promise<boolean> {
  const out = OUTPUTS.get(logger);
  if (out === undefined) {
    logger.flush();
    return Promise.resolve(true);
  }
  return out.flush(timeoutMs);
}

/** createLogger - the process's root logger. */
export function createLogger(opts: LoggerOptions): Logger {
  if (!isLevel(opts.level)) {
    throw new ScreenError('SCR_ERR_CONFIG', `log.level: unknown level "${opts.level}"`, { key: 'log.level', value: opts.level });
  }
  const out = opts.output;
  const dest = opts.destination ?? 1;
  const raw: Sink = out ?? (typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest);
  const style: TextStyle | null = out?.kind === 'syslog' ? 'syslog' : opts.format === 'postscreen' ? 'iso' : opts.format === 'journal' ? 'journal' : null;
  const text: TextOptions = { style: style ?? 'iso' };
  if (opts.program !== undefined) text.program = opts.program;
  if (opts.hostname !== undefined) text.hostname = opts.hostname;
  const stream: DestinationStream = style !== null ? postscreenStream(raw, text) : (raw as DestinationStream);
  const logger = pino(
    {
      level: opts.level,
      // No pid: the same on every line. A worker's index tells the workers' lines apart in the one destination.
      base: opts.worker === undefined ? { hostname: opts.hostname ?? os.hostname() } : { hostname: opts.hostname ?? os.hostname(), worker: opts.worker },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    stream,
  );
  if (out !== undefined) {
    OUTPUTS.set(logger, out);
    let em: Emitter | null = null;
    out.onRecover = (dropped, total) => {
      em ??= new Emitter(logger);
      em.emit(EV.LOG_DROPPED, { dropped, total, destination: out.kind });
    };
  }
  return logger;
}
