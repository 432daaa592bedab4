/*
 * smtp/ehlo-keywords.ts - EHLO keywords: the backend's, parsed, and the dummy engine's EHLO
 * replies built from them. Pure: no sockets, no timers.
 *
 * Exports:
 *   parseEhloKeywords(reply)           250 reply -> Map KEYWORD -> params ('' when none), in order;
 *                                      not 250: throws ScreenError SCR_ERR_SMTP_REPLY
 *   NEVER_OFFERED                      keywords the dummy engine never offers ('X*': every X... keyword)
 *   buildDummyEhlo(hostname, keywords) { plain, tls, offered }: the dummy engine's EHLO replies
 *   missingKeywords(offered, backend)  offered keywords the backend's map lacks
 *   xclientAttributes(keywords)        XCLIENT attribute names, or null without XCLIENT
 *   LearnedEhlo, learnedEhlo(hostname, keywords)
 *                                      all of the above for one keyword map (what the learner keeps)
 *   sameKeywords(a, b)                 same keywords and params, in any order
 *
 * Why: with deep.after_pass handoff a client that passed the deep tests in the dummy engine is
 * replayed to the backend on the same connection, so the dummy engine must have offered only what
 * the backend supports (handoff/ehlo.ts learns it). We offer the backend's keywords in its order,
 * minus those we never offer: PIPELINING (the pipelining test needs it unoffered), STARTTLS (the
 * dummy engine has its own and puts it in `tls` after SIZE), AUTH (a client must not authenticate
 * to the screener), VRFY, ETRN, ATRN, TURN (answered 502 by the dummy engine), and every X...
 * keyword (XCLIENT, XFORWARD are for us; private extensions have commands the dummy engine does
 * not know).
 * Keyword syntax is RFC 5321's ehlo-keyword, (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); a legacy
 * "AUTH=LOGIN" line is not one and is ignored. A reply line is at most 512 octets (RFC 5321
 * 4.5.3.1.5): a longer keyword line, or params that are not printable ASCII, is not offered.
 * Not a hot path: once per probe and per handoff, buildDummyEhlo once per change.
 */
import type { SmtpReply } from '../net/smtp-reply.js';
import { ScreenError } from '../util/errors.js';

/** Keywords the dummy engine never offers; an entry ending in '*' is a prefix. */
export const NEVER_OFFERED: readonly string[] = Object.freeze([
  'PIPELINING', 'STARTTLS', 'AUTH', 'VRFY', 'ETRN', 'ATRN', 'TURN', 'X*',
]);

const NEVER_EXACT: ReadonlySet<string> = new Set(NEVER_OFFERED.filter((k) => !k.endsWith('*')));
const NEVER_PREFIX: readonly string[] = NEVER_OFFERED.filter((k) => k.endsWith('*')).map((k) => k.slice(0, -1));

/** RFC 5321 4.5.3.1.5: a reply line, code and CRLF included. */
const REPLY_LINE_MAX = 512;

/** ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
function isEhloKeyword(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!alnum && (i === 0 || c !== 45)) return false;
  }
  return true;
}

/** Printable ASCII (0x20..0x7e): may go into a reply line. */
function isPrintable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function neverOffered(keyword: string): boolean {
  if (NEVER_EXACT.has(keyword)) return true;
  for (const p of NEVER_PREFIX) if (keyword.startsWith(p)) return true;
  return false;
}

/**
 * parseEhloKeywords - the keywords of a 250 EHLO reply, upper-cased, in the server's order.
 * lines[0] (the server's name) is skipped; empty lines and invalid keywords are ignored; the
 * first occurrence of a keyword wins.
 */
