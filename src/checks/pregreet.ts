/*
 * checks/pregreet.ts - the pregreet test: did the client talk before the greeting ended?
 *
 * Exports: PregreetProbe, pregreetResult().
 * The session sends the "220-" teaser and arms the greet wait; every byte that
 * arrives before the wait ends is counted here. Only the first bytes are kept
 * (escaped) for the log: a bot that floods the teaser costs a counter, not memory.
 */
import { escapeClientText } from '../smtp/escape.js';

/** How many of the early bytes are kept for the log sample. */
export const SAMPLE_BYTES = 100;

export class PregreetProbe {
  bytes = 0;
  firstAt = 0;
  #sample: Buffer | null = null;

  /** Count an early chunk. Returns true on the first early chunk (the moment to log). */
  record(chunk: Buffer, now: number): boolean {
    const first = this.bytes === 0;
    this.bytes += chunk.length;
    if (first) {
      this.firstAt = now;
      this.#sample = Buffer.from(chunk.subarray(0, SAMPLE_BYTES));
    }
    return first;
  }

  get failed(): boolean {
    return this.bytes > 0;
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
