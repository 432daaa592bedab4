/*
 * net/xclient.ts - the Postfix XCLIENT dialogue with a backend: commands out, replies in.
 *
 * Exports:
 *   xtextEncode(s)                      RFC 3461 xtext ('+', '=', bytes outside 33..126 as +HH)
 *   XclientAttrs, buildXclient(attrs)   complete "XCLIENT ...\r\n" lines, each <= 512 bytes
 *   XCLIENT_MAX_LINE                    512 (SMTP command line limit, CRLF included)
 *   SmtpReply, SmtpReplyReader          incremental, bounded SMTP reply parser (feed / rest)
 *
 * Facts from Postfix XCLIENT_README: attributes are NAME ADDR PORT PROTO HELO LOGIN DESTADDR
 * DESTPORT, values are xtext, an IPv6 address is sent as "IPV6:<addr>", an unknown client name
 * as [UNAVAILABLE], and the server answers each XCLIENT with 220 (a new greeting); attributes not
 * named in a command keep their value, so a long set may be split over several commands.
 */
import { formatAddress, parseAddressInto } from './cidr.js';
import { ScreenError } from '../util/errors.js';

export const XCLIENT_MAX_LINE = 512;

const HEX = '0123456789ABCDEF';

/** RFC 3461 xtext of the UTF-8 bytes of s. */
export function xtextEncode(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 33 || c > 126 || c === 43 || c === 61) { plain = false; break; }
  }
  if (plain) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b < 33 || b > 126 || b === 43 || b === 61 ? `+${HEX[b >> 4]}${HEX[b & 15]}` : String.fromCharCode(b);
  }
  return out;
}

export interface XclientAttrs {
  addr: string;
  port?: number;
  name?: string;
  helo?: string;
  proto?: 'SMTP' | 'ESMTP';
  login?: string;
  destaddr?: string;
  destport?: number;
}

const addrWords = new Uint32Array(4);

/** ADDR/DESTADDR text: dotted quad (also for v4-mapped) or IPV6:<compressed>. */
function xclientAddr(addr: string): string {
  const family = parseAddressInto(addr, addrWords);
  if (family === 0) throw new ScreenError('SCR_ERR_CIDR', `XCLIENT: "${addr}" is not an IP address`, { value: addr });
  const text = formatAddress({
    family, w0: addrWords[0] ?? 0, w1: addrWords[1] ?? 0, w2: addrWords[2] ?? 0, w3: addrWords[3] ?? 0,
  });
  return family === 6 ? `IPV6:${text}` : text;
}

function xclientPort(port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ScreenError('SCR_ERR_CIDR', `XCLIENT: bad port ${port}`, { value: port });
  }
  return String(port);
}

const PREFIX = 'XCLIENT';
/** Longest " NAME=value" that fits on one command line. */
const MAX_ATTR = XCLIENT_MAX_LINE - PREFIX.length - 2;

/**
 * Cuts an over-long attribute so the command fits, never inside a +HH escape.
 * XXX: only client-supplied text (HELO, LOGIN, NAME) can be this long; a cut HELO is still
 * more useful to the backend's logs and checks than none.
 */
function fit(attr: string): string {
  if (attr.length <= MAX_ATTR) return attr;
  let end = MAX_ATTR;
  if (attr[end - 1] === '+') end -= 1;
  else if (attr[end - 2] === '+') end -= 2;
  return attr.slice(0, end);
}

/** XCLIENT command lines (CRLF-terminated, each at most 512 bytes) carrying attrs. */
export function buildXclient(attrs: XclientAttrs): string[] {
  const parts: string[] = [` NAME=${attrs.name === undefined ? '[UNAVAILABLE]' : xtextEncode(attrs.name)}`];
  parts.push(` ADDR=${xclientAddr(attrs.addr)}`);
  if (attrs.port !== undefined) parts.push(` PORT=${xclientPort(attrs.port)}`);
  if (attrs.proto !== undefined) parts.push(` PROTO=${attrs.proto}`);
  if (attrs.helo !== undefined) parts.push(` HELO=${xtextEncode(attrs.helo)}`);
  if (attrs.login !== undefined) parts.push(` LOGIN=${xtextEncode(attrs.login)}`);
  if (attrs.destaddr !== undefined) parts.push(` DESTADDR=${xclientAddr(attrs.destaddr)}`);
  if (attrs.destport !== undefined) parts.push(` DESTPORT=${xclientPort(attrs.destport)}`);
  const lines: string[] = [];
  let line = PREFIX;
  for (const raw of parts) {
    const part = fit(raw);
    if (line.length + part.length + 2 > XCLIENT_MAX_LINE) {
      lines.push(`${line}\r\n`);
      line = PREFIX;
    }
    line += part;
  }
  lines.push(`${line}\r\n`);
  return lines;
}