export function parseEhloKeywords(reply: SmtpReply): Map<string, string> {
  if (reply.code !== 250) {
    throw new ScreenError('SCR_ERR_SMTP_REPLY', `EHLO reply code ${reply.code}, not 250`,
      { reason: 'EHLO reply not 250', value: reply.code });
  }
  const out = new Map<string, string>();
  for (let i = 1; i < reply.lines.length; i++) {
    const line = (reply.lines[i] ?? '').trim();
    if (line.length === 0) continue;
    const sp = line.indexOf(' ');
    const raw = sp < 0 ? line : line.slice(0, sp);
    // Checked before upper-casing: 'ß'.toUpperCase() is 'SS'.
    if (!isEhloKeyword(raw)) continue;
    const keyword = raw.toUpperCase();
    if (out.has(keyword)) continue;
    out.set(keyword, sp < 0 ? '' : line.slice(sp + 1).trim());
  }
  return out;
}

function formatEhlo(hostname: string, items: readonly string[]): string {
  if (items.length === 0) return `250 ${hostname}\r\n`;
  let out = `250-${hostname}\r\n`;
  for (let i = 0; i < items.length; i++) out += `${i === items.length - 1 ? '250 ' : '250-'}${items[i] ?? ''}\r\n`;
  return out;
}

/**
 * buildDummyEhlo - the dummy engine's EHLO replies offering the backend's keywords (in its order)
 * minus NEVER_OFFERED; `tls` adds STARTTLS after SIZE, or first. `offered` excludes STARTTLS.
 * Keys are upper-cased and must be ehlo-keywords (first occurrence wins); params are trimmed.
 * Throws SCR_ERR_CONFIG for a hostname that is not one printable word (as makeReplies).
 */
export function buildDummyEhlo(hostname: string, keywords: ReadonlyMap<string, string>): { plain: string; tls: string; offered: string[] } {
  if (hostname.length === 0 || !isPrintable(hostname) || hostname.includes(' ')) {
    throw new ScreenError('SCR_ERR_CONFIG', `hostname must be one printable word: ${JSON.stringify(hostname)}`,
      { key: 'hostname', value: hostname });
  }
  const offered: string[] = [];
  const items: string[] = [];
  const seen = new Set<string>();
  let sizeAt = -1;
  for (const [key, value] of keywords) {
    if (!isEhloKeyword(key)) continue;
    const keyword = key.toUpperCase();
    if (seen.has(keyword)) continue;
    seen.add(keyword);
    if (neverOffered(keyword)) continue;
    const params = value.trim();
    if (!isPrintable(params)) continue;
    const item = params.length === 0 ? keyword : `${keyword} ${params}`;
    if (item.length + 6 > REPLY_LINE_MAX) continue;
    if (keyword === 'SIZE') sizeAt = items.length;
    offered.push(keyword);
    items.push(item);
  }
  const withTls = items.slice();
  withTls.splice(sizeAt + 1, 0, 'STARTTLS');
  return { plain: formatEhlo(hostname, items), tls: formatEhlo(hostname, withTls), offered };
}

/** The offered keywords that `backend` lacks (params are not compared: SIZE may change its limit). */
export function missingKeywords(offered: readonly string[], backend: ReadonlyMap<string, string>): string[] {
  return offered.filter((k) => !backend.has(k));
}

/** XCLIENT's attribute names, upper-cased (Postfix: NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT); null without XCLIENT. */
export function xclientAttributes(keywords: ReadonlyMap<string, string>): Set<string> | null {
  const params = keywords.get('XCLIENT');
  if (params === undefined) return null;
  const out = new Set<string>();
  for (const word of params.split(/\s+/)) if (word.length > 0) out.add(word.toUpperCase());
  return out;
}

/** What was learned from the backend: its keywords and the dummy engine's replies built from them. */
export interface LearnedEhlo {
  keywords: ReadonlyMap<string, string>;
  plain: string;
  tls: string;
  offered: readonly string[];
  xclient: ReadonlySet<string> | null;
}

/** learnedEhlo - the dummy engine's replies and the XCLIENT attributes for `keywords` (kept as given). */
export function learnedEhlo(hostname: string, keywords: ReadonlyMap<string, string>): LearnedEhlo {
  const built = buildDummyEhlo(hostname, keywords);
  return { keywords, plain: built.plain, tls: built.tls, offered: Object.freeze(built.offered), xclient: xclientAttributes(keywords) };
}

/** Same keywords with the same params; order alone is not a change. */
export function sameKeywords(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
