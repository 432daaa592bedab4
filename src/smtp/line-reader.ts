/*
 * smtp/line-reader.ts - bounded CRLF line reader over Buffers.
 *
 * Exports: LineSink (interface), LineReader.
 *
 * A line ends at LF. A CR right before the LF is part of the terminator;
 * a line that ends in LF alone is reported with `bareLf` (the bare-newline
 * test wants to know). A CR anywhere else is data.
 *
 * Bound: a line may be at most `maxLength` bytes, terminator included
 * (postscreen: line_length_limit). The reader decides at the byte that makes
 * a line exceed the bound, that is the (maxLength+1)-th byte of the line, so
 * the decision and the `length` it reports (always maxLength + 1, "more than
 * the limit") do not depend on how the input was cut into chunks. It then
 * discards up to and including the next LF and resumes. It never holds more
 * than maxLength bytes of a partial line.
 *
 * Allocation: a line that lies inside one chunk is handed out as a subarray
 * of that chunk (no copy). Only a line split across chunks is assembled in
 * one internal buffer, allocated on first need and grown geometrically up to
 * maxLength, then reused: an idle connection that never sends a partial line
 * costs no buffer at all (the 100,000 zombies goal).
 *
 * Pipelining evidence: onLine also gets `buffered`, the number of bytes of
 * the current chunk after the line's terminator (input the client sent
 * before it could have read our reply to this line, as postscreen's
 * non-empty VSTREAM buffer); rest() shows them, during the call only. Both
 * cost nothing when unused: no view is made unless rest() is called.
 *
 * XXX The Buffer given to onLine is only valid during the call: it is either
 * the caller's chunk or the reader's own buffer, which the next line reuses.
 * XXX Do not call feed(), takePending() or reset() from inside a sink
 * callback: call stop() and act after feed() returns (the rest of the chunk
 * is saved as pending only when the callback has returned).
 */

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);
const MIN_BUFFER = 256;

export interface LineSink {
  /**
   * A complete line, terminator stripped. `bareLf` is true when it ended in LF without CR.
   * `buffered`: bytes of the same chunk after this line (already received). The Buffer is only valid during the call.
   */
  onLine(line: Buffer, bareLf: boolean, buffered: number): void;
  /** The line being read exceeded maxLength (terminator included) before its end; the reader discards bytes up to the next LF and then resumes. Called once per overlong line. */
  onOverlong(length: number): void;
}

export class LineReader {
  readonly maxLength: number;
  /** Partial line bytes live in #buf[0, #len). Allocated on first need. */
  #buf: Buffer = EMPTY;
  #len = 0;
  /** Inside an overlong line: drop bytes through the next LF. */
  #discarding = false;
  #stopped = false;
  /** Bytes that arrived after stop(): kept for takePending(). */
  #rest: Buffer | null = null;
  /** During onLine only: the chunk being fed and the offset after the current line (for rest()). */
  #cur: Buffer = EMPTY;
  #curNext = 0;

  constructor(maxLength: number) {
    if (!Number.isInteger(maxLength) || maxLength < 1) {
      throw new RangeError(`LineReader: maxLength must be a positive integer, got ${String(maxLength)}`);
    }
    this.maxLength = maxLength;
  }

  /** Feed a chunk; calls sink synchronously for each complete line. If the sink sets `stop()` during a callback, feeding stops and the remaining bytes are kept (pending). */
  feed(chunk: Buffer, sink: LineSink): void {
    if (this.#stopped) {
      this.#keepRest(chunk, 0);
      return;
    }
    const n = chunk.length;
    const max = this.maxLength;
    let pos = 0;
    while (pos < n) {
      if (this.#discarding) {
        const lf = chunk.indexOf(LF, pos);
        if (lf < 0) return;
        this.#discarding = false;
        pos = lf + 1;
        continue;
      }
      // The line may take `room` more bytes, its LF included.
      const room = max - this.#len;
      const lf = chunk.indexOf(LF, pos);
      if (lf >= 0 && lf - pos < room) {
        this.#cur = chunk;
        this.#curNext = lf + 1;
        if (this.#len === 0) {
          // Whole line inside this chunk: hand out a view, no copy.
          const crlf = lf > pos && chunk[lf - 1] === CR;
          sink.onLine(chunk.subarray(pos, crlf ? lf - 1 : lf), !crlf, n - lf - 1);
        } else {
          this.#append(chunk, pos, lf);
          let end = this.#len;
          const crlf = end > 0 && this.#buf[end - 1] === CR;
          if (crlf) end--;
          // Empty the partial before the callback: it may stop() and take pending.
          this.#len = 0;
          sink.onLine(this.#buf.subarray(0, end), !crlf, n - lf - 1);
        }
        // Do not keep the caller's chunk alive past the call.
        this.#cur = EMPTY;
        pos = lf + 1;
      } else if (n - pos <= room) {
        // No LF in reach and the rest fits: keep it as the partial line.
        this.#append(chunk, pos, n);
        return;
      } else {
        // The byte at pos + room is the (max+1)-th of this line: overlong.
        const over = pos + room;
        this.#len = 0;
        this.#discarding = chunk[over] !== LF;
        pos = over + 1;
        sink.onOverlong(max + 1);
      }
      if (this.#stopped) {
        this.#keepRest(chunk, pos);
        return;
      }
    }
  }

  /**
   * During onLine only: a view of the bytes received after the current line
   * in the same chunk (its `buffered` count); empty at any other time.
   */
  rest(): Buffer {
    return this.#cur === EMPTY ? EMPTY : this.#cur.subarray(this.#curNext);
  }

  /** Stop delivering (e.g. session closed, or switching to splice). Later feeds only add to pending. */
  stop(): void {
    this.#stopped = true;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Bytes received but not yet delivered (partial line + rest after stop); empties the reader. */
  takePending(): Buffer {
    const partial = this.#len;
    const rest = this.#rest;
    this.#len = 0;
    this.#rest = null;
    if (partial === 0) return rest ?? EMPTY;
    const out = Buffer.allocUnsafe(partial + (rest === null ? 0 : rest.length));
    this.#buf.copy(out, 0, 0, partial);
    if (rest !== null) rest.copy(out, partial);
    return out;
  }

  get pendingLength(): number {
    return this.#len + (this.#rest === null ? 0 : this.#rest.length);
  }

  /** Forget everything (partial line, pending, discard and stop state); keeps the buffer for reuse. */
  reset(): void {
    this.#len = 0;
    this.#rest = null;
    this.#discarding = false;
    this.#stopped = false;
  }

  /** Copy chunk[from, to) after the partial line; callers guarantee the total stays <= maxLength. */
  #append(chunk: Buffer, from: number, to: number): void {
    const need = this.#len + (to - from);
    if (need > this.#buf.length) {
      let size = this.#buf.length === 0 ? MIN_BUFFER : this.#buf.length * 2;
      if (size < need) size = need;
      if (size > this.maxLength) size = this.maxLength;
      const grown = Buffer.allocUnsafe(size);
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    chunk.copy(this.#buf, this.#len, from, to);
    this.#len = need;
  }

  /** Keep chunk[from, end) as pending after stop(); copied, the caller may reuse its chunk. */
  #keepRest(chunk: Buffer, from: number): void {
    if (from >= chunk.length) return;
    const tail = chunk.subarray(from);
    this.#rest = this.#rest === null ? Buffer.from(tail) : Buffer.concat([this.#rest, tail]);
  }
}
