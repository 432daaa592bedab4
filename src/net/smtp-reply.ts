/*
 * net/smtp-reply.ts - SMTP replies from a backend, read incrementally and bounded.
 *
 * Exports:
 *   SmtpReply                           { code, lines, raw } of one complete (multi-line) reply
 *   SmtpReplyReader                     feed(chunk) -> the replies it completed; rest() -> what follows
 *
 * Lines end in LF (a CR before it is dropped); a reply is lines "CODE-text" ending with one
 * "CODE text" (RFC 5321 4.2). Anything else, a line over maxLine or a reply over maxReply throws
 * ScreenError SCR_ERR_SMTP_REPLY: a backend that sends it is broken, and the bounds keep one
 * that never ends a reply from growing memory.
 */
import { ScreenError } from '../util/errors.js';

const EMPTY = Buffer.alloc(0);

export interface SmtpReply {
  code: number;
  /** Text of each line after the code and separator (latin1, lossless). */
  lines: string[];
  /** The reply's bytes as received, CRLFs included (a view of the input, not a copy). */
  raw: Buffer;
}

interface SmtpReplyReaderOptions {
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
  /**
   * Bytes of the reply in progress (from its first line on): #store[#from, #from + #len).
   * #store grows by doubling and is never written below #from + #len, so the `raw` views
   * handed out (a splice writes them to the client later) stay intact; appending costs the
   * chunk, not the reply so far (a reply in tiny chunks used to be copied whole each time).
   */
  #store: Buffer = EMPTY;
  #from = 0;
  #len = 0;
  /** Offset (from #from) of the next unparsed line. */
  #scan = 0;
  /** Offset (from #from) up to which the unparsed line holds no LF: a long line in tiny chunks is searched once. */
  #seen = 0;
  #code = -1;
  #lines: string[] = [];

  constructor(opts: SmtpReplyReaderOptions = {}) {
    this.#maxLine = opts.maxLine ?? 2048;
    this.#maxReply = opts.maxReply ?? 65536;
  }

  feed(chunk: Buffer): SmtpReply[] {
    const out: SmtpReply[] = [];
    let buf = chunk;
    if (this.#len > 0) {
      this.#append(chunk);
      buf = this.#store.subarray(this.#from, this.#from + this.#len);
    }
    let replyStart = 0;
    let pos = this.#scan;
    let look = Math.max(pos, this.#seen);
    for (;;) {
      const lf = buf.indexOf(10, look);
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
      look = pos;
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
    // The partial line may hold maxLine + 1 bytes (its CR), as a complete one may.
    if (buf.length - replyStart > this.#maxReply + this.#maxLine + 1) throw replyError('reply too long', String(buf.length - replyStart));
    this.#scan = pos - replyStart;
    this.#seen = buf.length - replyStart;
    if (buf === chunk) {
      // Parsed in the caller's chunk: keep a copy of what is left, if anything.
      this.#store = EMPTY;
      this.#from = 0;
      this.#len = 0;
      if (replyStart < buf.length) this.#append(buf.subarray(replyStart));
    } else {
      this.#from += replyStart;
      this.#len -= replyStart;
    }
    return out;
  }

  /** Bytes after the last complete reply: a partial reply, or data that followed it. */
  rest(): Buffer {
    return this.#len === 0 ? EMPTY : this.#store.subarray(this.#from, this.#from + this.#len);
  }

  /** Append after the bytes kept; a full store is replaced by one twice the size (the old one is left as it is). */
  #append(chunk: Buffer): void {
    if (this.#from + this.#len + chunk.length > this.#store.length) {
      const grown = Buffer.allocUnsafe(Math.max(256, 2 * (this.#len + chunk.length)));
      this.#store.copy(grown, 0, this.#from, this.#from + this.#len);
      this.#store = grown;
      this.#from = 0;
    }
    chunk.copy(this.#store, this.#from + this.#len);
    this.#len += chunk.length;
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
