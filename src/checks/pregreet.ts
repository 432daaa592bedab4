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
 * session/dummy.ts feeds them to the dummy engine.
 * What is kept is copied: a socket read is up to 64 KiB, and keeping the read itself kept all
 * of it (a 96 KiB flood cost ~107 KB per client). Bytes past `keep` are counted in `discarded`
 * and not kept; the session decides what that means (machine.ts: under ignore the stream can no
 * longer reach the backend whole, so 421). The socket is not paused when the probe is full:
 * a paused Node socket still reads ahead up to its highWaterMark (one more read, up to 64 KiB),
 * which is exactly the memory the bound is for.
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
  readonly #early: { readonly limit: number; chunks: Buffer[]; length: number; discarded: number } | null;

  /** keep: early bytes to keep for the backend (0: none, the default). */
  constructor(keep = 0) {
    this.#early = keep > 0 ? { limit: keep, chunks: [], length: 0, discarded: 0 } : null;
  }

  /** Count an early chunk (and keep it, when keeping). Returns true on the first early chunk (the moment to log). */
  record(chunk: Buffer, now: number): boolean {
    const first = this.bytes === 0;
    this.bytes += chunk.length;
    const e = this.#early;
    if (e !== null) {
      const n = Math.min(chunk.length, e.limit - e.length);
      if (n > 0) {
        // A copy of what is kept, never the read itself: the read may be 64 KiB.
        const copy = Buffer.allocUnsafe(n);
        chunk.copy(copy, 0, 0, n);
        e.chunks.push(copy);
        e.length += n;
      }
      e.discarded += chunk.length - n;
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

  /** Early bytes read but not kept (past `keep`): the client's stream has a gap if it goes on. */
  get discarded(): number {
    return this.#early === null ? 0 : this.#early.discarded;
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
