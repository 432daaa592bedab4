/*
 * handoff/ehlo.ts - what the backend offers in EHLO, learned, and the dummy engine's EHLO built from it.
 *
 * Exports:
 *   parseEhloKeywords(reply)           250 reply -> Map KEYWORD -> params ('' when none), in order;
 *                                      not 250: throws ScreenError SCR_ERR_SMTP_REPLY
 *   NEVER_OFFERED                      keywords the dummy engine never offers ('X*': every X... keyword)
 *   buildDummyEhlo(hostname, keywords) { plain, tls, offered }: the dummy engine's EHLO replies
 *   missingKeywords(offered, backend)  offered keywords the backend's map lacks
 *   xclientAttributes(keywords)        XCLIENT attribute names, or null without XCLIENT
 *   ProbeOptions, ProbeStage, probeBackendEhlo(opts)
 *                                      one connect / greeting / EHLO / QUIT dialogue with the backend;
 *                                      failures reject with ScreenError SCR_ERR_BACKEND, details { stage, reason }
 *   LearnedEhlo, EhloLearnerOptions, EhloLearner
 *                                      periodic re-learning (start/stop/learn/current)
 *
 * Why: with deep.after_pass handoff a client that passed the deep tests in the dummy engine is
 * replayed to the backend on the same connection, so the dummy engine must have offered only what
 * the backend supports. We offer the backend's keywords in its order, minus those we never offer:
 * PIPELINING (the pipelining test needs it unoffered), STARTTLS (the dummy engine has its own and
 * puts it in `tls` after SIZE), AUTH (a client must not authenticate to the screener), VRFY, ETRN,
 * ATRN, TURN (answered 502 by the dummy engine), and every X... keyword (XCLIENT, XFORWARD are for
 * us; private extensions have commands the dummy engine does not know).
 * Keyword syntax is RFC 5321's ehlo-keyword, (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); a legacy
 * "AUTH=LOGIN" line is not one and is ignored. A reply line is at most 512 octets (RFC 5321
 * 4.5.3.1.5): a longer keyword line, or params that are not printable ASCII, is not offered.
 * Not a hot path: the probe runs once per backend.ehlo_refresh, buildDummyEhlo once per change.
 */
import { connect } from 'node:net';
import { encodeProxyV1, encodeProxyV2 } from '../net/proxy-protocol.js';
import { SmtpReplyReader, type SmtpReply } from '../net/smtp-reply.js';
import { ScreenError, type ErrorCode } from '../util/errors.js';

const SCR_ERR_BACKEND: ErrorCode = 'SCR_ERR_BACKEND';

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

export type ProbeStage = 'connect' | 'greeting' | 'ehlo';

export interface ProbeOptions {
  host: string;
  port: number;
  mode: 'xclient' | 'proxy-v1' | 'proxy-v2' | 'none';
  /** Our name in the EHLO command. */
  hostname: string;
  /** Bound on the whole dialogue, connect to EHLO reply. */
  timeoutMs: number;
}

/** How long QUIT may wait for the backend's 221 (or close) before the socket is destroyed. */
const QUIT_GRACE_MS = 200;

/** Backend text in an error reason: printable, at most 200 characters. */
function replyReason(r: SmtpReply): string {
  const text = `${r.code} ${r.lines.join(' ')}`.trim();
  const cut = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return isPrintable(cut) ? cut : cut.replace(/[^\x20-\x7e]/g, '?');
}

function errorReason(err: unknown): string {
  if (err instanceof ScreenError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return typeof code === 'string' ? code : err.message;
  }
  return String(err);
}

/**
 * probeBackendEhlo - ask the backend for its EHLO reply, as the screener: connect, PROXY header
 * (proxy-v1/v2; source our end, destination the backend's, so the backend logs the screener),
 * 220 greeting, EHLO, 250 reply, then QUIT. Resolves with parseEhloKeywords of the reply once the
 * socket is destroyed (after the 221, the backend's close, or QUIT_GRACE_MS). Rejects with
 * ScreenError SCR_ERR_BACKEND, details { stage, reason[, code] }: reason is an errno code
 * (ECONNREFUSED), 'timeout', 'closed', a malformed-reply message or the backend's reply.
 * XCLIENT is never sent: with mode xclient the backend sees the screener too.
 */