export interface SmtpReply {
  code: number;
  /** Text of each line after the code and separator (latin1, lossless). */
  lines: string[];
  /** The reply's bytes as received, CRLFs included (a view of the input, not a copy). */
  raw: Buffer;
}

export interface SmtpReplyReaderOptions {
  /** Longest line, terminator excluded (default 2048). */
  maxLine?: number;
  /** Most bytes in one (multi-line) reply (default 65536). */
  maxReply?: number;
}

function replyError(why: string, value: string): ScreenError {
  return new ScreenError('SCR_ERR_SMTP_REPLY', `bad SMTP reply: ${why}`, { reason: why, value });
}

/**
 * Incremental SMTP reply parser. feed() returns the replies completed by a chunk, in order.
 * Lines end in LF; a CR before it is dropped. After a throw the reader is unusable.
 */
export class SmtpReplyReader {
  readonly #maxLine: number;
  readonly #maxReply: number;
  /** Bytes of the reply in progress (from its first line on). */
  #buf: Buffer = Buffer.alloc(0);
  /** Offset in #buf of the next unparsed line. */
  #scan = 0;
  #code = -1;
  #lines: string[] = [];

  constructor(opts: SmtpReplyReaderOptions = {}) {
    this.#maxLine = opts.maxLine ?? 2048;
    this.#maxReply = opts.maxReply ?? 65536;
  }

  feed(chunk: Buffer): SmtpReply[] {
    const out: SmtpReply[] = [];
    const buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let replyStart = 0;
    let pos = this.#scan;
    for (;;) {
      const lf = buf.indexOf(10, pos);
      if (lf < 0) break;
      let end = lf;
      if (end > pos && buf[end - 1] === 13) end--;
      if (end - pos > this.#maxLine) throw replyError('line too long', buf.toString('latin1', pos, pos + 64));
      const code = this.#lineCode(buf, pos, end);
      const sep = end > pos + 3 ? buf[pos + 3] : 32;
      if (sep !== 32 && sep !== 45) throw replyError('no space or hyphen after code', buf.toString('latin1', pos, end));
      if (this.#code >= 0 && code !== this.#code) {
        throw replyError('mixed codes in a multi-line reply', buf.toString('latin1', pos, end));
      }
      this.#code = code;
      this.#lines.push(end > pos + 3 ? buf.toString('latin1', pos + 4, end) : '');
      pos = lf + 1;
      if (sep === 32) {
        out.push({ code, lines: this.#lines, raw: buf.subarray(replyStart, pos) });
        replyStart = pos;
        this.#code = -1;
        this.#lines = [];
      } else if (pos - replyStart > this.#maxReply) {
        throw replyError('reply too long', String(pos - replyStart));
      }
    }
    if (buf.length - pos > this.#maxLine + 1) throw replyError('line too long', buf.toString('latin1', pos, pos + 64));
    if (buf.length - replyStart > this.#maxReply + this.#maxLine) throw replyError('reply too long', String(buf.length - replyStart));
    this.#buf = replyStart === buf.length ? Buffer.alloc(0) : buf.subarray(replyStart);
    this.#scan = pos - replyStart;
    return out;
  }

  /** Bytes after the last complete reply: a partial reply, or data that followed it. */
  rest(): Buffer {
    return this.#buf;
  }

  #lineCode(buf: Buffer, pos: number, end: number): number {
    const d0 = buf[pos] ?? 0;
    const d1 = buf[pos + 1] ?? 0;
    const d2 = buf[pos + 2] ?? 0;
    if (end - pos < 3 || d0 < 50 || d0 > 53 || d1 < 48 || d1 > 57 || d2 < 48 || d2 > 57) {
      throw replyError('no 3-digit reply code', buf.toString('latin1', pos, Math.min(end, pos + 64)));
    }
    return (d0 - 48) * 100 + (d1 - 48) * 10 + (d2 - 48);
  }
}
