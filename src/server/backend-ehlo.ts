/*
 * server/backend-ehlo.ts - the backend's EHLO, asked and learned again periodically.
 *
 * Exports:
 *   ProbeOptions, ProbeStage, probeBackendEhlo(opts)
 *                                      one connect / greeting / EHLO / QUIT dialogue with the backend;
 *                                      failures reject with ScreenError SCR_ERR_BACKEND, details { stage, reason }
 *   EhloLearnerOptions, EhloLearner    periodic re-learning (start/stop/learn/current)
 *
 * Why: with deep.after_pass handoff the dummy engine must offer only what the backend supports;
 * what that is, and the dummy engine's replies built from it, is smtp/ehlo-keywords.ts's (pure).
 * This file holds the network and the schedule around it.
 * Not a hot path: the probe runs once per backend.ehlo_refresh.
 */
import { connect } from 'node:net';
import { encodeProxyV1, encodeProxyV2 } from '../net/proxy-protocol.js';
import { SmtpReplyReader, type SmtpReply } from '../net/smtp-reply.js';
import { learnedEhlo, parseEhloKeywords, sameKeywords, type LearnedEhlo } from '../smtp/ehlo-keywords.js';
import { ScreenError, type ErrorCode } from '../util/errors.js';

const SCR_ERR_BACKEND: ErrorCode = 'SCR_ERR_BACKEND';

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
  return cut.replace(/[^\x20-\x7e]/g, '?');
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
 * backend's EHLO reply to a replayed client is checked, not learned (session/handoff.ts).
 * start() is meant to be called once; after stop() no probe starts and a probe in flight calls
 * nothing back (learn() still works). onChange is called from learn() synchronously: the caller
 * reads `current` right after.
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

  /** Take a keyword map (from a probe); `current` changes when the keywords do. */
  learn(keywords: ReadonlyMap<string, string>): void {
    const prev = this.#current;
    if (prev !== null && sameKeywords(prev.keywords, keywords)) return;
    const info = learnedEhlo(this.#opts.hostname, new Map(keywords));
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
