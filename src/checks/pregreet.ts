/*
 * checks/pregreet.ts - the pregreet test: did the client talk before the greeting ended?
 *
 * Exports: PregreetProbe, pregreetResult().
 * The session sends the "220-" teaser and arms the greet wait; every byte that
 * arrives before the wait ends is counted here. Only the first bytes are kept
 * (escaped) for the log: a bot that floods the teaser costs a counter, not memory.
 * What a pregreeter said early is its first command, and postscreen only peeks at it: under
 * ignore smtpd reads it, under enforce postscreen's dummy engine answers it (and sends no
 * banner). So the probe keeps the early bytes, at most `keep` (EARLY_KEEP): under ignore
 * session/handoff.ts writes them to the backend after the handshake, under enforce
 * session/dummy.ts feeds them to the dummy engine. Once that much is kept, `full` asks the
 * session to stop reading, so the rest waits in the kernel and nothing is lost.
 */
import { escapeClientText } from '../util/escape.js';

/** How many of the early bytes are kept for the log sample. */
export const SAMPLE_BYTES = 100;
/** Early bytes kept (under ignore and enforce): an EHLO line or a few pipelined commands. */
export const EARLY_KEEP = 4096;

export class PregreetProbe {
  bytes = 0;
  firstAt = 0;
  #sample: Buffer | null = null;
  /** One field on every probe; the rest only where bytes are kept (not under drop). Idle zombies are many. */
  readonly #early: { readonly limit: number; chunks: Buffer[]; length: number } | null;

  /** keep: early bytes to keep for the backend (0: none, the default). */
  constructor(keep = 0) {
    this.#early = keep > 0 ? { limit: keep, chunks: [], length: 0 } : null;
  }

  /** Count an early chunk (and keep it, when keeping). Returns true on the first early chunk (the moment to log). */
  record(chunk: Buffer, now: number): boolean {
    const first = this.bytes === 0;
    this.bytes += chunk.length;
    const e = this.#early;
    if (e !== null && e.length < e.limit) {
      // A socket's chunk is its own allocation: kept by reference.
      e.chunks.push(chunk);
      e.length += chunk.length;
    }
    if (first) {
      this.firstAt = now;
      this.#sample = Buffer.from(chunk.subarray(0, SAMPLE_BYTES));
    }
    return first;
  }

  get failed(): boolean {
    return this.bytes > 0;
  }

  /** As many early bytes as `keep` allows are held: read no more until the handoff or the dummy engine. */
  get full(): boolean {
    const e = this.#early;
    return e !== null && e.length >= e.limit;
  }

  /** The kept early bytes, in order, once; null when none were kept. */
  takeKept(): Buffer | null {
    const e = this.#early;
    if (e === null || e.chunks.length === 0) return null;
    const k = e.chunks;
    e.chunks = [];
    e.length = 0;
    return k.length === 1 ? (k[0] as Buffer) : Buffer.concat(k);
  }

  sample(): string {
    return this.#sample === null ? '' : escapeClientText(this.#sample, SAMPLE_BYTES);
  }
}

/** The result of the pregreet test, given when the session connected. */
export function pregreetResult(p: PregreetProbe, connectedAt: number): { pass: boolean; fields: Record<string, unknown> } {
  if (!p.failed) return { pass: true, fields: {} };
  return { pass: false, fields: { bytes: p.bytes, after_ms: p.firstAt - connectedAt, sample: p.sample() } };
}