export function probeBackendEhlo(opts: ProbeOptions): Promise<Map<string, string>> {
  return new Promise<Map<string, string>>((resolve, reject) => {
    let stage: ProbeStage = 'connect';
    /** dialogue: until the EHLO reply; quit: QUIT sent, result known; done: settled. */
    let phase: 'dialogue' | 'quit' | 'done' = 'dialogue';
    let result: Map<string, string> | null = null;
    const reader = new SmtpReplyReader();
    const sock = connect({ host: opts.host, port: opts.port, noDelay: true });
    let timer: NodeJS.Timeout | null = null;

    const clearTimer = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    const fail = (reason: string, code?: number): void => {
      if (phase !== 'dialogue') return;
      phase = 'done';
      clearTimer();
      sock.destroy();
      const details: Record<string, unknown> = code === undefined ? { stage, reason } : { stage, reason, code };
      reject(new ScreenError(SCR_ERR_BACKEND, `backend EHLO probe: ${stage}: ${reason}`, details));
    };
    const finish = (): void => {
      if (phase !== 'quit') return;
      phase = 'done';
      clearTimer();
      sock.destroy();
      resolve(result ?? new Map());
    };
    const onReply = (r: SmtpReply): void => {
      if (stage === 'greeting') {
        if (r.code !== 220) { fail(replyReason(r), r.code); return; }
        stage = 'ehlo';
        sock.write(`EHLO ${opts.hostname}\r\n`);
        return;
      }
      if (r.code !== 250) { fail(replyReason(r), r.code); return; }
      try {
        result = parseEhloKeywords(r);
      } catch (err) {
        fail(errorReason(err));
        return;
      }
      phase = 'quit';
      clearTimer();
      // The result is known; the 221 is a courtesy. One timer at a time: the grace replaces the bound.
      timer = setTimeout(finish, QUIT_GRACE_MS);
      timer.unref();
      sock.end('QUIT\r\n');
    };

    timer = setTimeout(() => { fail('timeout'); }, opts.timeoutMs);
    timer.unref();
    // The listener stays for the socket's life: an error after the result is known is ignored.
    sock.on('error', (err) => {
      if (phase === 'quit') finish();
      else fail(errorReason(err));
    });
    sock.on('end', () => {
      if (phase === 'quit') finish();
      else fail('closed');
    });
    sock.on('close', () => {
      if (phase === 'quit') finish();
      else fail('closed');
    });
    sock.on('connect', () => {
      if (opts.mode === 'proxy-v1' || opts.mode === 'proxy-v2') {
        let header: Buffer;
        try {
          const src = { addr: sock.localAddress ?? '', port: sock.localPort ?? -1 };
          const dst = { addr: sock.remoteAddress ?? '', port: sock.remotePort ?? -1 };
          header = opts.mode === 'proxy-v1' ? encodeProxyV1(src, dst) : encodeProxyV2(src, dst);
        } catch (err) {
          fail(errorReason(err));
          return;
        }
        sock.write(header);
      }
      stage = 'greeting';
    });
    sock.on('data', (chunk: Buffer) => {
      if (phase === 'quit') { finish(); return; }
      if (phase !== 'dialogue') return;
      let replies: SmtpReply[];
      try {
        replies = reader.feed(chunk);
      } catch (err) {
        fail(errorReason(err));
        return;
      }
      for (const r of replies) {
        if (phase !== 'dialogue') return;
        onReply(r);
      }
    });
  });
}

/** What was learned from the backend: its keywords and the dummy engine's replies built from them. */
export interface LearnedEhlo {
  keywords: ReadonlyMap<string, string>;
  plain: string;
  tls: string;
  offered: readonly string[];
  xclient: ReadonlySet<string> | null;
}

export interface EhloLearnerOptions {
  probe: () => Promise<Map<string, string>>;
  /** Our hostname, the first line of the dummy engine's EHLO reply. */
  hostname: string;
  /** Next probe this long after a success. */
  refreshMs: number;
  /** Next probe this long after a failure. */
  retryMs: number;
  /** `current` was set for the first time or its keywords changed. */
  onChange: (info: LearnedEhlo) => void;
  /** A probe failed after a success, or the very first probe failed (once per transition). */
  onError: (reason: string) => void;
}

function sameKeywords(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function probeErrorReason(err: unknown): string {
  if (err instanceof ScreenError && typeof err.details['stage'] === 'string' && typeof err.details['reason'] === 'string') {
    return `${err.details['stage']}: ${err.details['reason']}`;
  }
  return errorReason(err);
}

/**
 * EhloLearner - learns the backend's EHLO at start and every refreshMs (retryMs after a failure).
 * A failed probe keeps what was learned. learn() is where a probe's answer lands (public for
 * tests); keyword order alone is not a change. Only the screener's own probe teaches it: the
 * backend's EHLO reply to a replayed client is checked, not learned (handoff/splice.ts). start() is meant to be called once; after stop() no probe
 * starts and a probe in flight calls nothing back (learn() still works). onChange is called from
 * learn() synchronously: the caller reads `current` right after.
 */
export class EhloLearner {
  readonly #opts: EhloLearnerOptions;
  #current: LearnedEhlo | null = null;
  #timer: NodeJS.Timeout | null = null;
  #started = false;
  #stopped = false;
  /** Outcome of the last probe: null before the first. */
  #lastOk: boolean | null = null;

  constructor(opts: EhloLearnerOptions) {
    this.#opts = opts;
  }

  get current(): LearnedEhlo | null {
    return this.#current;
  }

  /** First probe, then the schedule. Resolves after the first probe, whatever its outcome. */
  async start(): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    await this.#run();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Take a keyword map (from a probe or a real handoff); `current` changes when the keywords do. */
  learn(keywords: ReadonlyMap<string, string>): void {
    const prev = this.#current;
    if (prev !== null && sameKeywords(prev.keywords, keywords)) return;
    const copy = new Map(keywords);
    const built = buildDummyEhlo(this.#opts.hostname, copy);
    const info: LearnedEhlo = {
      keywords: copy, plain: built.plain, tls: built.tls, offered: Object.freeze(built.offered), xclient: xclientAttributes(copy),
    };
    this.#current = info;
    this.#opts.onChange(info);
  }

  async #run(): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    let keywords: Map<string, string>;
    try {
      keywords = await this.#opts.probe();
    } catch (err) {
      if (this.#stopped) return;
      const report = this.#lastOk !== false;
      this.#lastOk = false;
      this.#schedule(this.#opts.retryMs);
      if (report) this.#opts.onError(probeErrorReason(err));
      return;
    }
    if (this.#stopped) return;
    this.#lastOk = true;
    this.#schedule(this.#opts.refreshMs);
    this.learn(keywords);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => { void this.#run(); }, ms);
    this.#timer.unref();
  }
}
