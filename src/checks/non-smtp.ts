/*
 * checks/non-smtp.ts - deep test: a line that is no SMTP command at all
 * (an HTTP request, a mail header, binary junk).
 *
 * Exports: ForbiddenCommands, nonSmtpCommand(), isHeaderName(), isValidUtf8(),
 *          nonSmtpFields(), NonSmtpReason.
 * Rules of postscreen_smtpd.c, applied only to commands the engine does not
 * know (a known verb such as MAIL or VRFY never fails here), to the first
 * word of the line (split on SP, as the engine's parser):
 * - the word is in `deep.forbidden_commands` (default CONNECT, GET, POST:
 *   proxy and HTTP requests), compared without case;
 * - the word looks like a header name ("Subject:", "To:<x>", "From\t:"),
 *   Postfix's is_header(): printable ASCII up to a ':', tabs allowed before it;
 * - the word is not valid UTF-8 (postscreen with smtputf8_enable = yes, the
 *   default: a TLS ClientHello or other binary on the plaintext port).
 * Where we differ: Postfix's default list also holds
 * `regexp:{{/^[^A-Z]/ Bogus}}`; the list here is plain words, no tables.
 * Pure and allocation-free: byte comparisons over the line Buffer.
 */
import { escapeClientText } from '../util/escape.js';

export type NonSmtpReason = 'forbidden' | 'header' | 'utf8';

/** Bytes of the offending line kept for the log (postscreen: 100). */
const NON_SMTP_SAMPLE = 100;

function upper(b: number): number {
  return b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
}

/** The forbidden command words, compiled once at config load. */
export class ForbiddenCommands {
  readonly #words: Buffer[];

  constructor(words: readonly string[]) {
    this.#words = words.filter((w) => w.length > 0).map((w) => Buffer.from(w.toUpperCase(), 'latin1'));
  }

  get size(): number {
    return this.#words.length;
  }

  /** Is line[start, end) one of the words (ASCII case-insensitive)? */
  has(line: Buffer, start: number, end: number): boolean {
    const n = end - start;
    for (const w of this.#words) {
      if (w.length !== n) continue;
      let i = 0;
      while (i < n && upper(line[start + i] as number) === w[i]) i++;
      if (i === n) return true;
    }
    return false;
  }
}

/**
 * isHeaderName - Postfix's is_header() over line[start, end): one or more
 * printable ASCII characters other than ':' and space, then optional SP/TAB,
 * then ':' (what follows the colon does not matter).
 */
export function isHeaderName(line: Buffer, start: number, end: number): boolean {
  let seen = false;
  let spaced = false;
  for (let i = start; i < end; i++) {
    const c = line[i] as number;
    if (c === 0x3a /* : */) return seen;
    if (c === 0x20 || c === 0x09) {
      if (!seen) return false;
      spaced = true;
      continue;
    }
    if (c <= 0x20 || c >= 0x7f || spaced) return false;
    seen = true;
  }
  return false;
}

/** isValidUtf8 - RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
export function isValidUtf8(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = buf[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; min = 0x80; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; min = 0x800; cp = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; min = 0x10000; cp = b & 0x07; }
    else return false;
    if (i + need >= end) return false; // truncated sequence
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k] as number;
      if ((c & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}

/**
 * nonSmtpCommand - why the first word line[verbStart, verbEnd) of an
 * unknown command is not SMTP, or null when it may be some extension.
 */
export function nonSmtpCommand(line: Buffer, verbStart: number, verbEnd: number, forbidden: ForbiddenCommands): NonSmtpReason | null {
  if (verbEnd <= verbStart) return null;
  if (forbidden.has(line, verbStart, verbEnd)) return 'forbidden';
  if (isHeaderName(line, verbStart, verbEnd)) return 'header';
  if (!isValidUtf8(line, verbStart, verbEnd)) return 'utf8';
  return null;
}

/** Fields of NON-SMTP COMMAND: `after` the previous command, `sample` the line, escaped. */
export function nonSmtpFields(after: string, line: Buffer): { after: string; sample: string } {
  return { after, sample: escapeClientText(line, NON_SMTP_SAMPLE) };
}
