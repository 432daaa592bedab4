/*
 * net/xclient.ts - the Postfix XCLIENT commands sent to a backend (its replies: net/smtp-reply.ts).
 *
 * Exports:
 *   xtextEncode(s)                      RFC 3461 xtext ('+', '=', bytes outside 33..126 as +HH)
 *   XclientAttrs, buildXclient(attrs)   complete "XCLIENT ...\r\n" lines, each <= 512 bytes
 *   XCLIENT_MAX_LINE                    512 (SMTP command line limit, CRLF included)
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
